"""The SQLite store: the embedded default outbox. Its queries and operations.

What the file is and how it is opened (durability, locks, permissions,
errors) is :mod:`._connection`; the tables, indexes and triggers are
:mod:`._schema`. Every state number comes from :mod:`alertwire.outbox.states`.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..._errors import OutboxError
from .. import machine
from ..states import SQL_LEASED, SQL_PENDING, State
from ._connection import SQLiteConnections, _explain

__all__ = ["SQLiteStore"]

logger = logging.getLogger("alertwire.outbox")

#: The superseded dead letters' ids (machine.superseded_dead_sql): read by ``queue dead``,
#: skipped by ``queue retry`` unless asked for.
_SUPERSEDED: Final = machine.superseded_dead_sql("events")

# The routes that have a pending head, one index probe each (a skip scan).
_NEXT_ROUTE: Final = f"""
SELECT min(route) FROM events INDEXED BY events_heads
WHERE head = 1 AND state = {SQL_PENDING} AND route > :after
"""  # noqa: S608 - state numbers from states.py only

# A pending head may go unless a later row of its key is in flight under a live lease
# (after `queue retry` made an earlier dead row the head): never two of one key at once.
# Such a row is never its key's head (``e`` is), so it is found among the leased rows
# that are not heads (``head = 0``, the index's condition; _schema version 4 says why).
_NOT_BLOCKED: Final = f"""
NOT EXISTS (
    SELECT 1 FROM events f INDEXED BY events_in_flight_behind
    WHERE f.order_key = e.order_key AND f.state = {SQL_LEASED} AND f.head = 0
      AND f.id <> e.id AND f.lease_expires > :now
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
_COUNT: Final = "UPDATE counts SET n = n + :n WHERE state = :state"


def _count(conn: sqlite3.Connection, changes: Mapping[State, int]) -> None:
    """Add each state's change in rows to ``counts``, in the caller's transaction.

    Every statement that moves or deletes rows reports here what it did (``queue
    status`` reads the counters instead of counting): one ``UPDATE`` per state a
    transaction changed, where triggers ran two per row. Inserts are counted by
    their trigger (see _schema version 3 for why)."""
    rows = [{"state": int(state), "n": n} for state, n in changes.items() if n]
    if rows:
        conn.executemany(_COUNT, rows)


# A row is open (PENDING or LEASED) exactly while it has no finished_at (_schema version 4).
_OLDEST_OPEN: Final = (
    "SELECT min(created_at) FROM events INDEXED BY events_open_since WHERE finished_at IS NULL"
)

#: Rows per ``UPDATE`` of a relay cycle (a lease, a kind of outcome): a cycle's rows
#: in one or two statements. Not more, because each statement keeps the pages it
#: changes in a statement journal held in memory (see
#: ``SQLiteConnections._journal_in_memory``): peak RSS of the relay with 100,000
#: pending was 30.9 MiB with a statement per row, 31.2 at 16 rows, 33.0 at 32 and
#: 35.8 with no bound, and 32 costs no more instructions per event than no bound.
_CYCLE_ROWS: Final = 32


@functools.lru_cache(maxsize=64)
def _lease(rows: int) -> str:
    """The claim's ``UPDATE`` of ``rows`` chosen heads (``:id``, ``:id1``, ...), returning
    each as ``Claimed.from_row`` reads it.

    One statement for the cycle's claims, not one per row: each statement on this
    table pays for its set-up, its trigger program and a hand-off of the GIL;
    leasing 32 heads one by one cost the store side about a third more
    instructions per event (docs/relay.md, "Where a relay's CPU goes"). The
    rows come back in no particular order; the claim sorts them."""
    ids = ", ".join(f":{name}" for name in _lease_ids(rows))
    return f"""
UPDATE events
SET state = {SQL_LEASED}, lease_owner = :owner, lease_expires = :lease_until, attempts = attempts + 1
WHERE id IN ({ids})
RETURNING id, kind, route, order_key, credential, body, base_url, dedup_key,
          created_at, age_from, attempts
"""  # noqa: S608 - placeholders and state numbers only


@functools.lru_cache(maxsize=64)
def _lease_ids(rows: int) -> tuple[str, ...]:
    """The parameter names of the ids in :func:`_lease` (``id``, ``id1``, ...)."""
    return ("id", *(f"id{n}" for n in range(1, rows)))


#: One head: the statement the query-plan test reads.
_LEASE: Final = _lease(1)

_PACE: Final = """
INSERT INTO routes (route, next_allowed) VALUES (:route, :next_allowed)
ON CONFLICT (route) DO UPDATE SET next_allowed = max(next_allowed, excluded.next_allowed)
"""

_PAUSE: Final = """
INSERT INTO routes (route, next_allowed)
VALUES ((SELECT route FROM events WHERE id = :id), :next_allowed)
ON CONFLICT (route) DO UPDATE SET next_allowed = max(next_allowed, excluded.next_allowed)
"""

#: Rows per INSERT statement: one statement per group, not per row, because each
#: statement on a table with triggers pays for a statement journal and the trigger
#: program's set-up (measured: 100 rows cost about half of 100 single-row
#: statements). 128 rows of 7 parameters stay under 999, the lowest variable limit
#: an SQLite build may have.
_INSERT_ROWS: Final = 128

#: Rows per INSERT in a transaction of many rows with one destination (``Outbox.put``
#: of a chunk of ``alertwire send --queue``: 10,000 lines, two such statements): one
#: statement of this many rows when the connection's variable limit allows it
#: (:func:`_bulk_rows`).
#: Each statement lets go of the GIL once, for all its rows, so a thread that
#: stores while another prepares the next rows (``send --queue`` does) waits for
#: the interpreter lock once per statement instead of once per 128 rows: with
#: 5,000-row statements that command ran about a quarter faster (docs/cli.md,
#: ``send --queue``). Only full groups take this size; the rest of a transaction
#: is written 128 rows at a time, so a connection caches one such large statement
#: (about 10 MiB, compiled), never one per batch size.
_BULK_INSERT_ROWS: Final = 5000


@functools.lru_cache(maxsize=2 * _INSERT_ROWS)
def _insert(rows: int, shared: bool = False) -> str:
    """``INSERT`` of ``rows`` new pending events, in the order given: ``?1`` is the
    enqueue time (created, age counted from, due), and each row has 7 parameters.

    ``shared``: the rows have one destination (kind, route, base URL, credential:
    what a batch to one routing key has), bound once as ``?2`` to ``?5``, and each
    row has 3 parameters, its order key, dedup key and body. Binding a value is a
    conversion and a copy in SQLite; binding the same four once, not per row, took
    ``Outbox.put`` of 100 rows from 67,700 to 61,500 instructions per event
    (callgrind, user space).

    The insert trigger (:mod:`._schema`) runs for each row as it is inserted, so a row
    sees the rows before it in the same statement: the head rule is the same as
    for one row per statement. No ``RETURNING``: the ids are read from the cursor
    (:func:`_inserted_ids`), which cost about 4% less SQLite work per row than
    stepping through 128 returned rows (each step also let go of the GIL).

    ``OR ROLLBACK``: a row SQLite refuses rolls back the whole transaction, not
    just this statement. That is what :meth:`SQLiteStore.enqueue_many` promises
    anyway (all of a batch or none of it; its transaction holds nothing else), and
    it spares SQLite the statement journal it keeps to undo one statement alone
    (every page the statement changes, copied first). A 128-row insert touches a
    leaf page of the order-key index per row, so that journal passed the 64 KiB
    SQLite keeps in memory every time and was written to a temporary file:
    ``send --queue`` wrote 488 MB of it per 100,000 lines, beside 132 MB of WAL
    (docs/cli.md, ``send --queue``). A failure that is not a refused row (a full
    disk, an I/O error) rolls the transaction back as well without that journal.
    Nothing about durability changes: the journal never served recovery after a
    crash (the WAL does)."""
    if shared:
        values = ", ".join(
            f"({SQL_PENDING}, ?2, ?3, ?{p + 6}, ?{p + 7}, ?4, ?5, ?{p + 8}, ?1, ?1, ?1)"
            for p in range(0, rows * 3, 3)
        )
    else:
        values = ", ".join(
            f"({SQL_PENDING}, ?{p + 2}, ?{p + 3}, ?{p + 4}, ?{p + 5}, ?{p + 6}, ?{p + 7},"
            f" ?{p + 8}, ?1, ?1, ?1)"
            for p in range(0, rows * 7, 7)
        )
    return (
        "INSERT OR ROLLBACK INTO events (state, kind, route, order_key, dedup_key, base_url,"  # noqa: S608 - placeholders and state numbers only
        " credential,"
        f" body, created_at, age_from, not_before) VALUES {values}"
    )


def _inserted_ids(cursor: sqlite3.Cursor, rows: int) -> range:
    """The ids of the ``rows`` rows one :func:`_insert` statement just stored, in order.

    ``events.id`` is ``AUTOINCREMENT`` and the statement holds the write lock from
    its first row to its last (in a ``BEGIN IMMEDIATE`` transaction, or as a
    transaction of its own), so SQLite gives its rows consecutive ids, each one more
    than any id the table ever had, in the order of the ``VALUES`` list: the last
    one is ``lastrowid`` (the insert trigger writes other rows but inserts none, so
    it does not change it). ``rowcount`` counts the statement's own rows only, not
    the trigger's writes; a count that is not ``rows`` would break the arithmetic,
    so it is refused rather than guessed around."""
    last = cursor.lastrowid
    if cursor.rowcount != rows or last is None:  # pragma: no cover - SQLite inserts every row
        raise OutboxError(f"stored {cursor.rowcount} of {rows} rows")
    return range(last - rows + 1, last + 1)


# Every outcome is owner-checked: a relay whose lease was taken over writes nothing.
# A row that leaves the active states (delivered, dead) is no head: its flag is
# cleared in the statement's own write (the trigger then hands the head to the next
# active row of its key; see _schema version 3). Per kind of outcome: what it sets
# from the values of outcome_params (``v``: one outcome's, named by OUTCOME_NAMES).
# A group that binds machine.UNSENT (tries to take back) also sets _TAKE_BACK.
_SETTLES: Final[dict[type[machine.Outcome], str]] = {
    machine.Delivered: (
        "state = v.state, head = 0, finished_at = v.at, http_status = v.status,"
        " last_error = NULL, error_body = NULL"
    ),
    machine.Reschedule: (
        "state = v.state, not_before = v.not_before, last_error = v.error, http_status = v.status"
    ),
    machine.MarkDead: (
        "state = v.state, head = 0, finished_at = v.at, last_error = v.error,"
        " http_status = v.status, error_body = v.body"
    ),
    machine.Release: "state = v.state",
}
#: Never below 0 tries (more taken back than counted can only come of several relays
#: and a person acting within one send: see Machine.cycle's ``reclaims``).
_TAKE_BACK: Final = ", attempts = max(attempts - v.unsent, 0)"


@functools.lru_cache(maxsize=256)
def _settle(names: tuple[str, ...], assignments: str, rows: int) -> str:
    """The owner-checked ``UPDATE`` that records ``rows`` outcomes of one kind (``?1``
    is the owner, then each outcome's values in the order of ``names``); it returns
    the ids it changed, so a lost lease shows as a missing id."""
    width = len(names)
    values = ", ".join(
        "(" + ", ".join(f"?{p + i + 2}" for i in range(width)) + ")"
        for p in range(0, rows * width, width)
    )
    columns = ", ".join(f"column{i + 1} AS {name}" for i, name in enumerate(names))
    return f"""
UPDATE events SET {assignments}, lease_owner = NULL, lease_expires = NULL
FROM (SELECT {columns} FROM (VALUES {values})) AS v
WHERE events.id = v.id AND events.state = {SQL_LEASED} AND events.lease_owner = ?1
RETURNING events.id
"""  # noqa: S608 - placeholders and state numbers only


def _storing(events: Sequence[object]) -> str:
    return "store the event" if len(events) == 1 else f"store {len(events)} events"


#: How a ``bytes`` body is bound: as a copy in a ``bytearray``, which SQLite stores as
#: the same BLOB (and hands back as ``bytes``). Python's sqlite3 binds an ``int``,
#: ``float``, ``str`` or ``bytearray`` as it is, but looks a ``bytes`` value up among
#: the registered adapters first, and that miss raises and clears an
#: ``AttributeError`` inside the module: about 2,000 instructions per row
#: (callgrind); the copy and the check below cost most of that back, and the
#: benchmark's enqueue_many runs 0.5% fewer in all (docs/cli.md, ``send --queue``).
#: Anything else is bound as it is (and SQLite refuses a missing body as before).
_BLOB: Final = bytearray


def _blob(body: bytes) -> bytes | bytearray:
    """``body`` as it is bound (:data:`_BLOB`): written out inline where it runs per row."""
    return _BLOB(body) if body.__class__ is bytes else body


def _insert_params(group: Sequence[machine.NewEvent], now: float) -> list[object]:
    """The parameters of :func:`_insert` for ``group`` (at most ``_INSERT_ROWS`` rows)."""
    params: list[object] = [now]
    for event in group:
        params += (
            event.kind,
            event.route,
            event.order_key,
            event.dedup_key,
            event.base_url,
            event.credential.reveal(),
            _blob(event.body),
        )
    return params


def _insert_all(
    conn: sqlite3.Connection, events: Sequence[machine.NewEvent], now: float
) -> list[int]:
    """Insert ``events`` (in the caller's transaction); their ids in the order given.

    While :func:`_bulk_rows` rows with one destination are left, they go as one
    statement; the rest ``_INSERT_ROWS`` at a time.

    A bulk group found mixed says where its first row of another destination is;
    no group of one destination can begin before that row, so the next bulk check
    is at the first ``_INSERT_ROWS`` step at or after it. Each row is compared about
    once however the destinations are mixed (checking again at every step compared
    up to 5,000 rows per 128 written), and a run of one destination that starts
    after mixed rows still goes in bulk."""
    ids: list[int] = []
    bulk = _bulk_rows(conn)
    check_from = 0  # no bulk group of one destination begins before this row
    start = 0
    while start < len(events):
        params: list[object] | None = None
        if start >= check_from and len(events) - start >= bulk:
            group = events[start : start + bulk]
            shared = _shared(group, now)
            if isinstance(shared, int):
                check_from = start + shared
            else:
                params = shared
        if params is None:
            group = events[start : start + _INSERT_ROWS]
            sql, params = _insert_statement(group, now)
        else:
            sql = _insert(bulk, True)
        ids += _inserted_ids(conn.execute(sql, params), len(group))
        start += len(group)
    return ids


def _bulk_rows(conn: sqlite3.Connection) -> int:
    """:data:`_BULK_INSERT_ROWS`, or fewer if this SQLite library allows fewer bound
    variables per statement (32,766 by default since SQLite 3.32; a statement of
    rows sharing their destination binds 3 a row and 5 more). ``_INSERT_ROWS``
    where the limit cannot be read (``Connection.getlimit`` is Python 3.11's)."""
    getlimit = getattr(conn, "getlimit", None)
    which = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", None)
    if getlimit is None or which is None:
        return _INSERT_ROWS
    variables: int = getlimit(which)
    return max(_INSERT_ROWS, min(_BULK_INSERT_ROWS, (variables - 5) // 3))


def _insert_statement(group: Sequence[machine.NewEvent], now: float) -> tuple[str, list[object]]:
    """The :func:`_insert` of ``group`` (at most ``_INSERT_ROWS`` rows) and its
    parameters: the shared form when every row has the first row's destination."""
    params = _shared(group, now)
    if isinstance(params, int):
        return _insert(len(group)), _insert_params(group, now)
    return _insert(len(group), True), params


def _shared(group: Sequence[machine.NewEvent], now: float) -> list[object] | int:
    """The parameters of ``_insert(len(group), shared=True)``, or, if the rows of
    ``group`` do not all have the first row's destination, the index of the first
    row that does not (:func:`_insert_all` checks again from there)."""
    first = group[0]
    kind, route, base_url, credential = first.kind, first.route, first.base_url, first.credential
    secret = credential.reveal()
    params: list[object] = [now, kind, route, base_url, secret]
    for event in group:
        if (
            event.route != route
            or event.kind != kind
            or event.base_url != base_url
            or (event.credential is not credential and event.credential.reveal() != secret)
        ):
            return (len(params) - 5) // 3  # the rows before it added 3 each
        body = event.body
        params += (
            event.order_key,
            event.dedup_key,
            _BLOB(body) if body.__class__ is bytes else body,
        )
    return params


class SQLiteStore(SQLiteConnections):
    """One outbox file: the :class:`~alertwire.outbox.machine.Store` over SQLite.

    The file is opened lazily, on the first operation, so that an unusable
    outbox fails at the operation (``enqueue``) with :class:`OutboxError`.
    ``create=False`` opens an existing outbox only; ``busy_timeout`` (seconds)
    bounds every wait for a lock (see :mod:`._connection`).
    """

    def __repr__(self) -> str:
        return f"SQLiteStore({self.location!r})"

    # ------------------------------------------------------------ operations

    def enqueue_many(self, events: Sequence[machine.NewEvent], *, now: float) -> list[int]:
        if not events:
            return []
        what = _storing(events)
        try:
            if len(events) <= _INSERT_ROWS:
                # One statement: its own transaction (``_write_alone`` says why).
                cursor = self._write_alone(what, *_insert_statement(events, now))
                return list(_inserted_ids(cursor, len(events)))
            with self._tx(what) as conn:
                return _insert_all(conn, events, now)
        except OutboxError as exc:
            raise OutboxError(f"{exc}; NOT queued", retryable=exc.retryable) from exc.__cause__

    def enqueue_group(self, group: machine.RowGroup, *, now: float) -> list[int]:
        """:meth:`enqueue_many` of ``group.events()``, without building them (see
        :class:`~alertwire.outbox.machine.RowGroup`): the destination is bound once, as
        the shared form of :func:`_insert` does for rows that have one, and each row's
        own parts after it. A group of more rows than one statement holds
        (``_INSERT_ROWS``) goes the way of any such transaction."""
        parts = group.parts
        if len(parts) > _INSERT_ROWS:
            return self.enqueue_many(group.events(), now=now)
        if not parts:
            return []
        params: list[object] = [
            now,
            group.kind,
            group.route,
            group.base_url,
            group.credential.reveal(),
        ]
        for _, order_key, dedup_key, body in parts:
            params += (order_key, dedup_key, _BLOB(body) if body.__class__ is bytes else body)
        try:
            # One statement: its own transaction (``_write_alone`` says why).
            cursor = self._write_alone(_storing(parts), _insert(len(parts), True), params)
            return list(_inserted_ids(cursor, len(parts)))
        except OutboxError as exc:
            raise OutboxError(f"{exc}; NOT queued", retryable=exc.retryable) from exc.__cause__

    def enqueue_many_now(
        self, events: Sequence[machine.NewEvent], *, now: float
    ) -> list[int] | None:
        """:meth:`enqueue_many` if the write lock is free this instant, else ``None``
        (nothing stored, nothing waited for): for a caller on an event loop, which
        must not block for as long as another process holds the lock (up to the busy
        timeout), and then hands the rows to a thread that may wait. Also ``None``
        for more than one ``INSERT`` holds (``_INSERT_ROWS``, a BigPanda batch of
        that many alerts): only a single statement is written here, and a rare big
        batch costs the waiting thread's hand-over, nothing else. A failure other
        than a held lock raises as :meth:`enqueue_many` does."""
        if not events:
            return []
        if len(events) > _INSERT_ROWS:
            return None
        try:
            cursor = self._write_alone_now(_storing(events), *_insert_statement(events, now))
        except OutboxError as exc:
            raise OutboxError(f"{exc}; NOT queued", retryable=exc.retryable) from exc.__cause__
        return None if cursor is None else list(_inserted_ids(cursor, len(events)))

    def claim(self, terms: machine.ClaimTerms) -> list[machine.Claimed]:
        with self._tx("claim events", many_rows=True) as conn:
            return self._claim_in(conn, terms)

    def settle_and_claim(
        self,
        outcomes: Sequence[machine.Outcome],
        terms: machine.ClaimTerms,
        *,
        reclaims: machine.Reclaims = None,
    ) -> tuple[list[bool], list[machine.Claimed]]:
        """:meth:`settle` then :meth:`claim` in ONE transaction: one fsync per relay cycle.

        The relay's throughput on SQLite is bound by commits.
        """
        with self._tx("record outcomes and claim events", many_rows=True) as conn:
            applied = self._settle_in(conn, outcomes, terms.owner, reclaims)
            return applied, self._claim_in(conn, terms)

    def _claim_in(
        self, conn: sqlite3.Connection, terms: machine.ClaimTerms
    ) -> list[machine.Claimed]:
        now, limit, paced = terms.now, terms.limit, terms.paced
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
            # The window comes oldest first, and only the `limit` oldest candidates can
            # be chosen (the rest of the window is younger than each of them), so the
            # read stops there: the rest's rows, blocking checks and route checks are
            # never read (about 4 rows read per head claimed before).
            heads = conn.execute(_OLDEST_HEADS, {"now": now, "window": terms.window})
            for event_id, route in heads:
                if route_open(route):
                    candidates.append((event_id, route))
                    if len(candidates) == limit:
                        break
            heads.close()
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
        taken_over: set[int] = set()  # leased already (an expired lease): no state change
        for event_id, route, _ in conn.execute(_EXPIRED_HEADS, {"now": now}):
            if route_open(route):
                candidates.append((event_id, route))
                taken_over.add(event_id)
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
        rows: list[Any] = []  # each as Claimed.from_row reads it
        for start in range(0, len(chosen), _CYCLE_ROWS):
            group = chosen[start : start + _CYCLE_ROWS]
            params: dict[str, object] = dict(zip(_lease_ids(len(group)), group, strict=True))
            params.update(owner=terms.owner, lease_until=terms.lease_until)
            rows += conn.execute(_lease(len(group)), params)
        leased = len(set(chosen) - taken_over)
        _count(conn, {State.PENDING: -leased, State.LEASED: leased})
        if paced:
            for route in sorted(taken):
                conn.execute(_PACE, {"route": route, "next_allowed": terms.next_allowed})
        claimed = [machine.Claimed.from_row(r) for r in rows]
        claimed.sort(key=lambda c: c.id)
        return claimed

    def settle(
        self, outcomes: Sequence[machine.Outcome], *, owner: str, reclaims: machine.Reclaims = None
    ) -> list[bool]:
        with self._tx("record delivery outcomes", many_rows=True) as conn:
            return self._settle_in(conn, outcomes, owner, reclaims)

    def _settle_in(
        self,
        conn: sqlite3.Connection,
        outcomes: Sequence[machine.Outcome],
        owner: str,
        reclaims: machine.Reclaims,
    ) -> list[bool]:
        """Record ``outcomes`` a group at a time: one owner-checked statement per group
        (per ``_CYCLE_ROWS`` outcomes), which returns the ids it changed; an id missing from
        its answer had lost its lease. Rows of one batch are of different keys (a key has one
        event in flight), so the order they are written in changes nothing."""
        done: set[int] = set()
        moved: Counter[State] = Counter()
        for kind, names, batch in machine.outcome_groups(outcomes, owner, reclaims):
            assignments = _SETTLES[kind]
            if machine.UNSENT in names:
                assignments += _TAKE_BACK
            for start in range(0, len(batch), _CYCLE_ROWS):
                group = batch[start : start + _CYCLE_ROWS]
                params: list[object] = [owner]
                for values in group:
                    params += [values[n] for n in names]
                changed = [
                    row[0] for row in conn.execute(_settle(names, assignments, len(group)), params)
                ]
                done.update(changed)
                # From LEASED to the kind's state (one state per kind of outcome).
                moved[State.LEASED] -= len(changed)
                moved[State(group[0]["state"])] += len(changed)
        for o in outcomes:
            if (
                isinstance(o, machine.Reschedule)
                and o.pause_route_until is not None
                and o.id in done
            ):
                conn.execute(_PAUSE, {"id": o.id, "next_allowed": o.pause_route_until})
        _count(conn, moved)
        return [o.id in done for o in outcomes]

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

    def stats(self) -> machine.QueueStats:
        counts = dict.fromkeys(State, 0)
        # Counters kept by every writing statement (_count), and the minimum of a partial
        # index: no counting.
        for state, count in self._read(_COUNTS):
            counts[State(state)] = count
        oldest = self._read(_OLDEST_OPEN)[0][0]
        return machine.QueueStats.from_counts(counts, oldest)

    def open_counts(self, *, per_route: bool) -> tuple[int, dict[str, int]]:
        rows = self._read(
            "SELECT sum(n) FROM counts WHERE state IN (:pending, :leased)",
            {"pending": int(State.PENDING), "leased": int(State.LEASED)},
        )
        total = int(rows[0][0] or 0)
        if not per_route or total == 0:
            return total, {}
        # The condition of the partial index events_open_since, as it is written there.
        routes = self._read(
            "SELECT route, count(*) FROM events INDEXED BY events_open_since"
            " WHERE finished_at IS NULL GROUP BY route"
        )
        return total, {route: int(n) for route, n in routes}

    def list_dead(self, *, limit: int | None = None) -> list[machine.DeadEvent]:
        rows = self._read(
            "SELECT id, kind, dedup_key, created_at, finished_at, attempts, last_error,"  # noqa: S608 - a query from machine.py, no input
            f" http_status, id IN ({_SUPERSEDED}) FROM events WHERE state = :state"
            " ORDER BY id LIMIT :limit",
            {"state": int(State.DEAD), "limit": -1 if limit is None else limit},
        )
        return [machine.DeadEvent.from_row(r) for r in rows]

    def retry_dead(self, ids: Sequence[int] | None, *, now: float, superseded: bool = False) -> int:
        sql = (
            "UPDATE events SET state = :pending, attempts = 0, not_before = :now,"
            " age_from = :now, finished_at = NULL WHERE state = :dead"
        )
        params = {"pending": int(State.PENDING), "dead": int(State.DEAD), "now": now}
        with self._tx("retry dead events") as conn:
            if ids is None:
                if not superseded:
                    sql += f" AND id NOT IN ({_SUPERSEDED})"
                count = conn.execute(sql, params).rowcount
            else:
                # The superseded ones read once, in this transaction: in each id's
                # statement the query ran once per id (a pass over the delivered rows,
                # with the write lock held: 20 s for 199 ids among 100,000 delivered rows).
                skip = set() if superseded else {row[0] for row in conn.execute(_SUPERSEDED)}
                count = sum(
                    conn.execute(sql + " AND id = :id", {**params, "id": event_id}).rowcount
                    for event_id in ids
                    if event_id not in skip
                )
            _count(conn, {State.DEAD: -count, State.PENDING: count})
            return count

    def purge_delivered(self, *, before: float) -> int:
        # One hold for the purge and its VACUUM: close() must not come between them.
        with self._holding():
            with self._tx("purge delivered events") as conn:
                cur = conn.execute(
                    "DELETE FROM events WHERE state = :state AND finished_at < :before",
                    {"state": int(State.DELIVERED), "before": before},
                )
                count = cur.rowcount
                _count(conn, {State.DELIVERED: -count})
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
            self._temp_on_disk(conn)
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            logger.warning(
                'event=compact_failed outbox=%s error=%s note="the purge stands; the file'
                ' shrinks at the next purge"',
                self.location,
                _explain(exc, self.path),
            )
