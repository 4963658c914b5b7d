"""A batch of alerts to one routing key goes to the SQLite store as a RowGroup.

``Outbox.enqueue_many`` hands the store the batch's destination once and each
row's own parts (``RowGroup``), not a ``NewEvent`` per event. What must not
change with it: the rows stored (every column, ids in the order given), the head
flags and counters, all or nothing, what a store without ``enqueue_group``
stores (it gets ``RowGroup.events()``), and what ``enqueue_many`` returns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from alertwire import Change, OutboxError, Secret, TriggerAlert
from alertwire.outbox import Outbox
from alertwire.outbox.machine import NewEvent, RowGroup, RowParts, order_keys, route_key
from alertwire.outbox.sqlite import SQLiteStore
from tests.support.keys import ROUTING_KEY as KEY

_COLUMNS = (
    "SELECT id, state, kind, route, order_key, dedup_key, base_url, credential, body,"
    " created_at, age_from, not_before, head FROM events ORDER BY id"
)


def _stored(path: Path) -> tuple[list[Any], list[Any]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(_COLUMNS).fetchall()
        counts = conn.execute("SELECT state, n FROM counts ORDER BY state").fetchall()
    finally:
        conn.close()
    return rows, counts


def _group(size: int, base_url: str | None = None) -> RowGroup:
    credential = Secret(KEY)
    route = route_key("pagerduty.alert", credential)
    key = order_keys(route)
    # Keys repeat inside the group, so some rows are heads and some wait behind them.
    parts: list[RowParts] = [
        ("pagerduty.alert", key(f"alert:k{n % 7}"), f"k{n % 7}", f'{{"n":{n}}}'.encode())
        for n in range(size)
    ]
    return RowGroup("pagerduty.alert", route, credential, base_url, parts)


@pytest.mark.parametrize("size", [0, 1, 100, 128, 129, 300])
@pytest.mark.parametrize("base_url", [None, "https://events.example"])
def test_a_group_is_stored_as_its_events_are(
    tmp_path: Path, size: int, base_url: str | None
) -> None:
    group = _group(size, base_url)
    as_group, as_events = SQLiteStore(tmp_path / "g.sqlite3"), SQLiteStore(tmp_path / "e.sqlite3")
    try:
        # A row stored before, of a key the group repeats: its rows wait behind it.
        earlier = group.events()[:1] or _group(1, base_url).events()
        assert as_group.enqueue_many(earlier, now=999.0) == [1]
        assert as_events.enqueue_many(earlier, now=999.0) == [1]
        ids = as_group.enqueue_group(group, now=1000.0)
        assert ids == as_events.enqueue_many(group.events(), now=1000.0)
        assert ids == list(range(2, 2 + size))
    finally:
        as_group.close()
        as_events.close()
    rows, counts = _stored(tmp_path / "g.sqlite3")
    assert (rows, counts) == _stored(tmp_path / "e.sqlite3")
    assert [r[8] for r in rows[1:]] == [body for _, _, _, body in group.parts]
    assert all(r[6] == base_url for r in rows)


def test_the_events_of_a_group_are_its_rows() -> None:
    group = _group(3, "https://events.example")
    assert group.events() == [
        NewEvent(kind, group.route, key, group.credential, body, group.base_url, dedup_key)
        for kind, key, dedup_key, body in group.parts
    ]


@pytest.mark.parametrize("size", [10, 300])
def test_a_refused_row_stores_nothing_of_the_group(tmp_path: Path, size: int) -> None:
    group = _group(size)
    parts = list(group.parts)
    kind, key, dedup_key, _ = parts[size // 2]
    parts[size // 2] = (kind, key, dedup_key, cast(bytes, None))  # NOT NULL: SQLite refuses it
    refused = RowGroup(group.kind, group.route, group.credential, group.base_url, parts)
    store = SQLiteStore(tmp_path / "o.sqlite3")
    try:
        with pytest.raises(OutboxError, match=f"store {size} events.*NOT queued"):
            store.enqueue_group(refused, now=1000.0)
        assert not store._connect().in_transaction
        assert store.stats().pending == 0
        assert store.enqueue_group(_group(2), now=1001.0) == [1, 2]
    finally:
        store.close()


class _StoreWithoutGroups:
    """The SQLite store, as a store without ``enqueue_group`` (PostgreSQL's) is seen."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name == "enqueue_group":
            raise AttributeError(name)
        return getattr(self._store, name)


@pytest.fixture(params=["enqueue_group", "no enqueue_group"])
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outbox]:
    store = SQLiteStore(tmp_path / "o.sqlite3")
    with Outbox(
        store=store if request.param == "enqueue_group" else _StoreWithoutGroups(store)
    ) as box:
        yield box


def test_enqueue_many_stores_and_answers_the_same_with_or_without_groups(
    outbox: Outbox, tmp_path: Path
) -> None:
    events = [TriggerAlert(f"e{n}", source="h") for n in range(5)]
    events.append(TriggerAlert("own key", source="h", dedup_key="mine"))
    queued = outbox.enqueue_many(events, routing_key=KEY)
    assert [q.id for q in queued] == [1, 2, 3, 4, 5, 6]
    assert queued[5].dedup_key == "mine"
    rows, counts = _stored(tmp_path / "o.sqlite3")
    assert [r[5] for r in rows] == [q.dedup_key for q in queued]
    assert len({r[5] for r in rows}) == 6
    assert all(r[2] == "pagerduty.alert" and r[12] == 1 for r in rows)  # six keys, six heads
    assert dict(counts)[0] == 6


def test_a_batch_with_a_change_keeps_each_rows_kind(outbox: Outbox, tmp_path: Path) -> None:
    """A change event is not an alert: a batch holding one is not a group of alerts."""
    events: list[TriggerAlert | Change] = [
        TriggerAlert("a", source="h"),
        Change("deployed", source="ci"),
        TriggerAlert("b"),
    ]
    queued = outbox.enqueue_many(events, routing_key=KEY)
    assert queued[1].dedup_key is None
    rows, _ = _stored(tmp_path / "o.sqlite3")
    assert [r[2] for r in rows] == ["pagerduty.alert", "pagerduty.change", "pagerduty.alert"]
    assert [r[5] for r in rows] == [q.dedup_key for q in queued]
    assert len({r[4] for r in rows}) == 3
