"""Relay: deliver what the outbox holds, at least once, in order per key.

One asyncio loop does three things in turn: record the outcomes of finished
sends (one transaction for all of them: group commit), claim as many heads
as there are free send slots, and start a send for each. Different keys
deliver concurrently (up to ``concurrency``); a key's next event becomes
claimable only once the outcome of the previous one is committed, so per-key
order is strict.

Claiming ahead: each cycle also claims up to ``concurrency`` more heads than
there are free slots, held ready in memory, and a send that finishes starts
the next ready one at once. Without them every slot that freed up stayed
idle for the whole next cycle (a commit: on SQLite an fsync of a few ms),
and the relay delivered about 0.4x what the same sends from memory do. A
ready row waits for a free slot, at most one send (``timeout``), so this is
done only when the lease covers that wait and the send after it
(``lease_seconds > 2 * timeout``; the default 60 s over 10 s does). Rows
still ready when the relay stops are given back (``Release``: pending again,
the try not counted), never sent after a stop.

Nothing about the wire format is here: requests are built and answers
classified by the sans-IO protocol modules (through :mod:`._destinations`), bytes moved by the shared
aiohttp transport, and every decision (retry when, dead-letter why, pace how)
is `alertwire.outbox.machine.Machine`'s. Store calls run in one
dedicated worker thread, so a commit's fsync never stalls sends in flight.

Stopping (``stop()``, SIGTERM, Ctrl-C) claims nothing new, waits for the
sends in flight, records their outcomes and returns: nothing is left
leased. A second request (a second Ctrl-C) stops at once: the sends in
flight are abandoned and their leases lapse, as after SIGKILL. A relay
killed with SIGKILL leaves its claims leased until ``lease_seconds`` pass;
then any relay takes them over. An event whose answer was lost with the
process is sent again: that is the "at least once".

A drain (``run(drain=True)``) is bounded by ``drain_timeout``: cron must
never pile up relays while an upstream is down. At the bound the relay
claims nothing new, lets the sends in flight finish, and returns with
``RelayReport.incomplete`` set; what is left stays queued for the next run.

Nothing is dead-lettered quietly: each dead letter is a WARNING (one summary
line when many come at once, e.g. ``max_age`` expiring a backlog),
a count in ``RelayReport.dead`` and in the ``alertwire_relay_dead`` counter
by reason (docs/relay.md).

A store that stops answering (database restarted, disk full) is an outage,
not a reason to exit: :mod:`._outage` backs off, logs its start and end once
each, and reports it on the health checks (see there).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .._config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
)
from .._delivery import async_transport_for
from .._errors import ConfigurationError, DeliveryError, OutboxError, RateLimited
from .._retry import RetryPolicy
from ..outbox import Outbox
from ..outbox.machine import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_AGE,
    DEFAULT_RATE_LIMIT_PER_MINUTE,
    RELAY_MAX_ATTEMPTS,
    Claimed,
    Delivered,
    Machine,
    MarkDead,
    Outcome,
    Release,
    Store,
    new_owner,
)
from ..outbox.metrics import OutboxMetrics, destination_of
from ..transport import AsyncTransport, Verify
from ._dead_letters import DeadLetterLog
from ._destinations import Destinations
from ._outage import StoreOutage

if TYPE_CHECKING:
    from ..ingest import IngestConfig, IngestServer

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_MAX_BACKOFF",
    "Relay",
    "RelayReport",
]

logger = logging.getLogger("alertwire.relay")
T = TypeVar("T")


def _log(event: str, **fields: object) -> None:
    """One ``key=value`` line per event: greppable, and never a credential (callers pass
    ids, kinds, statuses and route digests only)."""
    if logger.isEnabledFor(logging.INFO):
        logger.info("%s", " ".join([f"event={event}", *(f"{k}={v}" for k, v in fields.items())]))


@dataclass(frozen=True, slots=True)
class RelayReport:
    """What one run did (this process only).

    ``incomplete``: a drain stopped at its ``drain_timeout`` with events still
    queued; ``left`` is how many were pending or in flight then (``None`` when
    the outbox could not be read to count them).
    """

    delivered: int
    retried: int
    dead: int
    lost_leases: int
    incomplete: bool = False
    left: int | None = None


class Relay:
    """Deliver the outbox's events; ``run()`` in the foreground or ``start()`` in a thread.

    ``outbox`` is an :class:`Outbox`, a :class:`Store`, a path or URL, or
    ``None`` (``$ALERTWIRE_OUTBOX``, else the default file).
    ``rate_limit_per_minute`` paces each routing key (0: off);
    ``max_backoff`` caps the wait between tries unless ``retry`` is given;
    events older than ``max_age`` seconds are dead-lettered. Destinations:
    a row's own base URL if it was enqueued with one, else
    ``pagerduty_url`` / ``bigpanda_url``, else the ``region``'s hosts.
    ``listen`` (``"HOST:PORT"`` or an :class:`alertwire.ingest.IngestConfig`)
    also serves the ingest endpoint on the relay's loop (``self.ingest`` once
    ``self.listening`` is set; see docs/ingest.md).
    """

    def __init__(
        self,
        outbox: Outbox | Store | str | None = None,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit_per_minute: float = DEFAULT_RATE_LIMIT_PER_MINUTE,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        retry: RetryPolicy | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        pagerduty_url: str | None = None,
        bigpanda_url: str | None = None,
        region: str = "us",
        verify: Verify = True,
        http_client: Any = None,
        metrics: OutboxMetrics | None = None,
        owner: str | None = None,
        listen: IngestConfig | str | tuple[str, int] | None = None,
    ) -> None:
        if isinstance(outbox, Outbox):
            store = outbox.store
        elif outbox is None or isinstance(outbox, str):
            store = Outbox.open(outbox).store
        else:
            store = outbox
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        if timeout <= 0 or poll_interval <= 0:
            raise ConfigurationError("timeout and poll_interval must be positive")
        if lease_seconds <= timeout:
            raise ConfigurationError(
                f"lease_seconds ({lease_seconds:g}) must be longer than the HTTP timeout"
                f" ({timeout:g}): a send must never outlive its lease"
            )
        if retry is None:
            retry = RetryPolicy(
                max_attempts=RELAY_MAX_ATTEMPTS,
                initial_backoff=min(1.0, max_backoff),
                max_backoff=max_backoff,
                max_elapsed=max_age,
            )
        self.store = store
        self.machine = Machine(
            store,
            owner=owner or new_owner(),
            lease_seconds=lease_seconds,
            max_age=max_age,
            rate_limit_per_minute=rate_limit_per_minute,
            retry=retry,
        )
        self.concurrency = concurrency
        #: Heads claimed beyond the free send slots (see the module docstring): only when
        #: a ready row's lease outlasts its wait for a slot (one send) plus its own send.
        self.claim_ahead = concurrency if lease_seconds > 2 * timeout else 0
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.destinations = Destinations.resolve(
            pagerduty_url=pagerduty_url, bigpanda_url=bigpanda_url, region=region
        )
        self.pagerduty_url = self.destinations.pagerduty_url
        self.bigpanda_url = self.destinations.bigpanda_url
        # ``listen`` ("HOST:PORT" or an alertwire.ingest.IngestConfig) also serves
        # the ingest endpoint (PagerDuty/BigPanda routes, /healthz, /metrics) on this loop.
        self.listen: IngestConfig | None = None
        if listen is not None:
            from ..ingest import IngestConfig

            self.listen = IngestConfig.coerce(listen)
            self.listen.check()
            if metrics is None:
                metrics = OutboxMetrics(store)
        self.ingest: IngestServer | None = None
        self.listening = threading.Event()
        self.metrics = metrics
        self._verify = verify
        self._http_client = http_client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._force = False
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._outcomes: list[tuple[Claimed, Outcome]] = []
        self._ready: collections.deque[Claimed] = collections.deque()
        self._counts = {"delivered": 0, "retried": 0, "dead": 0, "lost_leases": 0}
        self._left_count: int | None = 0
        self._dead_log = DeadLetterLog(logger)
        self.report: RelayReport | None = None
        #: Whether the store answers, as this relay last saw it (see :mod:`._outage`).
        self.outage = StoreOutage(store.location)
        if metrics is not None:
            self.outage.count_in(metrics.registry)

    def health(self) -> str | None:
        """``None`` while the store answers, else why not (no path, no password)."""
        return self.outage.public_reason

    def __repr__(self) -> str:
        return f"Relay({self.store.location!r}, owner={self.machine.owner!r})"

    # ---------------------------------------------------------------- control

    def run(
        self, *, drain: bool = False, drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    ) -> RelayReport:
        """Deliver until stopped (or, with ``drain``, until nothing is pending or
        ``drain_timeout`` seconds have passed; 0 = no bound)."""
        return asyncio.run(self.run_async(drain=drain, drain_timeout=drain_timeout))

    def start(self, *, drain: bool = False, drain_timeout: float = DEFAULT_DRAIN_TIMEOUT) -> None:
        """Run in a daemon thread of the caller's process (for services)."""
        if self._thread is not None:
            raise RuntimeError("this relay is already running")

        def target() -> None:
            try:
                self.run(drain=drain, drain_timeout=drain_timeout)
            except BaseException as exc:  # noqa: BLE001 - handed to stop(), which re-raises it
                self._thread_error = exc

        self._thread = threading.Thread(target=target, name="alertwire-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> RelayReport | None:
        """Finish the sends in flight, then return (from any thread)."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("the relay did not stop in time")
            self._thread = None
            if self._thread_error is not None:
                raise self._thread_error
        return self.report

    def request_stop(self) -> None:
        """Ask the loop to stop after in-flight sends; safe from threads and signal handlers.

        A second request stops at once, abandoning the sends in flight (their leases
        lapse and any relay sends them again): for a person whose Ctrl-C should not
        wait out a slow upstream's timeout.
        """
        if self._stopping:
            self._force = True
        self._stopping = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop just closed
                loop.call_soon_threadsafe(wake.set)

    # ---------------------------------------------------------------- the loop

    async def run_async(
        self,
        *,
        drain: bool = False,
        handle_signals: bool = False,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    ) -> RelayReport:
        if not drain_timeout >= 0:  # NaN too
            raise ConfigurationError(
                f"drain_timeout must be 0 (no bound) or a positive number of seconds,"
                f" got {drain_timeout!r}"
            )
        deadline = time.monotonic() + drain_timeout if drain and drain_timeout > 0 else None
        timed_out = False
        self._left_count = 0
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stopping:
            self._wake.set()
        db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alertwire-outbox")
        transport = async_transport_for(
            self._http_client, verify=self._verify, pool_size=self.concurrency
        )
        inflight: set[asyncio.Task[None]] = set()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self.request_stop)
        _log("relay_started", owner=self.machine.owner, concurrency=self.concurrency)
        ingest = None
        if self.listen is not None:
            from ..ingest import IngestServer

            ingest = IngestServer(
                self.store, self.listen, metrics=self.metrics, on_stored=self._wake.set
            )
            ingest.store_outage = self.health

        async def call(fn: Callable[..., T], *args: Any) -> T:
            return await self._loop.run_in_executor(db, functools.partial(fn, *args))  # type: ignore[union-attr]

        try:
            if ingest is not None:
                await ingest.start()
                self.ingest = ingest
                self.listening.set()
            while True:
                if self._stopping:
                    _log(
                        "stopping",
                        in_flight=len(inflight),
                        note='"finishing the sends in flight; a second SIGTERM or Ctrl-C'
                        ' stops at once"',
                    )
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    timed_out = True
                    break
                want = self.concurrency - len(inflight) + self.claim_ahead - len(self._ready)
                claimed = await self._cycle(call, want)
                if claimed is None:  # the store is unavailable; _cycle waited out the backoff
                    continue
                self._ready.extend(claimed)
                self._start_ready(transport, inflight)
                if not inflight and not claimed and drain and not self._outcomes:
                    stats = await self._try_store(call, self.store.stats)
                    if stats is None:
                        continue
                    if stats.pending == 0 and stats.leased == 0:
                        self._dead_log.flush()  # said before "drained", not after
                        _log("drained", delivered=self._counts["delivered"])
                        break
                if len(inflight) >= self.concurrency:
                    wait: float | None = None  # busy: wake when a send finishes
                elif self._outcomes:
                    continue
                else:
                    wait = await self._try_store(
                        call, functools.partial(self.machine.next_wait, ceiling=self.poll_interval)
                    )
                    if wait is None:
                        continue
                if deadline is not None:
                    left = max(deadline - time.monotonic(), 0.0)
                    wait = left if wait is None else min(wait, left)
                await self._sleep(wait if wait is None or wait > 0 else 0.001)
            self._release_ready()
            if ingest is not None:  # refuse new connections, answer those in flight
                await ingest.stop()
            await self._finish(inflight)
            await self._flush(call)
            self._dead_log.flush()
            if timed_out:
                self._report_drain_bound(await self._left(call), drain_timeout)
        finally:
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    self._loop.remove_signal_handler(sig)
            if ingest is not None:
                await ingest.stop()
            self.listening.set()
            await transport.aclose()
            db.shutdown(wait=True)
            self._loop = None
        self.report = RelayReport(
            **self._counts, incomplete=self._left_count != 0, left=self._left_count
        )
        _log("relay_stopped", **self._counts)
        return self.report

    async def _finish(self, inflight: set[asyncio.Task[None]]) -> None:
        """Wait for the sends in flight, unless a second stop request says not to."""
        assert self._wake is not None
        while inflight and not self._force:
            woken = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait({*inflight, woken}, return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
            self._wake.clear()
        if inflight:
            logger.warning(
                'event=stopped_at_once abandoned=%d note="their leases lapse after %g s;'
                ' then any relay sends them again"',
                len(inflight),
                self.machine.lease_seconds,
            )
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)

    async def _left(self, call: Callable[..., Any]) -> int | None:
        try:
            stats = await call(self.store.stats)
        except OutboxError as exc:
            logger.error("event=drain_count_failed error=%s", exc)
            return None
        return int(stats.pending + stats.leased)

    def _report_drain_bound(self, left: int | None, drain_timeout: float) -> None:
        """The drain's time bound was reached: say how much is left for the next run."""
        self._left_count = left
        if left == 0:
            return  # the last sends in flight finished the work
        logger.warning(
            'event=drain_incomplete left=%s drain_timeout=%g note="left queued for the next run"',
            "unknown" if left is None else left,
            drain_timeout,
        )

    def _start_ready(self, transport: AsyncTransport, inflight: set[asyncio.Task[None]]) -> None:
        """Start sends of ready rows, oldest first, while a send slot is free."""
        while self._ready and len(inflight) < self.concurrency:
            task = asyncio.create_task(self._deliver(transport, self._ready.popleft()))
            inflight.add(task)
            task.add_done_callback(self._done(inflight, transport))

    def _release_ready(self) -> None:
        """Stopping: the rows claimed ahead and not sent go back to the queue with the
        next commit (the final one), instead of waiting out their lease."""
        while self._ready:
            row = self._ready.popleft()
            self._outcomes.append((row, self.machine.release(row)))

    def _done(
        self, inflight: set[asyncio.Task[None]], transport: AsyncTransport
    ) -> Callable[[asyncio.Task[None]], None]:
        def callback(task: asyncio.Task[None]) -> None:
            inflight.discard(task)
            # The freed slot takes the next ready row now, not after the next commit.
            self._start_ready(transport, inflight)
            if not task.cancelled() and task.exception() is not None:
                # A bug, not a delivery answer: nothing is recorded, so the lease lapses
                # and the event is tried again; say so instead of losing the traceback.
                logger.error(
                    "event=send_crashed error=%s",
                    type(task.exception()).__name__,
                    exc_info=task.exception(),
                )
            if self._wake is not None:
                self._wake.set()

        return callback

    async def _sleep(self, seconds: float | None) -> None:
        assert self._wake is not None
        if not self._wake.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _pause(self, seconds: float) -> None:
        """Wait out an outage backoff: finished sends do not cut it short, a stop does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._stopping and (remaining := deadline - loop.time()) > 0:
            await self._sleep(remaining)

    async def _try_store(
        self, call: Callable[..., Any], fn: Callable[..., T], *args: Any
    ) -> T | None:
        """``fn(*args)`` on the store thread; ``None`` once the outage backoff is waited out
        if the store failed (every store call in the loop goes through here)."""
        try:
            result: T = await call(fn, *args)
        except OutboxError as exc:
            await self._pause(self.outage.failed(exc))
            return None
        self.outage.succeeded()
        return result

    async def _cycle(self, call: Callable[..., Any], free: int) -> list[Claimed] | None:
        """Commit finished sends' outcomes and claim new heads, in one store transaction.

        ``None`` when the store failed: the outcomes are kept for the next
        cycle (their events stay leased to this relay meanwhile, so their
        keys wait: order holds), and the outage backoff has been waited out.
        """
        batch, self._outcomes = self._outcomes, []
        result = await self._try_store(
            call, self.machine.cycle, [o for _, o in batch], max(free, 0)
        )
        if result is None:
            self._outcomes = batch + self._outcomes
            return None
        applied, claimed, expired = result
        self._report_dead([*self._account(batch, applied), *expired])
        return list(claimed)

    async def _flush(self, call: Callable[..., Any]) -> None:
        """Commit every finished send's outcome (at stop: nothing new is claimed)."""
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        try:
            applied: list[bool] = await call(self.machine.settle, [o for _, o in batch])
        except OutboxError as exc:
            # Stopping: no more tries. The leases lapse and the events are sent again
            # (a duplicate, never a loss).
            logger.error(
                "event=outcomes_not_recorded count=%d reason=%r: their events will be sent"
                " again after the lease",
                len(batch),
                str(exc),
            )
            return
        self._report_dead(self._account(batch, applied))

    def _account(
        self, batch: list[tuple[Claimed, Outcome]], applied: list[bool]
    ) -> list[tuple[Claimed, MarkDead]]:
        """Count the recorded outcomes; returns the dead letters, for :meth:`_report_dead`."""
        dead: list[tuple[Claimed, MarkDead]] = []
        for (row, outcome), ok in zip(batch, applied, strict=True):
            destination = destination_of(row.kind)
            if not ok:
                self._counts["lost_leases"] += 1
            elif isinstance(outcome, Delivered):
                self._counts["delivered"] += 1
                if self.metrics is not None:
                    self.metrics.delivered.labels(destination).inc()
            elif isinstance(outcome, MarkDead):
                dead.append((row, outcome))
            elif isinstance(outcome, Release):
                continue  # not tried: nothing to count
            else:
                self._counts["retried"] += 1
                if self.metrics is not None:
                    self.metrics.retried.labels(destination).inc()
        return dead

    def _report_dead(self, dead: list[tuple[Claimed, MarkDead]]) -> None:
        """Count a cycle's dead letters (report and metrics, by reason) and hand them to
        the WARNING log, which says a few one by one and a bulk in one line."""
        self._counts["dead"] += len(dead)
        if self.metrics is not None:
            for row, outcome in dead:
                self.metrics.dead.labels(destination_of(row.kind), outcome.reason).inc()
        self._dead_log.add(dead)

    # ---------------------------------------------------------------- one send

    async def _deliver(self, transport: AsyncTransport, row: Claimed) -> None:
        request, parse = self.destinations.request_for(row)
        destination = destination_of(row.kind)
        started = time.monotonic()
        try:
            result = parse(await transport.send(request, timeout=self.timeout))
        except DeliveryError as exc:
            outcome: Outcome = self.machine.failed(row, exc)
            if isinstance(exc, RateLimited) and self.metrics is not None:
                self.metrics.rate_limited.labels(destination).inc()
            _log(
                "attempt_failed",
                id=row.id,
                kind=row.kind,
                route=row.route[:8],
                attempt=row.attempts,
                error=type(exc).__name__,
                detail=repr(exc.message[:200]),
                status=exc.http_status,
                next="dead" if isinstance(outcome, MarkDead) else "retry",
            )
        else:
            outcome = self.machine.delivered(row, result.http_status)
            _log(
                "delivered",
                id=row.id,
                kind=row.kind,
                route=row.route[:8],
                attempt=row.attempts,
                status=result.http_status,
                ms=round((time.monotonic() - started) * 1000, 1),
            )
        self._outcomes.append((row, outcome))
