"""The SQLite outbox for real: files, permissions, durability settings, failures, enqueue API.

The enqueue API tests take ``outbox`` from :mod:`tests.support.outbox_backends`, so they
run on SQLite and on PostgreSQL; the file-level tests are SQLite's own.

Failure injection, honestly (tests run as root, where chmod stops nothing):

* disk full: a child process with ``RLIMIT_FSIZE`` set just above the
  outbox's current size; the kernel refuses the write (EFBIG) exactly as a
  full disk would refuse it, and SQLite reports SQLITE_FULL;
* read-only: ``chattr +i`` on the file and its directory (immutable: the
  kernel refuses every write, root's included).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from alertwire import (
    AcknowledgeAlert,
    Change,
    ConfigurationError,
    OutboxError,
    PagerDuty,
    ResolveAlert,
    TriggerAlert,
    ValidationError,
)
from alertwire.models.bigpanda import BigPandaAlert
from alertwire.outbox import Outbox, State, default_outbox_path
from alertwire.outbox.machine import Machine
from alertwire.outbox.sqlite import SCHEMA_VERSION, SQLiteStore
from alertwire.sandbox import Sandbox
from tests.support.keys import BIGPANDA_TOKEN as TOKEN
from tests.support.keys import ROUTING_KEY as KEY

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def sqlite_outbox(tmp_path: Path) -> Iterator[Outbox]:
    """For the SQLite-only tests; the enqueue tests take ``outbox`` (both stores)."""
    ob = Outbox(tmp_path / "state" / "outbox.sqlite3")
    yield ob
    ob.close()


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------- files and settings


def test_directory_and_files_are_owner_only_even_with_an_open_umask(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "outbox.sqlite3"
    old = os.umask(0)
    try:
        with Outbox(path) as ob:
            ob.enqueue(TriggerAlert("x"), routing_key=KEY)
            files = {p.name: mode(p) for p in path.parent.iterdir()}
    finally:
        os.umask(old)
    assert mode(path.parent) == 0o700
    assert files == {
        "outbox.sqlite3": 0o600,
        "outbox.sqlite3-wal": 0o600,
        "outbox.sqlite3-shm": 0o600,
    }


def test_an_existing_file_keeps_its_mode_and_a_loose_one_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """We never chmod what we did not create: a loose file is the owner's to fix."""
    path = tmp_path / "outbox.sqlite3"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    with caplog.at_level("WARNING", logger="alertwire.outbox"), Outbox(path) as ob:
        ob.enqueue(TriggerAlert("x"), routing_key=KEY)
    assert mode(path) == 0o644
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert str(path) in warning.getMessage() and "chmod 600" in warning.getMessage()
    assert KEY not in caplog.text


def test_a_directory_given_as_the_outbox_is_refused_and_keeps_its_mode(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)  # noqa: S103 - a mode that is not ours to change
    for create in (True, False):
        with (
            Outbox(store=SQLiteStore(directory, create=create)) as ob,
            pytest.raises(OutboxError, match="is a directory; give a file path") as caught,
        ):
            ob.stats()
        assert caught.value.retryable is False
    assert mode(directory) == 0o755
    assert list(directory.iterdir()) == []


def test_a_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with Outbox(path) as ob, pytest.raises(OutboxError, match="not an alertwire outbox") as caught:
        ob.enqueue(TriggerAlert("x"), routing_key=KEY)
    assert caught.value.retryable is False
    assert str(path) in str(caught.value)
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    conn.close()
    assert tables == ["customers"]
    assert path.read_bytes() == before


def test_opening_without_create_needs_an_existing_outbox_and_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "typo" / "outbox.sqlite3"
    with (
        Outbox.open(missing, create=False) as ob,
        pytest.raises(OutboxError, match=r"no outbox at .*nothing was created") as caught,
    ):
        ob.stats()
    assert caught.value.retryable is False
    assert not (tmp_path / "typo").exists()
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    with Outbox.open(empty, create=False) as ob, pytest.raises(OutboxError, match="empty file"):
        ob.stats()  # (retryable: a producer may be creating it this very moment)
    assert empty.stat().st_size == 0
    real = tmp_path / "real.sqlite3"
    with Outbox(real) as ob:
        ob.enqueue(TriggerAlert("x"), routing_key=KEY)
    with Outbox.open(real, create=False) as ob:
        assert ob.stats().pending == 1


def test_the_busy_timeout_setting_is_checked(tmp_path: Path) -> None:
    env = {"ALERTWIRE_OUTBOX": str(tmp_path / "o.sqlite3")}
    with Outbox.open(env={**env, "ALERTWIRE_OUTBOX_BUSY_TIMEOUT": "0.25"}) as ob:
        assert isinstance(ob.store, SQLiteStore) and ob.store.busy_timeout == 0.25
    for bad in ("0", "-1", "soon", "nan", "99999"):
        with pytest.raises(ConfigurationError, match="ALERTWIRE_OUTBOX_BUSY_TIMEOUT"):
            Outbox.open(env={**env, "ALERTWIRE_OUTBOX_BUSY_TIMEOUT": bad})


def test_pragmas_are_the_documented_ones(sqlite_outbox: Outbox) -> None:
    store = sqlite_outbox.store
    assert isinstance(store, SQLiteStore)
    conn = store._connect()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert conn.isolation_level is None


def test_schema_version_is_recorded_and_a_newer_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as ob:
        ob.stats()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM alertwire_schema").fetchall() == [(SCHEMA_VERSION,)]
    conn.execute("INSERT INTO alertwire_schema (version) VALUES (99)")
    conn.commit()
    conn.close()
    with Outbox(path) as ob, pytest.raises(OutboxError, match="schema version 99"):
        ob.stats()


def test_a_thread_that_ended_leaves_no_connection_open(tmp_path: Path) -> None:
    """Each thread's connection was kept until close(): a service enqueueing from a
    thread per request held two file descriptors per thread that ever enqueued, until
    "too many open files" refused every enqueue."""
    path = tmp_path / "outbox.sqlite3"

    def open_on_the_file() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path))

    with Outbox(path) as box:
        box.enqueue(TriggerAlert("from the main thread"), routing_key=KEY)
        for i in range(20):
            worker = threading.Thread(
                target=box.enqueue,
                args=(TriggerAlert(f"request {i}"),),
                kwargs={"routing_key": KEY},
            )
            worker.start()
            worker.join()
        # The main thread's connection (each thread's is closed as the thread ends),
        # and at most two descriptors SQLite keeps of connections closed while others
        # hold locks on the file (POSIX locks belong to the process: it reuses them).
        assert open_on_the_file() <= 3
        assert box.stats().pending == 21
    assert open_on_the_file() == 0


def test_ids_are_autoincrement_so_never_reused(outbox: Outbox, tmp_path: Path) -> None:
    first = outbox.enqueue(TriggerAlert("x"), routing_key=KEY)
    m = Machine(outbox.store, rate_limit_per_minute=0)
    (row,), _ = m.claim(1)
    m.settle([m.delivered(row, 202)])
    outbox.purge_delivered(before=datetime.now(timezone.utc) + timedelta(seconds=1))
    assert outbox.stats().delivered == 0
    second = outbox.enqueue(TriggerAlert("y"), routing_key=KEY)
    assert second.id > first.id


def test_default_path_follows_xdg_state_home(tmp_path: Path) -> None:
    assert default_outbox_path({"XDG_STATE_HOME": str(tmp_path)}) == (
        tmp_path / "alertwire" / "outbox.sqlite3"
    )
    assert default_outbox_path({}) == Path.home() / ".local/state/alertwire/outbox.sqlite3"
    # A relative XDG_STATE_HOME is invalid per the spec and ignored.
    assert default_outbox_path({"XDG_STATE_HOME": "rel"}) == default_outbox_path({})


def test_open_takes_env_path_and_sqlite_urls(tmp_path: Path) -> None:
    path = tmp_path / "env.sqlite3"
    with Outbox.open(env={"ALERTWIRE_OUTBOX": str(path)}) as ob:
        assert ob.location == str(path)
    with Outbox.open(f"sqlite://{tmp_path}/url.sqlite3") as ob:
        assert ob.location == f"{tmp_path}/url.sqlite3"
    with pytest.raises(ConfigurationError, match="three slashes"):
        Outbox.open("sqlite://relative.db")
    with pytest.raises(ConfigurationError, match="scheme 'mysql'"):
        Outbox.open("mysql://db/x")


@pytest.mark.parametrize("name", [":memory:", "file:x.sqlite3?mode=memory", "file:y.sqlite3"])
def test_a_path_spelt_like_a_sqlite_uri_or_memory_is_a_file_by_that_name(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox is the file the path names, whatever SQLite would read into it.

    Debian's SQLite takes a name starting ``file:`` as a URI even without
    ``uri=True``, and ``:memory:`` names an in-memory database: both "stored"
    an event where no process would ever see it again (``trigger --queue``
    printed its dedup key and exited 0), while the empty file the outbox had
    made for the path stayed empty.
    """
    monkeypatch.chdir(tmp_path)
    with Outbox(name) as ob:
        ob.enqueue(TriggerAlert("x"), routing_key=KEY)
    with Outbox.open(tmp_path / name, create=False) as ob:
        assert ob.stats().pending == 1
    assert mode(tmp_path / name) == 0o600


# ---------------------------------------------------------------- failures at enqueue

_CHILD_PRELUDE = f"""
import sys
sys.path.insert(0, {SRC!r})
from alertwire import TriggerAlert, OutboxError
from alertwire.outbox import Outbox
"""


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CHILD_PRELUDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_disk_full_is_a_clear_error_and_the_batch_is_not_half_stored(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as ob:
        ob.enqueue(TriggerAlert("before"), routing_key=KEY)
    child = run_child(
        f"""
        import os, resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        ob = Outbox({str(path)!r})
        ob.stats()
        sizes = [os.path.getsize(p) for p in ({str(path)!r}, {str(path)!r} + "-wal")
                 if os.path.exists(p)]
        limit = max(sizes) + 16384
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        events = [TriggerAlert("big", custom_details={{"blob": "x" * 20000}}) for _ in range(50)]
        try:
            ob.enqueue_many(events, routing_key={KEY!r})
        except OutboxError as exc:
            print("OUTBOX-ERROR", exc)
        else:
            print("STORED")
        """
    )
    assert child.returncode == 0, child.stderr
    assert "OUTBOX-ERROR" in child.stdout, child.stdout
    assert "full" in child.stdout and "NOT queued" in child.stdout
    assert str(path) in child.stdout
    assert KEY not in child.stdout + child.stderr
    with Outbox(path) as ob:
        assert ob.stats().pending == 1  # all or nothing: none of the 50


def test_full_disk_on_open_names_the_full_disk_and_is_retryable(tmp_path: Path) -> None:
    """Opening a WAL database sizes its -shm file first: on a full disk that write
    fails as SQLITE_IOERR_SHMSIZE ("disk I/O error"), which must read as a full disk."""
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as ob:
        ob.enqueue(TriggerAlert("before"), routing_key=KEY)
    assert not Path(f"{path}-shm").exists()  # closed cleanly: the next open makes it again
    child = run_child(
        f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
        try:
            with Outbox({str(path)!r}) as ob:
                ob.enqueue(TriggerAlert("after"), routing_key={KEY!r})
        except OutboxError as exc:
            print("OUTBOX-ERROR", exc.retryable, getattr(exc.__cause__, "sqlite_errorname", ""))
            print(exc)
        else:
            print("STORED")
        """
    )
    assert child.returncode == 0, child.stderr
    first, message = child.stdout.splitlines()
    assert first == "OUTBOX-ERROR True SQLITE_IOERR_SHMSIZE", child.stdout
    assert "disk is full" in message and str(path) in message
    assert "disk I/O error" not in message and KEY not in child.stdout
    with Outbox(path) as ob:
        assert ob.stats().pending == 1


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as SQLite sees it: a connection inside BEGIN IMMEDIATE."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_lock_the_busy_handler_skips_is_waited_for_not_failed_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new file in rollback mode whose write lock is held: switching it to WAL gets
    SQLITE_BUSY at once, without SQLite's busy handler. The open must wait and then
    succeed once the lock is gone (released only after the wait was seen: no sleep)."""
    path = tmp_path / "outbox.sqlite3"
    holder = _hold_write_lock(path)
    outcome: list[object] = []

    def produce() -> None:
        try:
            with Outbox(path) as ob:
                outcome.append(ob.enqueue(TriggerAlert("x"), routing_key=KEY))
        except OutboxError as exc:
            outcome.append(exc)

    with caplog.at_level("DEBUG", logger="alertwire.outbox"):
        thread = threading.Thread(target=produce)
        thread.start()
        deadline = time.monotonic() + 30
        while not any("event=outbox_busy" in r.getMessage() for r in caplog.records):
            assert thread.is_alive(), f"gave up instead of waiting: {outcome}"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        holder.execute("ROLLBACK")
        thread.join(timeout=30)
    holder.close()
    assert len(outcome) == 1 and not isinstance(outcome[0], OutboxError), outcome
    busy = [r.getMessage() for r in caplog.records if "event=outbox_busy" in r.getMessage()]
    assert "error=SQLITE_BUSY" in busy[0]


def test_a_lock_held_past_the_busy_timeout_is_a_retryable_error_that_says_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as ob:
        ob.stats()
    holder = _hold_write_lock(path)
    try:
        for fresh in (True, False):  # a first open, and a connection already open
            store = SQLiteStore(path, busy_timeout=0.2)
            if not fresh:
                holder.execute("ROLLBACK")
                store.stats()
                holder.execute("BEGIN IMMEDIATE")
            with Outbox(store=store) as ob, pytest.raises(OutboxError) as caught:
                ob.enqueue(TriggerAlert("x"), routing_key=KEY)
            assert caught.value.retryable is True
            message = str(caught.value)
            assert f"the outbox {path} stayed locked by another process for 0.2 s" in message
            assert message.endswith("NOT queued") and KEY not in message
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Paths made immutable with ``chattr +i`` (even root cannot write them), undone after."""
    paths: list[Path] = []
    yield paths
    for p in reversed(paths):
        subprocess.run(["chattr", "-i", str(p)], check=False)


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr (e2fsprogs)")
def test_read_only_outbox_is_a_clear_error(tmp_path: Path, immutable: list[Path]) -> None:
    path = tmp_path / "ro" / "outbox.sqlite3"
    with Outbox(path) as ob:
        ob.enqueue(TriggerAlert("before"), routing_key=KEY)
    assert sorted(p.name for p in path.parent.iterdir()) == ["outbox.sqlite3"]  # WAL checkpointed
    for p in (path, path.parent):
        subprocess.run(["chattr", "+i", str(p)], check=True)
        immutable.append(p)
    with Outbox(path) as ob, pytest.raises(OutboxError) as caught:
        ob.enqueue(TriggerAlert("after"), routing_key=KEY)
    message = str(caught.value)
    assert str(path) in message
    assert "read-only" in message, message
    assert KEY not in message


def test_put_now_stores_only_while_the_lock_is_free_and_never_waits(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    # A long busy timeout: a put_now that waited would wait it out and then raise.
    store = SQLiteStore(path, busy_timeout=60)
    with Outbox(store=store) as ob:
        assert ob.can_put_now
        row_a = ob.prepare_pagerduty(TriggerAlert("a", dedup_key="a"), routing_key=KEY)
        # Nobody has opened the file yet (creating it, its WAL switch and schema may wait
        # for a lock): that is left to a caller that may wait.
        assert ob.put_now([row_a]) is None
        assert ob.stats().pending == 0  # opened by this read, from now on put_now may store
        first = ob.put_now([row_a])
        assert first is not None and [e.dedup_key for e in first] == ["a"]
        # The connection stays non-waiting for the next put_now (no switch per write)...
        assert store._local.slot.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        # ...and waits again as soon as this thread uses it for anything else.
        assert ob.stats().pending == 1
        assert store._local.slot.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 60_000
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            row = ob.prepare_pagerduty(TriggerAlert("b", dedup_key="b"), routing_key=KEY)
            assert ob.put_now([row]) is None
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert store._connect().execute("PRAGMA busy_timeout").fetchone()[0] == 60_000
        again = ob.put_now([row])
        assert again is not None and [e.dedup_key for e in again] == ["b"]
        assert ob.stats().pending == 2
        assert store._local.slot.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 60_000


def _put_now(ob: Outbox, dedup_key: str) -> list[str | None]:
    row = ob.prepare_pagerduty(TriggerAlert(dedup_key, dedup_key=dedup_key), routing_key=KEY)
    stored = ob.put_now([row])
    assert stored is not None
    return [e.dedup_key for e in stored]


def _enqueue(ob: Outbox, dedup_key: str) -> list[str | None]:
    return [ob.enqueue(TriggerAlert(dedup_key, dedup_key=dedup_key), routing_key=KEY).dedup_key]


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr (e2fsprogs)")
@pytest.mark.parametrize("write", [_put_now, _enqueue], ids=["put_now", "enqueue"])
def test_a_write_recovers_once_a_read_only_outbox_is_writable_again(
    tmp_path: Path, immutable: list[Path], write: Callable[[Outbox, str], list[str | None]]
) -> None:
    """SQLite opens a file it cannot write read-only, and that connection stays so
    (here a read opened it while the file was immutable): the read-only refusal
    closes it, so the next write opens one that can write. Both writes: the ingest
    loop's non-waiting one and the waiting one (the relay's, the ingest writer's,
    enqueue)."""
    path = tmp_path / "ro" / "outbox.sqlite3"
    with Outbox(path) as other, Outbox(path) as ob:
        other.enqueue(TriggerAlert("before"), routing_key=KEY)  # the WAL stays while open
        # The -shm file is memory-mapped: making it immutable would crash SQLite (SIGBUS).
        for p in (path, Path(f"{path}-wal"), path.parent):
            subprocess.run(["chattr", "+i", str(p)], check=True)
            immutable.append(p)
        assert ob.stats().pending == 1  # this thread's connection, opened read-only
        with pytest.raises(OutboxError, match="read-only"):
            write(ob, "refused")
        for p in reversed(immutable):
            subprocess.run(["chattr", "-i", str(p)], check=True)
        immutable.clear()
        assert write(ob, "after") == ["after"]
        assert ob.stats().pending == 2


def test_put_now_is_never_possible_on_a_store_without_a_non_waiting_write(tmp_path: Path) -> None:
    class _WaitingOnly:
        def __init__(self, store: SQLiteStore) -> None:
            self.enqueue_many = store.enqueue_many
            self.location = store.location

    store = SQLiteStore(tmp_path / "outbox.sqlite3")
    ob = Outbox(store=_WaitingOnly(store))  # type: ignore[arg-type]
    assert not ob.can_put_now
    assert ob.put_now([ob.prepare_pagerduty(TriggerAlert("x"), routing_key=KEY)]) is None
    store.close()


def test_an_unusable_location_is_an_outbox_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with Outbox(blocker / "outbox.sqlite3") as ob, pytest.raises(OutboxError, match="cannot"):
        ob.enqueue(TriggerAlert("x"), routing_key=KEY)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with Outbox(path) as ob, pytest.raises(OutboxError, match="damaged or not an outbox"):
        ob.enqueue(TriggerAlert("x"), routing_key=KEY)


# ---------------------------------------------------------------- enqueue API


def test_keyless_trigger_gets_a_dedup_key_that_is_returned_and_stored(outbox: Outbox) -> None:
    queued = outbox.enqueue(TriggerAlert("disk full"), routing_key=KEY)
    assert queued.dedup_key is not None and len(queued.dedup_key) == 32
    m = Machine(outbox.store, rate_limit_per_minute=0)
    (row,), _ = m.claim(1)
    body = json.loads(row.body)
    assert body["dedup_key"] == queued.dedup_key == row.dedup_key
    assert body["routing_key"] == KEY


def test_timestamp_is_stamped_at_enqueue_when_absent(outbox: Outbox) -> None:
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    outbox.enqueue(TriggerAlert("a"), routing_key=KEY)
    outbox.enqueue(TriggerAlert("b", timestamp="2015-07-17T08:42:58.315+0000"), routing_key=KEY)
    outbox.enqueue(Change("deploy"), routing_key=KEY)
    m = Machine(outbox.store, rate_limit_per_minute=0)
    rows, _ = m.claim(10)
    stamps = [json.loads(r.body)["payload"]["timestamp"] for r in rows]
    first = datetime.fromisoformat(stamps[0])
    assert before <= first <= datetime.now(timezone.utc)
    assert stamps[1] == "2015-07-17T08:42:58.315+0000"
    assert datetime.fromisoformat(stamps[2]) >= before
    assert rows[2].kind == "pagerduty.change" and rows[2].dedup_key is None


def test_change_events_do_not_block_each_other(outbox: Outbox) -> None:
    outbox.enqueue_many([Change("one"), Change("two")], routing_key=KEY)
    m = Machine(outbox.store, rate_limit_per_minute=0)
    rows, _ = m.claim(10)
    assert len(rows) == 2


def test_batch_enqueue_is_one_transaction_in_order(outbox: Outbox) -> None:
    events = [TriggerAlert(f"e{i}", dedup_key=f"k{i % 5}") for i in range(100)]
    queued = outbox.enqueue_many(events, routing_key=KEY)
    assert [q.id for q in queued] == sorted(q.id for q in queued)
    assert outbox.stats().pending == 100


def test_invalid_input_is_refused_before_storing(outbox: Outbox) -> None:
    with pytest.raises(ValidationError, match="routing_key"):
        outbox.enqueue(TriggerAlert("x"), routing_key="short")
    with pytest.raises(TypeError):
        outbox.enqueue("trigger", routing_key=KEY)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="clear text"):
        outbox.enqueue(TriggerAlert("x"), routing_key=KEY, base_url="http://example.com")
    assert outbox.stats().pending == 0


def test_raw_bodies_are_stored_as_sent_with_a_dedup_key_added_when_missing(
    outbox: Outbox,
) -> None:
    raw = (
        b'{"routing_key":"' + KEY.encode() + b'",  "event_action":"trigger",'
        b' "payload":{"summary":"s","source":"h","severity":"info"}, "x_extra":[1,2]}'
    )
    queued = outbox.enqueue_raw(raw)
    assert queued.dedup_key is not None
    keyed = raw.replace(b"trigger", b"acknowledge")[:-1] + b', "dedup_key":"abc"}'
    assert outbox.enqueue_raw(keyed).dedup_key == "abc"
    m = Machine(outbox.store, rate_limit_per_minute=0)
    rows, _ = m.claim(10)
    first = rows[0].body
    assert first.endswith(raw[1:])  # nothing the client sent was rewritten
    assert json.loads(first)["dedup_key"] == queued.dedup_key
    assert rows[1].body == keyed
    with pytest.raises(ValidationError, match="dedup_key"):
        outbox.enqueue_raw(raw.replace(b"trigger", b"resolve"))
    with pytest.raises(ValidationError, match="body"):
        outbox.enqueue_raw(b"[1]")


def test_raw_null_dedup_key_is_replaced_not_duplicated(outbox: Outbox) -> None:
    raw = json.dumps(
        {
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": None,
            "payload": {"summary": "s", "source": "h", "severity": "info"},
        }
    ).encode()
    queued = outbox.enqueue_raw(raw)
    m = Machine(outbox.store, rate_limit_per_minute=0)
    (row,), _ = m.claim(1)
    assert row.body.count(b"dedup_key") == 1
    assert json.loads(row.body)["dedup_key"] == queued.dedup_key


def test_bigpanda_alerts_are_ordered_by_primary_and_secondary_property(outbox: Outbox) -> None:
    alerts = [
        BigPandaAlert("critical", host="db1", check="disk"),
        BigPandaAlert("ok", host="db1", check="disk"),
        BigPandaAlert("critical", host="db2", check="disk"),
    ]
    outbox.enqueue_bigpanda_many(alerts, token=TOKEN, app_key="app1")
    m = Machine(outbox.store, rate_limit_per_minute=0)
    rows, _ = m.claim(10)
    # db1's "ok" waits for db1's "critical"; db2 is its own key.
    assert [json.loads(r.body)["host"] for r in rows] == ["db1", "db2"]
    body = json.loads(rows[0].body)
    assert body["app_key"] == "app1"
    assert isinstance(body["timestamp"], int)  # stamped at enqueue
    assert abs(body["timestamp"] - time.time()) < 60
    assert rows[0].credential.reveal() == TOKEN


def test_bigpanda_raw_batch_becomes_one_row_per_alert(outbox: Outbox) -> None:
    raw = json.dumps(
        {
            "app_key": "app1",
            "alerts": [
                {"status": "critical", "host": "h1", "check": "c", "tag": "x"},
                {"status": "ok", "host": "h1", "check": "c"},
                {"status": "warning", "service": "s2"},
            ],
        }
    ).encode()
    rows = Outbox.prepare_bigpanda_raw(raw, token=TOKEN)
    assert [json.loads(r.body) for r in rows] == [
        {"app_key": "app1", "status": "critical", "host": "h1", "check": "c", "tag": "x"},
        {"app_key": "app1", "status": "ok", "host": "h1", "check": "c"},
        {"app_key": "app1", "status": "warning", "service": "s2"},
    ]
    assert rows[0].order_key == rows[1].order_key != rows[2].order_key
    single = b'{"app_key":"app1","status":"ok","host":"h1","check":"c"}'
    (one,) = Outbox.prepare_bigpanda_raw(single, token=TOKEN)
    assert one.body == single and one.order_key == rows[0].order_key
    queued = outbox.put(rows)
    assert len(queued) == 3


def test_credentials_never_show_in_reprs(outbox: Outbox) -> None:
    row = Outbox.prepare_pagerduty(TriggerAlert("x"), routing_key=KEY)
    assert KEY not in repr(row) and KEY not in repr(outbox)
    outbox.put([row])
    m = Machine(outbox.store, rate_limit_per_minute=0)
    (claimed,), _ = m.claim(1)
    assert KEY not in repr(claimed) and KEY not in str(outbox.stats())
    assert all(KEY not in repr(d) for d in outbox.dead())


def test_acknowledge_and_resolve_keep_their_dedup_key(outbox: Outbox) -> None:
    a = outbox.enqueue(AcknowledgeAlert("k1"), routing_key=KEY)
    r = outbox.enqueue(ResolveAlert("k1"), routing_key=KEY)
    assert (a.dedup_key, r.dedup_key) == ("k1", "k1")


def test_opening_an_existing_outbox_never_asks_for_the_journal_mode_lock(tmp_path: Path) -> None:
    """``PRAGMA journal_mode=WAL`` needs a lock SQLite does not wait for: issued on
    every open, it made a producer's enqueue fail at once ("database is locked")
    while the relay was writing. Only a file not yet in WAL may be switched, and
    busy_timeout is set before anything that can meet a lock."""
    import sqlite3

    from alertwire.outbox import sqlite as store_module

    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as ob:
        ob.stats()  # creates the file, in WAL
    statements: list[str] = []
    conn = sqlite3.connect(path, isolation_level=None)
    conn.set_trace_callback(statements.append)
    store_module.configure(conn)
    conn.close()
    assert statements[0].lower().startswith("pragma busy_timeout")
    assert not any("journal_mode=" in s.replace(" ", "").lower() for s in statements)

    fresh = sqlite3.connect(tmp_path / "new.sqlite3", isolation_level=None)
    store_module.configure(fresh)
    assert fresh.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    fresh.close()


def test_superseded_dead_letters_are_found_in_one_pass_however_the_retry_names_them(
    tmp_path: Path,
) -> None:
    """``queue retry ID`` (a statement that also says ``id = ?``) once made SQLite read,
    for every key, all rows below that key's last delivery: quadratic, minutes on
    100,000 delivered rows with the write lock held; and each named id ran the query
    again. Counted in SQLite's own VM instructions (a progress handler every 1,000),
    not in time: a pass over 2,000 rows is some 5 * 10^4 instructions, the quadratic
    plan some 2 * 10^6 per id, a pass per id for 200 ids some 10^7."""
    store = SQLiteStore(tmp_path / "outbox.sqlite3")
    with Outbox(store=store) as ob:
        events = [TriggerAlert(f"s{i}", dedup_key=f"k{i % 200}") for i in range(2000)]
        ob.enqueue_many(events, routing_key=KEY)
        # The outcomes a relay would leave (each key's first row dead, the rest
        # delivered), written straight in the file: 2,000 deliveries through a relay
        # would add nothing the statements under test read.
        raw = sqlite3.connect(store.path, isolation_level=None)
        move = "UPDATE events SET state = ?, head = 0, finished_at = 1 WHERE state = ?"
        raw.execute(move + " AND id <= 200", (int(State.DEAD), int(State.PENDING)))
        raw.execute(move, (int(State.DELIVERED), int(State.PENDING)))
        raw.close()
        ticks = 0

        def tick() -> int:
            nonlocal ticks
            ticks += 1
            return 0  # go on

        store._connect().set_progress_handler(tick, 1000)
        listed = ob.dead()
        assert len(listed) == 200 and all(d.superseded for d in listed)
        assert ob.retry(list(range(1, 201))) == 0
        assert ob.retry() == 0
        assert ob.retry([9], superseded=True) == 1
        assert ticks < 1000, ticks


def test_nan_in_custom_details_is_stored_and_sent_as_a_string(
    tmp_path: Path, alertwire_sandbox: Sandbox
) -> None:
    """The outbox keeps the model's bytes: what the relay sends is what a direct send sends."""
    event = TriggerAlert("cpu", dedup_key="nan-1", custom_details={"load": float("nan")})
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box:
        box.enqueue(event, routing_key=KEY)
    with sqlite3.connect(path) as conn:
        [(body,)] = conn.execute("SELECT body FROM events").fetchall()
    assert json.loads(body)["payload"]["custom_details"] == {"load": "NaN"}
    with PagerDuty(KEY, base_url=alertwire_sandbox.url) as pd:
        pd.send(event)
    [alert] = alertwire_sandbox.alerts()
    assert alert["custom_details"] == {"load": "NaN"}
