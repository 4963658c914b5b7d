"""Closing an SQLite outbox while other threads use it, and connections of ended threads.

Why: ``Outbox.close()`` closed every thread's connection from the calling
thread, and a thread inside a transaction at that moment (a relay's store
thread whose ``BEGIN IMMEDIATE`` waited for a lock) ran its next statement on
a half-closed connection: a segmentation fault. And a thread ``threading``
does not know the end of (``_thread.start_new_thread``, a C extension's)
kept its connection, two file descriptors, until ``close()``.
"""

from __future__ import annotations

import _thread
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from alertwire import OutboxError, TriggerAlert
from alertwire.outbox import Outbox
from alertwire.outbox.postgres import PostgresStore
from tests.outbox.test_outbox_scaling import pg_url
from tests.support import thread_state
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.waiting import wait_for

__all__ = ["pg_url"]  # the fixture: a fresh schema on the session's cluster

ROOT = Path(__file__).resolve().parents[2]


def descriptors_on(path: Path) -> int:
    """This process's open file descriptors to ``path``."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if os.readlink(fd) == str(path):
                count += 1
        except OSError:
            pass  # closed between the listing and the look
    return count


@pytest.mark.skipif(not thread_state.observable(), reason="needs /proc/<tid>/syscall (Linux)")
def test_closing_while_another_thread_waits_in_a_transaction_does_not_crash(
    tmp_path: Path,
) -> None:
    """The child process (tests/support/close_while_busy.py) closes the outbox while a
    writer's ``BEGIN IMMEDIATE`` waits for a lock another connection holds, then lets
    the lock go. The writer's transaction completes, close() waits for it, and the
    outbox refuses use afterwards instead of reopening the file."""
    path = tmp_path / "outbox.sqlite3"
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.close_while_busy", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, (child.returncode, child.stdout, child.stderr[-3000:])
    assert child.stdout.splitlines() == [
        "stored 200",
        "closed",
        f"after close: the outbox {path} is closed",
    ]
    with Outbox(path) as box:
        assert box.stats().pending == 201


def test_every_operation_after_close_raises_and_close_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path)
    box.enqueue(TriggerAlert("before"), routing_key=KEY)
    box.close()
    assert descriptors_on(path) == 0
    for operation in (
        lambda: box.enqueue(TriggerAlert("after"), routing_key=KEY),
        box.stats,
        box.store.migrate,
    ):
        with pytest.raises(OutboxError, match="is closed") as caught:
            operation()
        assert not caught.value.retryable
    # A thread that never used it before is refused the same way.
    answers: list[BaseException] = []

    def from_a_new_thread() -> None:
        try:
            box.stats()
        except OutboxError as exc:
            answers.append(exc)

    worker = threading.Thread(target=from_a_new_thread)
    worker.start()
    worker.join()
    assert [str(a) for a in answers] == [f"the outbox {path} is closed"]
    box.close()
    assert descriptors_on(path) == 0


def test_a_thread_threading_never_sees_end_leaves_no_connection_open(tmp_path: Path) -> None:
    """A thread from ``_thread.start_new_thread`` is a ``_DummyThread`` to ``threading``,
    alive for ever: its connection is closed when the thread's locals are cleared."""
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as box:
        box.enqueue(TriggerAlert("from the main thread"), routing_key=KEY)
        # Each connection has its own descriptor of the -wal file, closed with it. (Its
        # descriptor of the database file is kept by SQLite while other connections of
        # the process hold POSIX locks on the file, for the next opening to reuse.)
        wal = Path(f"{path}-wal")
        opened = descriptors_on(wal)
        done = threading.Event()
        answers: list[object] = []

        def enqueue() -> None:
            try:
                answers.append(box.enqueue(TriggerAlert("from a raw thread"), routing_key=KEY))
            except BaseException as exc:
                answers.append(exc)
            done.set()

        _thread.start_new_thread(enqueue, ())
        wait_for("the raw thread's enqueue", done.is_set)
        assert box.stats().pending == 2, answers
        # Its locals are cleared after the function returns, as the OS thread ends.
        wait_for("the raw thread's connection closed", lambda: descriptors_on(wal) == opened)


def test_closing_a_postgres_outbox_lets_an_operation_under_way_finish(pg_url: str) -> None:
    """The same race on PostgreSQL: the pool closes only idle connections, and one in
    use is closed as its transaction gives it back, so the writer's rows are stored."""
    import psycopg

    box = Outbox(store=PostgresStore(pg_url))
    box.store.migrate()
    rows = [box.prepare_pagerduty(TriggerAlert(f"{i}"), routing_key=KEY) for i in range(200)]
    answers: list[object] = []

    def write() -> None:
        try:
            answers.append(len(box.put(rows)))
        except BaseException as exc:
            answers.append(exc)

    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE alertwire_events IN EXCLUSIVE MODE")
        writer = threading.Thread(target=write)
        writer.start()

        def writer_waits() -> bool:
            row = holder.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            return row is not None and row[0] > 0

        wait_for("the writer waiting for the table lock", writer_waits)
        box.close()
        holder.execute("COMMIT")
    writer.join()
    assert answers == [200]
    with pytest.raises(OutboxError, match="is closed"):
        box.stats()
    with psycopg.connect(pg_url) as check:
        assert check.execute("SELECT count(*) FROM alertwire_events").fetchone() == (200,)


def forking(script: str, outbox: Path | str) -> list[str]:
    """Run ``script`` (which forks) on ``outbox`` in a process of its own, so that a fork
    never copies pytest's threads; its output lines, once it has exited 0 (a hang fails
    the test)."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(outbox), KEY],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


_FORK_WHILE_LOCKED = """
import os, sys, threading
from alertwire import TriggerAlert
from alertwire.outbox import Outbox

box = Outbox(sys.argv[1])
box.enqueue(TriggerAlert("parent"), routing_key=sys.argv[2])
used, stop = threading.Event(), threading.Event()

def user():
    box.stats()  # this thread gets a connection, and a watch on its end
    used.set()
    stop.wait()

threading.Thread(target=user).start()
used.wait()
held, release = threading.Event(), threading.Event()

def hold():
    with box.store._lock:  # as a first opening holds it during its migration
        held.set()
        release.wait()

threading.Thread(target=hold, daemon=True).start()
held.wait()
pid = os.fork()
if pid == 0:
    os._exit(0)  # the fork alone ran the watches of the threads it dropped
release.set()
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
stop.set()
print("parent still has", box.stats().pending)
"""


def test_a_fork_while_threads_use_the_outbox_neither_hangs_nor_closes_the_parents(
    tmp_path: Path,
) -> None:
    """A fork drops the other threads' state in the child, which ran their end-of-thread
    watches there, before any code of the child's: one waited for a lock copied held
    (the child hung for good), and each closed the parent's connection in the child."""
    assert forking(_FORK_WHILE_LOCKED, tmp_path / "outbox.sqlite3") == [
        "child 0",
        "parent still has 1",
    ]


def test_close_from_inside_an_operation_of_the_same_thread_waits_for_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A signal or logging handler may close the outbox while its own thread is in an
    operation: that lock can never come free while close() waits for it."""
    box = Outbox(tmp_path / "outbox.sqlite3")
    box.enqueue(TriggerAlert("x"), routing_key=KEY)
    store = box.store
    with caplog.at_level("WARNING", logger="alertwire.outbox"):
        with store._holding() as slot:  # type: ignore[attr-defined]
            box.close()
            assert slot.conn is not None  # still the operation's
        assert slot.conn is None  # closed as the operation ended
    assert [r.getMessage() for r in caplog.records] == []
    with pytest.raises(OutboxError, match="is closed"):
        box.stats()


_FORKED_WORKER = """
import os, sys
from alertwire import TriggerAlert
from alertwire.outbox import Outbox

box = Outbox.open(sys.argv[1])

def connection():  # what this process talks to the store through
    store = box.store
    return store._get_pool() if hasattr(store, "_get_pool") else store._local.slot.conn

box.enqueue(TriggerAlert("before the fork"), routing_key=sys.argv[2])
parents = connection()
pid = os.fork()
if pid == 0:  # a worker of a pre-forking server, with the outbox opened before the fork
    box.enqueue(TriggerAlert("in the child"), routing_key=sys.argv[2])
    mine = connection()
    box.close()
    os._exit(0 if mine is not parents else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
box.enqueue(TriggerAlert("after the child"), routing_key=sys.argv[2])
print("parent sees", box.stats().pending)
box.close()
"""


def test_a_forked_child_opens_connections_of_its_own_and_leaves_the_parents(
    tmp_path: Path,
) -> None:
    """SQLite forbids a child to use, or even close, a connection its parent opened: a
    pre-forking server's workers that enqueue through an outbox opened before the
    fork get connections of their own, and the parent goes on with its own."""
    assert forking(_FORKED_WORKER, tmp_path / "outbox.sqlite3") == ["child 0", "parent sees 3"]


def test_a_forked_child_opens_a_postgres_pool_of_its_own_and_leaves_the_parents(
    pg_url: str,
) -> None:
    """The parent's pooled sessions share their sockets with a child made by fork: the
    child's queries would interleave with the parent's, and its close would end them
    (the parent's next enqueue failed)."""
    assert forking(_FORKED_WORKER, pg_url) == ["child 0", "parent sees 3"]
