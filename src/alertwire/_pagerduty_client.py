"""PagerDuty and AsyncPagerDuty: the Events API v2 clients.

Thin on purpose: models validate, :mod:`alertwire.protocol.pagerduty` builds
and reads the wire format, a sender retries, a transport moves bytes. The
two classes share everything but the ``await``.

``asyncio`` and ``concurrent.futures`` are imported where they are used:
a one-event ``alertwire trigger`` in a cron job never needs them, and
together they are a large part of the package's import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from threading import Event
from typing import Any

from . import _config
from ._chains import chains, send_chain
from ._checked import Checked
from ._client_base import AsyncClientBase, ClientSettings, SyncEventsClientBase
from ._config import DEFAULT_CONCURRENCY
from ._delivery import DEFAULT_TIMEOUT
from ._errors import DeliveryError, HeldBack, ValidationError
from ._numbers import is_whole
from ._retry import RetryPolicy
from ._secret import Secret
from .models import pagerduty as models
from .models.pagerduty import TriggerAlert
from .models.pagerduty_rules import require_routing_key
from .models.results import EventResult
from .protocol import pagerduty as protocol
from .transport import Request, Response, Verify

__all__ = ["AsyncPagerDuty", "PagerDuty", "SendOutcome"]

#: What ``send_many`` returns for each event: its result, or the error that stopped it.
SendOutcome = EventResult | DeliveryError


def _check_event(event: object) -> models.PagerDutyEvent:
    # A TriggerAlert first: the other classes load on first use (models.pagerduty's _WHERE).
    if not isinstance(event, TriggerAlert) and not isinstance(
        event, (models.AcknowledgeAlert, models.ResolveAlert, models.Change)
    ):
        raise TypeError(
            "send() takes a TriggerAlert, AcknowledgeAlert, ResolveAlert or Change,"
            f" not {type(event).__name__}"
        )
    return event


def _check_concurrency(concurrency: object) -> int:
    """``send_many``'s ``concurrency``: a whole number, at least 1, checked before anything
    is sent (a string or ``None`` failed with a bare comparison TypeError; 0 or less
    ran one at a time in one client and the other)."""
    if not is_whole(concurrency, minimum=1):
        raise ValidationError(
            "concurrency", f"must be a whole number, at least 1, got {concurrency!r:.40}"
        )
    return concurrency


def _dedup_key(event: models.PagerDutyEvent) -> str | None:
    """An event's chain key (:mod:`alertwire._chains` says why chains): its dedup key;
    none for a change event, or a trigger whose key is assigned as it is sent."""
    return getattr(event, "dedup_key", None)


def _held_back(_failed: int, failure: DeliveryError) -> SendOutcome:
    return HeldBack(failure)


def _send_chain(
    chain: list[int],
    batch: list[models.PagerDutyEvent],
    outcomes: list[SendOutcome],
    send: Callable[[models.PagerDutyEvent], EventResult],
    stop: Event | None = None,
) -> None:
    """Send one key's events in order into ``outcomes`` (:func:`alertwire._chains.send_chain`:
    after a failure, the later ones are held back). With ``stop`` set, the rest of the
    chain is left unsent (``None``)."""

    def send_one(index: int) -> SendOutcome:
        try:
            return send(batch[index])
        except DeliveryError as exc:
            return exc

    def record(index: int, outcome: SendOutcome) -> None:
        outcomes[index] = outcome

    send_chain(chain, send_one, record, hold=_held_back, stop=stop)


class _PagerDutyBase(ClientSettings):
    """Configuration both clients share; validated once, at construction."""

    _REGIONS = protocol.REGIONS
    _CREDENTIAL = _config.ROUTING_KEY
    _ENV_URL = _config.ENV_PAGERDUTY_URL
    #: The integration key, held as a Secret; checked when assigned after construction too.
    routing_key = Checked(require_routing_key)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(routing_key={self.routing_key!r}, base_url={self.base_url!r})"
        )

    @classmethod
    def _env_settings(cls, env: Mapping[str, str] | None) -> dict[str, Any]:
        return {"routing_key": cls._CREDENTIAL.from_env(env), **cls._env_destination(env)}

    def _request(self, event: models.PagerDutyEvent) -> tuple[Request, str | None]:
        return protocol.build_request(self.base_url, self.routing_key, _check_event(event))

    def _parser(
        self, kind: protocol.Kind, dedup_key: str | None
    ) -> Callable[[Response], EventResult]:
        key = self.routing_key

        def parse(response: Response) -> EventResult:
            return protocol.parse_response(
                response, kind=kind, sent_dedup_key=dedup_key, routing_key=key
            )

        return parse

    def _delivery(
        self, event: models.PagerDutyEvent
    ) -> tuple[Request, Callable[[Response], EventResult]]:
        request, dedup_key = self._request(event)
        return request, self._parser(event.kind, dedup_key)


class PagerDuty(_PagerDutyBase, SyncEventsClientBase):
    """Synchronous Events API v2 client (HTTP/1.1 on sockets, keep-alive, thread-safe).

    ``http_client`` may be an ``httpx.Client`` (for HTTP/2 or SOCKS) or any
    :class:`~alertwire.transport.Transport`, such as a
    :class:`~alertwire.transport.MockTransport` in unit tests (docs/transports.md);
    ``verify`` takes a CA bundle path for a private CA such as the sandbox's.
    """

    def __init__(
        self,
        routing_key: str | Secret,
        *,
        region: str = "us",
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: Any = None,
        verify: Verify = True,
    ) -> None:
        self.routing_key = routing_key
        self._configure(region=region, base_url=base_url, timeout=timeout, retry=retry)
        self._connect(http_client, verify=verify, pool_size=DEFAULT_CONCURRENCY * 2)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> PagerDuty:
        """Read ``ALERTWIRE_ROUTING_KEY`` (or ``_FILE``), ``ALERTWIRE_PAGERDUTY_URL``, ``ALERTWIRE_REGION``."""
        return cls(**{**cls._env_settings(env), **overrides})

    def send(self, event: models.PagerDutyEvent) -> EventResult:
        """Deliver one event, retrying per the policy; raises a DeliveryError when it can't."""
        return self._sender.deliver(*self._delivery(event))

    def trigger(self, summary: str, **fields: Any) -> EventResult:
        return self.send(TriggerAlert(summary, **fields))

    def acknowledge(self, dedup_key: str) -> EventResult:
        return self.send(models.AcknowledgeAlert(dedup_key))

    def resolve(self, dedup_key: str) -> EventResult:
        return self.send(models.ResolveAlert(dedup_key))

    def change(self, summary: str, **fields: Any) -> EventResult:
        return self.send(models.Change(summary, **fields))

    def send_many(
        self, events: Iterable[models.PagerDutyEvent], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[SendOutcome]:
        """Send on ``concurrency`` threads; outcomes in input order, failures as values.

        The events of one dedup key go one after another, in input order, so a
        resolve never overtakes its trigger; different keys go at once. Once an
        event fails, the later ones of its key are not sent: their outcome is a
        :class:`~alertwire.HeldBack` (re-send the failed one and those together,
        in order).

        Interrupted (Ctrl-C, or any exception in the calling thread), it sends no
        more: the events not yet started are dropped, and those in flight end after
        their current try (a wait for a retry ends at once), so the interrupt is
        raised within one ``timeout`` rather than after every retry has run out.
        """
        concurrency = _check_concurrency(concurrency)
        batch = [_check_event(e) for e in events]
        outcomes: list[SendOutcome] = [None] * len(batch)  # type: ignore[list-item]
        key_chains = chains(batch, _dedup_key)
        if concurrency <= 1 or len(key_chains) <= 1:
            for chain in key_chains:
                _send_chain(chain, batch, outcomes, self.send)
            return outcomes
        # start-up: see the module docstring
        from concurrent.futures import ThreadPoolExecutor
        from functools import partial

        stop = Event()
        send = partial(self._send_unless, stop)

        def run_chain(chain: list[int]) -> None:
            _send_chain(chain, batch, outcomes, send, stop)

        with ThreadPoolExecutor(max_workers=min(concurrency, len(key_chains))) as pool:
            try:
                for _ in pool.map(run_chain, key_chains):
                    pass
            except BaseException:
                stop.set()  # before leaving the block, which waits for the threads
                raise
        return outcomes


class AsyncPagerDuty(_PagerDutyBase, AsyncClientBase):
    """Asynchronous Events API v2 client (asyncio keep-alive connections, opened on first send).

    Use as ``async with AsyncPagerDuty(key) as pd:`` so the connection pool
    is closed; ``http_client`` may be an ``httpx.AsyncClient``, an
    :class:`~alertwire.transport.AsyncTransport` or a
    :class:`~alertwire.transport.MockTransport` (docs/transports.md).
    """

    def __init__(
        self,
        routing_key: str | Secret,
        *,
        region: str = "us",
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: Any = None,
        verify: Verify = True,
        max_connections: int = 100,
    ) -> None:
        self.routing_key = routing_key
        self._configure(region=region, base_url=base_url, timeout=timeout, retry=retry)
        self._connect(http_client, verify=verify, pool_size=max_connections)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> AsyncPagerDuty:
        """Read the same variables as :meth:`PagerDuty.from_env`."""
        return cls(**{**cls._env_settings(env), **overrides})

    async def send(self, event: models.PagerDutyEvent) -> EventResult:
        request, dedup_key = self._request(event)
        return await self._get_sender().deliver(request, self._parser(event.kind, dedup_key))

    async def trigger(self, summary: str, **fields: Any) -> EventResult:
        return await self.send(TriggerAlert(summary, **fields))

    async def acknowledge(self, dedup_key: str) -> EventResult:
        return await self.send(models.AcknowledgeAlert(dedup_key))

    async def resolve(self, dedup_key: str) -> EventResult:
        return await self.send(models.ResolveAlert(dedup_key))

    async def change(self, summary: str, **fields: Any) -> EventResult:
        return await self.send(models.Change(summary, **fields))

    async def send_many(
        self, events: Iterable[models.PagerDutyEvent], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[SendOutcome]:
        """Send with at most ``concurrency`` in flight; outcomes in input order.

        The events of one dedup key go one after another, in input order (a
        resolve never overtakes its trigger), different keys at once, and a
        failed event holds back the later ones of its key
        (:class:`~alertwire.HeldBack`), as in :meth:`PagerDuty.send_many`.

        A fixed set of workers pulls from one iterator (no task per event), so
        a million-event batch costs ``concurrency`` tasks, not a million.

        Each event is type-checked once, up front (a wrong one fails the
        whole call before anything is sent), so the workers call the protocol
        and the sender directly rather than through :meth:`send`: per event
        that saves a coroutine frame, a second type check and three lookups,
        a measurable share of the client's own time at 32 in flight
        (docs/benchmarks.md). The request, the parse and the retry loop are
        exactly :meth:`send`'s.
        """
        concurrency = _check_concurrency(concurrency)
        batch = [_check_event(e) for e in events]
        if not batch:
            return []
        outcomes: list[SendOutcome] = [None] * len(batch)  # type: ignore[list-item]
        key_chains = chains(batch, _dedup_key)
        todo = iter(key_chains)
        deliver = self._get_sender().deliver
        build, parser = protocol.build_request, self._parser
        base_url, routing_key = self.base_url, self.routing_key

        async def worker() -> None:
            # alertwire._chains.send_chain's walk, awaited (that module says why not shared)
            for chain in todo:
                failed: DeliveryError | None = None
                for index in chain:
                    if failed is not None:
                        outcomes[index] = HeldBack(failed)
                        continue
                    event = batch[index]
                    request, dedup_key = build(base_url, routing_key, event)
                    try:
                        outcomes[index] = await deliver(request, parser(event.kind, dedup_key))
                    except DeliveryError as exc:
                        outcomes[index] = failed = exc

        import asyncio

        workers = [
            asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(key_chains)))
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            # A worker failed with something no DeliveryError (a custom transport's own
            # exception): gather() raised it and left the other workers running, still
            # sending the rest of the batch after this call had raised. They stop here.
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return outcomes
