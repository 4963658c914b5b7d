"""AsyncPagerDutyAPI: the asynchronous REST API v2 session (asyncio connections, opened on first request).

The same methods as :class:`~alertwire.rest.PagerDutyAPI`, awaited; lists
iterate with ``async for``. Every request is prepared by the code the sync
client uses (:mod:`alertwire.rest._base`, :mod:`alertwire.protocol.rest`);
only the delivery is awaited here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from .._client_base import AsyncClientBase
from .._delivery import DEFAULT_TIMEOUT, AsyncSender
from .._errors import ResponseError
from .._retry import RetryPolicy
from .._secret import Secret
from ..transport import Verify
from ._base import OPEN_STATUSES, APIBase, Prepared, matches, partial_updates, post_policy
from ._response import RestResponse
from ._types import Headers, Ids, Params, Path

__all__ = ["AsyncPagerDutyAPI"]


class AsyncPagerDutyAPI(APIBase, AsyncClientBase):
    """``async with AsyncPagerDutyAPI(token) as api: await api.rget(...)``.

    Same constructor as :class:`~alertwire.rest.PagerDutyAPI`; the
    connection pool is made on the first request (inside the running loop) and
    closed by ``async with`` exit or :meth:`aclose`.
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
        max_connections: int = 100,
    ) -> None:
        self._set_credentials(token, oauth=oauth, default_from=default_from)
        self._configure(region=region, base_url=base_url, timeout=timeout, retry=retry)
        self._connect(http_client, verify=verify, pool_size=max_connections)
        self._once: AsyncSender | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> AsyncPagerDutyAPI:
        """Read the same variables as :meth:`PagerDutyAPI.from_env`."""
        return cls(**{**cls._env_settings(env), **overrides})

    def _settings_changed(self) -> None:
        super()._settings_changed()
        self._once = None  # made again, from the new settings, by the next POST

    async def _deliver(self, prepared: Prepared) -> Any:
        sender = self._get_sender()
        if not prepared.idempotent:
            if self._once is None:
                once = post_policy(self.retry)
                self._once = AsyncSender(sender.transport, timeout=self.timeout, retry=once)
            sender = self._once
        return await sender.deliver(prepared.request, prepared.parse)

    async def aclose(self) -> None:
        self._once = None
        await super().aclose()

    async def close(self) -> None:
        """The same as :meth:`aclose`."""
        await self.aclose()

    # --- plain requests: the answer whatever its status --------------------------

    async def request(
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
            response: RestResponse = await self._deliver(prepared)
        except ResponseError as exc:
            return prepared.answer_after(exc)
        return response

    async def get(
        self, path: Path, *, params: Params = None, headers: Headers = None
    ) -> RestResponse:
        return await self.request("GET", path, params=params, headers=headers)

    async def post(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> RestResponse:
        return await self.request("POST", path, params=params, json=json, headers=headers)

    async def put(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> RestResponse:
        return await self.request("PUT", path, params=params, json=json, headers=headers)

    async def delete(
        self, path: Path, *, params: Params = None, headers: Headers = None
    ) -> RestResponse:
        return await self.request("DELETE", path, params=params, headers=headers)

    # --- JSON bodies, errors raised ----------------------------------------------

    async def jget(self, path: Path, *, params: Params = None, headers: Headers = None) -> Any:
        return await self._deliver(self._decoded("GET", path, params, None, headers, entity=False))

    async def jpost(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> Any:
        return await self._deliver(self._decoded("POST", path, params, json, headers, entity=False))

    async def jput(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> Any:
        return await self._deliver(self._decoded("PUT", path, params, json, headers, entity=False))

    # --- entities, unwrapped --------------------------------------------------------

    async def rget(self, path: Path, *, params: Params = None, headers: Headers = None) -> Any:
        return await self._deliver(self._decoded("GET", path, params, None, headers, entity=True))

    async def rpost(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> Any:
        return await self._deliver(self._decoded("POST", path, params, json, headers, entity=True))

    async def rput(
        self, path: Path, *, json: Any = None, params: Params = None, headers: Headers = None
    ) -> Any:
        return await self._deliver(self._decoded("PUT", path, params, json, headers, entity=True))

    async def rdelete(self, path: Path, *, params: Params = None, headers: Headers = None) -> None:
        await self._deliver(self._decoded("DELETE", path, params, None, headers, entity=False))

    # --- lists -------------------------------------------------------------------------

    def iter_all(
        self, path: Path, params: Params = None, *, page_size: int | None = None
    ) -> AsyncGenerator[Any, None]:
        """``async for incident in api.iter_all("/incidents"): ...`` (arguments checked at once)."""
        pages = self._pages(path, params, page_size)

        async def walk() -> AsyncGenerator[Any, None]:
            for page in pages:
                for item in pages.take(await self._deliver(page)):
                    yield item

        return walk()

    async def list_all(
        self, path: Path, params: Params = None, *, page_size: int | None = None
    ) -> list[Any]:
        return [item async for item in self.iter_all(path, params, page_size=page_size)]

    async def dict_all(
        self, path: Path, by: str = "id", params: Params = None, *, page_size: int | None = None
    ) -> dict[Any, Any]:
        return {item[by]: item async for item in self.iter_all(path, params, page_size=page_size)}

    async def find(
        self, resource: str, query: str, attribute: str = "name", params: Params = None
    ) -> dict[str, Any] | None:
        search = {**(params or {}), "query": query}
        # Closed on the early return, not left to the garbage collector.
        async with contextlib.aclosing(self.iter_all(resource, search)) as items:
            async for item in items:
                if matches(item, attribute, query):
                    return dict(item)
        return None

    # --- the alerting loop -----------------------------------------------------------

    async def incident_for_dedup_key(
        self, dedup_key: str, service_ids: Ids = None
    ) -> dict[str, Any] | None:
        query = self._incident_key_query(dedup_key, service_ids)
        return self._pick(await self.list_all("/incidents", query))

    async def open_incidents(self, service_ids: Ids = None) -> list[dict[str, Any]]:
        found = await self.list_all("/incidents", self._incidents_query(OPEN_STATUSES, service_ids))
        return self._incidents(found)

    async def incidents(
        self, statuses: Sequence[str] = OPEN_STATUSES, service_ids: Ids = None
    ) -> list[dict[str, Any]]:
        found = await self.list_all("/incidents", self._incidents_query(statuses, service_ids))
        return self._incidents(found)

    async def acknowledge(self, *incidents: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        return await self._set_status(incidents, "acknowledged")

    async def resolve(self, *incidents: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        return await self._set_status(incidents, "resolved")

    async def _set_status(
        self, incidents: Sequence[str | Mapping[str, Any]], status: str
    ) -> list[dict[str, Any]]:
        updated: list[dict[str, Any]] = []
        with partial_updates(updated, status):
            for prepared in self._status_updates(incidents, status):
                updated += await self._deliver(prepared)
        return updated

    async def oncalls(
        self,
        *,
        schedule_ids: Ids = None,
        escalation_policy_ids: Ids = None,
        user_ids: Ids = None,
        params: Params = None,
    ) -> list[dict[str, Any]]:
        query = self._oncalls_query(schedule_ids, escalation_policy_ids, user_ids, params)
        return await self.list_all("/oncalls", query)
