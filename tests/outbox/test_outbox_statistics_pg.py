"""PostgreSQL: an outbox filled faster than autovacuum looks gets its statistics from alertwire.

A relay started right after a bulk enqueue claimed with the planner's guesses
about a table it had never analyzed: 76 ms a claim at 100,000 pending (a
bitmap over every pending head) against 0.46 ms with statistics, until
autovacuum's next pass. The store now compares the planner's estimate of the
open rows with the trigger's count and runs ``ANALYZE`` when it is too low
(``outbox/postgres/_statistics.py``, docs/several-relays.md). Autovacuum is
switched off on the test's tables, so only alertwire can have analyzed them.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pytest

from alertwire import OutboxError
from alertwire.outbox import postgres as postgres_store
from alertwire.outbox.machine import ClaimTerms
from alertwire.outbox.postgres import PostgresStore
from alertwire.outbox.postgres._statistics import (
    BULK_EVENTS,
    LOOK_INTERVAL,
    MIN_OPEN_ROWS,
    StatisticsWatch,
    is_stale,
    planned_rows,
)
from tests.outbox.test_outbox_scaling import _event, pg_url
from tests.support.services import PostgresCluster, free_port

__all__ = ["pg_url"]  # the fixture: a fresh schema on the session's cluster

_TABLES = ("alertwire_events", "alertwire_counts", "alertwire_routes")
#: Enough open rows to count, each its key's head (the relay benchmarks' case).
_ROWS = MIN_OPEN_ROWS + 1000


def _terms(now: float) -> ClaimTerms:
    return ClaimTerms(owner="o", now=now, lease_until=now + 60, limit=4, pace_interval=0)


def _fresh_store(url: str) -> PostgresStore:
    import psycopg

    store = PostgresStore(url)
    store.migrate()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in _TABLES:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    return store


def _fill(store: PostgresStore, batch: int) -> None:
    for start in range(0, _ROWS, batch):
        store.enqueue_many(
            [_event(n, keys=_ROWS) for n in range(start, min(start + batch, _ROWS))], now=1.0
        )


def _analyzed(url: str) -> tuple[float, int]:
    """The events table's reltuples (-1: never analyzed nor vacuumed) and its analyzes."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT c.reltuples, s.analyze_count FROM pg_class c"
            " JOIN pg_stat_user_tables s ON s.relid = c.oid"
            " WHERE c.oid = 'alertwire_events'::regclass"
        ).fetchone()
    assert row is not None
    return float(row[0]), int(row[1])


def _claim_plan(url: str) -> str:
    import psycopg

    params = {"now": 2.0, "owner": "o", "lease_until": 60.0, "limit": 16, "window": 64}
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("EXPLAIN " + postgres_store._CLAIM_OLDEST, params).fetchall()
    return "\n".join(r[0] for r in rows)


@pytest.mark.postgres
def test_a_relay_analyzes_a_never_analyzed_backlog_at_its_first_claim(pg_url: str) -> None:
    store = _fresh_store(pg_url)
    _fill(store, BULK_EVENTS - 1)  # batches too small for the producer to look
    assert _analyzed(pg_url) == (-1.0, 0)  # what the relay meets: no statistics at all
    relay = PostgresStore(pg_url)
    try:
        assert len(relay.claim(_terms(2.0))) == 4
        reltuples, analyzes = _analyzed(pg_url)
        assert reltuples == _ROWS and analyzes == 1
        plan = _claim_plan(pg_url)
        assert "Index Cond: (id = ANY" in plan, plan  # the window's ids, not the backlog
        assert "BitmapAnd" not in plan, plan
        # Known now: the next looks (one every LOOK_INTERVAL) find nothing to do.
        for n in range(1, 4):
            relay.claim(_terms(2.0 + n * LOOK_INTERVAL))
        assert _analyzed(pg_url)[1] == 1
    finally:
        relay.close()
        store.close()


@pytest.mark.postgres
def test_a_burst_after_a_drain_is_analyzed_again_however_small(pg_url: str) -> None:
    """An ``ANALYZE`` that took holds nothing back: once the backlog is gone and the
    statistics say so (autovacuum's pass), a new burst no bigger than the first is
    analyzed at the relay's next look, not only once twice as many rows are open."""
    import psycopg

    store = _fresh_store(pg_url)
    _fill(store, BULK_EVENTS - 1)
    relay = PostgresStore(pg_url)
    try:
        relay.claim(_terms(2.0))
        assert _analyzed(pg_url) == (_ROWS, 1)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DELETE FROM alertwire_events")  # delivered and purged
            conn.execute("ANALYZE " + ", ".join(_TABLES))  # what autovacuum then does
        assert _analyzed(pg_url) == (0.0, 2)
        _fill(store, BULK_EVENTS - 1)  # as many as before, in batches the producer skips
        relay.claim(_terms(2.0 + LOOK_INTERVAL))
        assert _analyzed(pg_url) == (_ROWS, 3)
    finally:
        relay.close()
        store.close()


@pytest.mark.postgres
def test_a_bulk_enqueue_into_a_table_analyzed_empty_analyzes_it(pg_url: str) -> None:
    """Statistics of an empty table made the enqueue's "no active row of this key"
    test a sequential scan on a connection that kept the plan: every batch slower
    than the one before, until something analyzed the table again."""
    import psycopg

    store = _fresh_store(pg_url)
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ANALYZE " + ", ".join(_TABLES))
        assert _analyzed(pg_url) == (0.0, 1)
        _fill(store, BULK_EVENTS)
        reltuples, analyzes = _analyzed(pg_url)
        assert reltuples >= MIN_OPEN_ROWS and analyzes == 2
    finally:
        store.close()


@pytest.mark.postgres
def test_a_small_backlog_is_left_to_autovacuum(pg_url: str) -> None:
    store = _fresh_store(pg_url)
    try:
        store.enqueue_many([_event(n, keys=BULK_EVENTS) for n in range(BULK_EVENTS)], now=1.0)
        assert len(store.claim(_terms(2.0))) == 4
        assert _analyzed(pg_url) == (-1.0, 0)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_role_that_may_not_analyze_says_so_once(
    pg_url: str, postgres_cluster: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """Not the tables' owner: the server skips them (a WARNING in its own log); the
    relay says so once, at WARNING, and does not try again at every look."""
    import psycopg

    store = _fresh_store(pg_url)
    _fill(store, BULK_EVENTS - 1)
    role, password = "r_" + secrets.token_hex(4), secrets.token_hex(12)
    schema = pg_url.rsplit("%3D", 1)[1]
    cluster = postgres_cluster
    cluster.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}';")
    relay = None
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:  # the owner grants the rest
            conn.execute(f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}")
            conn.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
            )
        relay = PostgresStore(
            pg_url.replace(f"{cluster.user}:{cluster.password}@", f"{role}:{password}@")
        )
        with caplog.at_level(logging.INFO, logger="alertwire.outbox"):
            for n in range(3):
                assert len(relay.claim(_terms(2.0 + n * LOOK_INTERVAL))) == 4
        said = [r for r in caplog.records if "event=outbox_not_analyzed" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.WARNING
        assert "their owner may" in said[0].getMessage()
        assert not [r for r in caplog.records if "event=outbox_analyzed" in r.getMessage()]
        assert _analyzed(pg_url) == (-1.0, 0)
    finally:
        if relay is not None:
            relay.close()
        store.close()
        cluster.psql(f"DROP OWNED BY {role}; DROP ROLE {role};", database=cluster.database)


def test_only_an_underestimate_of_enough_open_rows_is_stale() -> None:
    assert is_stale(MIN_OPEN_ROWS, 0.0, tried_at=0)
    assert not is_stale(MIN_OPEN_ROWS - 1, 0.0, tried_at=0)  # autovacuum's to handle
    assert not is_stale(10_000, 5_000.0, tried_at=0)  # within a factor of two
    assert is_stale(10_001, 5_000.0, tried_at=0)
    assert not is_stale(10_000, 1e9, tried_at=0)  # an overestimate is harmless
    # Tried at 10,000 and still unknown (a role that may not analyze): not again
    # until the open rows have doubled.
    assert not is_stale(20_000, 0.0, tried_at=10_000)
    assert is_stale(20_001, 0.0, tried_at=10_000)


def test_a_relay_looks_at_its_first_claim_then_every_interval() -> None:
    class Conn:
        """Answers the look: 100 open rows (too few to analyze), so nothing else runs."""

        def __init__(self) -> None:
            self.looks = 0

        def execute(self, sql: str) -> Any:
            assert "alertwire_counts" in sql
            self.looks += 1
            return self

        def fetchone(self) -> tuple[int]:
            return (100,)

    watch, conn = StatisticsWatch(), Conn()
    # The first claim, half an interval later, an interval later, the clock set back.
    for now, due in (
        (100.0, True),
        (100.0 + LOOK_INTERVAL / 2, False),
        (100.0 + LOOK_INTERVAL, True),
        (90.0, True),
    ):
        assert watch.take_look(now) is due
        assert watch.take_look(now) is False  # taken: not due again at the same time
    assert watch.keep_up(conn) is False  # 100 open rows: never analyzed
    assert conn.looks == 1  # each keep_up looks (a producer's batch: every time)


def test_in_an_outage_a_relay_cycle_tries_to_connect_once() -> None:
    """A server nobody answers on: each claim fails to connect. The look due at the
    first claim is taken all the same, so the next cycles (within the interval) try
    the claim's connection only, not the look's before it (against a server that
    drops packets each try costs the connect timeout)."""
    store = PostgresStore(f"postgresql://aw:pw@127.0.0.1:{free_port()}/alertwire")
    looks: list[None] = []
    keep = store._keep_statistics

    def counting(*args: Any) -> None:
        looks.append(None)
        keep(*args)

    store._keep_statistics = counting  # type: ignore[method-assign]
    try:
        for n in range(3):
            with pytest.raises(OutboxError) as caught:
                store.claim(_terms(2.0 + n))
            assert caught.value.retryable
        assert len(looks) == 1
    finally:
        store.close()


def test_planned_rows_reads_explains_json_as_text_or_decoded() -> None:
    plan = [{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 572}}]
    assert planned_rows(plan) == 572.0
    assert planned_rows('[{"Plan": {"Plan Rows": 35}}]') == 35.0
