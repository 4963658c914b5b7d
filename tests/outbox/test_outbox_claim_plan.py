"""PostgreSQL's claim reads the window of oldest heads, then each of those rows by id.

A backlog where every event is its key's head (each alert its own dedup key: the
relay benchmarks' case) once made the planner read *every* due head through the
``heads_due`` index and sort them to meet a window of a few dozen ids: 0.28 s a
claim at 100,000 pending (docs/relay.md, "Heads"). The claim now hands the window
over as an array, so the rows are fetched by primary key; the plan says so.
"""

from __future__ import annotations

import pytest

from alertwire.outbox import postgres as postgres_store
from alertwire.outbox.postgres import PostgresStore
from tests.outbox.test_outbox_scaling import _event, pg_url

__all__ = ["pg_url"]  # the fixture: a fresh schema on the session's cluster


@pytest.mark.postgres
def test_the_oldest_heads_claim_fetches_the_window_by_id(pg_url: str) -> None:
    import psycopg

    store = PostgresStore(pg_url)
    for start in range(0, 6000, 1000):  # 6,000 keys: every row a head, every head due
        store.enqueue_many([_event(n, keys=6000) for n in range(start, start + 1000)], now=1.0)
    store.close()
    params = {"now": 2.0, "owner": "o", "lease_until": 60.0, "limit": 16, "window": 64}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
        plan = "\n".join(
            r[0] for r in conn.execute("EXPLAIN " + postgres_store._CLAIM_OLDEST, params)
        )
    assert "Index Cond: (id = ANY" in plan, plan
    assert "alertwire_events_heads_due" not in plan, plan
