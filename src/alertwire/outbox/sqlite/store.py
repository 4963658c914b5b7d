"""The SQLite store: the embedded default outbox. SQL and connections only.

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
  ``KeyboardInterrupt``), never leaving a transaction open.
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from ..._errors import OutboxError
from ..._secret import Secret
from ..machine import (
    Claimed,
    DeadEvent,
    Delivered,
    Kind,
    MarkDead,
    NewEvent,
    Outcome,
    QueueStats,
    Reschedule,
    to_datetime,
)
from ..states import (
    SQL_ACTIVE,
    SQL_FINISHED,
    SQL_LEASED,
    SQL_PENDING,
    State,
)

__all__ = [
    "BUSY_TIMEOUT_MS",
    "SCHEMA_VERSION",
    "SQLiteStore",
    "configure",
    "is_busy",
    "is_retryable",
]

logger = logging.getLogger("alertwire.outbox")

SCHEMA_VERSION: Final = 2
BUSY_TIMEOUT_MS: Final = 10_000

#: Set on every connection, after ``PRAGMA busy_timeout`` (first, so that nothing
#: after it fails at once on a lock another connection holds; see :func:`configure`).
#: WAL is persistent in the file and is switched on separately (:func:`_ensure_wal`).
_PRAGMAS: Final = (
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA trusted_schema=OFF",
)

#: One counter row per state, all zero: ``(0, 0), (1, 0), ...``.
_ZERO_COUNTS: Final = ", ".join(f"({int(state)}, 0)" for state in State)

_EVENTS_V1: Final = (
    f"""
    CREATE TABLE events (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        state         INTEGER NOT NULL DEFAULT {SQL_PENDING},
        kind          TEXT    NOT NULL,
        route         TEXT    NOT NULL,
        order_key     TEXT    NOT NULL,
        dedup_key     TEXT,
        base_url      TEXT,
        credential    TEXT    NOT NULL,
        body          BLOB    NOT NULL,
        created_at    REAL    NOT NULL,
        age_from      REAL    NOT NULL,
        not_before    REAL    NOT NULL,
        attempts      INTEGER NOT NULL DEFAULT {SQL_PENDING},
        lease_owner   TEXT,
        lease_expires REAL,
        finished_at   REAL,
        http_status   INTEGER,
        last_error    TEXT,
        error_body    TEXT
    )
    """,
    # The active rows of each key, in id order: "is there an earlier active row of my key?"
    f"CREATE INDEX events_active ON events (order_key, id) WHERE state IN ({SQL_ACTIVE})",
    f"CREATE INDEX events_finished ON events (state, finished_at) WHERE state IN ({SQL_FINISHED})",
    """
    CREATE TABLE routes (
        route        TEXT PRIMARY KEY,
        next_allowed REAL NOT NULL
    ) WITHOUT ROWID
    """,
)

# Version 2: every query the relay runs per cycle costs the same at 100 or 100,000
# pending events. Version 1 found each key's head with "min(id) GROUP BY order_key"
# over every active row (a claim took 0.76 s at 100,000 pending). Now the head is a
# flag kept by triggers, so no INSERT or UPDATE in this module has to know about it:
#
# * ``head = 1`` exactly on the smallest-id PENDING/LEASED row of its key. Set on
#   insert when the key has no active row (ids only grow, so the new row is last);
#   moved to the next active row when the head is delivered or dead; taken back by
#   a row that ``queue retry`` makes active again below the current head.
# * ``counts`` holds the number of rows per state (``queue status`` without counting).
# * Partial indexes over heads only, per route: the claim walks routes (a handful)
#   and reads the first heads of each in id order; next_due reads each route's
#   earliest ``not_before``. A route paused by a 429 is skipped whole, however many
#   events it holds.
_V2: Final = (
    "ALTER TABLE events ADD COLUMN head INTEGER NOT NULL DEFAULT 0",
    f"""
    UPDATE events SET head = 1
    WHERE id IN (SELECT min(id) FROM events WHERE state IN ({SQL_ACTIVE}) GROUP BY order_key)
    """,  # noqa: S608 - state numbers from states.py only
    f"CREATE INDEX events_heads ON events (route, id) WHERE head = 1 AND state = {SQL_PENDING}",
    f"CREATE INDEX events_head_ids ON events (id) WHERE head = 1 AND state = {SQL_PENDING}",
    f"CREATE INDEX events_heads_due ON events (route, not_before) WHERE head = 1 AND state = {SQL_PENDING}",
    "CREATE INDEX events_key_head ON events (order_key) WHERE head = 1",
    f"CREATE INDEX events_leased ON events (lease_expires) WHERE state = {SQL_LEASED}",
    f"CREATE INDEX events_inflight ON events (order_key) WHERE state = {SQL_LEASED}",
    f"CREATE INDEX events_open ON events (created_at) WHERE state IN ({SQL_ACTIVE})",
    "CREATE TABLE counts (state INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    f"INSERT INTO counts (state, n) VALUES {_ZERO_COUNTS}",  # noqa: S608 - state numbers from states.py only
    """
    UPDATE counts SET n = (SELECT count(*) FROM events e WHERE e.state = counts.state)
    """,
    f"""
    CREATE TRIGGER events_inserted AFTER INSERT ON events BEGIN
        UPDATE counts SET n = n + 1 WHERE state = new.state;
        UPDATE events SET head = 1
        WHERE id = new.id AND new.state IN ({SQL_ACTIVE})
          AND NOT EXISTS (SELECT 1 FROM events x
                          WHERE x.order_key = new.order_key AND x.state IN ({SQL_ACTIVE})
                            AND x.id < new.id);
    END
    """,  # noqa: S608 - state numbers from states.py only
    """
    CREATE TRIGGER events_deleted AFTER DELETE ON events BEGIN
        UPDATE counts SET n = n - 1 WHERE state = old.state;
    END
    """,
    f"""
    CREATE TRIGGER events_moved AFTER UPDATE OF state ON events
    WHEN old.state <> new.state BEGIN
        UPDATE counts SET n = n - 1 WHERE state = old.state;
        UPDATE counts SET n = n + 1 WHERE state = new.state;
        -- Left the active states: no longer the head; the next active row of its key is.
        UPDATE events SET head = 0 WHERE id = new.id AND new.state IN ({SQL_FINISHED}) AND head = 1;
        UPDATE events SET head = 1
        WHERE old.state IN ({SQL_ACTIVE}) AND new.state IN ({SQL_FINISHED})
          AND id = (SELECT min(x.id) FROM events x
                    WHERE x.order_key = new.order_key AND x.state IN ({SQL_ACTIVE}));
        -- Active again (queue retry): the head if nothing earlier of its key is active.
        UPDATE events SET head = 0
        WHERE old.state IN ({SQL_FINISHED}) AND new.state IN ({SQL_ACTIVE})
          AND order_key = new.order_key AND head = 1 AND id > new.id;
        UPDATE events SET head = 1
        WHERE old.state IN ({SQL_FINISHED}) AND new.state IN ({SQL_ACTIVE}) AND id = new.id
          AND NOT EXISTS (SELECT 1 FROM events x
                          WHERE x.order_key = new.order_key AND x.state IN ({SQL_ACTIVE})
                            AND x.id < new.id);
    END
    """,  # noqa: S608 - state numbers from states.py only
)

_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {1: _EVENTS_V1, 2: _V2}
#: The whole current schema, from nothing (the benchmarks' bare-SQLite baseline uses it).
_SCHEMA: Final = _EVENTS_V1 + _V2

# The routes that have a pending head, one index probe each (a skip scan).
_NEXT_ROUTE: Final = f"""
SELECT min(route) FROM events INDEXED BY events_heads
WHERE head = 1 AND state = {SQL_PENDING} AND route > :after
"""  # noqa: S608 - state numbers from states.py only

# A pending head may go unless a later row of its key is in flight under a live lease
# (after `queue retry` made an earlier dead row the head): never two of one key at once.
_NOT_BLOCKED: Final = f"""
NOT EXISTS (
    SELECT 1 FROM events f INDEXED BY events_inflight
    WHERE f.order_key = e.order_key AND f.state = {SQL_LEASED} AND f.id <> e.id
      AND f.lease_expires > :now
)
"""  # noqa: S608 - state numbers from states.py only

_ROUTE_HEADS: Final = f"""
SELECT e.id FROM events e INDEXED BY events_heads
WHERE e.head = 1 AND e.state = {SQL_PENDING} AND e.route = :route AND e.not_before <= :now
  AND {_NOT_BLOCKED}
ORDER BY e.id LIMIT :limit
"""  # noqa: S608 - constant fragments only

# The common case first (pacing off): the oldest `window` heads, whatever their route.
# Only if they do not yield `limit` claimable rows (paused, blocked, not due) does the
# claim walk the routes, so a paused route at the front of the backlog is never read
# through.
_OLDEST_HEADS: Final = f"""
SELECT e.id, e.route FROM events e
WHERE e.id IN (
    SELECT w.id FROM events w INDEXED BY events_head_ids
    WHERE w.head = 1 AND w.state = {SQL_PENDING} ORDER BY w.id LIMIT :window
)
  AND e.not_before <= :now AND {_NOT_BLOCKED}
ORDER BY e.id
"""  # noqa: S608 - constant fragments only

_ROUTE_DUE: Final = f"""
SELECT e.not_before FROM events e INDEXED BY events_heads_due
WHERE e.head = 1 AND e.state = {SQL_PENDING} AND e.route = :route AND {_NOT_BLOCKED}
ORDER BY e.not_before LIMIT 1
"""  # noqa: S608 - constant fragments only

# Leased heads whose lease ran out (a relay died): claimable again, few by nature.
_EXPIRED_HEADS: Final = f"""
SELECT e.id, e.route, e.lease_expires FROM events e INDEXED BY events_leased
WHERE e.state = {SQL_LEASED} AND e.lease_expires <= :now AND e.head = 1 AND {_NOT_BLOCKED}
ORDER BY e.id
"""  # noqa: S608 - constant fragments only

_NEXT_LEASE_END: Final = f"""
SELECT min(lease_expires) FROM events INDEXED BY events_leased
WHERE state = {SQL_LEASED} AND lease_expires > :now
"""  # noqa: S608 - state numbers from states.py only

_COUNTS: Final = "SELECT state, n FROM counts"
_OLDEST_OPEN: Final = (
    f"SELECT min(created_at) FROM events INDEXED BY events_open WHERE state IN ({SQL_ACTIVE})"  # noqa: S608 - state numbers from states.py only
)

_LEASE: Final = f"""
UPDATE events
SET state = {SQL_LEASED}, lease_owner = :owner, lease_expires = :lease_until, attempts = attempts + 1
WHERE id = :id
RETURNING id, kind, route, order_key, credential, body, base_url, dedup_key,
          created_at, age_from, attempts
"""  # noqa: S608 - state numbers from states.py only

_PACE: Final = """
INSERT INTO routes (route, next_allowed) VALUES (:route, :next_allowed)
ON CONFLICT (route) DO UPDATE SET next_allowed = max(next_allowed, excluded.next_allowed)
"""

_PAUSE: Final = """
INSERT INTO routes (route, next_allowed)
VALUES ((SELECT route FROM events WHERE id = :id), :next_allowed)
ON CONFLICT (route) DO UPDATE SET next_allowed = max(next_allowed, excluded.next_allowed)
"""

# Every outcome is owner-checked: a relay whose lease was taken over writes nothing.
_DELIVER: Final = f"""
UPDATE events SET state = :state, finished_at = :at, http_status = :status,
       lease_owner = NULL, lease_expires = NULL, last_error = NULL, error_body = NULL
WHERE id = :id AND state = {SQL_LEASED} AND lease_owner = :owner
"""  # noqa: S608 - state numbers from states.py only

_RESCHEDULE: Final = f"""
UPDATE events SET state = :state, not_before = :not_before, last_error = :error,
       http_status = :status, lease_owner = NULL, lease_expires = NULL
WHERE id = :id AND state = {SQL_LEASED} AND lease_owner = :owner
"""  # noqa: S608 - state numbers from states.py only

_BURY: Final = f"""
UPDATE events SET state = :state, finished_at = :at, last_error = :error,
       http_status = :status, error_body = :body, lease_owner = NULL, lease_expires = NULL,
       attempts = attempts - :unsent
WHERE id = :id AND state = {SQL_LEASED} AND lease_owner = :owner
"""  # noqa: S608 - state numbers from states.py only


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


T = TypeVar("T")

#: Backoff between retries of a lock SQLite's busy handler did not wait for:
#: from 1 ms, doubling, at most 50 ms, jittered so that 16 openers do not retry
#: in lockstep; bounded overall by the store's busy timeout.
_BACKOFF_FIRST: Final = 0.001
_BACKOFF_MAX: Final = 0.05


class SQLiteStore:
    """One outbox file; one connection per thread (sqlite3 connections are not shared).

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
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self.create = create
        self.busy_timeout = float(busy_timeout)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._ready = False
        self._warned_mode = False

    def __repr__(self) -> str:
        return f"SQLiteStore({self.location!r})"

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

    def _connect(
        self, *, started: float | None = None, doing: str = "open it"
    ) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
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
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def _open_once(self) -> sqlite3.Connection:
        """One try at connect + configure + migrate; the connection is closed if it fails."""
        if self.create:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.busy_timeout,
            )
        else:
            # mode=rw: never create the file, even if it vanished since it was checked.
            conn = sqlite3.connect(
                f"{self.path.absolute().as_uri()}?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.busy_timeout,
            )
        try:
            # Before anything writes (the WAL switch rewrites the header): refuse what
            # is not ours while it is still byte for byte as we found it.
            conn.execute(f"PRAGMA busy_timeout={round(self.busy_timeout * 1000)}")
            self._refuse_foreign(conn)
            configure(conn, busy_timeout_ms=round(self.busy_timeout * 1000))
            with self._lock:
                if not self._ready:
                    self._migrate(conn)
                    self._ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create or upgrade the schema, step by step, in one transaction; idempotent and
        safe against a concurrent first open (``BEGIN IMMEDIATE``: one process migrates).

        A database with tables but without ``alertwire_schema`` belongs to someone
        else: refused, never given our tables. Without ``create``, an empty one is
        refused too (nothing is created)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._refuse_foreign(conn)
            conn.execute("CREATE TABLE IF NOT EXISTS alertwire_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM alertwire_schema").fetchone()
            version = 0 if row is None or row[0] is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise OutboxError(
                    f"the outbox {self.location} has schema version {version}, newer than this"
                    f" alertwire understands ({SCHEMA_VERSION}): upgrade alertwire"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
                # One row: the version this file is at.
                conn.execute("DELETE FROM alertwire_schema")
                conn.execute("INSERT INTO alertwire_schema (version) VALUES (:v)", {"v": step})
                logger.info("event=outbox_migrated outbox=%s version=%d", self.location, step)
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
    def _tx(self, doing: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rollback on any exception; errors as OutboxError.

        Opening and ``BEGIN IMMEDIATE`` together wait at most the busy timeout."""
        started = time.monotonic()
        conn = self._connect(started=started, doing=doing)
        try:
            self._retrying(doing, lambda: conn.execute("BEGIN IMMEDIATE"), started=started)
        except sqlite3.Error as exc:
            raise self._error(doing, exc) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._error(doing, exc) from exc
            raise

    def _read(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        started = time.monotonic()
        conn = self._connect(started=started, doing="read")
        try:
            return self._retrying(
                "read", lambda: conn.execute(sql, params or {}).fetchall(), started=started
            )
        except sqlite3.Error as exc:
            raise self._error("read", exc) from exc

    def check_writable(self) -> None:
        """One real write that changes no row (``/healthz``): the database header's
        ``user_version`` rewritten with its own value, in a transaction, so a full
        disk, an immutable file or a read-only mount shows; raises OutboxError."""
        with self._tx("write") as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute(f"PRAGMA user_version = {version}")

    def migrate(self) -> int:
        """Create or check the schema now (``alertwire queue migrate``); idempotent."""
        self._connect()
        return SCHEMA_VERSION

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # ------------------------------------------------------------ operations

    def enqueue_many(self, events: Sequence[NewEvent], *, now: float) -> list[int]:
        if not events:
            return []
        ids: list[int] = []
        what = "store the event" if len(events) == 1 else f"store {len(events)} events"
        try:
            with self._tx(what) as conn:
                for event in events:
                    cur = conn.execute(
                        "INSERT INTO events (state, kind, route, order_key, dedup_key, base_url,"
                        " credential, body, created_at, age_from, not_before)"
                        " VALUES (:state, :kind, :route, :order_key, :dedup_key, :base_url,"
                        " :credential, :body, :now, :now, :now)",
                        {
                            "state": int(State.PENDING),
                            "kind": event.kind,
                            "route": event.route,
                            "order_key": event.order_key,
                            "dedup_key": event.dedup_key,
                            "base_url": event.base_url,
                            "credential": event.credential.reveal(),
                            "body": event.body,
                            "now": now,
                        },
                    )
                    ids.append(cast(int, cur.lastrowid))
        except OutboxError as exc:
            raise OutboxError(f"{exc}; NOT queued", retryable=exc.retryable) from exc.__cause__
        return ids

    def claim(
        self, *, owner: str, now: float, lease_until: float, limit: int, pace_interval: float
    ) -> list[Claimed]:
        with self._tx("claim events") as conn:
            return self._claim_in(
                conn,
                owner=owner,
                now=now,
                lease_until=lease_until,
                limit=limit,
                pace_interval=pace_interval,
            )

    def settle_and_claim(
        self,
        outcomes: Sequence[Outcome],
        *,
        owner: str,
        now: float,
        lease_until: float,
        limit: int,
        pace_interval: float,
    ) -> tuple[list[bool], list[Claimed]]:
        """:meth:`settle` then :meth:`claim` in ONE transaction: one fsync per relay cycle.

        The relay's throughput on SQLite is bound by commits.
        """
        with self._tx("record outcomes and claim events") as conn:
            applied = self._settle_in(conn, outcomes, owner)
            return applied, self._claim_in(
                conn,
                owner=owner,
                now=now,
                lease_until=lease_until,
                limit=limit,
                pace_interval=pace_interval,
            )

    def _claim_in(
        self,
        conn: sqlite3.Connection,
        *,
        owner: str,
        now: float,
        lease_until: float,
        limit: int,
        pace_interval: float,
    ) -> list[Claimed]:
        paced = pace_interval > 0
        # Candidates, oldest first: the first due heads of every route that is not paused
        # (one per route when paced), plus heads whose lease expired. Each step is an
        # index range read of at most `limit` rows, whatever the backlog.
        candidates: list[tuple[int, str]] = []
        allowed: dict[str, bool] = {}

        def route_open(route: str) -> bool:
            if route not in allowed:
                row = conn.execute(
                    "SELECT next_allowed FROM routes WHERE route = :route", {"route": route}
                ).fetchone()
                allowed[route] = row is None or row[0] <= now
            return allowed[route]

        if not paced:
            window = {"now": now, "window": max(limit * 4, 64)}
            for event_id, route in conn.execute(_OLDEST_HEADS, window):
                if route_open(route):
                    candidates.append((event_id, route))
        if paced or len(candidates) < limit:
            seen = {event_id for event_id, _ in candidates}
            for route in self._head_routes(conn):
                if route_open(route):
                    for (event_id,) in conn.execute(
                        _ROUTE_HEADS,
                        {"route": route, "now": now, "limit": 1 if paced else limit},
                    ):
                        if event_id not in seen:
                            candidates.append((event_id, route))
        for event_id, route, _ in conn.execute(_EXPIRED_HEADS, {"now": now}):
            if route_open(route):
                candidates.append((event_id, route))
        candidates.sort()
        chosen: list[int] = []
        taken: set[str] = set()
        for event_id, route in candidates:
            if len(chosen) == limit:
                break
            if paced and route in taken:
                continue
            taken.add(route)
            chosen.append(event_id)
        rows = [
            conn.execute(
                _LEASE, {"owner": owner, "lease_until": lease_until, "id": event_id}
            ).fetchone()
            for event_id in chosen
        ]
        if paced:
            for route in sorted(taken):
                conn.execute(_PACE, {"route": route, "next_allowed": now + pace_interval})
        claimed = [
            Claimed(
                id=r[0],
                kind=cast(Kind, r[1]),
                route=r[2],
                order_key=r[3],
                credential=Secret(r[4]),
                body=bytes(r[5]),
                base_url=r[6],
                dedup_key=r[7],
                created_at=r[8],
                age_from=r[9],
                attempts=r[10],
            )
            for r in rows
        ]
        claimed.sort(key=lambda c: c.id)
        return claimed

    def settle(self, outcomes: Sequence[Outcome], *, owner: str) -> list[bool]:
        with self._tx("record delivery outcomes") as conn:
            return self._settle_in(conn, outcomes, owner)

    def _settle_in(
        self, conn: sqlite3.Connection, outcomes: Sequence[Outcome], owner: str
    ) -> list[bool]:
        applied: list[bool] = []
        for o in outcomes:
            if isinstance(o, Delivered):
                cur = conn.execute(
                    _DELIVER,
                    {
                        "state": int(State.DELIVERED),
                        "at": o.at,
                        "status": o.http_status,
                        "id": o.id,
                        "owner": owner,
                    },
                )
            elif isinstance(o, Reschedule):
                cur = conn.execute(
                    _RESCHEDULE,
                    {
                        "state": int(State.PENDING),
                        "not_before": o.not_before,
                        "error": o.error,
                        "status": o.http_status,
                        "id": o.id,
                        "owner": owner,
                    },
                )
                if cur.rowcount and o.pause_route_until is not None:
                    conn.execute(_PAUSE, {"id": o.id, "next_allowed": o.pause_route_until})
            elif isinstance(o, MarkDead):
                cur = conn.execute(
                    _BURY,
                    {
                        "state": int(State.DEAD),
                        "at": o.at,
                        "error": o.error,
                        "status": o.http_status,
                        "body": o.body,
                        "unsent": o.unsent,
                        "id": o.id,
                        "owner": owner,
                    },
                )
            else:  # pragma: no cover - the Outcome union is closed
                raise TypeError(f"unknown outcome {type(o).__name__}")
            applied.append(cur.rowcount == 1)
        return applied

    @staticmethod
    def _head_routes(conn: sqlite3.Connection) -> list[str]:
        """Every route with a pending head: one index probe per route (a skip scan)."""
        routes: list[str] = []
        after = ""
        while True:
            row = conn.execute(_NEXT_ROUTE, {"after": after}).fetchone()
            if row is None or row[0] is None:
                return routes
            after = row[0]
            routes.append(after)

    def next_due(self, *, now: float) -> float | None:
        """The earliest of: each route's first unblocked head (not before the route's
        ``next_allowed``), the end of any live lease (a blocked head, a dead relay's
        claim), and expired leased heads (due once their route allows)."""
        try:
            with self._tx("read") as conn:
                times: list[float] = []
                for route in self._head_routes(conn):
                    due = conn.execute(_ROUTE_DUE, {"route": route, "now": now}).fetchone()
                    if due is None:
                        continue
                    times.append(max(due[0], self._route_allowed(conn, route)))
                lease_end = conn.execute(_NEXT_LEASE_END, {"now": now}).fetchone()
                if lease_end is not None and lease_end[0] is not None:
                    times.append(lease_end[0])
                for _, route, expired in conn.execute(_EXPIRED_HEADS, {"now": now}):
                    times.append(max(expired, self._route_allowed(conn, route)))
        except sqlite3.Error as exc:  # pragma: no cover - _tx maps errors inside it
            raise self._error("read", exc) from exc
        return min(times) if times else None

    @staticmethod
    def _route_allowed(conn: sqlite3.Connection, route: str) -> float:
        row = conn.execute(
            "SELECT next_allowed FROM routes WHERE route = :route", {"route": route}
        ).fetchone()
        return 0.0 if row is None else float(row[0])

    def stats(self) -> QueueStats:
        counts = dict.fromkeys(State, 0)
        # Counters kept by triggers, and the minimum of a partial index: no counting.
        for state, count in self._read(_COUNTS):
            counts[State(state)] = count
        oldest = self._read(_OLDEST_OPEN)[0][0]
        return QueueStats(
            pending=counts[State.PENDING],
            leased=counts[State.LEASED],
            delivered=counts[State.DELIVERED],
            dead=counts[State.DEAD],
            oldest_pending_at=to_datetime(oldest),
        )

    def open_counts(self, *, per_route: bool) -> tuple[int, dict[str, int]]:
        rows = self._read(
            "SELECT sum(n) FROM counts WHERE state IN (:pending, :leased)",
            {"pending": int(State.PENDING), "leased": int(State.LEASED)},
        )
        total = int(rows[0][0] or 0)
        if not per_route or total == 0:
            return total, {}
        # Literal states, as in the partial index events_open (a parameter would not match it).
        routes = self._read(
            "SELECT route, count(*) FROM events INDEXED BY events_open"  # noqa: S608 - state numbers from states.py only
            f" WHERE state IN ({SQL_ACTIVE}) GROUP BY route"
        )
        return total, {route: int(n) for route, n in routes}

    def list_dead(self, *, limit: int | None = None) -> list[DeadEvent]:
        rows = self._read(
            "SELECT id, kind, dedup_key, created_at, finished_at, attempts, last_error,"
            " http_status FROM events WHERE state = :state ORDER BY id LIMIT :limit",
            {"state": int(State.DEAD), "limit": -1 if limit is None else limit},
        )
        return [DeadEvent.from_row(r) for r in rows]

    def retry_dead(self, ids: Sequence[int] | None, *, now: float) -> int:
        sql = (
            "UPDATE events SET state = :pending, attempts = 0, not_before = :now,"
            " age_from = :now, finished_at = NULL WHERE state = :dead"
        )
        with self._tx("retry dead events") as conn:
            if ids is None:
                cur = conn.execute(
                    sql, {"pending": int(State.PENDING), "dead": int(State.DEAD), "now": now}
                )
                return cur.rowcount
            count = 0
            for event_id in ids:
                cur = conn.execute(
                    sql + " AND id = :id",
                    {
                        "pending": int(State.PENDING),
                        "dead": int(State.DEAD),
                        "now": now,
                        "id": event_id,
                    },
                )
                count += cur.rowcount
            return count

    def purge_delivered(self, *, before: float) -> int:
        with self._tx("purge delivered events") as conn:
            cur = conn.execute(
                "DELETE FROM events WHERE state = :state AND finished_at < :before",
                {"state": int(State.DELIVERED), "before": before},
            )
            count = cur.rowcount
        if count:
            self._compact(conn)
        return count

    def _compact(self, conn: sqlite3.Connection) -> None:
        """Give the purged space back to the file system: ``VACUUM``, then a truncating
        checkpoint (in WAL mode the file shrinks only when the WAL is written back).

        Why VACUUM and not ``auto_vacuum = INCREMENTAL``: that mode must be chosen
        before the first table exists, so existing outboxes would need a VACUUM
        anyway. A purge is rare maintenance (cron, weekly); VACUUM holds the write
        lock while it copies the live rows, which is short for an outbox purged
        regularly, and producers wait for it up to the busy timeout. The rows are
        already deleted when it runs: if it cannot (the lock stays busy, the disk
        has no room for the copy) the purge still stands and this says so.
        """
        try:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            logger.warning(
                'event=compact_failed outbox=%s error=%s note="the purge stands; the file'
                ' shrinks at the next purge"',
                self.location,
                _explain(exc, self.path),
            )
