"""Group commit: concurrent ingests share one transaction, hence one fsync.

Why no timer by default: the writer takes *everything* waiting, commits it
in one transaction on its own thread, and answers all of it; whatever
arrives while that fsync runs forms the next batch. Under load, batches grow
by themselves to the size the disk needs; a single sender pays one fsync and
no added wait (a fixed "collect for N ms" window would tax every quiet-time
alert). ``delay`` adds such a window for disks where it measures better.

Durability is never traded: a submitter's future resolves only after
:meth:`~alertwire.outbox.Outbox.put` returned, i.e. after ``COMMIT`` with the
store's ``synchronous=FULL``. A failed commit fails every submitter of that
batch (all or nothing, as the transaction was), and each answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

from ..outbox import Enqueued
from ..outbox.machine import NewEvent

__all__ = ["DEFAULT_MAX_BATCH", "GroupCommitter"]

T = TypeVar("T")

#: Most rows in one transaction: bounds the time one commit holds the write lock.
DEFAULT_MAX_BATCH: Final = 512


class CommitterClosed(Exception):
    """The committer is shutting down and takes nothing new."""


class GroupCommitter:
    """Batch :meth:`submit` calls into single :func:`put` transactions, on one thread.

    ``put`` stores rows in one transaction and returns one :class:`Enqueued`
    per row (``Outbox.put``). The same thread also runs :meth:`call` (health
    probes), so nothing else ever competes with the writer inside this
    process.
    """

    def __init__(
        self,
        put: Callable[[Sequence[NewEvent]], list[Enqueued]],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        delay: float = 0.0,
        on_commit: Callable[[int, int], None] | None = None,
    ) -> None:
        self._put = put
        self._max_batch = max(1, max_batch)
        self._delay = max(0.0, delay)
        self._on_commit = on_commit
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alertwire-ingest")
        self._waiting: list[tuple[Sequence[NewEvent], asyncio.Future[list[Enqueued]]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Batches committed and rows in them (for tests, the benchmark and the docs).
        self.commits = 0
        self.rows = 0

    @property
    def waiting_rows(self) -> int:
        """Rows submitted and not yet taken into a commit: the next batch, as it stands."""
        return sum(len(rows) for rows, _ in self._waiting)

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._writer(), name="alertwire-ingest-writer")

    async def submit(self, rows: Sequence[NewEvent]) -> list[Enqueued]:
        """Store ``rows`` (atomically, with whoever else is waiting); returns once committed."""
        if self._closed or self._wake is None:
            raise CommitterClosed("the relay is shutting down")
        future: asyncio.Future[list[Enqueued]] = asyncio.get_running_loop().create_future()
        self._waiting.append((rows, future))
        self._wake.set()
        return await future

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the writer thread, between commits."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _writer(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                if self._delay and sum(len(r) for r, _ in self._waiting) < self._max_batch:
                    await asyncio.sleep(self._delay)
                batch = self._take()
                rows = [row for entry_rows, _ in batch for row in entry_rows]
                try:
                    stored = await loop.run_in_executor(self._executor, self._put, rows)
                except Exception as exc:  # noqa: BLE001 - handed to every submitter of the batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.commits += 1
                self.rows += len(rows)
                if self._on_commit is not None:
                    self._on_commit(len(batch), len(rows))
                at = 0
                for entry_rows, future in batch:
                    if not future.done():  # a cancelled submitter's rows are stored anyway
                        future.set_result(stored[at : at + len(entry_rows)])
                    at += len(entry_rows)
            if self._closed:
                return

    def _take(self) -> list[tuple[Sequence[NewEvent], asyncio.Future[list[Enqueued]]]]:
        """Whole submissions, oldest first, up to ``max_batch`` rows (at least one)."""
        count = 0
        taken = 0
        for rows, _ in self._waiting:
            if taken and count + len(rows) > self._max_batch:
                break
            count += len(rows)
            taken += 1
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return batch

    async def close(self) -> None:
        """Commit what is waiting, then stop the writer and its thread."""
        self._closed = True
        if self._task is not None and self._wake is not None:
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
