"""A bound on pending events, so that a reachable endpoint cannot be filled by anyone.

Without it, whoever can reach the ingest endpoint (or one runaway script) can
queue events until the disk is full, and then real pages are refused. Two
bounds, both on events *pending* (stored, not yet delivered or dead):

* in total (``max_pending``, default :data:`DEFAULT_MAX_PENDING`);
* per routing key (``max_pending_per_key``, default
  :data:`DEFAULT_MAX_PENDING_PER_KEY`): a PagerDuty routing key, or a
  BigPanda token and app key. One noisy integration fills its own share and
  is refused; the others still get through.

An event beyond a bound is answered ``429`` with ``Retry-After``
(:data:`PENDING_RETRY_AFTER`): the sender keeps it and comes back once the
relay has delivered some (PagerDuty's own answer to "too much, slow down").
Nothing is stored. Each refusal is counted
(``alertwire_outbox_refused_total{reason="pending_total"|"pending_key"}``)
and logged at WARNING, at most once per interval per bound, with a count.

What it costs per request (measured on SQLite, 100,000 pending rows): the
total is read from the counters the store keeps by state (about 25 µs); a
per-key count has no index to read and takes one pass over the open rows
(about 50-100 ms). So both figures are *cached*: the total is re-read at most
every :data:`TOTAL_REFRESH` seconds, the per-key figures at most every
:data:`ROUTE_REFRESH` seconds (or 20 times as long as the last pass took,
whichever is longer), and in between this endpoint adds what it accepts
itself. Per-key figures are read only while the total could exceed the
per-key bound at all; below that (the normal case) a request costs no
query beyond the cached total. The figures are therefore approximate by
design: events delivered, or queued by other producers, show at the next
refresh; and a burst that arrives during a refresh may overshoot a bound by
what was in flight (at most a few group commits). Both reads run on the
ingest's writer thread, between commits, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from .._config import DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_PER_KEY
from .._errors import ConfigurationError, OutboxError
from .._numbers import is_whole
from ..outbox.machine import Store, route_key
from ..outbox.metrics import OutboxMetrics
from ..wire import IncomingBigPanda, IncomingPagerDuty, SinkRateLimited, Throttle
from ._sink import OutboxSink

__all__ = [
    "DEFAULT_MAX_PENDING",
    "DEFAULT_MAX_PENDING_PER_KEY",
    "PENDING_RETRY_AFTER",
    "BoundedSink",
    "PendingBound",
]

logger = logging.getLogger("alertwire.ingest")

Counts = tuple[int, dict[str, int]]

#: ``Retry-After`` (seconds) of a 429 for a full queue: time for the relay to deliver some.
PENDING_RETRY_AFTER: Final = 30.0
#: Seconds between two reads of the total from the store's counters.
TOTAL_REFRESH: Final = 0.25
#: Seconds at least between two per-key counts (one pass over the open rows).
ROUTE_REFRESH: Final = 2.0
#: A per-key count may take at most this share of the writer thread's time.
_ROUTE_COST_SHARE: Final = 20

REASON_TOTAL: Final = "pending_total"
REASON_KEY: Final = "pending_key"


def check_bound(name: str, value: int | None) -> None:
    """A pending bound: checked for sign only, ``True`` was a bound of 1 (nearly every
    event answered 429) and a ``"100"`` from a config file a bare TypeError."""
    if value is not None and not is_whole(value, minimum=1):
        raise ConfigurationError(
            f"{name} must be at least 1 (a whole number; or None for no bound), got {value!r:.40}"
        )


class PendingBound:
    """Decides whether ``n`` more events of a route fit; see the module docstring.

    ``run`` executes a store read off the event loop (the ingest passes its
    writer thread's :meth:`~alertwire.ingest.GroupCommitter.call`).
    """

    def __init__(
        self,
        store: Store,
        *,
        max_total: int | None,
        max_per_key: int | None,
        run: Callable[[Callable[[], Counts]], Awaitable[Counts]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_bound("max_pending", max_total)
        check_bound("max_pending_per_key", max_per_key)
        if (max_total is not None or max_per_key is not None) and not callable(
            getattr(store, "open_counts", None)
        ):  # a store written before the bound existed: say so, never fail each request
            raise ConfigurationError(
                f"{type(store).__name__} has no open_counts(), which the pending bounds read:"
                " implement it, or pass max_pending=None and max_pending_per_key=None"
            )
        self.store = store
        self.max_total = max_total
        self.max_per_key = max_per_key
        self._run = run
        self._clock = clock
        self._lock = asyncio.Lock()
        self._total = 0
        self._total_at: float | None = None
        self._routes: dict[str, int] | None = None
        self._routes_at = 0.0
        self._routes_interval = ROUTE_REFRESH
        #: Accepted (or being stored) here since the last reads.
        self._added_total = 0
        self._added: dict[str, int] = {}

    @property
    def active(self) -> bool:
        return self.max_total is not None or self.max_per_key is not None

    async def reserve(self, route: str, n: int) -> str | None:
        """``None`` and the ``n`` events counted, or the bound (reason word) they exceed."""
        if not self.active:
            return None
        try:
            now = self._clock()
            if self._stale_total(now) or self._stale_routes(now, n):
                await self._refresh(n)
        except OutboxError:
            # Cannot read the store: storing will most likely fail too and answer 503
            # with the reason. A bound that cannot be read does not refuse.
            return None
        total = self._total + self._added_total
        if self.max_total is not None and total + n > self.max_total:
            return REASON_TOTAL
        if self.max_per_key is not None and self._routes is not None:
            mine = self._routes.get(route, 0) + self._added.get(route, 0)
            if mine + n > self.max_per_key:
                return REASON_KEY
        self._added_total += n
        self._added[route] = self._added.get(route, 0) + n
        return None

    def release(self, route: str, n: int) -> None:
        """The reserved events were not stored after all."""
        self._added_total = max(0, self._added_total - n)
        left = self._added.get(route, 0) - n
        if left > 0:
            self._added[route] = left
        else:
            self._added.pop(route, None)

    def _needs_routes(self, n: int) -> bool:
        # No key can exceed its bound unless the total could: skip the costly count.
        return self.max_per_key is not None and self._total + self._added_total + n > (
            self.max_per_key
        )

    async def _refresh(self, n: int) -> None:
        """Read what is stale (the caller found something stale: checked there, so that a
        request with fresh figures, nearly every one, makes no coroutine for this)."""
        async with self._lock:  # one read at a time; the others use its figures
            now = self._clock()
            if self._stale_total(now) and not self._stale_routes(now, n):
                total, _ = await self._run(lambda: self.store.open_counts(per_route=False))
                self._total, self._total_at, self._added_total = total, now, 0
                if self._routes is not None and not self._needs_routes(n):
                    self._routes, self._added = None, {}  # back below the per-key bound
            # (Again: a fresh total may be the one that makes the per-key figures needed.)
            if self._stale_routes(now, n):
                total, routes = await self._run(lambda: self.store.open_counts(per_route=True))
                took = self._clock() - now
                self._total, self._total_at, self._added_total = total, now, 0
                self._routes, self._routes_at, self._added = routes, now, {}
                self._routes_interval = max(ROUTE_REFRESH, took * _ROUTE_COST_SHARE)

    def _stale_total(self, now: float) -> bool:
        return self._total_at is None or now - self._total_at >= TOTAL_REFRESH

    def _stale_routes(self, now: float, n: int) -> bool:
        if not self._needs_routes(n):
            return False
        return self._routes is None or now - self._routes_at >= self._routes_interval


class BoundedSink:
    """The outbox sink behind the pending bound: 429 instead of storing beyond it.

    Credentials outside an allow-list go straight to the outbox sink, which
    answers 403: a stranger learns nothing about the queue, and is not counted.
    """

    def __init__(
        self,
        sink: OutboxSink,
        bound: PendingBound,
        *,
        metrics: OutboxMetrics | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.sink = sink
        self.bound = bound
        self.metrics = metrics
        self.throttle = throttle if throttle is not None else Throttle()
        #: Refusals so far by reason (tests and the docs read these).
        self.refusals = {REASON_TOTAL: 0, REASON_KEY: 0}

    async def accept_pagerduty(self, event: IncomingPagerDuty) -> None:
        allow = self.sink.allow_routing_keys
        if allow is not None and not allow.allows(event.routing_key):
            return await self.sink.accept_pagerduty(event)  # 403
        route = route_key("pagerduty.alert", event.routing_key)
        await self._admit(route, 1, "pagerduty")
        try:
            await self.sink.accept_pagerduty(event)
        except BaseException:
            self.bound.release(route, 1)
            raise

    async def accept_bigpanda(self, request: IncomingBigPanda) -> None:
        allow = self.sink.allow_bigpanda_tokens
        if allow is not None and not allow.allows(request.token):
            return await self.sink.accept_bigpanda(request)  # 403
        route = route_key("bigpanda.alert", request.token, request.app_key)
        n = len(request.alerts)
        await self._admit(route, n, "bigpanda")
        try:
            await self.sink.accept_bigpanda(request)
        except BaseException:
            self.bound.release(route, n)
            raise

    async def _admit(self, route: str, n: int, destination: str) -> None:
        reason = await self.bound.reserve(route, n)
        if reason is None:
            return
        self.refusals[reason] += 1
        if self.metrics is not None:
            self.metrics.refused.labels(destination, reason).inc(n)
        if reason == REASON_TOTAL:
            limit, what = self.bound.max_total, "pending events"
            text = "The relay holds too many undelivered events"
        else:
            limit, what = self.bound.max_per_key, "pending events for one key"
            text = "The relay holds too many undelivered events for this key"
        self.throttle.log(
            logger,
            logging.WARNING,
            reason,
            "event=ingest_refused reason=%s destination=%s limit=%d (%s); answered 429",
            reason,
            destination,
            limit,
            what,
        )
        raise SinkRateLimited(
            f"{text} (at most {limit}); NOT accepted, retry later",
            retry_after=PENDING_RETRY_AFTER,
        )
