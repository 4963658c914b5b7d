"""The sandbox's aiohttp application: the shared wire routes plus inspection, faults, dashboard.

The wire routes come from :mod:`alertwire.wire` unchanged (the sandbox's
whole point is to answer exactly as the relay's ingest and, as far as is
known, the real services); the REST API subset (``/incidents``,
``/services``, ``/oncalls``) comes from :mod:`.rest_routes`, on the same
state. This module adds only what a test stand-in needs besides:

* ``GET /sandbox/alerts|incidents|services|events|changes|bigpanda``: JSON lists (see
  :mod:`.state`); filter by key with the ``X-Routing-Key`` header (or
  ``?routing_key=``), by BigPanda token with ``X-BigPanda-Token`` (or
  ``?token=``). The header is preferred: query strings end up in logs. Keys
  are never returned, only their last four characters.
  ``?last=N`` keeps only the newest N entries (what the dashboard shows).
* ``GET /sandbox/summary``: how many alerts (per status), incidents, change
  events, BigPanda alerts and accepted requests there are (the dashboard's counters).
* ``POST /sandbox/reset``: forget all state and faults, restore the rate limit
  the sandbox was started with.
* ``GET``/``POST /sandbox/faults``: see :mod:`.faults`.
* ``GET /sandbox/openapi.json``: the OpenAPI description (:mod:`.openapi`).
* ``GET /``: the dashboard.
* ``GET /dashboard/<plural>/<id>``: one incident's, service's, escalation
  policy's or user's page, where its ``html_url`` leads (:mod:`._object_pages`).

The server runs without an access log, so nothing a client sends (keys in
query strings included) is written anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from .. import _json
from .._numbers import is_whole
from .._secret import Secret
from ..wire import WIRE_PATHS, add_wire_routes, refusal
from ._dashboard import DASHBOARD_HTML
from ._object_pages import PAGE_CSP, PAGE_KINDS
from ._object_pages import object_page as render_object_page
from ._sink import SandboxSink
from .faults import Faults, FaultSpecError
from .openapi import openapi_document
from .ratelimit import SlidingWindowLimiter
from .rest_routes import RestSettings, rest_routes
from .rest_views import Links
from .state import SandboxState

__all__ = ["SandboxControl", "build_app"]

_FAULT_MESSAGE: Final = "Injected fault (sandbox)"
_SPEC_MAX_BYTES: Final = 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SandboxControl:
    """State, faults and rate limit of one sandbox: what both the HTTP and Python APIs drive."""

    def __init__(
        self,
        *,
        rate_limit: int | None = None,
        api_token: Secret | None = None,
        rest_rate_limit: int | None = None,
    ) -> None:
        self.state = SandboxState()
        self.faults = Faults()
        self.default_rate_limit = rate_limit
        self.sink = SandboxSink(self.state, self._limiter(rate_limit))
        self.rest = RestSettings(api_token=api_token, rate_limit=rest_rate_limit)

    @staticmethod
    def _limiter(rate_limit: int | None) -> SlidingWindowLimiter | None:
        return None if rate_limit is None else SlidingWindowLimiter(rate_limit)

    def set_rate_limit(self, rate_limit: int | None) -> None:
        self.sink.limiter = self._limiter(rate_limit)

    def reset(self) -> None:
        self.state.reset()
        self.faults.clear()
        self.set_rate_limit(self.default_rate_limit)
        self.rest.reset()

    def configure_faults(self, spec: Any) -> dict[str, Any]:
        """Apply a fault spec (and ``rate_limit``, which lives in the sink)."""
        set_rate = isinstance(spec, dict) and "rate_limit" in spec
        rate_limit = _limit(spec, "rate_limit", "events") if set_rate else None
        set_rest_rate = isinstance(spec, dict) and "rest_rate_limit" in spec
        rest_rate_limit = _limit(spec, "rest_rate_limit", "requests") if set_rest_rate else None
        described = self.faults.configure(spec)
        if set_rate:
            self.set_rate_limit(rate_limit)
        if set_rest_rate:
            self.rest.set_rate_limit(rest_rate_limit)
        limiter = self.sink.limiter
        described["rate_limit"] = None if limiter is None else limiter.limit
        rest_limiter = self.rest.limiter
        described["rest_rate_limit"] = None if rest_limiter is None else rest_limiter.limit
        return described


def _limit(spec: dict[str, Any], name: str, unit: str) -> int | None:
    value = spec.get(name)
    if value is not None and not is_whole(value, minimum=1):
        raise FaultSpecError(f"{name} must be a positive integer ({unit} per minute) or null")
    return value


def _json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=_json.dumps(value, no_floats=True), content_type="application/json"
    )


def _key_filter(request: web.Request, header: str, param: str) -> Secret | None:
    value = request.headers.get(header) or request.query.get(param)
    return Secret(value) if value else None


class _BadQuery(ValueError):
    """An inspection query parameter that makes no sense; answered 400 naming it."""


def _last(request: web.Request) -> int | None:
    """``?last=N``: only the newest N entries of a listing (``None``: all of them)."""
    value = request.query.get("last")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise _BadQuery(f"last must be a whole number (0 or more), got {value!r:.40}")
    return int(value)


def _listing(read: Callable[[], list[dict[str, Any]]]) -> web.Response:
    try:
        return _json_response(read())
    except _BadQuery as exc:
        return _json_response({"status": "invalid", "errors": [str(exc)]}, status=400)


def build_app(control: SandboxControl) -> web.Application:
    """The sandbox application for ``control`` (one per running server)."""

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in WIRE_PATHS:
            return await handler(request)
        if control.faults.latency:
            await asyncio.sleep(control.faults.latency)
        fault = control.faults.next_fault()
        if fault is None:
            return await handler(request)
        if fault.reset:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        assert fault.status is not None
        return refusal(fault.status, "fault", _FAULT_MESSAGE, fault.retry_after)

    app = web.Application(middlewares=[faults])
    add_wire_routes(app, control.sink)
    app.add_routes(rest_routes(control.state, control.faults, control.rest))
    state = control.state

    def by_routing_key(listing: Callable[..., list[dict[str, Any]]]) -> Handler:
        """A listing, narrowed to one routing key by ``X-Routing-Key`` or ``?routing_key=``."""

        async def handler(request: web.Request) -> web.Response:
            key = _key_filter(request, "X-Routing-Key", "routing_key")
            return _listing(lambda: listing(routing_key=key, last=_last(request)))

        return handler

    async def services(request: web.Request) -> web.Response:
        return _json_response(state.services())

    async def bigpanda(request: web.Request) -> web.Response:
        token = _key_filter(request, "X-BigPanda-Token", "token")
        return _listing(lambda: state.bigpanda(token=token, last=_last(request)))

    async def summary(request: web.Request) -> web.Response:
        return _json_response(state.summary())

    async def reset(request: web.Request) -> web.Response:
        control.reset()
        return _json_response({"status": "reset"})

    async def get_faults(request: web.Request) -> web.Response:
        return _json_response(control.configure_faults({}))

    async def post_faults(request: web.Request) -> web.Response:
        raw = await request.content.read(_SPEC_MAX_BYTES + 1)
        try:
            if len(raw) > _SPEC_MAX_BYTES:
                raise FaultSpecError("the fault specification is too large")
            try:
                spec = _json.loads(raw) if raw.strip() else {}
            except _json.JSONDecodeError as exc:
                raise FaultSpecError("the fault specification is not valid JSON") from exc
            return _json_response(control.configure_faults(spec))
        except FaultSpecError as exc:
            return _json_response({"status": "invalid", "errors": [str(exc)]}, status=400)

    async def openapi(request: web.Request) -> web.Response:
        return _json_response(openapi_document())

    async def object_page(request: web.Request) -> web.Response:
        plural, object_id = request.match_info["kind"], request.match_info["id"]
        links = Links(f"{request.scheme}://{request.host}")
        page = state.read(lambda book: render_object_page(book, plural, object_id, links))
        headers = {"Cache-Control": "no-store", "Content-Security-Policy": PAGE_CSP}
        if page is None:
            what = PAGE_KINDS.get(plural, "object")
            text = f"<!doctype html><title>not found</title><p>no such {what} in this sandbox</p>"
            return web.Response(text=text, status=404, content_type="text/html", headers=headers)
        return web.Response(text=page, content_type="text/html", headers=headers)

    async def dashboard(request: web.Request) -> web.Response:
        return web.Response(
            text=DASHBOARD_HTML,
            content_type="text/html",
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'",
            },
        )

    app.add_routes(
        [
            web.get("/", dashboard),
            web.get("/dashboard/{kind}/{id}", object_page),
            web.get("/sandbox/alerts", by_routing_key(state.alerts)),
            web.get("/sandbox/incidents", by_routing_key(state.incidents)),
            web.get("/sandbox/services", services),
            web.get("/sandbox/summary", summary),
            web.get("/sandbox/events", by_routing_key(state.events)),
            web.get("/sandbox/changes", by_routing_key(state.changes)),
            web.get("/sandbox/bigpanda", bigpanda),
            web.post("/sandbox/reset", reset),
            web.get("/sandbox/faults", get_faults),
            web.post("/sandbox/faults", post_faults),
            web.get("/sandbox/openapi.json", openapi),
        ]
    )
    return app
