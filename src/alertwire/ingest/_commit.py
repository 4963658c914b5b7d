"""Group commit: concurrent ingests share one transaction, hence one fsync.

Why no timer by default: the writer takes *everything* waiting, commits it
in one transaction on its own thread, and answers all of it; whatever
arrives while that fsync runs forms the next batch. Under load, batches grow
by themselves to the size the disk needs; a single sender pays one fsync and
no added wait (a fixed "collect for N ms" window would tax every quiet-time
alert). ``delay`` adds such a window for disks where it measures better.
The one wait there is: right after a commit of three rows or more, the
writer lets the next batch gather for a moment (at most that commit's time
and 2 ms, until as many rows wait), because the senders it has
just answered are on their way back (``GroupCommitter._gather`` says why);
after a commit of one or two rows, as at one sender, it never waits.

Durability is never traded: a submitter's future resolves only after
:meth:`~alertwire.outbox.Outbox.put` returned, i.e. after ``COMMIT`` with the
store's ``synchronous=FULL``. A failed commit fails every submitter of that
batch (all or nothing, as the transaction was), and each answers 503.

Why a thread of its own, fed directly, rather than an executor driven by an
asyncio task: at one sender every event pays the hand-over to the writer and
back. Through a task and an executor that took two thread wake-ups, two more
turns of the event loop and four futures, about 40% of the HTTP request's
own time on a busy 2-core machine (docs/ingest.md, "Throughput"). Here a
submission is one append to a list on the loop, and a commit's answers are
one callback on the loop for the whole batch.

Why the loop hands over once per turn, not once per submission: requests
arrive in bursts (one ``epoll`` turn reads many connections), and their
handlers submit one after the other in the next turn. Waking the writer at
the first of them made it take that one alone and spend a whole fsync on it
while the rest of the burst queued behind. The first submission of a turn
schedules a hand-over for the end of that turn (``call_soon``): every
submission of the turn goes to the writer together, with one lock and one
wake-up. A single sender pays one extra turn of the loop (microseconds), no
timer.

Why an idle server commits on the event loop itself (``put_now``): a lone
sender has nobody to share a commit with, and the hand-over to the writer
and back cost it two thread wake-ups per event, each a context switch (and
on a virtual machine an inter-processor interrupt) plus a wait for the GIL
(about 0.15 ms and 90 µs of CPU per event on the benchmark's machine,
docs/ingest.md, "Throughput"). So when the writer is asleep with nothing
waiting, no other request is arriving at or being handled by the server
and no other client was answered just now (``alone``), and the last commit
was small or a while ago (after a big one
its senders are coming back, and belong in the writer's next batch), the
submission is committed right there, with the same durability: the same
transaction and fsync, answered only after ``COMMIT``. What that costs: the
loop is blocked for one commit, while nobody else is being served by this
server; timers and the relay's deliveries on the same loop wait that long.
What it never does is wait for a lock on the loop: ``put_now`` is the
store's non-waiting write (SQLite: the ``INSERT`` as a transaction of its
own, with a zero busy timeout), and when another connection holds the lock,
the request holds more rows than one statement takes (128), or the store has
no such write (PostgreSQL: a commit is a network round trip), the submission
goes to the writer thread, which may wait. What the lone commit does run on
the loop: its own fsync and, about once in a thousand WAL pages (some 100
events), SQLite's automatic checkpoint, which that commit then performs
(about a millisecond more on the benchmark's disk). Busy periods stay off the
loop: two requests in progress, and every commit is the writer's.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from ..outbox import Enqueued
from ..outbox.machine import NewEvent

__all__ = ["DEFAULT_MAX_BATCH", "GroupCommitter"]

T = TypeVar("T")

#: Most rows in one transaction: bounds the time one commit holds the write lock.
DEFAULT_MAX_BATCH: Final = 512

#: The longest the writer waits for a batch to gather after a big commit (seconds;
#: see ``GroupCommitter._gather``): about one fsync of a busy disk.
MAX_GATHER: Final = 0.002

_Submission = tuple[Sequence[NewEvent], "asyncio.Future[list[Enqueued]]"]
_Call = tuple[Callable[[], Any], "asyncio.Future[Any]"]


class CommitterClosed(Exception):
    """The committer is shutting down and takes nothing new."""


class GroupCommitter:
    """Batch :meth:`submit` calls into single :func:`put` transactions, on one thread.

    ``put`` stores rows in one transaction and returns one :class:`Enqueued`
    per row (``Outbox.put``). The same thread also runs :meth:`call` (health
    probes, pending counts), between commits. ``put_now`` (``Outbox.put_now``)
    is the same without waiting for a lock (``None``: not stored), for an idle
    committer's commit on the loop; ``alone`` says that no other request is in
    progress. Neither: every commit is the writer's.
    """

    def __init__(
        self,
        put: Callable[[Sequence[NewEvent]], list[Enqueued]],
        *,
        put_now: Callable[[Sequence[NewEvent]], list[Enqueued] | None] | None = None,
        alone: Callable[[], bool] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        delay: float = 0.0,
        on_commit: Callable[[int, int], None] | None = None,
    ) -> None:
        self._put = put
        self._put_now = put_now
        self._alone = alone
        self._max_batch = max(1, max_batch)
        self._delay = max(0.0, delay)
        self._on_commit = on_commit
        #: Guards ``_waiting`` (and ``_waiting_count``), ``_calls`` and ``_closed``; the
        #: writer waits on it.
        self._ready = threading.Condition(threading.Lock())
        self._waiting: list[_Submission] = []
        #: Rows in ``_waiting`` (under the lock): kept, not summed, so that the gathering
        #: writer's check at each wake-up and each batch's size cost no pass over the list.
        self._waiting_count = 0
        #: Submissions of this turn of the loop, handed to the writer at its end (loop only),
        #: and the rows in them.
        self._this_turn: list[_Submission] = []
        self._this_turn_count = 0
        self._calls: list[_Call] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        #: The writer is awake (taking, committing or answering): set and cleared by the
        #: writer, under the lock, before it takes work and before it sleeps again.
        self._busy = False
        #: Rows in the last commit, the time it took and when it ended (the writer's own).
        self._last_rows = 0
        self._last_took = 0.0
        self._last_ended = 0.0
        #: Batches committed and rows in them (for tests, the benchmark and the docs).
        self.commits = 0
        self.rows = 0
        #: Of ``commits``, those made on the event loop (an idle server's, see :meth:`submit`).
        self.commits_here = 0
        #: Commits by rows in them (at most ``max_batch`` keys): the benchmark reports
        #: their median, since a mean hides many one-row commits among a few big ones.
        self.batch_sizes: collections.Counter[int] = collections.Counter()

    @property
    def waiting_rows(self) -> int:
        """Rows submitted and not yet taken into a commit: the next batch, as it stands."""
        with self._ready:
            return self._waiting_count + self._this_turn_count

    @property
    def writer_busy(self) -> bool:
        """The writer thread is awake: taking, committing or answering a batch, or running
        a call (then nothing is committed on the loop)."""
        return self._busy

    @property
    def closed(self) -> bool:
        """``close()`` has begun: nothing new is taken (what was submitted is still committed)."""
        return self._closed

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._writer, name="alertwire-ingest", daemon=True)
        self._thread.start()

    async def submit(self, rows: Sequence[NewEvent]) -> list[Enqueued]:
        """Store ``rows`` (atomically, with whoever else is waiting); returns once committed.

        On the loop's own thread when the committer is idle and the request alone
        (see the module's docstring), else by the writer thread."""
        loop = self._loop
        if loop is None or self._closed:
            raise CommitterClosed("the relay is shutting down")
        if self._put_now is not None and self._idle():
            stored = self._commit_here(rows)
            if stored is not None:
                return stored
        future: asyncio.Future[list[Enqueued]] = loop.create_future()
        if not self._this_turn:
            loop.call_soon(self._hand_over_turn)
        self._this_turn.append((rows, future))
        self._this_turn_count += len(rows)
        return await future

    def _idle(self) -> bool:
        """Nobody to share a commit with: the writer asleep with nothing waiting, and the
        last commit small or a while ago (after a big one, its senders are on their way
        back and should meet in the writer's next batch).

        The writer's state is read under its lock, where the writer takes a batch and
        marks itself busy in one step: read without it, a submission the writer had
        just taken could be missed, and a later event of the same key (a resolve)
        committed here before it (its trigger)."""
        if self._this_turn:
            return False
        with self._ready:
            if self._waiting or self._calls or self._busy:
                return False
        return (self._last_rows < 3 or time.monotonic() >= self._last_ended + self._last_took) and (
            self._alone is None or self._alone()
        )

    def _commit_here(self, rows: Sequence[NewEvent]) -> list[Enqueued] | None:
        """Commit ``rows`` on the calling (loop) thread if the store can take the write
        lock at once; ``None`` (nothing stored) when it cannot. A failure raises, as a
        failed batch does for each of its submitters."""
        assert self._put_now is not None
        started = time.monotonic()
        stored = self._put_now(rows)
        if stored is None:
            return None
        self._ended(len(rows), started)
        self._count(len(rows))
        self.commits_here += 1
        if self._on_commit is not None:
            self._on_commit(1, len(stored))
        return stored

    def _hand_over_turn(self) -> None:
        """This turn's submissions to the writer: one lock, one wake-up (see the module's
        docstring). On the loop, as :meth:`submit` and :meth:`close` are."""
        turn, self._this_turn = self._this_turn, []
        if turn:
            count, self._this_turn_count = self._this_turn_count, 0
            with self._ready:
                self._waiting += turn  # under the lock: the writer swaps the list
                self._waiting_count += count
                self._ready.notify()

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the writer thread, between commits.

        Raises :class:`RuntimeError` before :meth:`start` and once the committer
        is closed (the writer is gone).
        """
        loop = self._loop
        if loop is None:
            raise RuntimeError("the ingest writer is not running")
        future: asyncio.Future[T] = loop.create_future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the ingest writer has stopped")
            # Looked up under the lock: the writer swaps ``_calls`` for a new list when
            # it takes them, and a call appended to the old one would never run (nor its
            # caller be answered: a lost pending count would hold the bound's lock).
            self._calls.append((fn, future))
            self._ready.notify()
        return await future

    # ------------------------------------------------------------ the writer thread

    def _writer(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._calls and not self._closed:
                    self._busy = False
                    self._ready.wait()
                self._busy = True
                calls, self._calls = self._calls, []
                if not calls and not self._waiting:
                    return  # closed, and everything submitted is answered
            if calls:
                self._run_calls(calls)
            if self._delay and self.waiting_rows < self._max_batch:
                time.sleep(self._delay)
            elif self._last_rows >= 3 and time.monotonic() < self._last_ended + self._last_took:
                # Right after a big commit (not the first event after a quiet spell).
                self._gather(self._last_rows, self._last_took)
            batch, count = self._take()
            if batch:
                started = time.monotonic()
                answer = self._commit(batch)
                self._ended(count, started)
                self._asleep_unless_waiting()  # before the answers go out: see _run_calls
                self._answer(*answer)

    def _gather(self, rows: int, wait: float) -> None:
        """Wait until ``rows`` rows are waiting, for at most ``wait`` seconds (and never
        more than :data:`MAX_GATHER`), or until a call or :meth:`close` comes in.

        Why, after a commit of three rows or more: the senders it answered come back
        one by one, spread over the time their client takes to turn the answers
        round; committing the first one or two of them at once spent a whole fsync
        on them while the rest queued behind it (at 32 senders, half the commits
        held one or two rows). Waiting for as many as the last commit held, at most
        as long as it took, gathers them. (Half as many for half as long took the
        median rows per commit from 1-4 to 7-16, a third fewer fsyncs; the whole
        count and time then took it from 2-14 to 7-17 in five benchmark pairs at 32
        senders, with less server CPU per event in four: docs/ingest.md,
        "Throughput".) A lone sender's commits hold one row: it never
        waits, nor does anyone after a commit of one or two, nor the first event
        after a quiet spell (more than that commit's time since it ended).
        """
        deadline = time.monotonic() + min(wait, MAX_GATHER)
        with self._ready:
            while self._waiting_count < rows and not self._calls and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._ready.wait(left)

    def _run_calls(self, calls: list[_Call]) -> None:
        """Run ``calls``, then answer them; with nothing else waiting, the writer counts
        as asleep before the answers go out.

        Why in that order: a caller goes on at once (a pending count, then the same
        request's submission), and would otherwise find the writer still marked busy,
        and hand its event over rather than commit it on the loop.
        """
        answers: list[tuple[Callable[[Any, Any], None], asyncio.Future[Any], Any]] = []
        for fn, future in calls:
            try:
                answers.append((_resolve_one, future, fn()))
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                answers.append((_fail_one, future, exc))
        self._asleep_unless_waiting()
        for answer, future, value in answers:
            self._answer(answer, future, value)

    def _commit(
        self, batch: list[_Submission]
    ) -> tuple[Callable[[Any, Any], None], list[_Submission], Any]:
        """Commit ``batch``; the answer for its submitters, for :meth:`_answer`."""
        rows = [row for entry_rows, _ in batch for row in entry_rows]
        try:
            stored = self._put(rows)
        except Exception as exc:  # noqa: BLE001 - handed to every submitter of the batch
            return _fail_batch, batch, exc
        self._count(len(rows))
        return self._resolve_batch, batch, stored

    def _ended(self, rows: int, started: float) -> None:
        """A commit of ``rows`` rows begun at ``started`` ended now (failed or not): what
        the next one decides by (gather after a big one, commit on the loop after a
        small one; the writer's and the loop's commits alike)."""
        self._last_ended = time.monotonic()
        self._last_took = self._last_ended - started
        self._last_rows = rows

    def _count(self, rows: int) -> None:
        """A commit of ``rows`` rows stored (the counts tests and the benchmark read)."""
        self.commits += 1
        self.rows += rows
        self.batch_sizes[rows] += 1

    def _asleep_unless_waiting(self) -> None:
        """The writer counts as asleep unless more work is waiting (set busy again by
        :meth:`_take`, or when it wakes, if work comes)."""
        with self._ready:
            if not self._waiting and not self._calls:
                self._busy = False

    def _take(self) -> tuple[list[_Submission], int]:
        """Whole submissions, oldest first, up to ``max_batch`` rows (at least one), and
        the rows in them."""
        with self._ready:
            if self._waiting_count <= self._max_batch:
                # All of it (the usual case): no pass over the submissions.
                batch, self._waiting = self._waiting, []
                count, self._waiting_count = self._waiting_count, 0
            else:
                count = 0
                taken = 0
                for rows, _ in self._waiting:
                    if taken and count + len(rows) > self._max_batch:
                        break
                    count += len(rows)
                    taken += 1
                batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
                self._waiting_count -= count
            if batch:
                self._busy = True  # in the same locked step as the taking (see _idle)
        return batch, count

    def _answer(self, fn: Callable[[Any, Any], None], target: Any, value: Any) -> None:
        """``fn(target, value)`` on the event loop: one wake-up of the loop per commit."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(fn, target, value)

    # ------------------------------------------------------------ on the event loop

    def _resolve_batch(self, batch: list[_Submission], stored: list[Enqueued]) -> None:
        if self._on_commit is not None:
            self._on_commit(len(batch), len(stored))
        at = 0
        for entry_rows, future in batch:
            if not future.done():  # a cancelled submitter's rows are stored anyway
                future.set_result(stored[at : at + len(entry_rows)])
            at += len(entry_rows)

    async def close(self) -> None:
        """Commit what is waiting, then stop the writer thread."""
        self._hand_over_turn()
        with self._ready:
            self._closed = True
            self._ready.notify()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join)


def _fail_batch(batch: list[_Submission], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


def _resolve_one(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail_one(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
