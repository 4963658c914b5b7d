"""PagerDutyAPI: the synchronous REST API v2 session (``http.client``, keep-alive, thread-safe).

Method names are those of PagerDuty's official ``RestApiV2Client`` for the
common subset, so code moves over by changing the constructor; where the
behaviour differs (bounded retries, typed errors, ``http://`` on loopback)
is listed in ``docs/rest.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .._client_base import SyncClientBase
from .._delivery import DEFAULT_TIMEOUT, SyncSender
from .._errors import ResponseError
from .._retry import RetryPolicy
from .._secret import Secret
from ..transport import Verify
from ._base import OPEN_STATUSES, APIBase, Prepared, matches, partial_updates, post_policy
from ._response import RestResponse
from ._types import Headers, Ids, Params, Path

__all__ = ["PagerDutyAPI"]


class PagerDutyAPI(APIBase, SyncClientBase):
    """A PagerDuty REST API v2 session: ``with PagerDutyAPI(token) as api: api.rget(...)``.

    ``token`` is a REST API key (``Authorization: Token token=…``), or with
    ``oauth=True`` an OAuth access token (``Bearer``). ``default_from`` is
    sent as ``From`` (the email of the PagerDuty user acting), which
    PagerDuty requires on incident updates made with an account-level key.
    ``base_url`` may be ``http://`` only to a loopback address (a sandbox).
    ``http_client`` may be an ``httpx.Client`` (for proxies) or any
    :class:`~alertwire.transport.Transport`, such as a
    :class:`~alertwire.transport.MockTransport` in unit tests (docs/transports.md).
    """

    def __init__(
        self,
        token: str | Secret,
        *,
        oauth: bool = False,
        default_from: str | None = None,
        region: str = "us",
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        verify: Verify = True,
        http_client: Any = None,
    ) -> None:
        self._set_credentials(token, oauth=oauth, default_from=default_from)
        self._configure(region=region, base_url=base_url, timeout=timeout, retry=retry)
        self._connect(http_client, verify=verify)
        once = post_policy(self.retry)
        self._once = SyncSender(self._sender.transport, timeout=timeout, retry=once)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> PagerDutyAPI:
        """Read ``ALERTWIRE_PAGERDUTY_API_TOKEN`` (or ``_FILE``), ``ALERTWIRE_PAGERDUTY_API_URL``,
        ``ALERTWIRE_REGION`` and ``ALERTWIRE_PAGERDUTY_FROM``; keyword arguments win."""
        return cls(**{**cls._env_settings(env), **overrides})

    def _settings_changed(self) -> None:
        super()._settings_changed()
        once: SyncSender | None = getattr(self, "_once", None)  # none yet while constructing
        if once is not None:
            once.timeout, once.retry = self.timeout, post_policy(self.retry)

    def _deliver(self, prepared: Prepared) -> Any:
        sender = self._sender if prepared.idempotent else self._once
        return sender.deliver(prepared.request, prepared.parse)

    # --- plain requests: the answer whatever its status --------------------------

    def request(
        self,
        method: str,
        path: Path,
        *,
        params: Params = None,
        json: Any = None,
        headers: Headers = None,
    ) -> RestResponse:
        """Send one request; 429 and 5xx are retried within the policy, then returned as is."""
        prepared = self._raw(method, path, params, json, headers)
        try:
            response: RestResponse = self._deliver(prepared)
        except ResponseError as exc:
            return prepared.answer_after(exc)
        return response

    def get(self, path: Path, *, params: Params = None, headers: Headers = None) -> RestResponse:
        return self.request("GET", path, params=params, headers=headers)

    def post(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> RestResponse:
        return self.request("POST", path, params=params, json=json, headers=headers)

    def put(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> RestResponse:
        return self.request("PUT", path, params=params, json=json, headers=headers)

    def delete(self, path: Path, *, params: Params = None, headers: Headers = None) -> RestResponse:
        return self.request("DELETE", path, params=params, headers=headers)

    # --- JSON bodies, errors raised ----------------------------------------------

    def jget(self, path: Path, *, params: Params = None, headers: Headers = None) -> Any:
        """The decoded body of a GET; a non-2xx answer raises its typed error."""
        return self._deliver(self._decoded("GET", path, params, None, headers, entity=False))

    def jpost(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> Any:
        return self._deliver(self._decoded("POST", path, params, json, headers, entity=False))

    def jput(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> Any:
        return self._deliver(self._decoded("PUT", path, params, json, headers, entity=False))

    # --- entities, unwrapped --------------------------------------------------------

    def rget(self, path: Path, *, params: Params = None, headers: Headers = None) -> Any:
        """The entity: ``rget("/incidents/PXYZ")`` is the incident dict, a list path the list."""
        return self._deliver(self._decoded("GET", path, params, None, headers, entity=True))

    def rpost(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> Any:
        """Create: ``json`` with or without its wrapper; returns the created entity."""
        return self._deliver(self._decoded("POST", path, params, json, headers, entity=True))

    def rput(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> Any:
        """Update: ``rput(incident, json={"type": "incident_reference", "status": "resolved"})``."""
        return self._deliver(self._decoded("PUT", path, params, json, headers, entity=True))

    def rdelete(self, path: Path, *, params: Params = None, headers: Headers = None) -> None:
        self._deliver(self._decoded("DELETE", path, params, None, headers, entity=False))

    # --- lists -------------------------------------------------------------------------

    def iter_all(
        self, path: Path, params: Params = None, *, page_size: int | None = None
    ) -> Iterator[Any]:
        """Every result of a list endpoint, page after page (offset or cursor, as the path uses)."""
        pages = self._pages(path, params, page_size)

        def walk() -> Iterator[Any]:
            for page in pages:
                yield from pages.take(self._deliver(page))

        return walk()

    def list_all(
        self, path: Path, params: Params = None, *, page_size: int | None = None
    ) -> list[Any]:
        return list(self.iter_all(path, params, page_size=page_size))

    def dict_all(
        self, path: Path, by: str = "id", params: Params = None, *, page_size: int | None = None
    ) -> dict[Any, Any]:
        """Every result keyed by its ``by`` attribute."""
        return {item[by]: item for item in self.iter_all(path, params, page_size=page_size)}

    def find(
        self, resource: str, query: str, attribute: str = "name", params: Params = None
    ) -> dict[str, Any] | None:
        """The first ``resource`` whose ``attribute`` equals ``query`` (any case), or ``None``."""
        search = {**(params or {}), "query": query}
        return next(
            (i for i in self.iter_all(resource, search) if matches(i, attribute, query)), None
        )

    # --- the alerting loop -----------------------------------------------------------

    def incident_for_dedup_key(
        self, dedup_key: str, service_ids: Ids = None
    ) -> dict[str, Any] | None:
        """The incident an Events API dedup key opened: the open one, else the newest; or None."""
        query = self._incident_key_query(dedup_key, service_ids)
        return self._pick(self.list_all("/incidents", query))

    def open_incidents(self, service_ids: Ids = None) -> list[dict[str, Any]]:
        """Triggered and acknowledged incidents, of these services only when given."""
        found = self.list_all("/incidents", self._incidents_query(OPEN_STATUSES, service_ids))
        return self._incidents(found)

    def incidents(
        self, statuses: Sequence[str] = OPEN_STATUSES, service_ids: Ids = None
    ) -> list[dict[str, Any]]:
        found = self.list_all("/incidents", self._incidents_query(statuses, service_ids))
        return self._incidents(found)

    def acknowledge(self, *incidents: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        """Acknowledge incidents (ids or incident dicts), 250 per request; the updated incidents."""
        return self._set_status(incidents, "acknowledged")

    def resolve(self, *incidents: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        """Resolve incidents (ids or incident dicts), 250 per request; the updated incidents."""
        return self._set_status(incidents, "resolved")

    def _set_status(
        self, incidents: Sequence[str | Mapping[str, Any]], status: str
    ) -> list[dict[str, Any]]:
        updated: list[dict[str, Any]] = []
        with partial_updates(updated, status):
            for prepared in self._status_updates(incidents, status):
                updated += self._deliver(prepared)
        return updated

    def oncalls(
        self,
        *,
        schedule_ids: Ids = None,
        escalation_policy_ids: Ids = None,
        user_ids: Ids = None,
        params: Params = None,
    ) -> list[dict[str, Any]]:
        """Who is on call now (``GET /oncalls``), optionally for these schedules, policies, users."""
        query = self._oncalls_query(schedule_ids, escalation_policy_ids, user_ids, params)
        return self.list_all("/oncalls", query)
