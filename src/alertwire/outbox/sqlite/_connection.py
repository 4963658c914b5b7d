"""Opening an SQLite outbox: the file, its modes, pragmas, locks and errors.

The store's operations (:mod:`.store`) run through the transactions made here;
the schema they meet is :mod:`._schema`.

Durability, decided deliberately:

* ``journal_mode=WAL``: readers (``queue status``) never block the writer,
  and a commit is one append to the WAL instead of a rewrite of pages.
* ``synchronous=FULL``: every commit fsyncs the WAL before it returns. In
  WAL mode *any* setting survives a process crash (``kill -9``): committed
  frames are in the OS page cache and reach the disk anyway. Only ``FULL``
  also survives power loss or a kernel panic; ``NORMAL`` may lose the last
  commits then. An alert we answered "queued" for must survive both, and
  one fsync per transaction, shared by every event of a batch (group
  commit), is affordable at alert volumes.
* ``busy_timeout``: several processes (relays, ``send --queue``, ``queue
  status``) share the file; a writer waits up to the busy timeout (default
  ``BUSY_TIMEOUT_MS``, ``$ALERTWIRE_OUTBOX_BUSY_TIMEOUT`` seconds) for the
  lock instead of failing at once. SQLite's busy handler does not cover every
  wait: ``PRAGMA journal_mode=WAL`` on a new file fails at once with
  ``SQLITE_BUSY`` while another connection creates the schema (the only
  variant seen when 16 processes open one new file together: each retry is
  logged at DEBUG as ``event=outbox_busy`` with SQLite's error name), and
  SQLite documents others that skip it (``SQLITE_BUSY_RECOVERY`` for a
  reader meeting a WAL recovery, ``SQLITE_BUSY_SNAPSHOT``). So every path
  (open, pragmas, the WAL switch, migrations, ``BEGIN IMMEDIATE``, reads)
  retries any ``SQLITE_BUSY*``/``SQLITE_LOCKED*`` with a short jittered
  backoff until the busy timeout is spent (:meth:`SQLiteStore._retrying`); a
  lock really held longer is ``OutboxError(retryable=True)`` saying so.
* ``isolation_level=None`` plus an explicit ``BEGIN IMMEDIATE`` per
  operation (:meth:`SQLiteStore._tx`): the write lock is taken at the start,
  so two relays can never both read the same head as free and both claim
  it; the context manager rolls back on any ``BaseException`` (including
  ``KeyboardInterrupt``), never leaving a transaction open. A write that is
  one statement (an enqueue of up to 128 rows) runs as a transaction of its
  own instead (:meth:`SQLiteStore._write_alone`): the same lock taken the
  same way, one call into SQLite instead of three.
* Local disks only: WAL needs shared memory, which network file systems do
  not provide.

Permissions: the file holds routing keys and tokens, so a directory we
create is ``0700`` and a file we create ``0600``, with explicit modes
(``os.open(..., 0o600)``) rather than by changing the process umask, which
is global and would race with other threads of a user's service. SQLite
gives its ``-wal`` and ``-shm`` files the database file's own mode (it even
``fchmod``\\ s them against the umask), so they are ``0600`` too (tested).
We never change the mode of anything we did not create: an existing file
readable by others is left as it is and a WARNING says so; a directory
given as the outbox is refused.

What is opened: ``create=True`` (the commands that store or deliver)
creates the file and schema if needed; ``create=False`` (``queue status``,
``dead``, ``retry``, ``purge``) opens only an existing outbox and creates
nothing, so a mistyped path is an error instead of an empty, healthy-looking
outbox. Either way a non-empty SQLite database without our schema table is
refused, never given our tables.

A store failure (disk full, read-only file or directory, a lock held past
the timeout) raises :class:`~alertwire.OutboxError` naming the file and the
cause: the caller must never believe an alert was kept when it was not.
``retryable`` is ``True`` for passing causes (a lock, a full disk, a write
the kernel refused) and ``False`` for those that need a person (read-only,
damaged or foreign file, a missing outbox, a directory).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from ..._errors import ConfigurationError, OutboxError
from .._schema_version import upgrade
from ..machine import public_reason
from ._per_thread import ThreadConnection, ThreadEnd, watch_thread_end
from ._schema import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "BUSY_TIMEOUT_MS",
    "SQLiteConnections",
    "configure",
    "is_busy",
    "is_retryable",
]

logger = logging.getLogger("alertwire.outbox")

BUSY_TIMEOUT_MS: Final = 10_000

#: Connections a child made by ``fork`` inherited and must never close (see
#: :meth:`SQLiteConnections._after_fork`): held here for the life of the child.
_INHERITED: list[object] = []

#: Set on every connection, after ``PRAGMA busy_timeout`` (first, so that nothing
#: after it fails at once on a lock another connection holds; see :func:`configure`).
#: WAL is persistent in the file and is switched on separately (:func:`_ensure_wal`).
_PRAGMAS: Final = (
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA trusted_schema=OFF",
)

#: Added on a bulk producer's connections (:meth:`SQLiteConnections.tune_for_bulk_writes`):
#: a 16 MiB page cache instead of SQLite's 2 MB, and a checkpoint every 16,000 WAL pages
#: (64 MiB at 4 KiB pages) instead of every 1,000. Both are per connection, never stored
#: in the file.
_BULK_PRAGMAS: Final = (
    "PRAGMA cache_size=-16384",
    "PRAGMA wal_autocheckpoint=16000",
)


def _writable(path: Path) -> bool:
    return all(os.access(p, os.W_OK) for p in (path, path.parent) if p.exists())


def _error_name(exc: BaseException) -> str:
    return str(getattr(exc, "sqlite_errorname", "") or "")


def is_busy(exc: BaseException) -> bool:
    """A lock another connection holds: ``SQLITE_BUSY`` and its variants
    (``_RECOVERY``, ``_SNAPSHOT``, ``_TIMEOUT``), or ``SQLITE_LOCKED*``."""
    name = _error_name(exc)
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


#: Failures that pass by themselves: a lock, a full disk, a write the kernel refused
#: (EFBIG, ENOSPC, EIO arrive as the IOERR variants). The same call may work later.
_PASSING: Final = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_FULL",
    "SQLITE_IOERR_SHMSIZE",
    "SQLITE_IOERR_WRITE",
    "SQLITE_IOERR_FSYNC",
    "SQLITE_IOERR_TRUNCATE",
)


def is_retryable(exc: BaseException) -> bool:
    """Whether the same operation may succeed later unchanged (see :data:`_PASSING`)."""
    return _error_name(exc).startswith(_PASSING)


def _record_version(conn: sqlite3.Connection, step: int) -> None:
    """One row: the version this file is at."""
    conn.execute("DELETE FROM alertwire_schema")
    conn.execute("INSERT INTO alertwire_schema (version) VALUES (:v)", {"v": step})


def _explain(exc: sqlite3.Error, path: Path | None = None) -> str:
    """What went wrong, in words an operator can act on (never row content).

    ``path`` lets a CANTOPEN be named as read-only when the file or its
    directory cannot be written (an immutable file, a read-only mount)."""
    name = _error_name(exc)
    if name.startswith("SQLITE_FULL"):
        return "the disk (or the database size limit) is full"
    if name == "SQLITE_IOERR_SHMSIZE":
        # Opening a WAL database creates and sizes its -shm file: the first write
        # a full disk refuses, before any row is touched.
        return (
            "the disk is full (or a file size limit was reached):"
            " SQLite could not size the outbox's -shm file"
        )
    if name in ("SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC", "SQLITE_IOERR_TRUNCATE"):
        # EFBIG (a file size limit), EPERM (an immutable file) and EIO all arrive here.
        return "the outbox file cannot be written (the disk is full, read-only or failing)"
    if name.startswith("SQLITE_READONLY") or (
        name.startswith("SQLITE_CANTOPEN") and path is not None and not _writable(path)
    ):
        return "the file or its directory is read-only"
    if is_busy(exc):
        return "another process kept the outbox locked past the busy timeout"
    if name.startswith("SQLITE_CANTOPEN"):
        return "the file cannot be opened"
    if name.startswith("SQLITE_CORRUPT") or name.startswith("SQLITE_NOTADB"):
        return "the file is damaged or not an outbox"
    return f"{name or type(exc).__name__}: {exc}"


def configure(conn: sqlite3.Connection, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """The outbox's settings on a connection: every pragma, then WAL (see below).

    Every connection to an outbox file goes through here: the store's and the
    benchmarks' bare-sqlite3 baselines, which must run with exactly the
    store's settings. The WAL switch can fail at once with ``SQLITE_BUSY``
    (see :func:`_ensure_wal`): callers retry it, as :class:`SQLiteStore` does.
    """
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    _ensure_wal(conn)


def _ensure_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL unless it already is.

    ``PRAGMA journal_mode=WAL`` needs a lock SQLite does not wait for (the
    busy handler is not called), so issuing it on every connection made an
    open fail at once with "database is locked" whenever another connection
    was writing: a producer's enqueue could fail while the relay was busy.
    The mode is persistent, so only the first open of a new file switches it;
    reading it waits like any read. The first open can still meet it (another
    process creating the schema of the same new file): the store retries.
    """
    row = conn.execute("PRAGMA journal_mode").fetchone()
    if row is None or str(row[0]).lower() != "wal":
        conn.execute("PRAGMA journal_mode=WAL")


#: The oldest SQLite library the outbox runs on: its statements use ``RETURNING``
#: (3.35; 3.35.4 fixed a fault in it) and ``UPDATE ... FROM`` (3.33). Python links
#: whichever SQLite the system or the build gave it, so an older one is refused when
#: the outbox is opened, by name, rather than met as a syntax error at the first
#: enqueue or relay cycle.
MIN_SQLITE: Final = (3, 35, 5)


def check_sqlite_library(version: tuple[int, int, int] = sqlite3.sqlite_version_info) -> None:
    """Refuse a SQLite library older than :data:`MIN_SQLITE` (a ConfigurationError)."""
    if version < MIN_SQLITE:
        found = ".".join(map(str, version))
        raise ConfigurationError(
            f"the SQLite outbox needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer;"
            f" this Python uses SQLite {found} (use a newer Python build, or a PostgreSQL outbox)"
        )


def _roll_back(conn: sqlite3.Connection) -> None:
    """Roll back a transaction a failed statement may have left open (SQLite rolls an
    autocommit statement's back itself on every failure it reports in WAL mode)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


#: Prepared statements kept per connection (Python's default is 128): a relay cycle's
#: multi-row statements come in one shape per row count and kind of outcome (up to
#: about 170 with the rest), and a statement pushed out is prepared again.
_CACHED_STATEMENTS: Final = 256

T = TypeVar("T")

#: Backoff between retries of a lock SQLite's busy handler did not wait for:
#: from 1 ms, doubling, at most 50 ms, jittered so that 16 openers do not retry
#: in lockstep; bounded overall by the store's busy timeout.
_BACKOFF_FIRST: Final = 0.001
_BACKOFF_MAX: Final = 0.05


class SQLiteConnections:
    """One outbox file's connections: one per thread (sqlite3 connections are not shared).

    Each is held by its thread for the whole of an operation, so that :meth:`close`
    from another thread waits for it, and is closed when its thread ends (see
    :mod:`._per_thread`).

    The file is opened lazily, on the first operation, so that an unusable
    outbox fails at the operation (``enqueue``) with :class:`OutboxError`.
    ``create=False`` opens an existing outbox only (see the module docstring);
    ``busy_timeout`` (seconds) bounds every wait for a lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        busy_timeout: float = BUSY_TIMEOUT_MS / 1000,
    ) -> None:
        if not busy_timeout > 0:
            raise ValueError("busy_timeout must be a positive number of seconds")
        check_sqlite_library()
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self.create = create
        self.busy_timeout = float(busy_timeout)
        self._local = threading.local()
        #: Every thread's connection (see :mod:`._per_thread`), for :meth:`close`.
        self._slots: set[ThreadConnection] = set()
        self._closed = False
        self._lock = threading.Lock()
        #: The process the connections belong to (:meth:`_after_fork`).
        self._pid = os.getpid()
        self._ready = False
        self._warned_mode = False
        self._tuning: tuple[str, ...] = ()

    @property
    def _busy_timeout_ms(self) -> int:
        return round(self.busy_timeout * 1000)

    # ------------------------------------------------------------ errors and waiting

    def _error(self, doing: str, exc: sqlite3.Error) -> OutboxError:
        return OutboxError(
            f"cannot {doing} in the outbox {self.location}: {_explain(exc, self.path)}",
            retryable=is_retryable(exc),
        )

    def _retrying(self, doing: str, action: Callable[[], T], *, started: float) -> T:
        """``action()``, again after a short backoff while it meets a lock, until the
        busy timeout (counted from ``started``) is spent.

        SQLite's own busy handler already waits inside most statements; this
        covers the ones it skips (the WAL switch, ``SQLITE_BUSY_RECOVERY``,
        ``SQLITE_BUSY_SNAPSHOT``). Any other error is raised as it is.
        """
        delay = _BACKOFF_FIRST
        while True:
            try:
                return action()
            except sqlite3.Error as exc:
                if not is_busy(exc):
                    raise
                waited = time.monotonic() - started
                logger.debug(
                    "event=outbox_busy outbox=%s doing=%r error=%s waited=%.3f",
                    self.location,
                    doing,
                    _error_name(exc),
                    waited,
                )
                if waited >= self.busy_timeout:
                    raise OutboxError(
                        f"the outbox {self.location} stayed locked by another process for"
                        f" {self.busy_timeout:g} s: cannot {doing}",
                        retryable=True,
                    ) from exc
                pause = min(delay, self.busy_timeout - waited) * random.uniform(0.5, 1.0)
                time.sleep(pause)
                delay = min(delay * 2, _BACKOFF_MAX)

    # ------------------------------------------------------------ connections

    def _prepare_file(self) -> bool:
        """Create the directory (0700) and file (0600) if needed, or check they exist.

        Never changes the mode of anything that was already there. Returns whether
        the file was created now.
        """
        path = self.path
        if path.is_dir():
            raise OutboxError(
                f"the outbox {self.location} is a directory; give a file path,"
                f" e.g. {path / 'outbox.sqlite3'}"
            )
        if not self.create:
            if not path.exists():
                raise OutboxError(
                    f"there is no outbox at {self.location} (no such file); nothing was"
                    " created: check --outbox / ALERTWIRE_OUTBOX (commands that store or"
                    " deliver create it)"
                )
            return False
        directory = path.parent
        try:
            if not directory.exists():
                directory.parent.mkdir(parents=True, exist_ok=True)
                try:
                    directory.mkdir(mode=0o700)
                except FileExistsError:
                    pass  # another process made it first: not ours to change
                else:
                    os.chmod(directory, 0o700)  # the umask may have taken bits: ours, so set
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                return False
            os.close(fd)
            return True
        except OSError as exc:
            raise OutboxError(
                f"cannot create the outbox {self.location}: {exc.strerror or exc}",
                retryable=exc.errno in (errno.ENOSPC, errno.EDQUOT),
            ) from exc

    def _warn_if_loose(self) -> None:
        """An existing file others can read holds keys: say so, but do not chmod it."""
        if self._warned_mode:
            return
        self._warned_mode = True
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
            if mode & 0o077:
                logger.warning(
                    "outbox file %s is readable or writable by others (mode %o) and holds"
                    " routing keys and tokens: run chmod 600 on it (alertwire changes the"
                    " mode only of files it creates)",
                    self.location,
                    mode,
                )

    # ------------------------------------------------------------ holding a connection

    def _own(self) -> ThreadConnection:
        """This thread's :class:`ThreadConnection`, made at its first operation."""
        if self._pid != os.getpid():
            self._after_fork()
        try:
            slot: ThreadConnection = self._local.slot
        except AttributeError:
            slot = self._new_slot()
        return slot

    def _after_fork(self) -> None:
        """In a child made by ``fork`` (a pre-forking server's worker, a process pool):
        start afresh, with connections of its own.

        SQLite forbids using a connection in a child that the parent opened, closing
        it included: a close there can checkpoint and delete the WAL the parent is
        still writing, since the parent's file locks are not the child's. So the
        parent's connections are neither used nor closed; they are kept referenced
        for the child's lifetime (:data:`_INHERITED`), as the garbage collector
        would otherwise close them. The lock is made anew: the parent's may have
        been copied held.
        """
        _INHERITED.append((self._slots, self._local))
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._slots = set()

    def _new_slot(self) -> ThreadConnection:
        slot = ThreadConnection()
        with self._lock:
            if self._closed:
                raise self._closed_error()
            self._slots.add(slot)
        store = weakref.ref(self)  # the watch must not keep a dropped store alive

        def forget(ended: ThreadConnection) -> None:
            owner = store()
            if owner is not None:
                with owner._lock:
                    owner._slots.discard(ended)

        end = ThreadEnd()
        watch_thread_end(end, slot, forget)
        self._local.slot = slot
        self._local.end = end
        return slot

    def _closed_error(self) -> OutboxError:
        return OutboxError(f"the outbox {self.location} is closed")

    def _hold(self) -> ThreadConnection:
        """Take this thread's connection for one operation; :meth:`_let_go` after it.

        Held for the whole operation so that :meth:`close`, from any thread, never
        closes the connection under it (see :mod:`._per_thread`). Raises
        OutboxError once the outbox is closed."""
        slot = self._own()
        if slot.depth:
            slot.depth += 1
            return slot
        # Only close() takes another thread's lock, and only to close the connection:
        # a wait here is short. Bounded all the same, so that a lock left held (an
        # interrupt between two statements of this pair) is an error, never a hang.
        if not slot.busy.acquire(timeout=self.busy_timeout):
            raise OutboxError(
                f"cannot use the outbox {self.location}: this thread's connection stayed"
                f" busy for {self.busy_timeout:g} s",
                retryable=True,
            )
        slot.depth = 1
        if self._closed:
            self._let_go(slot)
            raise self._closed_error()
        return slot

    def _let_go(self, slot: ThreadConnection) -> None:
        slot.depth -= 1
        if slot.depth == 0:
            try:
                if self._closed:
                    slot.close()  # close() could not wait for this operation: closed here
            finally:
                slot.busy.release()

    @contextlib.contextmanager
    def _holding(self) -> Iterator[ThreadConnection]:
        """:meth:`_hold` ... :meth:`_let_go` around a block (the operations that are not
        hot paths; those call the two directly)."""
        slot = self._hold()
        try:
            yield slot
        finally:
            self._let_go(slot)

    def _connect(
        self, *, started: float | None = None, doing: str = "open it"
    ) -> sqlite3.Connection:
        """This thread's connection, opened if need be (see :meth:`_connection`)."""
        with self._holding() as slot:
            return self._connection(slot, started=started, doing=doing)

    def _connection(
        self, slot: ThreadConnection, *, started: float | None = None, doing: str = "open it"
    ) -> sqlite3.Connection:
        """``slot``'s connection (held by this thread), opened if need be, waiting for locks
        as usual (its busy timeout restored if the last write on it was
        :meth:`_write_alone_now`'s)."""
        conn = slot.conn
        if conn is not None:
            if slot.no_wait:
                try:
                    conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
                except sqlite3.Error as exc:
                    raise self._error(doing, exc) from exc
                slot.no_wait = False
            return conn
        started = time.monotonic() if started is None else started
        created = self._prepare_file()
        try:
            conn = self._retrying(doing, self._open_once, started=started)
        except sqlite3.Error as exc:
            raise OutboxError(
                f"cannot open the outbox {self.location}: {_explain(exc, self.path)}",
                retryable=is_retryable(exc),
            ) from exc
        if not created:
            self._warn_if_loose()  # an outbox now known to be ours, holding keys
        slot.conn = conn
        return conn

    def _open_once(self) -> sqlite3.Connection:
        """One try at connect + configure + migrate; the connection is closed if it fails.

        Always through a ``file:`` URI of the absolute path: given as it is, a name
        such as ``:memory:`` or ``file:x?mode=memory`` (Debian's SQLite reads a
        ``file:`` name as a URI even without ``uri=True``) opened a database other
        than the file :meth:`_prepare_file` made, one that vanished with the process.
        ``mode=rw`` without ``create``: never create the file, even if it vanished
        since it was checked.
        """
        conn = sqlite3.connect(
            f"{self.path.absolute().as_uri()}?mode={'rwc' if self.create else 'rw'}",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=self.busy_timeout,
            cached_statements=_CACHED_STATEMENTS,
        )
        try:
            # Before anything writes (the WAL switch rewrites the header): refuse what
            # is not ours while it is still byte for byte as we found it.
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            self._refuse_foreign(conn)
            configure(conn, busy_timeout_ms=self._busy_timeout_ms)
            for pragma in self._tuning:
                conn.execute(pragma)
            with self._lock:
                if not self._ready:
                    self._migrate(conn)
                    self._ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def tune_for_bulk_writes(self) -> None:
        """Connections this store opens from now on write many events in a row.

        For one process storing a large input (``alertwire send --queue``), not for
        every user of the file, so a store made for that opts in. Each chunk's index
        entries land on pages all over the order-key indexes: with SQLite's 2 MB page
        cache those pages were read back from the OS again and again, and a
        checkpoint every 1,000 WAL pages copied them to the database file (and
        fsynced it) every few chunks. With 5,000-event chunks, a 16 MiB cache and a
        checkpoint every 4,000 pages measured about a sixth less CPU per line (system
        CPU 2.3 s -> 1.1 s per 100,000 lines); a checkpoint every 16,000 pages, with
        10,000-event chunks, took 1,000,000 lines from about 48 s to about 37 s
        (docs/cli.md, ``send --queue``): the order-key index pages a checkpoint copies
        had been rewritten by four times as many chunks since the last one.

        Durability is unchanged: ``synchronous=FULL`` still fsyncs the WAL at every
        commit, and a committed transaction is durable in the WAL whether or not it
        was checkpointed yet. The costs: up to 16 MiB more memory in this process,
        and a WAL file that may grow to about 64 MiB before a checkpoint (SQLite
        checkpoints it when the last connection closes; while it is that long,
        readers search a longer WAL index, which costs them little).
        """
        self._tuning = _BULK_PRAGMAS

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create or upgrade the schema, step by step, in one transaction; idempotent and
        safe against a concurrent first open (``BEGIN IMMEDIATE``: one process migrates).

        A database with tables but without ``alertwire_schema`` belongs to someone
        else: refused, never given our tables. Without ``create``, an empty one is
        refused too (nothing is created)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._refuse_foreign(conn)
            upgrade(
                conn.execute,
                MIGRATIONS,
                supported=SCHEMA_VERSION,
                location=self.location,
                record=lambda step: _record_version(conn, step),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _refuse_foreign(self, conn: sqlite3.Connection) -> None:
        """Tables but no ``alertwire_schema``: someone else's database. Without
        ``create``, an empty one too (nothing is created)."""
        tables = {
            str(name)
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "alertwire_schema" in tables:
            return
        if tables:
            raise OutboxError(
                f"{self.location} is not an alertwire outbox (a database with other tables,"
                " no alertwire schema); it was left untouched: give another --outbox path"
            )
        if not self.create:
            # Empty: most likely a producer creating it this very moment (the file
            # exists before its schema does), so a retry is the useful answer.
            raise OutboxError(
                f"{self.location} holds no outbox yet (an empty file, nothing was created);"
                " if a producer is creating it right now, try again",
                retryable=True,
            )

    @contextlib.contextmanager
    def _tx(self, doing: str, *, many_rows: bool = False) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rollback on any exception; errors as OutboxError.

        Opening and ``BEGIN IMMEDIATE`` together wait at most the busy timeout.
        ``many_rows``: the transaction updates many rows per statement (the relay's
        cycle), so this thread's connection keeps its statement journals in memory
        (see :meth:`_journal_in_memory`)."""
        started = time.monotonic()
        slot = self._hold()
        try:
            conn = self._connection(slot, started=started, doing=doing)
            try:
                if many_rows:
                    self._journal_in_memory(conn)
                self._retrying(doing, lambda: conn.execute("BEGIN IMMEDIATE"), started=started)
            except sqlite3.Error as exc:
                raise self._write_failed(doing, exc) from exc
            with self._committed(conn, doing) as began:
                yield began
        finally:
            self._let_go(slot)

    def _write_alone(self, doing: str, sql: str, params: Sequence[object]) -> sqlite3.Cursor:
        """``sql`` as a transaction of its own (SQLite's autocommit): the write lock, the
        statement and its ``COMMIT`` (the fsync) in one step; errors as OutboxError.

        Why not ``BEGIN IMMEDIATE`` ... ``COMMIT`` around it: a statement outside a
        transaction takes the write lock exactly as ``BEGIN IMMEDIATE`` does (waiting
        up to the busy timeout, and a lock another connection holds is met before the
        statement changes anything), and commits with the same fsync before it
        returns; the two extra statements cost a thread three calls into SQLite
        instead of one, and each call lets go of the GIL and has to take it back (on
        the ingest writer, while the event loop holds it). A failure rolls the
        statement's transaction back (SQLite does; this makes sure). Only for one
        statement: anything that needs more goes through :meth:`_tx`."""
        started = time.monotonic()
        slot = self._hold()
        try:
            conn = self._connection(slot, started=started, doing=doing)

            def attempt() -> sqlite3.Cursor:
                try:
                    return conn.execute(sql, params)
                except BaseException:
                    _roll_back(conn)  # before a retry, too: it must begin afresh
                    raise

            try:
                return self._retrying(doing, attempt, started=started)
            except sqlite3.Error as exc:
                raise self._write_failed(doing, exc) from exc
        finally:
            self._let_go(slot)

    def _write_alone_now(
        self, doing: str, sql: str, params: Sequence[object]
    ) -> sqlite3.Cursor | None:
        """:meth:`_write_alone`, but only if the write lock is free this instant: ``None``
        (nothing written, nothing waited for) while another connection holds it.

        For a caller that must not block on a lock (the ingest endpoint committing on
        its event loop): it goes the waiting way instead. The statement runs with
        ``busy_timeout`` 0, so a held lock fails it at once, before it changes
        anything (a checkpoint after the commit never waits for a lock either).
        The connection keeps that setting until the thread uses it otherwise
        (:meth:`_connection` restores the busy timeout then): switching it there and
        back around every write was two more statements, about a seventh of the
        instructions of a one-row write. Opening this thread's connection the first time is done here only once
        another thread has opened the file (schema checked): that opening waits for
        no lock.

        Any other failure closes this thread's connection before it is raised, so
        the next call opens a new one: SQLite opens a file it cannot write
        read-only and keeps it so, and a connection first opened during a fault
        (a read-only or immutable file) would otherwise fail for ever after it.
        """
        slot = self._hold()
        try:
            conn = slot.conn
            if conn is None:
                if not self._ready:
                    # The file is not open anywhere yet: the first opening may create it,
                    # switch it to WAL or upgrade its schema, each of which may wait for a
                    # lock. That is left to a thread that may wait (the caller's fallback).
                    return None
                conn = self._connection(slot, doing=doing)
            try:
                if not slot.no_wait:
                    # Left at 0 until this thread's connection is used otherwise (then
                    # _connection restores it): a thread that writes only this way (the
                    # ingest's event loop) switches it once, not twice per write.
                    conn.execute("PRAGMA busy_timeout=0")
                    slot.no_wait = True
                try:
                    return conn.execute(sql, params)
                except sqlite3.Error as exc:
                    if not is_busy(exc):
                        raise
                    _roll_back(conn)  # (nothing was written: the lock is taken first)
                    return None
            except sqlite3.Error as exc:
                _roll_back(conn)
                raise self._write_failed(doing, exc, drop=True) from exc
            except BaseException:
                _roll_back(conn)
                raise
        finally:
            self._let_go(slot)

    @contextlib.contextmanager
    def _committed(
        self, conn: sqlite3.Connection, doing: str, *, drop: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """The body of a transaction begun on ``conn``: ``COMMIT`` after it, ``ROLLBACK``
        on any exception, an SQLite error raised as OutboxError (see
        :meth:`_write_failed` for ``drop``)."""
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._write_failed(doing, exc, drop=drop) from exc
            raise

    def _journal_in_memory(self, conn: sqlite3.Connection) -> None:
        """Keep this connection's statement journals in memory (``temp_store=MEMORY``).

        A statement that may abort half-way (every ``UPDATE`` of ``events``: its
        trigger can ``RAISE(ABORT)``) keeps the pages it changes in a statement
        journal, to undo itself alone. Past 64 KiB SQLite moves that journal to a
        temporary file, which an ``UPDATE`` of a relay cycle's rows (a few random
        index pages each) always outgrew: a file created, written and deleted per
        cycle, about 5 KB of writes per event. The journal is never read after a
        crash (the WAL is what survives one): durability is unchanged. It holds the
        pages one statement changes: the relay's statements update at most 32 rows
        (``store._CYCLE_ROWS``), about 2 MiB more peak memory with 100,000 pending
        events. Set once per connection, outside a transaction; :meth:`_temp_on_disk`
        undoes it before a ``VACUUM``, whose copy of the whole outbox must stay on disk.
        """
        slot = self._own()
        if not slot.journal_in_memory:
            conn.execute("PRAGMA temp_store=MEMORY")
            slot.journal_in_memory = True

    def _temp_on_disk(self, conn: sqlite3.Connection) -> None:
        """Temporary files on disk again (SQLite's default), for a ``VACUUM``."""
        slot = self._own()
        if slot.journal_in_memory:
            conn.execute("PRAGMA temp_store=DEFAULT")
            slot.journal_in_memory = False

    def _write_failed(self, doing: str, exc: sqlite3.Error, *, drop: bool = False) -> OutboxError:
        """The OutboxError for a failed write, after closing this thread's connection
        when it met a read-only file (always) or when ``drop`` (any failure: see
        :meth:`_write_alone_now`).

        Why a read-only refusal closes it: SQLite opens a file it cannot write
        read-only and keeps that connection so, so a thread whose connection was
        first opened while the file was read-only (a read during a fault, an
        immutable file) would fail every write after the fault is gone; closed, its
        next write opens a connection that can write."""
        if drop or _error_name(exc).startswith("SQLITE_READONLY"):
            self._drop_own_connection()
        return self._error(doing, exc)

    def _drop_own_connection(self) -> None:
        """Close this thread's connection; its next operation opens a new one."""
        self._own().close()  # (held: called inside an operation of this thread)

    def _read(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        started = time.monotonic()
        slot = self._hold()
        try:
            conn = self._connection(slot, started=started, doing="read")
            try:
                return self._retrying(
                    "read", lambda: conn.execute(sql, params or {}).fetchall(), started=started
                )
            except sqlite3.Error as exc:
                raise self._error("read", exc) from exc
        finally:
            self._let_go(slot)

    def check_writable(self) -> None:
        """One real write that changes no row (``/healthz``): the database header's
        ``user_version`` rewritten with its own value, in a transaction, so a full
        disk, an immutable file or a read-only mount shows; raises OutboxError."""
        with self._tx("write") as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute(f"PRAGMA user_version = {version}")

    def is_passing(self, exc: OutboxError) -> bool:
        """``retryable``, or an SQLite cause :func:`is_retryable` calls passing (a full
        disk, a refused write, a lock) on a path that raised without flagging it."""
        if exc.retryable:
            return True
        cause = exc.__cause__
        return isinstance(cause, sqlite3.Error) and is_retryable(cause)

    def explain(self, exc: BaseException) -> str:
        """SQLite's own diagnosis of a failure (``SQLITE_IOERR_WRITE`` from EFBIG, EPERM
        or EIO reads as "cannot be written (the disk is full, read-only or failing)";
        ``SQLITE_IOERR_SHMSIZE`` as a full disk; a lock as held past the busy timeout),
        never the file path or a row; :func:`~..machine.public_reason` without an SQLite cause."""
        cause = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
        if isinstance(cause, sqlite3.Error):
            return _explain(cause)
        return public_reason(exc)

    def migrate(self) -> int:
        """Create or check the schema now (``alertwire queue migrate``); idempotent."""
        self._connect()
        return SCHEMA_VERSION

    def close(self) -> None:
        """Close every thread's connection; any operation after it raises OutboxError.

        An operation under way in another thread finishes first: each connection is
        closed only with its lock (see :mod:`._per_thread`), waited for at most the
        busy timeout, all connections together, counted from the call. One still
        busy after that is closed by its own thread as its operation ends, and a
        WARNING says so. Called from inside an operation of the same thread, that
        thread's connection is closed as the operation ends, without a wait.
        Idempotent.

        Why an error after it rather than opening the file again: a closed outbox
        that reopened itself would hold the file open again behind its owner's back
        (after ``close()`` the owner may move, check or delete it), and the
        PostgreSQL store refuses the same way.
        """
        deadline = time.monotonic() + self.busy_timeout
        if self._pid != os.getpid():
            self._after_fork()  # the parent's connections are not this process's to close
        with self._lock:
            self._closed = True
            slots, self._slots = list(self._slots), set()
        own = getattr(self._local, "slot", None)
        busy = 0
        for slot in slots:
            if slot.ended is not None:
                slot.ended.detach()  # nothing left for the thread's end to close
            if slot is own and slot.depth:
                # Called from inside an operation of this very thread (a signal or
                # logging handler): its lock can never come free while we wait, and
                # the operation closes the connection itself as it ends.
                continue
            if slot.busy.acquire(timeout=max(0.0, deadline - time.monotonic())):
                try:
                    slot.close()
                finally:
                    slot.busy.release()
            else:
                busy += 1
        if busy:
            logger.warning(
                'event=outbox_close_deferred outbox=%s connections=%d note="still in an'
                " operation after the busy timeout (%g s); each is closed by its own"
                ' thread when that operation ends"',
                self.location,
                busy,
                self.busy_timeout,
            )
