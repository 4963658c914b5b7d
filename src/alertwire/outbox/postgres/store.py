"""The PostgreSQL store: one outbox shared by relays on several hosts. SQL and connections only.

The rules are :mod:`alertwire.outbox.machine`'s; this module makes them hold
when several relay processes on several machines claim from one table at
once. How, and why (after reading how Procrastinate orders jobs that share a
lock and how Graphile Worker and River take and rescue claims):

* **Claims** lock candidate heads with ``FOR UPDATE OF e SKIP LOCKED``: two
  relays claiming at the same moment never wait for each other and never
  take the same row. A head is a PENDING row due now with no earlier
  PENDING/LEASED row of its ``order_key`` (Procrastinate's "no earlier job
  with the same lock" test, ``NOT EXISTS`` on the ``(order_key, id)`` index).
* **A partial UNIQUE index on in-flight keys** (``order_key WHERE state =
  LEASED``) makes "two relays hold two events of one key" impossible rather
  than unlikely: whatever a snapshot race lets through, the index refuses.
  A claim that hits it (``unique_violation``) means "another relay has this
  key": the transaction is rolled back and tried again (Procrastinate does
  the same), never reported as an error.
* **Rescue, then claim.** Because LEASED must mean "in flight" for that
  index, an expired lease is first turned back into PENDING in the claim's
  own transaction (River's rescuer, run inline; ``SKIP LOCKED`` so rescuers
  never block each other), then claimed like any pending head. The result
  is the machine's rule ("a LEASED row whose lease expired is claimable"),
  with one more step. That differs from SQLite's single statement on
  purpose: an expired lease on a *non-head* row (after ``queue retry`` of an
  earlier dead row) would otherwise block its key forever under the index.
* **Owner-checked completion**: every outcome is ``UPDATE ... WHERE id AND
  state = LEASED AND lease_owner = :owner`` (Graphile Worker's owner check),
  so a stalled relay whose lease was rescued writes nothing.
* **Pacing under concurrency**: a paced claim takes at most one head per
  route, then asks the route row for permission with a conditional upsert
  (``ON CONFLICT DO UPDATE ... WHERE next_allowed <= now RETURNING``). The
  row lock serialises two relays; the second one re-reads the first one's
  ``next_allowed`` and is refused, so a route never gets two claims in one
  interval, whichever relays claim. Route rows are always written in route
  order, and after the event rows, so claims and settles cannot deadlock.
* **Per-key order at enqueue.** Ids come from an identity column, assigned at
  insert but visible at commit; two producers enqueuing the same key at
  once could commit in the other order, and a relay could send the later id
  first. SQLite's single writer rules that out; here an enqueue takes a
  transaction-scoped advisory lock per key (in a fixed order, so batches
  cannot deadlock), so commit order per key is id order.

Durability: every session sets ``synchronous_commit = on`` (whatever the
server's default), so a COMMIT returned means the WAL is flushed: an alert
we answered "queued" for survives a server crash. A server run with
``fsync = off`` cannot keep that promise, and no client setting can fix it.

Outages: a lost connection (the server restarted, crashed or failed over,
the network dropped), a server that is starting up or shutting down, one
out of connections or disk space, a lock or statement timeout: each is a
*passing* failure, raised as :class:`~alertwire.OutboxError` with
``retryable=True`` (the message names the host and database, never the
password). After a lost connection the pool is dropped and the next
operation opens a new one, with one plain connection first: while the server
is down every call fails at once ("connection refused") instead of waiting
for the pool's own reconnect schedule, so the caller's backoff (the relay's:
0.5 s doubling to 30 s) is the only one, and a server that is back is used
at the next try. A COMMIT whose answer was lost may or may not have been
applied; an enqueue says so instead of "NOT queued".

Credentials: the URL, libpq's environment (``PGPASSWORD``, ``PGUSER`` ...)
and ``PGPASSFILE`` work as for ``psql``. The password never leaves this
module: :attr:`PostgresStore.location` and ``repr`` show the URL without it,
and error texts are scrubbed of it. Tables are ``alertwire_*`` in the first
schema of the ``search_path`` (``?options=-csearch_path%3Dalerting`` picks
one), and are created or migrated on first use (or ``alertwire queue
migrate``) under an advisory lock, so relays starting together migrate once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar, cast

from ..._errors import ConfigurationError, OutboxError
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

__all__ = ["SCHEMA_VERSION", "PostgresStore", "redact_url"]

logger = logging.getLogger("alertwire.outbox")
T = TypeVar("T")

SCHEMA_VERSION: Final = 2
#: Connections per store: a relay uses one at a time; a service enqueuing from threads, more.
POOL_MAX_SIZE: Final = 8
#: Seconds to wait for a connection (server down, pool exhausted) before an OutboxError.
CONNECT_TIMEOUT: Final = 10
#: The first key of every advisory lock we take: our locks never collide with an application's.
_LOCK_CLASS: Final = 0x61_77_6F_62  # "awob"
#: How often a claim or settle is tried again after a lost race (unique index, deadlock).
_RACE_RETRIES: Final = 5

_LEASED = int(State.LEASED)

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

#: The counter buckets: LEASED is counted with PENDING, as "open" (see version 2).
_COUNTED_BUCKETS: Final = ", ".join(
    f"({int(state)})" for state in (State.PENDING, State.DELIVERED, State.DEAD)
)

_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        f"""
        CREATE TABLE alertwire_events (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            state         smallint NOT NULL DEFAULT {SQL_PENDING},
            kind          text     NOT NULL,
            route         text     NOT NULL,
            order_key     text     NOT NULL,
            dedup_key     text,
            base_url      text,
            credential    text     NOT NULL,
            body          bytea    NOT NULL,
            created_at    double precision NOT NULL,
            age_from      double precision NOT NULL,
            not_before    double precision NOT NULL,
            attempts      integer  NOT NULL DEFAULT {SQL_PENDING},
            lease_owner   text,
            lease_expires double precision,
            finished_at   double precision,
            http_status   integer,
            last_error    text,
            error_body    text
        )
        """,
        # Finds every key's head ("no earlier active row of my key").
        "CREATE INDEX alertwire_events_active ON alertwire_events (order_key, id)"
        f" WHERE state IN ({SQL_ACTIVE})",
        # The claim scan: pending rows in id order.
        f"CREATE INDEX alertwire_events_pending ON alertwire_events (id) WHERE state = {SQL_PENDING}",
        # Two relays can never hold two events of one key at once.
        "CREATE UNIQUE INDEX alertwire_events_inflight ON alertwire_events (order_key)"
        f" WHERE state = {SQL_LEASED}",
        "CREATE INDEX alertwire_events_finished ON alertwire_events (state, finished_at)"
        f" WHERE state IN ({SQL_FINISHED})",
        """
        CREATE TABLE alertwire_routes (
            route        text PRIMARY KEY,
            next_allowed double precision NOT NULL
        )
        """,
    ),
    # Version 2: every query a relay runs per cycle costs the same at 100 or 100,000
    # pending events (version 1's next_due and paced claim read every active row:
    # 0.9 s and 0.15 s at 100,000). The head of each key is a flag and the rows per
    # state are counters, both kept by a trigger, so no INSERT or UPDATE has to know:
    # * ``head`` is true exactly on the smallest-id PENDING/LEASED row of its key; a
    #   row that enters or leaves those states moves it, under the key's advisory
    #   lock (the one enqueue takes), so an enqueue and a settle of one key never
    #   both miss the hand-over;
    # * ``alertwire_counts`` holds rows per state, with PENDING and LEASED counted
    #   together as "open" (under state 0): a claim, a rescue and a reschedule then
    #   fire no trigger at all, and the leased rows (a few per relay) are counted
    #   from their unique index. Sharded by backend, so concurrent relays do not
    #   queue on one counter row; ``queue status`` sums at most 3 x 16 rows.
    2: (
        # The same int4 as _lock_key() computes in Python (first 4 bytes of SHA-256).
        """
        CREATE FUNCTION alertwire_lock_key(k text) RETURNS integer
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $fn$ SELECT ('x' || left(encode(sha256(convert_to(k, 'UTF8')), 'hex'), 8))::bit(32)::integer $fn$
        """,
        "ALTER TABLE alertwire_events ADD COLUMN head boolean NOT NULL DEFAULT false",
        f"""
        UPDATE alertwire_events SET head = true
        WHERE id IN (
            SELECT min(id) FROM alertwire_events WHERE state IN ({SQL_ACTIVE}) GROUP BY order_key
        )
        """,  # noqa: S608 - state numbers from states.py only
        "CREATE INDEX alertwire_events_heads ON alertwire_events (route, id)"
        f" WHERE head AND state = {SQL_PENDING}",
        # The claim's first try: the oldest heads, whatever their route.
        f"CREATE INDEX alertwire_events_head_ids ON alertwire_events (id) WHERE head AND state = {SQL_PENDING}",
        "CREATE INDEX alertwire_events_heads_due ON alertwire_events (route, not_before)"
        f" WHERE head AND state = {SQL_PENDING}",
        "CREATE INDEX alertwire_events_key_head ON alertwire_events (order_key) WHERE head",
        f"CREATE INDEX alertwire_events_leased ON alertwire_events (lease_expires) WHERE state = {SQL_LEASED}",
        f"CREATE INDEX alertwire_events_open ON alertwire_events (created_at) WHERE state IN ({SQL_ACTIVE})",
        # The claim scan is per route now (alertwire_events_heads).
        "DROP INDEX IF EXISTS alertwire_events_pending",
        """
        CREATE TABLE alertwire_counts (
            state smallint NOT NULL,
            shard smallint NOT NULL,
            n     bigint   NOT NULL,
            PRIMARY KEY (state, shard)
        )
        """,
        f"""
        INSERT INTO alertwire_counts (state, shard, n)
        SELECT s, 0, (SELECT count(*) FROM alertwire_events e
                      WHERE e.state = s OR (s = {SQL_PENDING} AND e.state = {SQL_LEASED}))
        FROM (VALUES {_COUNTED_BUCKETS}) AS v (s)
        """,  # noqa: S608 - state numbers from states.py only
        f"""
        CREATE FUNCTION alertwire_events_track() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        DECLARE
            my_shard smallint := pg_backend_pid() % 16;
            old_bucket smallint := CASE WHEN TG_OP = 'INSERT' THEN NULL
                                        WHEN OLD.state = {SQL_LEASED} THEN {SQL_PENDING} ELSE OLD.state END;
            new_bucket smallint := CASE WHEN TG_OP = 'DELETE' THEN NULL
                                        WHEN NEW.state = {SQL_LEASED} THEN {SQL_PENDING} ELSE NEW.state END;
            was_active boolean := TG_OP <> 'INSERT' AND OLD.state IN ({SQL_ACTIVE});
            is_active boolean := TG_OP <> 'DELETE' AND NEW.state IN ({SQL_ACTIVE});
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO alertwire_counts AS c (state, shard, n) VALUES (old_bucket, my_shard, -1)
                ON CONFLICT (state, shard) DO UPDATE SET n = c.n - 1;
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN NULL;
            END IF;
            INSERT INTO alertwire_counts AS c (state, shard, n) VALUES (new_bucket, my_shard, 1)
            ON CONFLICT (state, shard) DO UPDATE SET n = c.n + 1;
            IF was_active = is_active THEN
                RETURN NULL;
            END IF;
            PERFORM pg_advisory_xact_lock({_LOCK_CLASS}, alertwire_lock_key(NEW.order_key));
            IF is_active THEN
                -- inserted (always last of its key), or made active again by queue retry
                UPDATE alertwire_events SET head = false
                WHERE order_key = NEW.order_key AND head AND id > NEW.id;
                UPDATE alertwire_events SET head = true
                WHERE id = NEW.id AND NOT EXISTS (
                    SELECT 1 FROM alertwire_events x
                    WHERE x.order_key = NEW.order_key AND x.state IN ({SQL_ACTIVE}) AND x.id < NEW.id
                );
            ELSE
                UPDATE alertwire_events SET head = false WHERE id = NEW.id AND head;
                UPDATE alertwire_events SET head = true
                WHERE NOT head AND id = (
                    SELECT min(x.id) FROM alertwire_events x
                    WHERE x.order_key = NEW.order_key AND x.state IN ({SQL_ACTIVE})
                );
            END IF;
            RETURN NULL;
        END
        $fn$
        """,  # noqa: S608 - a module constant, no value
        "CREATE TRIGGER alertwire_events_added AFTER INSERT OR DELETE ON alertwire_events"
        " FOR EACH ROW EXECUTE FUNCTION alertwire_events_track()",
        "CREATE TRIGGER alertwire_events_moved AFTER UPDATE OF state ON alertwire_events"
        f" FOR EACH ROW WHEN ((OLD.state IN ({SQL_ACTIVE})) IS DISTINCT FROM (NEW.state IN ({SQL_ACTIVE})))"
        " EXECUTE FUNCTION alertwire_events_track()",
    ),
}

_RESCUE: Final = f"""
UPDATE alertwire_events SET state = {SQL_PENDING}, lease_owner = NULL, lease_expires = NULL
WHERE id IN (
    SELECT id FROM alertwire_events
    WHERE state = {SQL_LEASED} AND lease_expires <= %(now)s
    ORDER BY id
    FOR UPDATE SKIP LOCKED
)
"""  # noqa: S608 - state numbers from states.py only

# The routes that have a pending head, one index probe each (a loose index scan), so
# a claim reads a handful of routes and the first heads of each, never the backlog.
_HEAD_ROUTES: Final = f"""
WITH RECURSIVE head_routes AS (
    (SELECT route FROM alertwire_events WHERE head AND state = {SQL_PENDING} ORDER BY route LIMIT 1)
    UNION ALL
    SELECT (SELECT e.route FROM alertwire_events e
            WHERE e.head AND e.state = {SQL_PENDING} AND e.route > h.route
            ORDER BY e.route LIMIT 1)
    FROM head_routes h WHERE h.route IS NOT NULL
), open_routes AS (
    SELECT h.route FROM head_routes h
    WHERE h.route IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM alertwire_routes r
          WHERE r.route = h.route AND r.next_allowed > %(now)s
      )
)
"""  # noqa: S608 - state numbers from states.py only

# A pending head may go unless a row of its key is in flight (the unique index's key).
_HEAD_FILTER: Final = f"""
    e.head AND e.state = {SQL_PENDING} AND e.route = o.route AND e.not_before <= %(now)s
    AND NOT EXISTS (
        SELECT 1 FROM alertwire_events f WHERE f.order_key = e.order_key AND f.state = {SQL_LEASED}
    )
"""  # noqa: S608 - state numbers from states.py only

_RETURNING: Final = """
RETURNING id, kind, route, order_key, credential, body, base_url, dedup_key,
          created_at, age_from, attempts
"""

# Constant fragments joined at import; every value is a bound parameter. Each open
# route offers its first `per_route` due heads (index reads, no locks); the oldest of
# them are then locked with SKIP LOCKED up to `limit` (another relay's are passed
# over, not waited for; only the rows leased are ever locked).
_CANDIDATES: Final = f"""
    SELECT c.id FROM open_routes o
    CROSS JOIN LATERAL (
        SELECT e.id FROM alertwire_events e
        WHERE {_HEAD_FILTER}
        -- route is fixed: (route, id) is id order, and only the heads index gives it
        ORDER BY e.route, e.id
        LIMIT %(per_route)s
    ) c
"""  # noqa: S608 - state numbers from states.py only

_LOCK_CANDIDATES: Final = f"""
    SELECT e.id, e.route FROM alertwire_events e
    WHERE e.id IN ({_CANDIDATES})
      AND e.head AND e.state = {SQL_PENDING} AND e.not_before <= %(now)s
    ORDER BY e.id
    LIMIT %(limit)s
    FOR UPDATE OF e SKIP LOCKED
"""  # noqa: S608 - state numbers from states.py only

_CLAIM: Final = f"""
{_HEAD_ROUTES}, picked AS ({_LOCK_CANDIDATES})
UPDATE alertwire_events
SET state = {SQL_LEASED}, lease_owner = %(owner)s, lease_expires = %(lease_until)s,
    attempts = attempts + 1
WHERE id IN (SELECT id FROM picked)
{_RETURNING}
"""  # noqa: S608 - state numbers from states.py only

# The common case first (pacing off): the oldest `window` heads, whatever their route,
# filtered and locked. Only when that window does not yield `limit` rows (its heads are
# paused, blocked, not due or locked by other relays) does the claim walk the routes,
# so a 429-paused route at the front of a large backlog is never scanned through.
_CLAIM_OLDEST: Final = f"""
WITH picked AS (
    SELECT e.id FROM alertwire_events e
    WHERE e.id IN (
        SELECT w.id FROM alertwire_events w
        WHERE w.head AND w.state = {SQL_PENDING} ORDER BY w.id LIMIT %(window)s
    )
      AND e.head AND e.state = {SQL_PENDING} AND e.not_before <= %(now)s
      AND NOT EXISTS (
          SELECT 1 FROM alertwire_events f WHERE f.order_key = e.order_key AND f.state = {SQL_LEASED}
      )
      AND NOT EXISTS (
          SELECT 1 FROM alertwire_routes r
          WHERE r.route = e.route AND r.next_allowed > %(now)s
      )
    ORDER BY e.id
    LIMIT %(limit)s
    FOR UPDATE OF e SKIP LOCKED
)
UPDATE alertwire_events
SET state = {SQL_LEASED}, lease_owner = %(owner)s, lease_expires = %(lease_until)s,
    attempts = attempts + 1
WHERE id IN (SELECT id FROM picked)
{_RETURNING}
"""  # noqa: S608 - state numbers from states.py only

# Paced: the first head of each open route (up to limit), ask each route's row for
# permission (route order), and lease only the rows whose route agreed.
_CLAIM_PACED: Final = f"""
{_HEAD_ROUTES}, firsts AS ({_LOCK_CANDIDATES}), granted AS (
    INSERT INTO alertwire_routes AS r (route, next_allowed)
    SELECT route, %(next_allowed)s FROM firsts ORDER BY route
    ON CONFLICT (route) DO UPDATE SET next_allowed = excluded.next_allowed
    WHERE r.next_allowed <= %(now)s
    RETURNING r.route
)
UPDATE alertwire_events
SET state = {SQL_LEASED}, lease_owner = %(owner)s, lease_expires = %(lease_until)s,
    attempts = attempts + 1
WHERE id IN (SELECT f.id FROM firsts f JOIN granted g ON g.route = f.route)
{_RETURNING}
"""  # noqa: S608 - state numbers from states.py only

_PAUSE: Final = """
INSERT INTO alertwire_routes AS r (route, next_allowed) VALUES (%(route)s, %(next_allowed)s)
ON CONFLICT (route) DO UPDATE SET next_allowed = greatest(r.next_allowed, excluded.next_allowed)
"""

# The earliest of: each route's first head not blocked by a key in flight (not before
# the route's next_allowed; paused routes included), and the end of any lease (a blocked
# head waits for it; an expired one is rescued by the next claim).
_NEXT_DUE: Final = f"""
WITH RECURSIVE head_routes AS (
    (SELECT route FROM alertwire_events WHERE head AND state = {SQL_PENDING} ORDER BY route LIMIT 1)
    UNION ALL
    SELECT (SELECT e.route FROM alertwire_events e
            WHERE e.head AND e.state = {SQL_PENDING} AND e.route > h.route
            ORDER BY e.route LIMIT 1)
    FROM head_routes h WHERE h.route IS NOT NULL
)
SELECT least(
    (SELECT min(greatest(d.not_before, coalesce(r.next_allowed, 0)))
     FROM head_routes h
     CROSS JOIN LATERAL (
         SELECT e.not_before FROM alertwire_events e
         WHERE e.head AND e.state = {SQL_PENDING} AND e.route = h.route
           AND NOT EXISTS (
               SELECT 1 FROM alertwire_events f WHERE f.order_key = e.order_key AND f.state = {SQL_LEASED}
           )
         ORDER BY e.route, e.not_before
         LIMIT 1
     ) d
     LEFT JOIN alertwire_routes r ON r.route = h.route
     WHERE h.route IS NOT NULL),
    (SELECT min(lease_expires) FROM alertwire_events WHERE state = {SQL_LEASED})
)
"""  # noqa: S608 - state numbers from states.py only

# Rows per state; LEASED from the in-flight index, PENDING = open - LEASED (one snapshot).
_COUNTS: Final = f"""
SELECT c.state, sum(c.n),
       (SELECT count(*) FROM alertwire_events WHERE state = {SQL_LEASED}) AS leased
FROM alertwire_counts c GROUP BY c.state
"""  # noqa: S608 - state numbers from states.py only
_OLDEST_OPEN: Final = f"SELECT min(created_at) FROM alertwire_events WHERE state IN ({SQL_ACTIVE})"  # noqa: S608 - state numbers from states.py only

_INSERT: Final = f"""
INSERT INTO alertwire_events (state, kind, route, order_key, dedup_key, base_url,
                              credential, body, created_at, age_from, not_before)
VALUES ({SQL_PENDING}, %(kind)s, %(route)s, %(order_key)s, %(dedup_key)s, %(base_url)s,
        %(credential)s, %(body)s, %(now)s, %(now)s, %(now)s)
RETURNING id
"""  # noqa: S608 - state numbers from states.py only

# Every outcome is owner-checked: a relay whose lease was rescued writes nothing.
_DELIVER: Final = f"""
UPDATE alertwire_events SET state = %(state)s, finished_at = %(at)s, http_status = %(status)s,
       lease_owner = NULL, lease_expires = NULL, last_error = NULL, error_body = NULL
WHERE id = %(id)s AND state = {SQL_LEASED} AND lease_owner = %(owner)s
RETURNING route
"""  # noqa: S608 - state numbers from states.py only

_RESCHEDULE: Final = f"""
UPDATE alertwire_events SET state = %(state)s, not_before = %(not_before)s,
       last_error = %(error)s, http_status = %(status)s,
       lease_owner = NULL, lease_expires = NULL
WHERE id = %(id)s AND state = {SQL_LEASED} AND lease_owner = %(owner)s
RETURNING route
"""  # noqa: S608 - state numbers from states.py only

_BURY: Final = f"""
UPDATE alertwire_events SET state = %(state)s, finished_at = %(at)s, last_error = %(error)s,
       http_status = %(status)s, error_body = %(body)s, lease_owner = NULL, lease_expires = NULL,
       attempts = attempts - %(unsent)s
WHERE id = %(id)s AND state = {SQL_LEASED} AND lease_owner = %(owner)s
RETURNING route
"""  # noqa: S608 - state numbers from states.py only


def redact_url(url: str) -> str:
    """The URL with any password removed (userinfo and ``password=`` parameters).

    Written without parsing libpq's full grammar on purpose: whatever the URL
    looks like, the text between ``user:`` and ``@`` and every ``password=``
    value go, so a malformed URL cannot smuggle its password into a message.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "postgresql://?"
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        userinfo, _, hosts = authority.rpartition("@")
        user = userinfo.split(":", 1)[0]
        authority = f"{user}:***@{hosts}" if ":" in userinfo else f"{user}@{hosts}"
    path, qmark, query = tail.partition("?")
    if qmark:
        parts = [
            "password=***" if p.lower().startswith("password=") else p for p in query.split("&")
        ]
        query = "&".join(parts)
    return f"{scheme}://{authority}{slash}{path}{qmark}{query}"


def _lock_key(order_key: str) -> int:
    """A stable int4 per order key, for ``pg_advisory_xact_lock(class, key)``."""
    return int.from_bytes(hashlib.sha256(order_key.encode()).digest()[:4], "big", signed=True)


def _claimed(r: Sequence[Any]) -> Claimed:
    return Claimed(
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


class _CommitUnknown(OutboxError):
    """A passing failure during COMMIT: the server may or may not have applied it."""


class PostgresStore:
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
        self._password = str(params.get("password") or "")
        self._url = url
        self._pool_max_size = pool_max_size
        self._pool: Any = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    # ------------------------------------------------------------ connections

    def _scrub(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

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

    def _get_pool(self) -> Any:
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
            conn.execute("SELECT pg_advisory_xact_lock(%(c)s, 0)", {"c": _LOCK_CLASS})
            conn.execute("CREATE TABLE IF NOT EXISTS alertwire_schema (version integer NOT NULL)")
            row = conn.execute("SELECT max(version) FROM alertwire_schema").fetchone()
            version = 0 if row is None or row[0] is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise OutboxError(
                    f"the outbox {self.location} has schema version {version}, newer than"
                    f" this alertwire understands ({SCHEMA_VERSION}): upgrade alertwire"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
                conn.execute("INSERT INTO alertwire_schema (version) VALUES (%(v)s)", {"v": step})
                logger.info("event=outbox_migrated outbox=%s version=%d", self.location, step)
        return SCHEMA_VERSION

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
        with self._lock:
            pool, self._pool = self._pool, None
            self._closed = True
        if pool is not None:
            pool.close()

    # ------------------------------------------------------------ operations

    def enqueue_many(self, events: Sequence[NewEvent], *, now: float) -> list[int]:
        if not events:
            return []
        what = "store the event" if len(events) == 1 else f"store {len(events)} events"
        try:
            with self._tx(what) as conn, conn.cursor() as cur:
                for key in sorted({_lock_key(e.order_key) for e in events}):
                    cur.execute(
                        "SELECT pg_advisory_xact_lock(%(c)s, %(k)s)", {"c": _LOCK_CLASS, "k": key}
                    )
                cur.executemany(
                    _INSERT,
                    [
                        {
                            "kind": e.kind,
                            "route": e.route,
                            "order_key": e.order_key,
                            "dedup_key": e.dedup_key,
                            "base_url": e.base_url,
                            "credential": e.credential.reveal(),
                            "body": e.body,
                            "now": now,
                        }
                        for e in events
                    ],
                    returning=True,
                )
                ids: list[int] = []
                while True:
                    row = cur.fetchone()
                    assert row is not None
                    ids.append(int(row[0]))
                    if not cur.nextset():
                        break
        except _CommitUnknown as exc:
            raise OutboxError(
                f"{exc}; the connection was lost while committing, so it may or may not be"
                " queued (queuing it again may deliver it twice)",
                retryable=True,
            ) from None
        except OutboxError as exc:
            raise OutboxError(f"{exc}; NOT queued", retryable=exc.retryable) from None
        except Exception as exc:  # noqa: BLE001 - never let a failed enqueue look like success
            raise OutboxError(
                f"cannot {what} in the outbox {self.location}: {self._explain(exc)}; NOT queued",
                retryable=self._passing(exc),
            ) from None
        return ids

    @staticmethod
    def _claim_in(
        conn: Any, *, owner: str, now: float, lease_until: float, limit: int, pace_interval: float
    ) -> list[Claimed]:
        params: dict[str, Any] = {
            "owner": owner,
            "now": now,
            "lease_until": lease_until,
            "limit": limit,
            "per_route": limit,
        }
        if pace_interval > 0:
            sql = _CLAIM_PACED
            params["per_route"] = 1
            params["next_allowed"] = now + pace_interval
        else:
            sql = _CLAIM
        conn.execute(_RESCUE, {"now": now})
        claimed: list[Claimed] = []
        if pace_interval <= 0:
            params["window"] = max(limit * 4, 64)
            claimed = [_claimed(r) for r in conn.execute(_CLAIM_OLDEST, params).fetchall()]
            params["limit"] = params["per_route"] = limit - len(claimed)
        if params["limit"] > 0:
            claimed += [_claimed(r) for r in conn.execute(sql, params).fetchall()]
        claimed.sort(key=lambda c: c.id)
        return claimed

    @staticmethod
    def _lock_keys_of(conn: Any, ids: Sequence[int] | None) -> None:
        """Take the advisory locks of these rows' keys (``None``: every dead row) in
        key order, before the trigger would take them one by one in row order: an
        enqueue takes them in key order too, so the two can never deadlock."""
        if ids is not None and not ids:
            return
        where = "state = %(dead)s" if ids is None else "id = ANY(%(ids)s)"
        keys = sorted(
            int(r[0])
            for r in conn.execute(
                "SELECT DISTINCT alertwire_lock_key(order_key) FROM alertwire_events"  # noqa: S608 - state numbers from states.py only
                f" WHERE {where}",
                {"ids": list(ids or ()), "dead": int(State.DEAD)},
            )
        )
        if keys:
            conn.execute(
                "SELECT count(pg_advisory_xact_lock(%(c)s, k))"
                " FROM unnest(%(keys)s::integer[]) AS k",
                {"c": _LOCK_CLASS, "keys": keys},
            )

    @classmethod
    def _settle_in(cls, conn: Any, outcomes: Sequence[Outcome], owner: str) -> list[bool]:
        # Delivered and dead rows hand their key's head on (the trigger, under the lock).
        cls._lock_keys_of(conn, [o.id for o in outcomes if not isinstance(o, Reschedule)])
        applied: list[bool] = []
        pauses: dict[str, float] = {}
        for o in outcomes:
            values: dict[str, Any]
            if isinstance(o, Delivered):
                sql, values = _DELIVER, {"state": int(State.DELIVERED), "at": o.at}
                values["status"] = o.http_status
            elif isinstance(o, Reschedule):
                sql, values = _RESCHEDULE, {"state": int(State.PENDING)}
                values.update(not_before=o.not_before, error=o.error, status=o.http_status)
            elif isinstance(o, MarkDead):
                sql, values = _BURY, {"state": int(State.DEAD), "at": o.at}
                values.update(error=o.error, status=o.http_status, body=o.body, unsent=o.unsent)
            else:  # pragma: no cover - the Outcome union is closed
                raise TypeError(f"unknown outcome {type(o).__name__}")
            values.update(id=o.id, owner=owner)
            row = conn.execute(sql, values).fetchone()
            applied.append(row is not None)
            paused = isinstance(o, Reschedule) and o.pause_route_until is not None
            if row is not None and paused:
                route = str(row[0])
                until = cast(Reschedule, o).pause_route_until or 0.0
                pauses[route] = max(pauses.get(route, 0.0), until)
        # Route rows last and in order: no lock cycle with a concurrent claim.
        for route in sorted(pauses):
            conn.execute(_PAUSE, {"route": route, "next_allowed": pauses[route]})
        return applied

    def claim(
        self, *, owner: str, now: float, lease_until: float, limit: int, pace_interval: float
    ) -> list[Claimed]:
        def attempt() -> list[Claimed]:
            with self._tx("claim events") as conn:
                return self._claim_in(
                    conn,
                    owner=owner,
                    now=now,
                    lease_until=lease_until,
                    limit=limit,
                    pace_interval=pace_interval,
                )

        return self._raced("claim events", attempt, lost=list)

    def settle(self, outcomes: Sequence[Outcome], *, owner: str) -> list[bool]:
        def attempt() -> list[bool]:
            with self._tx("record delivery outcomes") as conn:
                return self._settle_in(conn, outcomes, owner)

        return self._raced("record delivery outcomes", attempt)

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
        """:meth:`settle` then :meth:`claim` in ONE transaction: one commit per relay cycle.

        A lost race in the claim (unique index, deadlock victim) rolls back the
        outcomes too, and the whole cycle is tried again: outcomes are
        owner-checked, so applying them a second time is the same as once.
        """

        def attempt() -> tuple[list[bool], list[Claimed]]:
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

        def settle_only() -> tuple[list[bool], list[Claimed]]:
            return self.settle(outcomes, owner=owner), []

        return self._raced("record outcomes and claim events", attempt, lost=settle_only)

    def _read(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        with self._tx("read") as conn:
            return list(conn.execute(sql, params or {}).fetchall())

    def next_due(self, *, now: float) -> float | None:
        row = self._read(_NEXT_DUE)
        return None if not row or row[0][0] is None else float(row[0][0])

    def stats(self) -> QueueStats:
        counts = dict.fromkeys(State, 0)
        with self._tx("read") as conn:
            # Counters kept by the trigger, and a partial index's minimum: no counting.
            for state, count, leased in conn.execute(_COUNTS):
                counts[State(state)] = int(count)
                counts[State.LEASED] = int(leased)
            counts[State.PENDING] -= counts[State.LEASED]
            oldest = conn.execute(_OLDEST_OPEN).fetchone()
        return QueueStats(
            pending=counts[State.PENDING],
            leased=counts[State.LEASED],
            delivered=counts[State.DELIVERED],
            dead=counts[State.DEAD],
            oldest_pending_at=to_datetime(None if oldest is None else oldest[0]),
        )

    def open_counts(self, *, per_route: bool) -> tuple[int, dict[str, int]]:
        # The trigger counts PENDING and LEASED together, as "open", under state 0.
        with self._tx("read") as conn:
            row = conn.execute(
                f"SELECT coalesce(sum(n), 0) FROM alertwire_counts WHERE state = {SQL_PENDING}"  # noqa: S608 - state numbers from states.py only
            ).fetchone()
            total = int(row[0]) if row is not None else 0
            if not per_route or total == 0:
                return total, {}
            routes = conn.execute(
                f"SELECT route, count(*) FROM alertwire_events WHERE state IN ({SQL_ACTIVE}) GROUP BY route"  # noqa: S608 - state numbers from states.py only
            ).fetchall()
        return total, {route: int(n) for route, n in routes}

    def list_dead(self, *, limit: int | None = None) -> list[DeadEvent]:
        rows = self._read(
            "SELECT id, kind, dedup_key, created_at, finished_at, attempts, last_error,"
            " http_status FROM alertwire_events WHERE state = %(state)s ORDER BY id"
            " LIMIT %(limit)s",
            {"state": int(State.DEAD), "limit": limit},
        )
        return [DeadEvent.from_row(r) for r in rows]

    def retry_dead(self, ids: Sequence[int] | None, *, now: float) -> int:
        sql = (
            "UPDATE alertwire_events SET state = %(pending)s, attempts = 0, not_before = %(now)s,"
            " age_from = %(now)s, finished_at = NULL WHERE state = %(dead)s"
        )
        params: dict[str, Any] = {
            "pending": int(State.PENDING),
            "dead": int(State.DEAD),
            "now": now,
        }
        if ids is not None:
            sql += " AND id = ANY(%(ids)s)"
            params["ids"] = list(ids)
        with self._tx("retry dead events") as conn:
            self._lock_keys_of(conn, ids)
            return int(conn.execute(sql, params).rowcount)

    def purge_delivered(self, *, before: float) -> int:
        with self._tx("purge delivered events") as conn:
            cur = conn.execute(
                "DELETE FROM alertwire_events WHERE state = %(state)s AND finished_at < %(before)s",
                {"state": int(State.DELIVERED), "before": before},
            )
            return int(cur.rowcount)
