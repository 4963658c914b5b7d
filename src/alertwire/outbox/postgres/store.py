"""The PostgreSQL store: one outbox shared by relays on several hosts. Queries and operations.

Connections, transactions and error words are :mod:`._connection`; the tables
and the trigger are :mod:`._schema`; every state number comes from
:mod:`alertwire.outbox.states`.

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

import logging
from collections.abc import Sequence
from typing import Any, Final

from ..._errors import OutboxError
from .. import machine
from ..machine import (
    UNSENT,
    Delivered,
    MarkDead,
    Outcome,
    Release,
    Reschedule,
    outcome_groups,
)
from ..states import SQL_ACTIVE, SQL_LEASED, SQL_PENDING, State
from ._connection import POOL_MAX_SIZE, OutboxSettingError, PostgresConnections, _CommitUnknown
from ._schema import LOCK_CLASS, lock_key
from ._statistics import BULK_EVENTS, OPEN_ROWS, StatisticsWatch

__all__ = ["PostgresStore"]

logger = logging.getLogger("alertwire.outbox")

#: The superseded dead letters' ids (machine.superseded_dead_sql): read by ``queue dead``,
#: skipped by ``queue retry`` unless asked for.
_SUPERSEDED: Final = machine.superseded_dead_sql("alertwire_events")

_LEASED = int(State.LEASED)

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
# The claim and next_due both start from it.
_WITH_HEAD_ROUTES: Final = f"""WITH RECURSIVE head_routes AS (
    (SELECT route FROM alertwire_events WHERE head AND state = {SQL_PENDING} ORDER BY route LIMIT 1)
    UNION ALL
    SELECT (SELECT e.route FROM alertwire_events e
            WHERE e.head AND e.state = {SQL_PENDING} AND e.route > h.route
            ORDER BY e.route LIMIT 1)
    FROM head_routes h WHERE h.route IS NOT NULL
)"""  # noqa: S608 - state numbers from states.py only

_HEAD_ROUTES: Final = f"""
{_WITH_HEAD_ROUTES}, open_routes AS (
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

# Every claim ends the same way: lease the rows it picked, count the try, return them.
_LEASE: Final = f"""UPDATE alertwire_events
SET state = {SQL_LEASED}, lease_owner = %(owner)s, lease_expires = %(lease_until)s,
    attempts = attempts + 1"""  # noqa: S608 - state numbers from states.py only

_LEASE_PICKED: Final = f"""{_LEASE}
WHERE id IN (SELECT id FROM picked)
{_RETURNING}"""  # noqa: S608 - state numbers from states.py only

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
{_LEASE_PICKED}
"""

# The common case first (pacing off): the oldest `window` heads, whatever their route,
# filtered and locked. Only when that window does not yield `limit` rows (its heads are
# paused, blocked, not due or locked by other relays) does the claim walk the routes,
# so a 429-paused route at the front of a large backlog is never scanned through.
_CLAIM_OLDEST: Final = f"""
WITH picked AS (
    SELECT e.id FROM alertwire_events e
    -- An array, not "IN (subquery)": the window's ids are read first and each row then
    -- by its key. With IN, the planner read every due head of the heads_due index and
    -- sorted them to meet the window (0.28 s a claim at 100,000 pending).
    WHERE e.id = ANY (ARRAY(
        SELECT w.id FROM alertwire_events w
        WHERE w.head AND w.state = {SQL_PENDING} ORDER BY w.id LIMIT %(window)s
    ))
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
{_LEASE_PICKED}
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
{_LEASE}
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
{_WITH_HEAD_ROUTES}
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

# The row arrives flagged if it is its key's head (no active row of its key yet: the
# enqueue holds the key's advisory lock, so none can commit meanwhile), so the trigger
# has nothing to write back: one version of the row, not two (schema version 3).
_INSERT: Final = f"""
INSERT INTO alertwire_events (state, kind, route, order_key, dedup_key, base_url,
                              credential, body, created_at, age_from, not_before, head)
VALUES ({SQL_PENDING}, %(kind)s, %(route)s, %(order_key)s, %(dedup_key)s, %(base_url)s,
        %(credential)s, %(body)s, %(now)s, %(now)s, %(now)s,
        NOT EXISTS (SELECT 1 FROM alertwire_events x
                    WHERE x.order_key = %(order_key)s AND x.state IN ({SQL_ACTIVE})))
RETURNING id
"""  # noqa: S608 - state numbers from states.py only

# Every outcome is owner-checked: a relay whose lease was rescued writes nothing.
# One statement per group of outcomes (a kind, and whether they take tries back),
# whatever the batch's size: each parameter of
# outcome_params arrives as an array (one element per outcome) and unnest joins them
# back into rows by id. A relay cycle settles up to its concurrency at once; one
# statement each was one round trip each.
_OUTCOME_COLUMNS: Final[dict[str, str]] = {
    "id": "bigint",
    "state": "smallint",
    "at": "double precision",
    "not_before": "double precision",
    "status": "integer",
    "error": "text",
    "body": "text",
    "unsent": "integer",
}


def _settle_many(assignments: str, names: tuple[str, ...]) -> str:
    """The batched statement that records a group of ``outcome_groups`` binding ``names``
    (with ``unsent`` among them, it takes that many tries back)."""
    if UNSENT in names:
        assignments += ", attempts = greatest(e.attempts - v.unsent, 0)"  # never below 0
    arrays = ", ".join(f"%({n})s::{_OUTCOME_COLUMNS[n]}[]" for n in names)
    return f"""
UPDATE alertwire_events e SET {assignments}, lease_owner = NULL, lease_expires = NULL
FROM unnest({arrays}) AS v ({", ".join(names)})
WHERE e.id = v.id AND e.state = {SQL_LEASED} AND e.lease_owner = %(owner)s
RETURNING e.id, e.route
"""  # noqa: S608 - constant fragments only; every value is a bound parameter


#: Per kind of outcome, what its statement sets. A delivered or dead row is no longer its
#: key's head: its flag is cleared in the same write, so the trigger (which hands the
#: head on) has no second version to write.
_ASSIGNMENTS: Final[dict[type[Outcome], str]] = {
    Delivered: (
        "state = v.state, finished_at = v.at, http_status = v.status,"
        " last_error = NULL, error_body = NULL, head = false"
    ),
    Reschedule: (
        "state = v.state, not_before = v.not_before, last_error = v.error, http_status = v.status"
    ),
    MarkDead: (
        "state = v.state, finished_at = v.at, last_error = v.error, http_status = v.status,"
        " error_body = v.body, head = false"
    ),
    Release: "state = v.state",
}


#: The statements made so far, by kind and names (a handful: see :func:`_settle`).
_SETTLES: Final[dict[tuple[type[Outcome], tuple[str, ...]], str]] = {}


def _settle(kind: type[Outcome], names: tuple[str, ...]) -> str:
    """The statement of a group (``outcome_groups``): a kind's usual names, or with the
    tries to take back (``unsent``) added for a rare group of deliveries or retries."""
    sql = _SETTLES.get((kind, names))
    if sql is None:
        sql = _SETTLES[kind, names] = _settle_many(_ASSIGNMENTS[kind], names)
    return sql


class PostgresStore(PostgresConnections):
    """An outbox in a PostgreSQL database, shared by any number of relays and producers.

    Connections come from a ``psycopg_pool.ConnectionPool`` opened on the
    first operation (so an unreachable server fails that operation with
    :class:`~alertwire.OutboxError`, like an unusable SQLite file).
    Thread-safe: each operation borrows a connection for one transaction.

    A relay's first claim, then one every few seconds, and a producer's batch of
    a thousand events or more, compare the planner's estimate of the open rows
    with the trigger's exact count, and run ``ANALYZE`` when the estimate is
    less than half of it: a table filled faster than autovacuum looks at it is
    otherwise claimed from with plans that read the whole backlog
    (:mod:`._statistics` says why, what it costs and what was measured).
    """

    def __init__(self, url: str, *, pool_max_size: int = POOL_MAX_SIZE) -> None:
        super().__init__(url, pool_max_size=pool_max_size)
        self._statistics = StatisticsWatch()

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    def _keep_statistics(self) -> None:
        """Look at the statistics (and analyze if stale): never raises, since the
        caller's own work (a claim, or a batch already committed) does not depend on
        it. A passing failure is the caller's to meet and report; any other is said."""
        try:
            with self._tx("refresh the statistics") as conn:
                self._statistics.keep_up(conn)
        except Exception as exc:  # noqa: BLE001 - best effort, see the docstring
            passing = exc.retryable if isinstance(exc, OutboxError) else False
            logger.log(
                logging.DEBUG if passing else logging.WARNING,
                "event=outbox_analyze_failed error=%s",
                exc if isinstance(exc, OutboxError) else type(exc).__name__,
            )

    def check_writable(self) -> None:
        """The health probe: a read of the queue statistics (a server that answers
        takes writes unless its disk is full, and a failed commit is reported by
        the ingest endpoint until the next one succeeds); raises OutboxError."""
        self.stats()

    def is_passing(self, exc: OutboxError) -> bool:
        """``retryable`` says it all: every failure is mapped with the passing rule of
        its SQLSTATE or connection error (``_passing``) and raised without a cause."""
        return exc.retryable

    def explain(self, exc: BaseException) -> str:
        """By kind only (:func:`~..machine.public_reason`): the server's words may name
        the host or the database, which a client of the ingest endpoint is not told."""
        return machine.public_reason(exc)

    # ------------------------------------------------------------ operations

    def enqueue_many(self, events: Sequence[machine.NewEvent], *, now: float) -> list[int]:
        if not events:
            return []
        what = "store the event" if len(events) == 1 else f"store {len(events)} events"
        try:
            with self._tx(what) as conn, conn.cursor() as cur:
                for key in sorted({lock_key(e.order_key) for e in events}):
                    cur.execute(
                        "SELECT pg_advisory_xact_lock(%(c)s, %(k)s)", {"c": LOCK_CLASS, "k": key}
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
        except OutboxSettingError as exc:
            raise OutboxSettingError(f"{exc}; NOT queued") from None  # still a setting error
        except OutboxError as exc:
            raise OutboxError(f"{exc}; NOT queued", retryable=exc.retryable) from None
        except Exception as exc:  # noqa: BLE001 - never let a failed enqueue look like success
            raise OutboxError(
                f"cannot {what} in the outbox {self.location}: {self._explain(exc)}; NOT queued",
                retryable=self._passing(exc),
            ) from None
        if len(events) >= BULK_EVENTS:
            self._keep_statistics()
        return ids

    @staticmethod
    def _claim_in(conn: Any, terms: machine.ClaimTerms) -> list[machine.Claimed]:
        params: dict[str, Any] = {
            "owner": terms.owner,
            "now": terms.now,
            "lease_until": terms.lease_until,
            "limit": terms.limit,
            "per_route": terms.limit,
        }
        if terms.paced:
            sql = _CLAIM_PACED
            params["per_route"] = 1
            params["next_allowed"] = terms.next_allowed
        else:
            sql = _CLAIM
        conn.execute(_RESCUE, {"now": terms.now})
        claimed: list[machine.Claimed] = []
        if not terms.paced:
            params["window"] = terms.window
            claimed = [
                machine.Claimed.from_row(r) for r in conn.execute(_CLAIM_OLDEST, params).fetchall()
            ]
            params["limit"] = params["per_route"] = terms.limit - len(claimed)
        if params["limit"] > 0:
            claimed += [machine.Claimed.from_row(r) for r in conn.execute(sql, params).fetchall()]
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
                {"c": LOCK_CLASS, "keys": keys},
            )

    @classmethod
    def _settle_in(
        cls,
        conn: Any,
        outcomes: Sequence[Outcome],
        owner: str,
        reclaims: machine.Reclaims,
    ) -> list[bool]:
        # Delivered and dead rows hand their key's head on (the trigger, under the lock);
        # a reschedule or a release stays active, so its key's head stays where it is.
        cls._lock_keys_of(conn, [o.id for o in outcomes if isinstance(o, Delivered | MarkDead)])
        routes: dict[int, str] = {}  # id -> route of every outcome applied
        for kind, names, batch in outcome_groups(outcomes, owner, reclaims):
            arrays: dict[str, Any] = {n: [v[n] for v in batch] for n in names}
            arrays["owner"] = owner
            sql = _settle(kind, names)
            routes.update((int(i), str(r)) for i, r in conn.execute(sql, arrays).fetchall())
        pauses: dict[str, float] = {}
        for o in outcomes:
            if isinstance(o, Reschedule) and o.pause_route_until is not None and o.id in routes:
                route = routes[o.id]
                pauses[route] = max(pauses.get(route, 0.0), o.pause_route_until)
        # Route rows last and in order: no lock cycle with a concurrent claim.
        for route in sorted(pauses):
            conn.execute(_PAUSE, {"route": route, "next_allowed": pauses[route]})
        return [o.id in routes for o in outcomes]

    def claim(self, terms: machine.ClaimTerms) -> list[machine.Claimed]:
        if self._statistics.take_look(terms.now):
            self._keep_statistics()

        def attempt() -> list[machine.Claimed]:
            with self._tx("claim events") as conn:
                return self._claim_in(conn, terms)

        return self._raced("claim events", attempt, lost=list)

    def settle(
        self, outcomes: Sequence[machine.Outcome], *, owner: str, reclaims: machine.Reclaims = None
    ) -> list[bool]:
        def attempt() -> list[bool]:
            with self._tx("record delivery outcomes") as conn:
                return self._settle_in(conn, outcomes, owner, reclaims)

        return self._raced("record delivery outcomes", attempt)

    def settle_and_claim(
        self,
        outcomes: Sequence[machine.Outcome],
        terms: machine.ClaimTerms,
        *,
        reclaims: machine.Reclaims = None,
    ) -> tuple[list[bool], list[machine.Claimed]]:
        """:meth:`settle` then :meth:`claim` in ONE transaction: one commit per relay cycle.

        A lost race in the claim (unique index, deadlock victim) rolls back the
        outcomes too, and the whole cycle is tried again: outcomes are
        owner-checked, so applying them a second time is the same as once.
        """
        if self._statistics.take_look(terms.now):
            self._keep_statistics()

        def attempt() -> tuple[list[bool], list[machine.Claimed]]:
            with self._tx("record outcomes and claim events") as conn:
                applied = self._settle_in(conn, outcomes, terms.owner, reclaims)
                return applied, self._claim_in(conn, terms)

        def settle_only() -> tuple[list[bool], list[machine.Claimed]]:
            return self.settle(outcomes, owner=terms.owner, reclaims=reclaims), []

        return self._raced("record outcomes and claim events", attempt, lost=settle_only)

    def _read(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        with self._tx("read") as conn:
            return list(conn.execute(sql, params or {}).fetchall())

    def next_due(self, *, now: float) -> float | None:
        row = self._read(_NEXT_DUE)
        return None if not row or row[0][0] is None else float(row[0][0])

    def stats(self) -> machine.QueueStats:
        counts = dict.fromkeys(State, 0)
        with self._tx("read") as conn:
            # Counters kept by the trigger, and a partial index's minimum: no counting.
            for state, count, leased in conn.execute(_COUNTS):
                counts[State(state)] = int(count)
                counts[State.LEASED] = int(leased)
            counts[State.PENDING] -= counts[State.LEASED]
            oldest = conn.execute(_OLDEST_OPEN).fetchone()
        return machine.QueueStats.from_counts(counts, None if oldest is None else oldest[0])

    def open_counts(self, *, per_route: bool) -> tuple[int, dict[str, int]]:
        # The trigger counts PENDING and LEASED together, as "open", under state 0.
        with self._tx("read") as conn:
            row = conn.execute(OPEN_ROWS).fetchone()
            total = int(row[0]) if row is not None else 0
            if not per_route or total == 0:
                return total, {}
            routes = conn.execute(
                f"SELECT route, count(*) FROM alertwire_events WHERE state IN ({SQL_ACTIVE}) GROUP BY route"  # noqa: S608 - state numbers from states.py only
            ).fetchall()
        return total, {route: int(n) for route, n in routes}

    def list_dead(self, *, limit: int | None = None) -> list[machine.DeadEvent]:
        rows = self._read(
            "SELECT id, kind, dedup_key, created_at, finished_at, attempts, last_error,"  # noqa: S608 - a query from machine.py, no input
            f" http_status, id IN ({_SUPERSEDED}) FROM alertwire_events WHERE state = %(state)s"
            " ORDER BY id LIMIT %(limit)s",
            {"state": int(State.DEAD), "limit": limit},
        )
        return [machine.DeadEvent.from_row(r) for r in rows]

    def retry_dead(self, ids: Sequence[int] | None, *, now: float, superseded: bool = False) -> int:
        sql = (
            "UPDATE alertwire_events SET state = %(pending)s, attempts = 0, not_before = %(now)s,"
            " age_from = %(now)s, finished_at = NULL WHERE state = %(dead)s"
        )
        if not superseded:
            sql += f" AND id NOT IN ({_SUPERSEDED})"
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
