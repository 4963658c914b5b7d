"""The delivery loop: claim heads, send them, settle their outcomes, until told to stop.

One asyncio loop does three things in turn: record the outcomes of finished
sends (one transaction for all of them: group commit), claim as many heads
as there are free send slots, and start a send for each. Different keys
deliver concurrently (up to ``concurrency``); a key's next event becomes
claimable only once the outcome of the previous one is committed, so per-key
order is strict.

Claiming ahead: each cycle also claims up to ``claim_ahead`` more heads than
there are free slots, held ready in memory, and a send that finishes starts
the next ready one at once. Without them every slot that freed up stayed
idle for the whole next cycle (a commit: on SQLite an fsync of a few ms),
and the relay delivered about 0.4x what the same sends from memory do. A
ready row waits for a free slot, at most one send (``timeout``), so the
relay does this only when the lease covers that wait and the send after it
(``lease_seconds > 2 * timeout``; the default 60 s over 10 s does). Rows
still ready when the relay stops are given back (``Release``: pending again,
the try not counted), never sent after a stop. While the store is the
bottleneck (every send done before the commit returns) the number claimed
ahead grows, up to ``claim_ahead_max`` (as far as the lease covers the longer
wait), and shrinks back while rows wait for slots: see
:meth:`DeliveryLoop._resize` and docs/relay.md.

Nothing about the wire format is here: requests are built and answers
classified by the sans-IO protocol modules (through :mod:`._destinations`), bytes moved by the shared
async transport, and every decision (retry when, dead-letter why, pace how)
is `alertwire.outbox.machine.Machine`'s. Store calls run on the one store
thread the service hands in as ``call``, so a commit's fsync never stalls
sends in flight.

Nothing here starts or owns anything long-lived: the service around it
(:mod:`._service`, :class:`~alertwire.relay.Relay`) makes the store thread
and the transport, handles signals, serves the ingest endpoint and bounds a
drain in time, and hands this loop the deadline. A stop request claims
nothing new; :meth:`DeliveryLoop.finish` then waits for the sends in flight
(unless a second request says not to) and records their outcomes.

Nothing is dead-lettered quietly: each dead letter is a WARNING (one summary
line when many come at once, e.g. ``max_age`` expiring a backlog),
a count in ``RelayReport.dead`` and in the ``alertwire_relay_dead`` counter
by reason (docs/relay.md).

A store that stops answering (database restarted, disk full) is an outage,
not a reason to exit: :mod:`._outage` backs off, logs its start and end once
each, and reports it on the health checks (see there).

One claim of an event at a time: an expired lease is claimable by any relay, this
one included, so a send (or its wait for a slot, or an event loop stalled by load)
that outlives ``lease_seconds`` gets its event handed back by a later cycle's claim
while it is still in flight. ``timeout`` bounds the send, but the lease counts from
the start of the claim, so the claim's wait for the store's write lock and the
loop's lag eat into the margin ``lease_seconds - timeout``. The loop remembers every id it holds (ready, in flight,
or its outcome not yet committed: :attr:`DeliveryLoop._held`) and does not send such
an event again: the claim only renewed this relay's lease, and the send in flight
settles it (owner-checked, same owner). Each such claim is a WARNING
(``event=lease_lapsed``: raise ``--lease``) and counts in
``alertwire_relay_leases_lapsed_total`` and ``RelayReport.leases_lapsed``. The
re-claim also added a try to the row's stored ``attempts`` that was never made: the
loop counts such claims per held id (:attr:`DeliveryLoop._reclaims`), and the outcome
of the send in flight, decided on its own claim's count, takes them back when it is
recorded (``reclaims`` of :meth:`Machine.cycle`, in the same owner-checked statement),
so the stored count is the tries made, and the next retry's backoff and a custom
``RetryPolicy.max_attempts`` count only those. A send that kept its lease pays nothing
for it: with no such claim pending nothing is passed, and a store binds and writes
the take-back only for the outcomes that have one. Not taken back: the claim of an
event whose send then ends without an outcome (a crash: the event is forgotten, and
the next claim sends it), of one that another relay holds by the time the outcome
comes (the owner check refuses the outcome, take-back included), and of a ready row
then forgotten unsent (:meth:`_stale`: its own claim's try stays counted too, as the
row may be another relay's by then). Such a claim happens
only while a send slot is free (a relay with every slot busy claims nothing) or after
an outage (ready rows wait for the store meanwhile). An id is forgotten when
the cycle that carries its outcome commits (applied or not), when its send ends
without an outcome (crashed, or abandoned at a stop: nothing is recorded, the lease
lapses and the event is tried again, by this relay too), and after the final commit
at a stop. See docs/relay.md (leases).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Final, TypeVar

from .._errors import DeliveryError, OutboxError, RateLimited
from ..outbox.machine import (
    Claimed,
    Delivered,
    Machine,
    MarkDead,
    Outcome,
    Release,
    Store,
)
from ..outbox.metrics import OutboxMetrics, destination_of
from ..transport import AsyncTransport
from ._dead_letters import DeadLetterLog
from ._destinations import Destinations
from ._outage import StoreOutage

__all__ = ["DeliveryLoop", "StoreCall"]

logger = logging.getLogger("alertwire.relay")
T = TypeVar("T")

#: The lease start assumed for a ready row without one recorded (every ready row has
#: one): such a row is sent.
_NOT_RECORDED: Final = float("inf")

#: Seconds a listening relay waits for the store's first answer before it listens anyway
#: (:meth:`DeliveryLoop.meet_store`): a refused setting answers at once.
MEET_STORE_WAIT: Final = 2.0

#: Runs a store method on the service's store thread: ``await call(fn, *args)``.
StoreCall = Callable[..., Any]


def _log(event: str, **fields: object) -> None:
    """One ``key=value`` line per event: greppable, and never a credential (callers pass
    ids, kinds, statuses and route digests only)."""
    if logger.isEnabledFor(logging.INFO):
        logger.info("%s", " ".join([f"event={event}", *(f"{k}={v}" for k, v in fields.items())]))


def _about(row: Claimed) -> dict[str, object]:
    """What every line about one send of ``row`` names first: its id, kind, the
    route as a digest prefix and the attempt (never the credential or the body)."""
    return {"id": row.id, "kind": row.kind, "route": row.route[:8], "attempt": row.attempts}


@dataclass(eq=False)
class DeliveryLoop:
    """Claim → send → settle for one relay; the :class:`~alertwire.relay.Relay` runs it.

    Made once per relay (its unrecorded outcomes outlive one run);
    :meth:`attach` binds it to the running asyncio loop at the start of a run
    and starts its counts afresh, :meth:`detach` ends the run. A stop request
    is for one run: made before a run starts (a SIGTERM while the CLI starts
    up, ``Relay.start()`` then ``stop()`` at once) it stops that run as it
    starts, and the run's end consumes it, so a later run of the same relay
    delivers (a request left standing made every later run stop at once, and
    a drain report "nothing left" with its events still pending). The
    settings are the relay's, checked there.
    """

    store: Store
    machine: Machine
    destinations: Destinations
    _: KW_ONLY
    concurrency: int
    claim_ahead: int
    timeout: float
    poll_interval: float
    metrics: OutboxMetrics | None
    outage: StoreOutage
    #: How far ``claim_ahead`` may grow while the send slots wait for the store (see
    #: :meth:`_resize`); never below ``claim_ahead``.
    claim_ahead_max: int = 0
    _ahead: int = field(default=0, init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _wake: asyncio.Event | None = field(default=None, init=False, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)
    _force: bool = field(default=False, init=False, repr=False)
    #: The drain's deadline (``time.monotonic()``) while a bounded drain runs.
    _deadline: float | None = field(default=None, init=False, repr=False)
    _inflight: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    _ready: collections.deque[Claimed] = field(
        default_factory=collections.deque, init=False, repr=False
    )
    _outcomes: list[tuple[Claimed, Outcome]] = field(default_factory=list, init=False, repr=False)
    #: The ids this relay holds a claim of: ready, in flight, or with an outcome not yet
    #: committed. A claim that returns one of them is not sent again (see the module).
    _held: set[int] = field(default_factory=set, init=False, repr=False)
    #: Of the held ids, those claimed again while held: how many times each (every such
    #: claim counted a try no send made; their outcome takes them back). Nearly always
    #: empty: see :meth:`_reclaimed`.
    _reclaims: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    #: Each ready row's lease start (the machine's clock when its claim began: its lease
    #: ends no sooner than this plus ``lease_seconds``); see :meth:`_start_ready`.
    _lease_from: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    _counts: dict[str, int] = field(
        default_factory=lambda: {
            "delivered": 0,
            "retried": 0,
            "dead": 0,
            "lost_leases": 0,
            "leases_lapsed": 0,
        },
        init=False,
        repr=False,
    )
    _dead_log: DeadLetterLog = field(
        default_factory=lambda: DeadLetterLog(logger), init=False, repr=False
    )

    def __post_init__(self) -> None:
        self.claim_ahead_max = max(self.claim_ahead_max, self.claim_ahead)
        self._ahead = self.claim_ahead

    @property
    def counts(self) -> dict[str, int]:
        """Delivered, retried, dead, lost leases and lapsed leases in this run so far
        (this process only)."""
        return dict(self._counts)

    @property
    def stop_requested(self) -> bool:
        """A stop was asked for this run (it ends after the sends in flight)."""
        return self._stopping

    def attach(self) -> None:
        """Bind to the running asyncio loop (the start of a run); the counts start at 0."""
        self._counts = dict.fromkeys(self._counts, 0)
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stopping:
            self._wake.set()

    def detach(self) -> None:
        """The run is over: a stop request no longer has a loop to wake, and the one
        that ended it is spent."""
        self._loop = None
        self.clear_stop()

    def clear_stop(self) -> None:
        """Forget a stop request: the run it was for has ended."""
        self._stopping = self._force = False

    def wake_up(self) -> None:
        """Look for work now rather than at the next poll (the ingest endpoint stored an event)."""
        if self._wake is not None:
            self._wake.set()

    def request_stop(self) -> None:
        """Claim nothing new; a second request also abandons the sends in flight
        (see :meth:`alertwire.relay.Relay.request_stop`). Safe from any thread."""
        if self._stopping:
            self._force = True
        self._stopping = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop just closed
                loop.call_soon_threadsafe(wake.set)

    async def run(
        self, call: StoreCall, transport: AsyncTransport, *, drain: bool, deadline: float | None
    ) -> bool:
        """Deliver until stopped, or (with ``drain``) until nothing is pending, or until
        ``deadline`` (``time.monotonic()``); ``True`` when the deadline ended it."""
        inflight = self._inflight
        self._deadline = deadline
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
                return True
            want = self.concurrency - len(inflight) + self._ahead - len(self._ready)
            busy = bool(inflight)  # sends that might finish while the store works
            claimed = await self._cycle(call, want)
            if claimed is None:  # the store is unavailable; _cycle waited out the backoff
                continue
            waiting = len(self._ready)
            self._resize(
                starved=busy and not inflight and not waiting,
                full=len(claimed) >= want,
                waiting=waiting,
            )
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
        return False

    async def finish(self, call: StoreCall) -> None:
        """After the loop: wait for the sends in flight, then record their outcomes."""
        self._release_ready()
        await self._finish(self._inflight)
        await self._flush(call)
        self._dead_log.flush()

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

    def _resize(self, *, starved: bool, full: bool, waiting: int) -> None:
        """Grow the claim-ahead window while the store is the bottleneck, shrink it while
        the sends are.

        A row is claimed in one cycle, sent during the next and settled in the one
        after, so a window of ``concurrency + ahead`` rows delivers about half of
        itself per cycle: one commit (an fsync) per that many events. ``starved``: sends
        were in flight when the cycle began, and every one had finished with nothing
        ready when its commit returned (the slots sat idle waiting for the store; not
        the first cycle of a run, nor polling an idle outbox); with ``full`` (the claim got all it asked
        for: a backlog) the window doubles, up to ``claim_ahead_max``. ``waiting`` rows
        still ready for a slot after a commit (a round of sends' worth) mean the sends
        are the bottleneck: the window
        halves back towards ``claim_ahead``, so a relay does not hold heads that other
        relays sharing the store could be sending.
        """
        if starved and full:
            self._ahead = min(max(self._ahead * 2, self.concurrency), self.claim_ahead_max)
        elif waiting >= self.concurrency:
            self._ahead = max(self._ahead // 2, self.claim_ahead)

    def _start_ready(self, transport: AsyncTransport, inflight: set[asyncio.Task[None]]) -> None:
        """Start sends of ready rows, oldest first, while a send slot is free, unless the
        store is in an outage: only the sends already in flight finish then, since no
        outcome can be recorded; the ready rows wait for the store (or go back at stop).

        A ready row whose lease ran out while it waited (an outage longer than the
        lease, a stalled loop) is not sent: another relay may have claimed it and be
        sending it, and a second send would page twice. It is forgotten instead
        (:meth:`_stale`): whoever claims it next, this relay included, sends it. The
        claim-ahead window is sized so that this never happens while sends finish
        within ``timeout`` (``Relay``: the lease covers the wait and the send)."""
        if self.outage.ongoing or not self._ready:
            return
        # The attached loop's create_task, not asyncio.create_task: that one looks up the
        # running loop per call, a getpid() system call each on CPython 3.11 (about 5% of
        # the relay's asyncio thread in a py-spy profile of the bench).
        assert self._loop is not None
        ends = self.machine.clock() - self.machine.lease_seconds  # a lease from before: over
        while self._ready and len(inflight) < self.concurrency:
            row = self._ready.popleft()
            if self._lease_from.pop(row.id, _NOT_RECORDED) <= ends:
                self._stale(row)
                continue
            task = self._loop.create_task(self._deliver(transport, row))
            inflight.add(task)
            task.add_done_callback(self._done(inflight, transport))

    def _release_ready(self) -> None:
        """Stopping: the rows claimed ahead and not sent go back to the queue with the
        next commit (the final one), instead of waiting out their lease."""
        while self._ready:
            row = self._ready.popleft()
            self._lease_from.pop(row.id, None)
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
        """Wait out an outage backoff: finished sends do not cut it short; a stop does,
        and so does a drain's deadline (a cron drain must end at its bound, not one
        backoff of up to 30 s after it)."""
        loop = asyncio.get_running_loop()
        if self._deadline is not None:
            seconds = min(seconds, max(self._deadline - time.monotonic(), 0.0))
        deadline = loop.time() + seconds
        while not self._stopping and (remaining := deadline - loop.time()) > 0:
            await self._sleep(remaining)

    async def meet_store(self, call: Callable[..., Any]) -> None:
        """Reach the store once, before a listener opens in front of this loop.

        Why: a store that can never work (a setting libpq refuses, a file that is
        not a database) ends the run at its first call (:meth:`StoreOutage.failed`);
        met only by the loop, that came after the listener had said it listens. A
        passing failure (the server not up yet) is left to the loop, which reports
        it and backs off while the listener answers 503. So is a store that takes
        longer than :data:`MEET_STORE_WAIT` to answer (a server behind a network
        that drops packets, a lock another process holds): the listener opens
        then, rather than up to a connect or busy timeout later; the call goes on
        on the store thread, and the loop's first call waits behind it."""
        try:
            await asyncio.wait_for(call(self.store.check_writable), MEET_STORE_WAIT)
        except asyncio.TimeoutError:
            return
        except OutboxError as exc:
            if not self.store.is_passing(exc):
                raise
            return
        self.outage.succeeded()

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
        batch, self._outcomes = self._one_outcome_each(self._outcomes), []
        began = self.machine.clock()  # no lease this cycle takes ends before this + the lease
        result = await self._try_store(
            call,
            functools.partial(self.machine.cycle, held=self._held, reclaims=self._reclaimed()),
            [o for _, o in batch],
            max(free, 0),
        )
        if result is None:
            self._outcomes = batch + self._outcomes
            return None
        applied, claimed, expired = result
        # Committed (or lost to another relay): no longer held, before this claim is
        # read, which may rightly hand back a rescheduled one that is due at once.
        self._forget(batch)
        self._report_dead([*self._account(batch, applied), *expired])
        return self._take(claimed, began)

    def _take(self, claimed: list[Claimed], began: float) -> list[Claimed]:
        """The claimed rows to send, now held, their lease counted from ``began``; a row
        this relay already holds is not sent again: its lease lapsed while it was ready
        or in flight, and the claim only renewed it (this relay's outcome for it settles
        it, and takes back the try the claim counted: :meth:`_reclaimed`; a ready one
        keeps its place, with the renewed lease)."""
        held, lease_from = self._held, self._lease_from
        fresh: list[Claimed] = []
        for row in claimed:
            if row.id in held:
                if row.id in lease_from:
                    lease_from[row.id] = began
                self._reclaims[row.id] = self._reclaims.get(row.id, 0) + 1
                self._lapsed(row)
            else:
                held.add(row.id)
                lease_from[row.id] = began
                fresh.append(row)
        return fresh

    def _stale(self, row: Claimed) -> None:
        """A ready row whose lease ran out before a slot was free: not sent, forgotten."""
        self._held.discard(row.id)
        self._reclaims.pop(row.id, None)
        self._lapsed(
            row,
            "its lease ran out while it waited to be sent (a store outage, a stalled loop):"
            " not sent by this relay, which or another claims it again; raise --lease",
        )

    def _lapsed(
        self,
        row: Claimed,
        note: str = "claimed again while this relay still held it (ready or sending): not"
        " sent twice; a send took longer than --lease, raise --lease",
    ) -> None:
        """Count and say (WARNING) a lease of ``row`` that ran out while this relay held it."""
        self._counts["leases_lapsed"] += 1
        if self.metrics is not None:
            self.metrics.leases_lapsed.labels(destination_of(row.kind)).inc()
        logger.warning(
            'event=lease_lapsed id=%d kind=%s route=%s attempt=%d lease=%g note="%s"',
            row.id,
            row.kind,
            row.route[:8],
            row.attempts,
            self.machine.lease_seconds,
            note,
        )

    @staticmethod
    def _one_outcome_each(batch: list[tuple[Claimed, Outcome]]) -> list[tuple[Claimed, Outcome]]:
        """At most one outcome per event in a batch: two would be refused by the store
        (``outcome_groups``), and that would crash the relay. :meth:`_take` sees that no
        event is sent twice at once, so this should never drop one; if it does (a bug),
        it says so at ERROR and keeps a delivery over anything else (the event reached
        the service: recording that prevents another page), else the first outcome."""
        if len({o.id for _, o in batch}) == len(batch):
            return batch
        kept: dict[int, tuple[Claimed, Outcome]] = {}
        for pair in batch:
            first = kept.setdefault(pair[1].id, pair)
            if first is pair:
                continue
            later_delivered = isinstance(pair[1], Delivered) and not isinstance(first[1], Delivered)
            keep, drop = (pair, first) if later_delivered else (first, pair)
            kept[pair[1].id] = keep
            logger.error(
                'event=outcome_dropped id=%d kept=%s dropped=%s note="two outcomes for one'
                ' event in one batch: one is recorded"',
                pair[1].id,
                type(keep[1]).__name__,
                type(drop[1]).__name__,
            )
        return list(kept.values())

    def _reclaimed(self) -> dict[int, int] | None:
        """What the next commit's outcomes take back (``reclaims`` of
        :meth:`Machine.cycle`): a copy, read on the store thread. Taken at each commit,
        not when a send ends: an outcome waits for the next commit, and the claim of
        the one before may take its event back meanwhile."""
        return dict(self._reclaims) if self._reclaims else None  # nearly always None

    def _forget(self, batch: list[tuple[Claimed, Outcome]]) -> None:
        """``batch``'s events are held no longer (their outcomes committed, or given up)."""
        self._held.difference_update(row.id for row, _ in batch)
        if self._reclaims:
            for row, _ in batch:
                self._reclaims.pop(row.id, None)

    async def _flush(self, call: Callable[..., Any]) -> None:
        """Commit every finished send's outcome (at stop: nothing new is claimed)."""
        if not self._outcomes:
            return
        batch, self._outcomes = self._one_outcome_each(self._outcomes), []
        settle = functools.partial(self.machine.settle, reclaims=self._reclaimed())
        # Held no longer, whatever the commit does: recorded, or left to their leases.
        self._forget(batch)
        try:
            applied: list[bool] = await call(settle, [o for _, o in batch])
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
            if not ok:
                self._counts["lost_leases"] += 1
            elif isinstance(outcome, Delivered):
                self._counts["delivered"] += 1
                if self.metrics is not None:
                    self.metrics.delivered.labels(destination_of(row.kind)).inc()
            elif isinstance(outcome, MarkDead):
                dead.append((row, outcome))
            elif isinstance(outcome, Release):
                continue  # not tried: nothing to count
            else:
                self._counts["retried"] += 1
                if self.metrics is not None:
                    self.metrics.retried.labels(destination_of(row.kind)).inc()
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
        try:
            outcome = await self._send(transport, row)
        except BaseException:
            # Crashed or abandoned: nothing is recorded, the lease lapses and the event
            # is tried again (by this relay too, so it must not be held any more).
            self._held.discard(row.id)
            self._reclaims.pop(row.id, None)
            raise
        self._outcomes.append((row, outcome))

    async def _send(self, transport: AsyncTransport, row: Claimed) -> Outcome:
        request, parse = self.destinations.request_for(row)
        started = time.monotonic()
        try:
            result = parse(await transport.send(request, timeout=self.timeout))
        except DeliveryError as exc:
            outcome: Outcome = self.machine.failed(row, exc)
            if isinstance(exc, RateLimited) and self.metrics is not None:
                self.metrics.rate_limited.labels(destination_of(row.kind)).inc()
            _log(
                "attempt_failed",
                **_about(row),
                error=type(exc).__name__,
                detail=repr(exc.message[:200]),
                status=exc.http_status,
                next="dead" if isinstance(outcome, MarkDead) else "retry",
            )
        else:
            outcome = self.machine.delivered(row, result.http_status)
            if logger.isEnabledFor(logging.INFO):  # the line's fields are built only if said
                _log(
                    "delivered",
                    **_about(row),
                    status=result.http_status,
                    ms=round((time.monotonic() - started) * 1000, 1),
                )
        return outcome
