"""The outbox stays fast with a large backlog: proven by query plans and invariants, not by timing.

A relay after an outage faces 100,000 pending events; schema version 1 found
each key's head by grouping every active row, so a claim cost grew with the
backlog (0.76 s at 100,000 on SQLite). Version 2 keeps a ``head`` flag and
state counters up to date with triggers and reads only partial indexes over
heads. These tests catch a regression without a stopwatch:

* the SQLite plan of every per-cycle query (claim, next_due, stats) uses an
  index and never scans ``events``;
* after a random workload (enqueue, claim, deliver, fail, bury, ``queue
  retry``, purge) the flags and counters equal what a full scan computes;
* a version-1 file is migrated in place (flags and counters filled in), and
  opening it again changes nothing; so are a version-2 file (counters kept by
  triggers then, by the store's statements since version 3) and a version-3 file
  (whose indexes of active rows and in-flight rows version 4 redefined).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alertwire import OutboxError
from alertwire._secret import Secret
from alertwire.outbox import postgres as postgres_store
from alertwire.outbox import sqlite as sqlite_store
from alertwire.outbox.machine import (
    ClaimTerms,
    Delivered,
    MarkDead,
    NewEvent,
    Outcome,
    Reschedule,
    State,
    order_key,
    route_key,
)
from alertwire.outbox.postgres import PostgresStore
from alertwire.outbox.postgres._schema import MIGRATIONS, lock_key
from alertwire.outbox.sqlite import SCHEMA_VERSION, SQLiteStore
from alertwire.outbox.sqlite._schema import MIGRATIONS as SQLITE_MIGRATIONS
from tests.support.outbox_backends import drop_schema, fresh_pg_target
from tests.support.services import PostgresCluster

KEYS = [f"R{n:031d}" for n in range(3)]


def _event(n: int, keys: int = 7) -> NewEvent:
    credential = Secret(KEYS[n % len(KEYS)])
    route = route_key("pagerduty.alert", credential)
    identity = f"k{n % keys}"
    return NewEvent(
        kind="pagerduty.alert",
        route=route,
        order_key=order_key(route, identity),
        credential=credential,
        body=b"{}",
        dedup_key=identity,
    )


def _scan_invariants(conn: sqlite3.Connection) -> None:
    """Flags and counters equal what a full scan of the table says."""
    flagged = {r[0] for r in conn.execute("SELECT id FROM events WHERE head = 1")}
    heads = {
        r[0]
        for r in conn.execute("SELECT min(id) FROM events WHERE state IN (0, 1) GROUP BY order_key")
    }
    assert flagged == heads
    # Version 4: a row is unfinished exactly while finished_at is NULL (its indexes of
    # active rows are defined by that).
    assert conn.execute(
        "SELECT count(*) FROM events WHERE (state IN (0, 1)) = (finished_at IS NOT NULL)"
    ).fetchone() == (0,)
    counted = dict(conn.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall())
    kept = dict(conn.execute("SELECT state, n FROM counts").fetchall())
    assert kept == {int(s): counted.get(int(s), 0) for s in State}


def test_sqlite_per_cycle_queries_use_indexes_never_a_table_scan(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "o.sqlite3")
    store.enqueue_many([_event(n) for n in range(50)], now=1000.0)
    conn = sqlite3.connect(tmp_path / "o.sqlite3")
    params = {"route": "r", "now": 1.0, "limit": 5, "after": "", "owner": "o", "id": 1}
    params["lease_until"] = 2.0
    params["window"] = 64
    queries = {
        "next route": sqlite_store._NEXT_ROUTE,
        "route heads": sqlite_store._ROUTE_HEADS,
        "oldest heads": sqlite_store._OLDEST_HEADS,
        "route due": sqlite_store._ROUTE_DUE,
        "expired heads": sqlite_store._EXPIRED_HEADS,
        "next lease end": sqlite_store._NEXT_LEASE_END,
        "oldest open": sqlite_store._OLDEST_OPEN,
        "lease": sqlite_store._LEASE,
    }
    for name, sql in queries.items():
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
        # SEARCH = an index range or key lookup; SCAN = every row (or every index entry),
        # except the claim's window: the first :window entries of the heads' id index.
        allowed = ("SEARCH", "CORRELATED", "USE TEMP", "LIST SUBQUERY")
        window = "SCAN w USING INDEX events_head_ids"
        assert plan and all(line.startswith(allowed) or line == window for line in plan), (
            name,
            plan,
        )
        if window in plan:
            assert "LIMIT :window" in sql, name
    assert [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sqlite_store._COUNTS)] == [
        "SCAN counts"  # four rows, one per state
    ]
    store.close()
    conn.close()


def _random_workload(store: Any, check: Callable[[], None]) -> None:
    """Enqueue, claim, deliver, fail, bury, leave leases to expire, retry, purge; check
    the invariants after every step."""
    rng = random.Random(6)
    now = 1000.0
    n = 0
    for _step in range(150):
        now += 1.0
        action = rng.random()
        if action < 0.35:
            batch = rng.randint(1, 6)
            store.enqueue_many([_event(n + i) for i in range(batch)], now=now)
            n += batch
        elif action < 0.75:
            claimed = store.claim(
                ClaimTerms(owner="me", now=now, lease_until=now + 5, limit=4, pace_interval=0)
            )
            outcomes: list[Outcome] = []
            for c in claimed:
                pick = rng.random()
                if pick < 0.5:
                    outcomes.append(Delivered(c.id, now, 202))
                elif pick < 0.7:
                    outcomes.append(Reschedule(c.id, now + rng.choice([0, 3]), "503", 503))
                elif pick < 0.85:
                    outcomes.append(MarkDead(c.id, now, "400", 400))
                # else: left leased; its lease expires and a later claim takes it over
            store.settle(outcomes, owner="me")
        elif action < 0.9:
            dead = [d.id for d in store.list_dead()]
            if dead:
                store.retry_dead(rng.sample(dead, k=max(1, len(dead) // 2)), now=now)
        else:
            store.purge_delivered(before=now - 3)
        check()
    stats = store.stats()
    assert n > 100 and stats.delivered > 0 and stats.dead + stats.pending > 0


def test_sqlite_head_flags_and_counters_match_a_full_scan_after_a_random_workload(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "o.sqlite3")
    conn = sqlite3.connect(tmp_path / "o.sqlite3")
    _random_workload(store, lambda: _scan_invariants(conn))
    store.close()
    conn.close()


def _insert_rows(conn: sqlite3.Connection) -> None:
    """Rows in every state, written by an older version's SQL (its triggers, if any)."""
    insert = (
        "INSERT INTO events (state, kind, route, order_key, credential, body, created_at,"
        " age_from, not_before) VALUES (?, 'pagerduty.alert', 'r', ?, 'c', x'00', ?, ?, ?)"
    )
    # key a: delivered, pending, pending; key b: dead, leased; key c: pending
    for state, key in [(2, "a"), (0, "a"), (0, "a"), (3, "b"), (1, "b"), (0, "c")]:
        conn.execute(insert, (state, key, 1.0, 1.0, 1.0))


def _check_migrated_once(path: Path) -> None:
    """Opening the file of :func:`_insert_rows` brings it to the current version with
    flags and counters right; the random workload (``queue retry`` included, which
    moves a head back) keeps them equal to a full scan; opening it again changes
    nothing."""
    store = SQLiteStore(path)
    assert store.migrate() == SCHEMA_VERSION == 4
    check = sqlite3.connect(path)
    assert check.execute("SELECT version FROM alertwire_schema").fetchall() == [(4,)]
    gone = (
        "events_key_head",
        "events_inflight",
        "events_in_flight",
        "events_active",
        "events_open",
    )
    assert check.execute(
        f"SELECT count(*) FROM sqlite_master WHERE name IN {gone}"  # noqa: S608 - constants
    ).fetchone() == (0,)
    # The finished rows written without finished_at got their created_at (version 4).
    assert check.execute("SELECT id, finished_at FROM events WHERE state IN (2, 3)").fetchall() == [
        (1, 1.0),
        (4, 1.0),
    ]
    assert [r[0] for r in check.execute("SELECT id FROM events WHERE head = 1 ORDER BY id")] == [
        2,
        5,
        6,
    ]
    _scan_invariants(check)
    stats = store.stats()
    assert (stats.pending, stats.leased, stats.delivered, stats.dead) == (3, 1, 1, 1)
    _random_workload(store, lambda: _scan_invariants(check))
    store.close()
    again = SQLiteStore(path)
    assert again.migrate() == 4
    _scan_invariants(check)
    assert check.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
    ).fetchone() == (2,)  # events_inserted (head, insert count), events_moved (head)
    again.close()
    check.close()


def _check_older_file_migrated(
    path: Path, make: Callable[[Path], None], indexes: tuple[str, ...]
) -> None:
    """A file ``make`` builds as an older version made it (with ``indexes``), holding the
    rows of :func:`_insert_rows`, then :func:`_check_migrated_once`."""
    make(path)
    conn = sqlite3.connect(path, isolation_level=None)
    _insert_rows(conn)
    names = ", ".join(f"'{name}'" for name in indexes)
    assert conn.execute(
        f"SELECT count(*) FROM sqlite_master WHERE name IN ({names})"  # noqa: S608 - constants
    ).fetchone() == (len(indexes),)
    conn.close()
    _check_migrated_once(path)


def test_sqlite_version_1_file_is_migrated_in_place_once(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE alertwire_schema (version INTEGER NOT NULL)")
    for statement in sqlite_store._EVENTS_V1:
        conn.execute(statement)
    conn.execute("INSERT INTO alertwire_schema VALUES (1)")
    _insert_rows(conn)
    conn.close()
    _check_migrated_once(path)


_SQLITE_SCHEMA_V2 = Path(__file__).resolve().parents[1] / "data" / "outbox_sqlite_schema_v2.sql"


def _sqlite_v2_file(path: Path) -> None:
    """An outbox as version 2 made it: its schema text as released, version 2 recorded."""
    # The file lists "-- <type> <name>" then the statement, sorted by type: indexes
    # and triggers need their tables first.
    entries = []
    for entry in _SQLITE_SCHEMA_V2.read_text().split(";\n\n"):
        head, body = entry.split("\n", 1)
        entries.append((head.split()[1], body.rstrip().rstrip(";")))
    rank = {"table": 0, "index": 1, "trigger": 2}
    conn = sqlite3.connect(path, isolation_level=None)
    for _kind, body in sorted(entries, key=lambda entry: rank[entry[0]]):
        if not body.startswith("CREATE TABLE sqlite_sequence"):  # SQLite makes it itself
            conn.execute(body)
    zeros = ", ".join(f"({int(state)}, 0)" for state in State)
    conn.execute(f"INSERT INTO counts (state, n) VALUES {zeros}")  # noqa: S608 - numbers only
    conn.execute("INSERT INTO alertwire_schema VALUES (2)")
    conn.close()


def test_sqlite_version_2_file_is_migrated_in_place_once(tmp_path: Path) -> None:
    """Version 3 keeps the counters in the store's statements instead of triggers and
    drops the ``events_key_head`` index (version 4 then redefines the indexes of active
    and in-flight rows): rows, flags and counters written by version 2 (its triggers)
    carry over."""
    _check_older_file_migrated(tmp_path / "o.sqlite3", _sqlite_v2_file, ("events_key_head",))


def test_sqlite_a_version_2_process_still_running_after_the_migration_cannot_write(
    tmp_path: Path,
) -> None:
    """A relay of version 2 that opened the file before a version-3 process migrated
    it keeps its own SQL, which neither counts moves nor clears a finished row's
    head flag: its claims fail (the index they name is gone) and its outcomes are
    refused, rather than written by the old rules. Its statements, as released."""
    path = tmp_path / "o.sqlite3"
    store = SQLiteStore(path)
    (event_id,) = store.enqueue_many([_event(0)], now=1.0)
    claimed = store.claim(
        ClaimTerms(owner="me", now=2.0, lease_until=60.0, limit=1, pace_interval=0)
    )
    assert [c.id for c in claimed] == [event_id]
    conn = sqlite3.connect(path, isolation_level=None)
    v2_not_blocked = (
        "SELECT 1 FROM events f INDEXED BY events_inflight WHERE f.order_key = 'k'"
        " AND f.state = 1 AND f.lease_expires > 0"
    )
    with pytest.raises(sqlite3.OperationalError, match="no such index: events_inflight"):
        conn.execute(v2_not_blocked)
    v2_deliver = """
UPDATE events SET state = :state, finished_at = :at, http_status = :status,
       lease_owner = NULL, lease_expires = NULL, last_error = NULL, error_body = NULL
WHERE id = :id AND state = 1 AND lease_owner = :owner
"""
    with pytest.raises(sqlite3.IntegrityError, match="upgraded to a newer schema"):
        conn.execute(
            v2_deliver, {"state": 2, "at": 3.0, "status": 202, "id": event_id, "owner": "me"}
        )
    assert conn.execute("SELECT state, head FROM events WHERE id = ?", (event_id,)).fetchone() == (
        1,
        1,
    )
    _scan_invariants(conn)
    assert store.settle([Delivered(event_id, 3.0, 202)], owner="me") == [True]
    _scan_invariants(conn)
    conn.close()
    store.close()


def _sqlite_v3_file(path: Path) -> None:
    """An outbox as version 3 made it: its migrations (their text is pinned to
    tests/data/outbox_sqlite_schema_v3.sql by test_outbox_states), version 3 recorded."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE alertwire_schema (version INTEGER NOT NULL)")
    for version in (1, 2, 3):
        for statement in SQLITE_MIGRATIONS[version]:
            conn.execute(statement)
    conn.execute("INSERT INTO alertwire_schema VALUES (3)")
    conn.close()


def test_sqlite_version_3_file_is_migrated_in_place_once(tmp_path: Path) -> None:
    """Version 4 defines the indexes of active rows by ``finished_at IS NULL`` and the
    in-flight index by the leased rows that are not heads: rows, flags and counters
    written by version 3 (its triggers) carry over, and finished rows written without
    ``finished_at`` get one."""
    _check_older_file_migrated(
        tmp_path / "o.sqlite3", _sqlite_v3_file, ("events_active", "events_in_flight")
    )


def test_sqlite_a_migration_that_fails_half_way_leaves_version_3_as_it_was(
    tmp_path: Path,
) -> None:
    """The steps of a migration and the version they record are one transaction: a
    failure after version 4's first statements ran (here, an index already holding a
    name it creates) undoes them all, so the file is version 3 with its rows and
    indexes as they were, and the next open migrates it whole. A process killed in
    the middle leaves the same: SQLite rolls back a transaction it never committed."""
    path = tmp_path / "o.sqlite3"
    _sqlite_v3_file(path)
    conn = sqlite3.connect(path, isolation_level=None)
    _insert_rows(conn)
    conn.execute("CREATE INDEX events_open_since ON events (route)")  # in the way
    before = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
    conn.close()
    store = SQLiteStore(path)
    with pytest.raises(OutboxError, match="index events_open_since already exists"):
        store.migrate()
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    assert conn.execute("SELECT version FROM alertwire_schema").fetchall() == [(3,)]
    assert conn.execute("SELECT * FROM events ORDER BY id").fetchall() == before
    assert conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name IN ('events_active', 'events_in_flight')"
    ).fetchone() == (2,)
    conn.execute("DROP INDEX events_open_since")
    conn.close()
    _check_migrated_once(path)


# Version 3's statements, as released: its relay's blocking check and settle of one
# delivery, its `queue status` read, its count of a move, its insert.
_V3_NOT_BLOCKED = (
    "SELECT 1 FROM events f INDEXED BY events_in_flight WHERE f.order_key = ?"
    " AND f.state = 1 AND f.id <> ? AND f.lease_expires > 0"
)
_V3_OLDEST_OPEN = "SELECT min(created_at) FROM events INDEXED BY events_open WHERE state IN (0, 1)"
_V3_DELIVER = """
UPDATE events SET state = v.state, head = 0, finished_at = v.at, http_status = v.status,
 last_error = NULL, error_body = NULL, lease_owner = NULL, lease_expires = NULL
FROM (SELECT column1 AS id, column2 AS state, column3 AS at, column4 AS status
      FROM (VALUES (?2, ?3, ?4, ?5))) AS v
WHERE events.id = v.id AND events.state = 1 AND events.lease_owner = ?1
RETURNING events.id
"""
_V3_COUNT = "UPDATE counts SET n = n + :n WHERE state = :state"
_V3_INSERT = (
    "INSERT OR ROLLBACK INTO events (state, kind, route, order_key, dedup_key, base_url,"
    " credential, body, created_at, age_from, not_before)"
    " VALUES (0, 'pagerduty.alert', 'r', ?, NULL, NULL, 'c', x'00', ?, ?, ?)"
)


def test_sqlite_a_version_3_process_still_running_after_the_migration_cannot_claim(
    tmp_path: Path,
) -> None:
    """A relay of version 3 that opened the file before a version-4 process migrated
    it keeps its own SQL. Its claim names ``events_in_flight`` (every leased row),
    which is gone: it stops with "no such index" (a store outage it reports) rather
    than reading a blocked key through an index it does not know; ``queue status``
    of version 3 (``events_open``) likewise. What it can still write keeps version
    4's rules, so nothing drifts: its outcomes set ``finished_at`` and clear the head
    flag (the trigger hands the head on), its inserts are flagged and counted."""
    path = tmp_path / "o.sqlite3"
    _sqlite_v3_file(path)
    old = sqlite3.connect(path, isolation_level=None)
    for _ in range(2):  # key k: ids 1, 2; id 1 leased by the old relay
        old.execute(_V3_INSERT, ("k", 1.0, 1.0, 1.0))
    old.execute("UPDATE events SET state = 1, lease_owner = 'old', lease_expires = 60 WHERE id = 1")
    old.executemany(_V3_COUNT, [{"state": 0, "n": -1}, {"state": 1, "n": 1}])
    store = SQLiteStore(path)
    assert store.migrate() == 4
    _scan_invariants(old)
    with pytest.raises(sqlite3.OperationalError, match="no such index: events_in_flight"):
        old.execute(_V3_NOT_BLOCKED, ("k", 2))
    with pytest.raises(sqlite3.OperationalError, match="no such index: events_open"):
        old.execute(_V3_OLDEST_OPEN)
    assert old.execute(_V3_DELIVER, ("old", 1, 2, 5.0, 202)).fetchall() == [(1,)]
    old.executemany(_V3_COUNT, [{"state": 1, "n": -1}, {"state": 2, "n": 1}])
    old.execute(_V3_INSERT, ("k", 6.0, 6.0, 6.0))
    _scan_invariants(old)
    assert [r[0] for r in old.execute("SELECT id FROM events WHERE head = 1")] == [2]
    claimed = store.claim(
        ClaimTerms(owner="me", now=7.0, lease_until=60.0, limit=5, pace_interval=0)
    )
    assert [c.id for c in claimed] == [2]
    assert store.settle([Delivered(2, 8.0, 202)], owner="me") == [True]
    _scan_invariants(old)
    stats = store.stats()
    assert (stats.pending, stats.leased, stats.delivered, stats.dead) == (1, 0, 2, 0)
    old.close()
    store.close()


def test_sqlite_a_row_that_finishes_without_finished_at_is_refused(tmp_path: Path) -> None:
    """Version 4 finds a key's active rows by ``finished_at IS NULL``: a write that
    moves a row into or out of the finished states without setting or clearing it
    (no statement of alertwire does; a hand-written one might) is refused, so the
    head flags cannot go wrong."""
    path = tmp_path / "o.sqlite3"
    store = SQLiteStore(path)
    (event_id,) = store.enqueue_many([_event(0)], now=1.0)
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="upgraded to a newer schema"):
        conn.execute("UPDATE events SET state = 3, head = 0 WHERE id = ?", (event_id,))
    conn.execute("UPDATE events SET state = 3, head = 0, finished_at = 2 WHERE id = ?", (event_id,))
    with pytest.raises(sqlite3.IntegrityError, match="upgraded to a newer schema"):
        conn.execute("UPDATE events SET state = 0 WHERE id = ?", (event_id,))
    assert conn.execute("SELECT state, head, finished_at FROM events").fetchall() == [(3, 0, 2.0)]
    conn.execute(
        "UPDATE counts SET n = n + (CASE state WHEN 3 THEN 1 ELSE -1 END) WHERE state IN (0, 3)"
    )
    _scan_invariants(conn)
    assert store.retry_dead([event_id], now=3.0) == 1
    _scan_invariants(conn)
    conn.close()
    store.close()


@pytest.mark.parametrize("backlog", [200])
def test_sqlite_claim_skips_a_paused_route_without_reading_its_backlog(
    tmp_path: Path, backlog: int
) -> None:
    """A 429 pauses a route; the other routes' heads are still claimed, oldest first."""
    store = SQLiteStore(tmp_path / "o.sqlite3")
    ids = store.enqueue_many([_event(n, keys=backlog) for n in range(backlog)], now=1.0)
    first = store.claim(ClaimTerms(owner="me", now=2.0, lease_until=60.0, limit=1, pace_interval=0))
    assert [c.id for c in first] == [ids[0]]
    store.settle([Reschedule(first[0].id, 3.0, "429", 429, pause_route_until=100.0)], owner="me")
    claimed = store.claim(
        ClaimTerms(owner="me", now=4.0, lease_until=60.0, limit=500, pace_interval=0)
    )
    paused = first[0].route
    assert claimed and all(c.route != paused for c in claimed)
    assert [c.id for c in claimed] == sorted(c.id for c in claimed)
    assert len(claimed) == backlog - len([i for i in range(backlog) if i % len(KEYS) == 0])
    assert store.next_due(now=4.0) == 100.0 or store.next_due(now=4.0) == 60.0
    store.close()


# ---------------------------------------------------------------- PostgreSQL

pg = pytest.mark.postgres


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh schema, addressed with the password (these tests talk SQL directly)."""
    url, schema = fresh_pg_target(postgres_cluster)
    yield url.replace(
        f"{postgres_cluster.user}@", f"{postgres_cluster.user}:{postgres_cluster.password}@"
    )
    drop_schema(postgres_cluster, schema)


def _pg_invariants(url: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        flagged = {r[0] for r in conn.execute("SELECT id FROM alertwire_events WHERE head")}
        heads = {
            r[0]
            for r in conn.execute(
                "SELECT min(id) FROM alertwire_events WHERE state IN (0, 1) GROUP BY order_key"
            )
        }
        assert flagged == heads
        counted: dict[int, int] = dict(
            conn.execute("SELECT state, count(*) FROM alertwire_events GROUP BY state").fetchall()
        )
        kept: dict[int, int] = dict(
            conn.execute("SELECT state, sum(n) FROM alertwire_counts GROUP BY state").fetchall()
        )
        # PENDING and LEASED are counted together (state 0: "open")
        assert {s: int(kept.get(s, 0)) for s in (0, 1, 2, 3)} == {
            0: counted.get(0, 0) + counted.get(1, 0),
            1: 0,
            2: counted.get(2, 0),
            3: counted.get(3, 0),
        }


@pg
def test_postgres_lock_key_in_sql_equals_the_one_enqueue_takes(pg_url: str) -> None:
    import psycopg

    store = PostgresStore(pg_url)
    store.migrate()
    keys = ["", "a", "é-ключ-鍵", "0" * 40, _event(1).order_key]
    with psycopg.connect(pg_url) as conn:
        for key in keys:
            row = conn.execute("SELECT alertwire_lock_key(%(k)s)", {"k": key}).fetchone()
            assert row is not None and row[0] == lock_key(key), key
    store.close()


@pg
def test_postgres_head_flags_and_counters_match_a_full_scan_after_a_random_workload(
    pg_url: str,
) -> None:
    store = PostgresStore(pg_url)
    _random_workload(store, lambda: _pg_invariants(pg_url))
    store.close()


@pg
def test_postgres_version_1_schema_is_migrated_in_place_once(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE alertwire_schema (version integer NOT NULL)")
        for statement in MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO alertwire_schema VALUES (1)")
        for state, key in [(2, "a"), (0, "a"), (0, "a"), (3, "b"), (1, "b"), (0, "c")]:
            conn.execute(
                "INSERT INTO alertwire_events (state, kind, route, order_key, credential, body,"
                " created_at, age_from, not_before) VALUES (%(s)s, 'pagerduty.alert', 'r',"
                " %(k)s, 'c', '\\x00', 1, 1, 1)",
                {"s": state, "k": key},
            )
    for _ in range(2):
        store = PostgresStore(pg_url)
        assert store.migrate() == 3
        stats = store.stats()
        assert (stats.pending, stats.leased, stats.delivered, stats.dead) == (3, 1, 1, 1)
        store.close()
        _pg_invariants(pg_url)
    with psycopg.connect(pg_url) as conn:
        heads = conn.execute("SELECT id FROM alertwire_events WHERE head ORDER BY id").fetchall()
        assert heads == [(2,), (5,), (6,)]
        versions = conn.execute("SELECT version FROM alertwire_schema ORDER BY version")
        assert versions.fetchall() == [(1,), (2,), (3,)]


def _versions_written(url: str) -> int:
    """Row versions written to the events table so far: on its only page, where nothing
    is pruned (the page is nearly empty), each new version takes the next line pointer."""
    import psycopg

    with psycopg.connect(url) as conn:
        places = [
            tuple(int(x) for x in str(r[0]).strip("()").split(","))
            for r in conn.execute("SELECT ctid FROM alertwire_events")
        ]
    assert {block for block, _ in places} == {0}
    return max(item for _, item in places)


@pg
def test_postgres_enqueue_and_delivery_write_each_row_once(pg_url: str) -> None:
    """Schema version 3: an enqueued row arrives flagged as its key's head, and a
    delivered one is unflagged by the settle itself, so the trigger writes neither
    again (version 2 wrote both twice: 12 versions here, not 8)."""
    store = PostgresStore(pg_url)
    store.enqueue_many([_event(0), _event(1), _event(21)], now=1.0)  # keys 0, 1, 0
    assert _versions_written(pg_url) == 3
    claimed = store.claim(
        ClaimTerms(owner="me", now=2.0, lease_until=60.0, limit=8, pace_interval=0)
    )
    assert [c.id for c in claimed] == [1, 2]
    assert _versions_written(pg_url) == 5
    assert store.settle([Delivered(1, 3.0, 202), Delivered(2, 3.0, 202)], owner="me") == [
        True,
        True,
    ]
    assert _versions_written(pg_url) == 8  # two settled, and event 3 is k0's head now
    store.close()
    _pg_invariants(pg_url)


@pg
def test_postgres_rows_written_by_version_2_sql_still_get_their_heads(pg_url: str) -> None:
    """A producer or relay of version 2 still running after the migration inserts rows
    unflagged and finishes them without clearing the flag: the trigger still does both."""
    import psycopg

    store = PostgresStore(pg_url)
    assert store.migrate() == 3
    store.close()
    with psycopg.connect(pg_url) as conn:
        for key in ("a", "a", "b"):
            conn.execute(
                "INSERT INTO alertwire_events (state, kind, route, order_key, credential, body,"
                " created_at, age_from, not_before) VALUES (0, 'pagerduty.alert', 'r',"
                " %(k)s, 'c', '\\x00', 1, 1, 1)",
                {"k": key},
            )
        conn.commit()
        _pg_invariants(pg_url)
        conn.execute("UPDATE alertwire_events SET state = 2, finished_at = 2 WHERE id = 1")
        conn.commit()
        _pg_invariants(pg_url)
        heads = conn.execute("SELECT id FROM alertwire_events WHERE head ORDER BY id").fetchall()
        assert heads == [(2,), (3,)]


@pg
def test_postgres_per_cycle_queries_never_scan_the_events_table(pg_url: str) -> None:
    """With enough rows for the planner to care (and fresh statistics), no Seq Scan."""
    import psycopg

    store = PostgresStore(pg_url)
    for start in range(0, 6000, 1000):
        store.enqueue_many([_event(n, keys=3000) for n in range(start, start + 1000)], now=1.0)
    store.close()
    params = {
        "now": 2.0,
        "owner": "o",
        "lease_until": 60.0,
        "limit": 16,
        "next_allowed": 3.0,
        "per_route": 16,
        "window": 64,
    }
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
        for name in (
            "_CLAIM_OLDEST",
            "_CLAIM",
            "_CLAIM_PACED",
            "_NEXT_DUE",
            "_COUNTS",
            "_OLDEST_OPEN",
            "_RESCUE",
        ):
            sql = getattr(postgres_store, name)
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))
            assert "Seq Scan on alertwire_events" not in plan, (name, plan)
            if name != "_COUNTS":  # that one reads the small counters table
                assert "Index" in plan, (name, plan)
