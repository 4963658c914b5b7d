"""The sandbox's PagerDuty REST API v2 subset: incidents, services, on-calls.

Routes (docs/sandbox.md, "REST API"): ``GET /incidents``, ``PUT
/incidents`` (bulk), ``GET``/``PUT /incidents/{id}``, ``GET
/incidents/{id}/alerts``, ``GET /incidents/{id}/log_entries``, ``GET
/services``, ``GET /services/{id}``, ``GET /oncalls``. They read and write
the same :class:`~.state.SandboxState` as the Events API routes.

Every request passes, in order:

1. fault injection (``rest_fail_next``, :mod:`.faults`), like a load
   balancer in front of the service;
2. token authentication: ``Authorization: Token token=<token>`` (an
   account token) or ``Bearer <token>`` (an OAuth token). Any non-empty
   token is accepted unless the sandbox was given one (``api_token``); a
   missing or wrong one gets PagerDuty's 401 body;
3. the REST rate limit (``rest_rate_limit`` requests per minute per token),
   whose ``ratelimit-*`` headers then ride on every answer.

Writes (``PUT``) made with an account token need a ``From`` header (any
e-mail address: the sandbox makes the user on first use), as PagerDuty
demands; an OAuth token acts as its own user, so ``From`` is optional there.
``Accept`` is not checked: PagerDuty's own media type, ``application/json``
and none at all are all answered with JSON.

Errors use PagerDuty's body, ``{"error": {"message", "code", "errors"}}``:
400 ``Invalid Input Provided`` (2001), 401 ``Authentication failed`` (2006),
404 ``Not Found`` (2100), 429 ``Rate Limit Exceeded`` (2020).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone
from typing import Any, Final

from aiohttp import web

from .. import _json
from .._secret import Secret
from .faults import Faults
from .incidents import Incident, IncidentBook, Service
from .ratelimit import SlidingWindowLimiter
from .rest_query import IncidentQuery, InvalidInput, incident_query, page
from .rest_updates import TooManyIncidents, bulk_changes, single_change
from .rest_views import (
    Links,
    alert_json,
    incident_json,
    log_entry_json,
    oncall_json,
    service_json,
)
from .state import IncidentNotFound, IncidentUpdateRefused, SandboxState, StatusChange

__all__ = ["REST_PREFIXES", "RestSettings", "rest_error", "rest_routes"]

#: Paths under these belong to the REST subset (fault injection and auth apply).
REST_PREFIXES: Final = ("/incidents", "/services", "/oncalls")
MAX_BODY: Final = 1024 * 1024
FROM_REQUIRED: Final = (
    'You must specify a user\'s email address in the "From" header to perform this action'
)
_URGENCY_ORDER: Final = {"low": 0, "high": 1}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RestSettings:
    """What the REST routes need besides the state; mutable at run time (``/sandbox/faults``)."""

    def __init__(self, *, api_token: Secret | None = None, rate_limit: int | None = None) -> None:
        self.api_token = api_token
        self.default_rate_limit = rate_limit
        self.limiter: SlidingWindowLimiter | None = None
        self.set_rate_limit(rate_limit)

    def set_rate_limit(self, rate_limit: int | None) -> None:
        self.limiter = None if rate_limit is None else SlidingWindowLimiter(rate_limit)

    def reset(self) -> None:
        self.set_rate_limit(self.default_rate_limit)


def rest_error(
    status: int,
    message: str,
    code: int | None = None,
    errors: Iterable[str] = (),
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"message": message}
    if code is not None:
        error["code"] = code
    listed = list(errors)
    if listed:
        error["errors"] = listed
    return _answer({"error": error}, status=status, headers=headers)


def _answer(
    value: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=_json.dumps(value, no_floats=True),
        content_type="application/json",
        headers=headers,
    )


def _invalid(exc: InvalidInput) -> web.Response:
    return rest_error(400, "Invalid Input Provided", 2001, exc.errors)


def _not_found(*errors: str) -> web.Response:
    return rest_error(404, "Not Found", 2100, errors)


def _token(request: web.Request) -> tuple[str, str] | None:
    """(``"token"`` or ``"bearer"``, the token) from ``Authorization``, if well formed."""
    header = request.headers.get("Authorization", "").strip()
    scheme, _, rest = header.partition(" ")
    rest = rest.strip()
    if scheme.lower() == "token" and rest.lower().startswith("token="):
        value = rest[len("token=") :].strip()
        return ("token", value) if value else None
    if scheme.lower() == "bearer" and rest:
        return ("bearer", rest)
    return None


class _Routes:
    def __init__(self, state: SandboxState, faults: Faults, settings: RestSettings) -> None:
        self.state = state
        self.faults = faults
        self.settings = settings

    # --- the gate every REST request passes ------------------------------

    def guarded(self, handler: Handler) -> Handler:
        async def guarded_handler(request: web.Request) -> web.StreamResponse:
            fault = self.faults.next_rest_fault()
            if fault is not None:
                if fault.reset:
                    if request.transport is not None:
                        request.transport.abort()
                    raise asyncio.CancelledError
                return self._fault_answer(fault.status or 503, fault.retry_after)
            credentials = _token(request)
            expected = self.settings.api_token
            if credentials is None or (expected is not None and Secret(credentials[1]) != expected):
                return rest_error(401, "Authentication failed", 2006)
            limiter = self.settings.limiter
            if limiter is None:
                return await handler(request)
            allowance = limiter.take(("rest", Secret(credentials[1])))
            if not allowance.allowed:
                return rest_error(429, "Rate Limit Exceeded", 2020, headers=allowance.headers())
            response = await handler(request)
            response.headers.update(allowance.headers())
            return response

        return guarded_handler

    @staticmethod
    def _fault_answer(status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            reset = str(max(1, round(retry_after))) if retry_after is not None else "1"
            headers = {
                "ratelimit-limit": "960",
                "ratelimit-remaining": "0",
                "ratelimit-reset": reset,
            }
            if retry_after is not None:
                headers["Retry-After"] = reset
            return rest_error(429, "Rate Limit Exceeded", 2020, headers=headers)
        headers = {} if retry_after is None else {"Retry-After": str(max(0, round(retry_after)))}
        return rest_error(status, "Injected fault (sandbox)", headers=headers)

    @staticmethod
    def links(request: web.Request) -> Links:
        return Links(f"{request.scheme}://{request.host}")

    # --- incidents -------------------------------------------------------

    async def list_incidents(self, request: web.Request) -> web.Response:
        try:
            query = incident_query(request.query, datetime.now(timezone.utc))
        except InvalidInput as exc:
            return _invalid(exc)
        links = self.links(request)

        def read(book: IncidentBook) -> dict[str, Any]:
            chosen = _sorted([i for i in book.incidents if _matches(i, query)], query)
            return query.page.cut(chosen, lambda i: incident_json(i, links), "incidents")

        return _answer(self.state.read(read))

    async def get_incident(self, request: web.Request) -> web.Response:
        incident_id = request.match_info["id"]
        links = self.links(request)
        value = self.state.read(
            lambda book: _maybe(book.incident(incident_id), lambda i: incident_json(i, links))
        )
        if value is None:
            return _not_found(f"Incident {incident_id[:40]} not found")
        return _answer({"incident": value})

    async def put_incident(self, request: web.Request) -> web.Response:
        incident_id = request.match_info["id"]
        return await self._update(request, lambda body: [single_change(body, incident_id)], True)

    async def put_incidents(self, request: web.Request) -> web.Response:
        return await self._update(request, bulk_changes, False)

    async def _update(
        self,
        request: web.Request,
        read_changes: Callable[[Any], list[StatusChange]],
        single: bool,
    ) -> web.Response:
        sender = request.headers.get("From", "").strip()
        credentials = _token(request)  # checked already by the gate
        if not sender and credentials is not None and credentials[0] == "token":
            return rest_error(400, FROM_REQUIRED, 2016)
        raw = await request.content.read(MAX_BODY + 1)
        try:
            if len(raw) > MAX_BODY:
                raise InvalidInput("the request body is larger than 1 MiB")
            try:
                body = _json.loads(raw)
            except _json.JSONDecodeError:
                raise InvalidInput("the request body is not valid JSON") from None
            changes = read_changes(body)
            links = self.links(request)
            rendered = self.state.set_incident_status(
                changes, sender or None, lambda incident: incident_json(incident, links)
            )
        except TooManyIncidents as exc:
            return rest_error(413, "Request Entity Too Large", None, exc.errors)
        except InvalidInput as exc:
            return _invalid(exc)
        except IncidentNotFound as exc:
            return _not_found(*(f"Incident {i[:40]} not found" for i in exc.ids))
        except IncidentUpdateRefused as exc:
            return rest_error(400, "Invalid Input Provided", 2001, exc.errors)
        if single:
            return _answer({"incident": rendered[0]})
        return _answer(
            {
                "incidents": rendered,
                "limit": len(rendered),
                "offset": 0,
                "more": False,
                "total": None,
            }
        )

    async def incident_alerts(self, request: web.Request) -> web.Response:
        return self._incident_list(request, "alerts")

    async def incident_log_entries(self, request: web.Request) -> web.Response:
        return self._incident_list(request, "log_entries")

    def _incident_list(self, request: web.Request, what: str) -> web.Response:
        incident_id = request.match_info["id"]
        try:
            paging = page(request.query)
            statuses = {v for k in ("statuses[]", "statuses") for v in request.query.getall(k, [])}
            if what == "alerts" and statuses - {"triggered", "resolved"}:
                raise InvalidInput("statuses[] of alerts must be triggered or resolved")
        except InvalidInput as exc:
            return _invalid(exc)
        alert_key = request.query.get("alert_key")
        links = self.links(request)

        def read(book: IncidentBook) -> dict[str, Any] | None:
            incident = book.incident(incident_id)
            if incident is None:
                return None
            if what == "log_entries":
                return paging.cut(incident.log, lambda e: log_entry_json(e, incident, links), what)
            alerts = [
                a
                for a in incident.alerts
                if (
                    not statuses
                    or ("resolved" if a.status == "resolved" else "triggered") in statuses
                )
                and (alert_key is None or a.dedup_key == alert_key)
            ]
            return paging.cut(alerts, lambda a: alert_json(a, incident, links), what)

        value = self.state.read(read)
        if value is None:
            return _not_found(f"Incident {incident_id[:40]} not found")
        return _answer(value)

    # --- services and on-calls --------------------------------------------

    async def list_services(self, request: web.Request) -> web.Response:
        try:
            paging = page(request.query)
        except InvalidInput as exc:
            return _invalid(exc)
        text = (request.query.get("query") or "").lower()
        links = self.links(request)

        def read(book: IncidentBook) -> dict[str, Any]:
            chosen = sorted(
                (s for s in book.services if text in s.name.lower()),
                key=lambda s: s.name.lower(),
            )
            return paging.cut(chosen, lambda s: _service(book, s, links), "services")

        return _answer(self.state.read(read))

    async def get_service(self, request: web.Request) -> web.Response:
        service_id = request.match_info["id"]
        links = self.links(request)
        value = self.state.read(
            lambda book: _maybe(book.service(service_id), lambda s: _service(book, s, links))
        )
        if value is None:
            return _not_found(f"Service {service_id[:40]} not found")
        return _answer({"service": value})

    async def list_oncalls(self, request: web.Request) -> web.Response:
        try:
            paging = page(request.query)
        except InvalidInput as exc:
            return _invalid(exc)
        policy_ids = set(request.query.getall("escalation_policy_ids[]", []))
        user_ids = set(request.query.getall("user_ids[]", []))
        links = self.links(request)

        def read(book: IncidentBook) -> dict[str, Any]:
            policies = [
                p
                for p in [book.policy]
                if (not policy_ids or p.id in policy_ids)
                and (not user_ids or p.oncall.id in user_ids)
            ]
            return paging.cut(policies, lambda p: oncall_json(p, links), "oncalls")

        return _answer(self.state.read(read))


def _maybe(value: Any, render: Callable[[Any], dict[str, Any]]) -> dict[str, Any] | None:
    return None if value is None else render(value)


def _service(book: IncidentBook, service: Service, links: Links) -> dict[str, Any]:
    open_statuses = {i.status for i in book.incidents if i.service is service and i.is_open}
    return service_json(service, links, open_statuses)


def _matches(incident: Incident, query: IncidentQuery) -> bool:
    return (
        (not query.statuses or incident.status in query.statuses)
        and (not query.service_ids or incident.service.id in query.service_ids)
        and (not query.urgencies or incident.urgency in query.urgencies)
        and (query.incident_key is None or incident.incident_key == query.incident_key)
        and (query.since is None or incident.created_at >= query.since)
        and (query.until is None or incident.created_at <= query.until)
    )


def _sorted(incidents: list[Incident], query: IncidentQuery) -> list[Incident]:
    # Stable sorts, last key first: the first sort_by field decides, the second breaks ties.
    ordered = list(incidents)
    for name, descending in reversed(query.sort):
        if name == "resolved_at":
            # Unresolved incidents have no resolve time: they go last either way.
            done = [i for i in ordered if i.resolved_at is not None]
            done.sort(key=lambda i: i.resolved_at or i.created_at, reverse=descending)
            ordered = done + [i for i in ordered if i.resolved_at is None]
        else:
            ordered.sort(key=lambda i: _sort_value(i, name), reverse=descending)
    return ordered


def _sort_value(incident: Incident, name: str) -> Any:
    if name == "incident_number":
        return incident.number
    if name == "urgency":
        return _URGENCY_ORDER.get(incident.urgency, 1)
    return incident.created_at


def rest_routes(state: SandboxState, faults: Faults, settings: RestSettings) -> list[web.RouteDef]:
    routes = _Routes(state, faults, settings)
    guard = routes.guarded
    return [
        web.get("/incidents", guard(routes.list_incidents)),
        web.put("/incidents", guard(routes.put_incidents)),
        web.get("/incidents/{id}", guard(routes.get_incident)),
        web.put("/incidents/{id}", guard(routes.put_incident)),
        web.get("/incidents/{id}/alerts", guard(routes.incident_alerts)),
        web.get("/incidents/{id}/log_entries", guard(routes.incident_log_entries)),
        web.get("/services", guard(routes.list_services)),
        web.get("/services/{id}", guard(routes.get_service)),
        web.get("/oncalls", guard(routes.list_oncalls)),
    ]
