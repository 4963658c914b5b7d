"""The group committer's contract beyond batching (tests/ingest/test_ingest_http.py covers that):
an answer means committed, calls share the writer's thread, and closing answers
what was submitted and refuses what comes after.

A real SQLite outbox where durability is the point; a gated ``put`` (a pure
stand-in for ``Outbox.put``) where the test must hold a commit in flight.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from alertwire import OutboxError
from alertwire.ingest import GroupCommitter
from alertwire.ingest._commit import CommitterClosed
from alertwire.outbox import Enqueued, Outbox
from alertwire.outbox.machine import NewEvent
from tests.support.sandbox_http import trigger
from tests.support.waiting import async_wait_for


def _row(dedup: str = "g") -> NewEvent:
    return Outbox.prepare_pagerduty_raw(json.dumps(trigger(dedup)).encode())


class _GatedPut:
    """Records the thread of every commit; the first waits until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[int] = []
        self.batches: list[int] = []

    def __call__(self, rows: Sequence[NewEvent]) -> list[Enqueued]:
        self.threads.append(threading.get_ident())
        self.entered.set()
        self.release.wait(30)
        self.batches.append(len(rows))
        return [Enqueued(len(self.batches) * 1000 + i, None) for i in range(len(rows))]


async def _commit_held() -> tuple[_GatedPut, GroupCommitter, asyncio.Task[list[Enqueued]]]:
    """A running committer whose first commit (one row) is inside ``put``, held there."""
    put = _GatedPut()
    committer = GroupCommitter(put)
    committer.start()
    first = asyncio.create_task(committer.submit([_row()]))
    await asyncio.get_running_loop().run_in_executor(None, put.entered.wait, 30)
    return put, committer, first


async def test_an_answer_means_the_rows_are_committed(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path)
    committer = GroupCommitter(outbox.put)
    committer.start()
    try:
        results = await asyncio.gather(*(committer.submit([_row(f"k{i}")]) for i in range(5)))
        # Another connection, as a process after a crash would open it: every answered id is there.
        with sqlite3.connect(path) as conn:
            ids = {row[0] for row in conn.execute("SELECT id FROM events")}
        assert {r[0].id for r in results} == ids
        assert len(ids) == 5
    finally:
        await committer.close()
        outbox.close()


async def test_calls_run_on_the_writer_thread_between_commits() -> None:
    put, committer, first = await _commit_held()
    # The writer is inside a commit: the call waits for it, then runs on that thread.
    call = asyncio.create_task(committer.call(threading.get_ident))
    put.release.set()
    assert len(await first) == 1
    assert await call == put.threads[0]
    assert threading.get_ident() != put.threads[0]
    await committer.close()


async def test_a_failing_call_fails_only_its_caller() -> None:
    put = _GatedPut()
    put.release.set()
    committer = GroupCommitter(put)
    committer.start()

    def broken() -> None:
        raise ValueError("probe failed")

    with pytest.raises(ValueError, match="probe failed"):
        await committer.call(broken)
    assert len(await committer.submit([_row()])) == 1  # the writer carries on
    await committer.close()


async def test_close_answers_what_was_submitted_and_refuses_what_comes_after() -> None:
    put, committer, first = await _commit_held()
    rest = [asyncio.create_task(committer.submit([_row()])) for _ in range(3)]
    await async_wait_for("the three submissions queued", lambda: committer.waiting_rows == 3)
    closing = asyncio.create_task(committer.close())
    await async_wait_for("the committer closed to new work", lambda: committer.closed)
    with pytest.raises(CommitterClosed):
        await committer.submit([_row()])
    with pytest.raises(RuntimeError):
        await committer.call(threading.get_ident)
    put.release.set()
    results = await asyncio.gather(first, *rest)
    await closing
    assert put.batches == [1, 3]
    assert [len(r) for r in results] == [1, 1, 1, 1]


async def test_no_submission_or_call_is_lost_while_the_writer_swaps_its_lists() -> None:
    """Every submission and call is answered, however the threads interleave.

    The writer swaps its waiting lists for new ones each time it takes a
    batch; a hand-over that read a list before taking the lock could append
    to one nobody reads again, and its sender waited for ever (seen about one
    bench run in eight). Switching threads every microsecond makes such
    interleavings common; the bound is a count of events, and a lost one
    shows as the safety timeout, never as a slow pass.
    """
    import sys

    def put(rows: Sequence[NewEvent]) -> list[Enqueued]:
        return [Enqueued(i, None) for i in range(len(rows))]

    committer = GroupCommitter(put)
    committer.start()
    row = [_row()]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(200):  # 200 bursts of 40 submissions and 2 calls: 8,400 answers
            stores = [committer.submit(row) for _ in range(40)]
            calls = [committer.call(lambda: 1), committer.call(lambda: 2)]
            await asyncio.wait_for(asyncio.gather(*stores, *calls), timeout=30)
    finally:
        sys.setswitchinterval(previous)
        await committer.close()
    assert committer.rows == 200 * 40


class _NowPut:
    """A stand-in for ``Outbox.put_now``: records the thread; ``None`` while ``locked``."""

    def __init__(self) -> None:
        self.locked = False
        self.threads: list[int] = []

    def __call__(self, rows: Sequence[NewEvent]) -> list[Enqueued] | None:
        self.threads.append(threading.get_ident())
        if self.locked:
            return None
        return [Enqueued(i, None) for i in range(len(rows))]


@pytest.mark.parametrize("locked", [False, True], ids=["lock-free", "lock-held"])
async def test_an_idle_committer_commits_a_lone_submission_on_the_loop_if_it_can_at_once(
    locked: bool,
) -> None:
    """On the loop's own thread when the store takes the lock at once; else (tried
    once, without waiting) by the writer thread."""
    put, now = _GatedPut(), _NowPut()
    put.release.set()
    now.locked = locked
    committer = GroupCommitter(put, put_now=now, alone=lambda: True)
    committer.start()
    try:
        assert len(await committer.submit([_row()])) == 1
        assert now.threads == [threading.get_ident()]  # tried on the loop's own thread
        assert put.batches == ([1] if locked else [])
        assert all(thread != threading.get_ident() for thread in put.threads)
        assert (committer.commits, committer.commits_here) == (1, 0 if locked else 1)
    finally:
        await committer.close()


async def test_nothing_is_committed_on_the_loop_unless_the_request_is_alone() -> None:
    put, now = _GatedPut(), _NowPut()
    put.release.set()
    others = True
    committer = GroupCommitter(put, put_now=now, alone=lambda: not others)
    committer.start()
    try:
        assert len(await committer.submit([_row()])) == 1
        assert (now.threads, put.batches) == ([], [1])  # others in progress: the writer's
        others = False
        assert len(await committer.submit([_row()])) == 1
        assert (now.threads, put.batches) == ([threading.get_ident()], [1])
        assert (committer.commits, committer.commits_here) == (2, 1)
    finally:
        await committer.close()


async def test_a_submission_meets_a_busy_writer_and_waits_for_its_batch() -> None:
    put, now = _GatedPut(), _NowPut()
    alone = False
    committer = GroupCommitter(put, put_now=now, alone=lambda: alone)
    committer.start()
    first = asyncio.create_task(committer.submit([_row()]))
    await asyncio.get_running_loop().run_in_executor(None, put.entered.wait, 30)
    alone = True  # but the writer is inside a commit: nothing runs on the loop
    second = asyncio.create_task(committer.submit([_row()]))
    await async_wait_for("the second submission queued", lambda: committer.waiting_rows == 1)
    put.release.set()
    assert [len(r) for r in await asyncio.gather(first, second)] == [1, 1]
    assert now.threads == []
    assert put.batches == [1, 1]
    await committer.close()


async def test_a_failed_commit_on_the_loop_fails_only_its_submitter(tmp_path: Path) -> None:
    def broken(rows: Sequence[NewEvent]) -> list[Enqueued] | None:
        raise OutboxError("disk full")

    put = _GatedPut()
    put.release.set()
    committer = GroupCommitter(put, put_now=broken, alone=lambda: True)
    committer.start()
    try:
        with pytest.raises(OutboxError, match="disk full"):
            await committer.submit([_row()])
        assert (committer.commits, put.batches) == (0, [])
    finally:
        await committer.close()


async def test_a_commit_on_the_loop_is_durable_and_leaves_the_lock_free(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path)
    assert outbox.can_put_now
    committer = GroupCommitter(outbox.put, put_now=outbox.put_now, alone=lambda: True)
    committer.start()
    try:
        # A file nobody has opened yet is opened by the writer (opening may wait for a
        # lock: creating it, switching it to WAL, upgrading its schema), never on the loop.
        first = await committer.submit([_row("by-the-writer")])
        assert committer.commits_here == 0
        stored = await committer.submit([_row("on-loop")])
        assert committer.commits_here == 1
        # Another connection, as a process after a crash would open it; and it can write.
        with sqlite3.connect(path, timeout=0) as conn:
            rows = conn.execute("SELECT id, dedup_key FROM events ORDER BY id").fetchall()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        assert rows == [(first[0].id, "by-the-writer"), (stored[0].id, "on-loop")]
    finally:
        await committer.close()
        outbox.close()
