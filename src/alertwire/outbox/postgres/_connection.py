"""Connections to a PostgreSQL outbox: the pool, transactions, and what an error means.

A passing failure (a lost connection, a server starting up or shutting down,
a full disk, a lock timeout) is ``OutboxError(retryable=True)``; a connection
setting libpq refuses before it talks to any server (``sslmode=bogus``, a port
out of range) is :class:`OutboxSettingError`, never passing; the pool is
dropped when its connections are lost, so the next call reconnects afresh. A
lost race on the in-flight unique index or a deadlock is tried again
(:meth:`PostgresConnections._raced`). Error texts are the server's or libpq's
own words, scrubbed of the password (:mod:`._redact`). The store's
operations are :mod:`.store`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final, TypeVar

from ..._errors import ConfigurationError, OutboxError
from .._schema_version import upgrade
from ._redact import SECRET_PARAMETERS, redact_url, scrub
from ._schema import LOCK_CLASS, MIGRATIONS, SCHEMA_VERSION

__all__ = ["CONNECT_TIMEOUT", "POOL_MAX_SIZE", "OutboxSettingError", "PostgresConnections"]

logger = logging.getLogger("alertwire.outbox")
T = TypeVar("T")

#: Connections per store: a relay uses one at a time; a service enqueuing from threads, more.
POOL_MAX_SIZE: Final = 8
#: Pools a child made by ``fork`` inherited and must never use or close (see
#: :meth:`PostgresConnections._after_fork`): held here for the life of the child.
_INHERITED: list[object] = []

#: Seconds to wait for a connection (server down, pool exhausted) before an OutboxError.
CONNECT_TIMEOUT: Final = 10
#: How often a claim or settle is tried again after a lost race (unique index, deadlock).
_RACE_RETRIES: Final = 5

#: The server's words when it refuses a connection for a passing reason (57P03, 53300).
_PASSING_FATAL: Final = (
    "the database system is",  # starting up / shutting down / in recovery mode / not ...
    "too many clients",
    "remaining connection slots are reserved",
)
#: SQLSTATEs (or their classes) that a later try of the same call may not meet: the
#: connection (08), the server's resources (53: disk full, out of memory, too many
#: connections), a server shutting down, crashed or starting up (57P01-57P03), a
#: standby during a failover (25006), a lock or statement timeout (55P03, 57014) and
#: a serialization failure (40001).
_PASSING_SQLSTATES: Final = (
    "08",
    "53",
    "57P01",
    "57P02",
    "57P03",
    "25006",
    "55P03",
    "57014",
    "40001",
)

#: libpq's (and psycopg's, for a host list) words for a connection setting that no
#: server state can make work: an invalid value of an enumerated option (sslmode,
#: gssencmode, channel_binding, target_session_attrs, ssl_min_protocol_version ...),
#: a number or port that is not one, mismatched host/port/hostaddr lists, a hostaddr
#: that is not an address, contradictory TLS or auth options, an unusable service
#: definition. Each was produced by the real libpq (tests/outbox/test_outbox_settings_pg.py
#: tries them all). A text with no SQLSTATE and no "FATAL:" that is NOT here is passing
#: (refused, reset, a host name that does not resolve now, a missing Unix socket).
_MISCONFIGURED: Final = re.compile(
    "|".join(
        (
            r'invalid "?\w+"? value: "',
            r'invalid integer value ".*" for connection option "',
            r'invalid port number: "',
            r"invalid SSL protocol version range",
            r'"min_protocol_version" is greater than "max_protocol_version"',
            r"could not match \d+ [\w ]+ (?:to|with) \d+ ",
            r'could not parse network address "',
            r'weak sslmode "',
            r"cannot be mixed with (?:non-)?negative methods",
            r'definition of service ".*" not found',
            r'service file ".*" not found',
            r'syntax error in service file "',
            r"GSSAPI encryption required but it is not supported over a local socket",
            # sslmode=require (or stronger) against a server without TLS: it will not
            # grow TLS by itself, so waiting for it (exit 5, a relay retrying for ever)
            # helps nobody; a person must change one side.
            r"server does not support SSL, but SSL was required",
        )
    )
)


class OutboxSettingError(OutboxError, ConfigurationError):
    """The outbox URL (or libpq's environment) holds a setting libpq refuses outright.

    Both kinds at once, on purpose: an :class:`OutboxError` that is never
    ``retryable``, so every caller that handles a store failure still does
    (``alertwire relay`` exits 2 at start, ``trigger --queue`` exits 2, ingest
    answers 503), and a :class:`ConfigurationError`, so a caller that tells a
    configuration mistake from a failed store (the Airflow hooks: an ERROR line,
    not a WARNING) sees what it is, like an outbox URL that does not parse.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class _CommitUnknown(OutboxError):
    """A passing failure during COMMIT: the server may or may not have applied it."""


class PostgresConnections:
    """An outbox in a PostgreSQL database, shared by any number of relays and producers.

    Connections come from a ``psycopg_pool.ConnectionPool`` opened on the
    first operation (so an unreachable server fails that operation with
    :class:`~alertwire.OutboxError`, like an unusable SQLite file).
    Thread-safe: each operation borrows a connection for one transaction.
    """

    def __init__(self, url: str, *, pool_max_size: int = POOL_MAX_SIZE) -> None:
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                "a PostgreSQL outbox needs psycopg and psycopg_pool"
                " (pip install 'alertwire[postgres]')"
            ) from None
        from psycopg.conninfo import conninfo_to_dict

        self.location = redact_url(url)
        try:
            params = conninfo_to_dict(url)
        except Exception:  # noqa: BLE001 - psycopg's message would quote the URL
            raise ConfigurationError(
                f"the outbox URL {self.location} is not a valid PostgreSQL URL"
            ) from None
        # Longest first: a short one inside a longer one must not leave the rest shown.
        self._secrets = sorted((str(params.get(n) or "") for n in SECRET_PARAMETERS), key=len)[::-1]
        self._url = url
        self._pool_max_size = pool_max_size
        self._pool: Any = None
        self._lock = threading.Lock()
        self._closed = False
        #: The process the pool belongs to (:meth:`_after_fork`).
        self._pid = os.getpid()

    # ------------------------------------------------------------ connections

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = scrub(text, secret)
        return text

    def _explain(self, exc: BaseException) -> str:
        """The server's or libpq's own words (never row content), without the password."""
        import psycopg

        if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
            text = exc.diag.message_primary
            if exc.diag.sqlstate:
                text = f"{text} (SQLSTATE {exc.diag.sqlstate})"
        else:
            text = str(exc).strip() or type(exc).__name__
        return self._scrub(" ".join(text.split()))

    def _after_fork(self) -> None:
        """In a child made by ``fork`` (a pre-forking server's worker, a process pool):
        a pool of its own, opened at the next operation.

        The parent's pool holds the parent's sessions: their sockets are shared with
        the child, so a query from the child would interleave with the parent's on
        one session, and closing one from the child (``Terminate``) would end the
        parent's session. So the parent's pool is neither used nor closed here; it
        is kept referenced (:data:`_INHERITED`), as the garbage collector would
        otherwise close its connections. The lock is made anew: the parent's may
        have been copied held.
        """
        _INHERITED.append(self._pool)
        self._pool = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _get_pool(self) -> Any:
        if self._pid != os.getpid():
            self._after_fork()
        if self._pool is not None:
            return self._pool
        import psycopg
        from psycopg_pool import ConnectionPool

        with self._lock:
            if self._closed:
                raise OutboxError(f"the outbox {self.location} is closed")
            if self._pool is None:
                kwargs: dict[str, Any] = {"autocommit": True}
                if "connect_timeout" not in self._url:
                    kwargs["connect_timeout"] = CONNECT_TIMEOUT
                # One plain connection first: a wrong password or an unreachable server
                # fails here with libpq's own words, not a pool timeout ten seconds later.
                try:
                    with psycopg.connect(self._url, **kwargs) as first:
                        self._configure(first)
                        self._migrate(first)
                except OutboxError:
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped, password scrubbed
                    if _misconfigured(exc):
                        # "connection is bad:" is psycopg's word for libpq's state, not a reason.
                        why = self._explain(exc).removeprefix("connection is bad: ")
                        raise OutboxSettingError(
                            f"cannot open the outbox {self.location}: the URL has a setting"
                            f" libpq refuses: {why}"
                        ) from None
                    raise OutboxError(
                        f"cannot open the outbox {self.location}: {self._explain(exc)}",
                        retryable=self._passing(exc),
                    ) from None
                pool = ConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=self._pool_max_size,
                    kwargs=kwargs,
                    configure=self._configure,
                    timeout=CONNECT_TIMEOUT,
                    name="alertwire-outbox",
                    open=False,
                )
                pool.open(wait=False)
                self._pool = pool
        return self._pool

    @staticmethod
    def _configure(conn: Any) -> None:
        # Durable commits whatever the server default (see the module docstring).
        conn.execute("SET synchronous_commit = on")

    def _migrate(self, conn: Any) -> int:
        """Create or upgrade the tables, once, under an advisory lock; returns the version."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%(c)s, 0)", {"c": LOCK_CLASS})
            return upgrade(
                conn.execute,
                MIGRATIONS,
                supported=SCHEMA_VERSION,
                location=self.location,
                record=lambda step: conn.execute(
                    "INSERT INTO alertwire_schema (version) VALUES (%(v)s)", {"v": step}
                ),
            )

    def migrate(self) -> int:
        """Create or upgrade the schema now (``alertwire queue migrate``); idempotent."""
        pool = self._get_pool()
        try:
            with pool.connection() as conn:
                return self._migrate(conn)
        except OutboxError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to OutboxError, password scrubbed
            raise OutboxError(
                f"cannot migrate the outbox {self.location}: {self._explain(exc)}",
                retryable=self._passing(exc),
            ) from None

    @contextlib.contextmanager
    def _tx(self, doing: str) -> Iterator[Any]:
        """One explicit transaction on a pooled connection; errors as OutboxError.

        A passing failure is ``retryable``; if it lost the connection (or none
        could be had), the pool is dropped so the next call reconnects afresh
        (see the module docstring). A failure while committing raises
        :class:`_CommitUnknown`: the server may have applied the transaction.
        """
        import psycopg

        pool = self._get_pool()
        conn: Any = None
        committing = False
        try:
            with pool.connection() as conn, conn.transaction():
                yield conn
                committing = True
        except (psycopg.Error, OSError) as exc:
            if isinstance(exc, psycopg.errors.UniqueViolation | psycopg.errors.DeadlockDetected):
                raise  # a lost race: the caller tries again
            passing = self._passing(exc)
            if passing and (conn is None or conn.closed):
                self._drop_pool(pool)
            error = _CommitUnknown if committing and passing else OutboxError
            raise error(
                f"cannot {doing} in the outbox {self.location}: {self._explain(exc)}",
                retryable=passing,
            ) from None

    @staticmethod
    def _passing(exc: BaseException) -> bool:
        """Whether the same call may succeed later unchanged (see ``_PASSING_SQLSTATES``).

        psycopg reports a failure with no answer from the server (refused,
        reset, closed, timed out, a pool with no connection to give), and a
        connection the server refused, as an ``OperationalError`` or
        ``InterfaceError`` without a SQLSTATE.
        """
        import psycopg

        if isinstance(exc, OSError):
            return True
        if not isinstance(exc, psycopg.Error):
            return False
        state = exc.sqlstate
        if state is not None:
            return state.startswith(_PASSING_SQLSTATES)
        if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return False
        if _misconfigured(exc):
            return False
        # A refused connection carries no SQLSTATE: the server's FATAL says why. A wrong
        # password or an unknown database needs a person; a server starting up, shutting
        # down, recovering or out of connection slots does not.
        text = str(exc)
        return "FATAL:" not in text or any(words in text for words in _PASSING_FATAL)

    def _drop_pool(self, pool: Any) -> None:
        """Forget a pool whose connections are lost; the next call opens a new one.

        Closed in a daemon thread: closing waits for the pool's workers, and a
        worker may be in the middle of a connection attempt to a dead server.
        """
        with self._lock:
            if self._pool is not pool:
                return  # another thread dropped it already
            self._pool = None
        logger.debug("outbox %s: connection lost; reconnecting at the next call", self.location)
        threading.Thread(target=pool.close, name="alertwire-pool-close", daemon=True).start()

    def _raced(
        self, doing: str, attempt: Callable[[], T], lost: Callable[[], T] | None = None
    ) -> T:
        """Run ``attempt`` again after a lost race (unique index hit, deadlock victim).

        A claim that keeps losing means other relays hold what it wanted:
        ``lost()`` answers instead ("nothing for you this time"), never an error.
        """
        import psycopg

        for tries in range(1, _RACE_RETRIES + 1):
            try:
                return attempt()
            except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected) as exc:
                if tries == _RACE_RETRIES:
                    if lost is not None:
                        return lost()
                    raise OutboxError(
                        f"cannot {doing} in the outbox {self.location}: {self._explain(exc)}",
                        retryable=True,  # still contended: a later try meets other relays' state
                    ) from None
                logger.debug("outbox race on %s (%s); trying again", doing, type(exc).__name__)
                time.sleep(0.002 * tries)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the pool; any operation after it raises OutboxError ("is closed").

        Safe while other threads are inside an operation, unlike closing an SQLite
        connection under its user: the pool closes only the connections it holds
        idle, and one in use is closed when its transaction gives it back, so an
        operation under way finishes (tested). One that took the pool just before
        fails to get a connection from it, as an OutboxError naming the closed pool.
        """
        if self._pid != os.getpid():
            self._after_fork()  # the parent's sessions are not this process's to end
        with self._lock:
            pool, self._pool = self._pool, None
            self._closed = True
        if pool is not None:
            pool.close()


def _misconfigured(exc: BaseException) -> bool:
    """Whether libpq refused the connection settings themselves (see ``_MISCONFIGURED``).

    Only an error without a SQLSTATE counts: a server's own refusal carries one,
    or its "FATAL:" words, and is judged by ``PostgresConnections._passing``.
    """
    import psycopg

    if not isinstance(exc, psycopg.OperationalError) or exc.sqlstate is not None:
        return False
    return _MISCONFIGURED.search(str(exc)) is not None
