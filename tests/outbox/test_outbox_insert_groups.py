"""The SQLite store inserts a batch in groups of rows per statement, with the same rules.

``enqueue_many`` writes up to 128 rows per ``INSERT`` (one statement per row
paid for a statement journal and the triggers' set-up each time). What must
not change with it: ids in the order given, the head flag on exactly the
first active row of each key (the triggers see the rows before them in the
same statement), the state counters, and all or nothing for the whole batch.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from alertwire import OutboxError
from alertwire._secret import Secret
from alertwire.outbox.machine import NewEvent, State, order_key, route_key
from alertwire.outbox.sqlite import SQLiteStore
from alertwire.outbox.sqlite.store import _insert_all

KEYS = [f"R{n:031d}" for n in range(3)]
#: More than two groups of 128 rows, with keys repeated inside each group and across them.
BATCH = 300


def _event(n: int) -> NewEvent:
    credential = Secret(KEYS[n % len(KEYS)])
    route = route_key("pagerduty.alert", credential)
    return NewEvent(
        kind="pagerduty.alert",
        route=route,
        order_key=order_key(route, f"k{n % 11}"),
        credential=credential,
        body=f'{{"n":{n}}}'.encode(),
        dedup_key=f"k{n % 11}",
    )


def test_a_batch_of_several_groups_keeps_order_heads_and_counters(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "o.sqlite3")
    events = [_event(n) for n in range(BATCH)]
    ids = store.enqueue_many(events, now=1000.0)
    later = store.enqueue_many([_event(BATCH)], now=1001.0)
    store.close()

    assert ids == list(range(ids[0], ids[0] + BATCH))
    assert later == [ids[-1] + 1]
    conn = sqlite3.connect(tmp_path / "o.sqlite3")
    rows = conn.execute("SELECT id, body, order_key, head, created_at FROM events ORDER BY id")
    stored = rows.fetchall()
    assert [(r[0], r[1]) for r in stored[:BATCH]] == [
        (i, e.body) for i, e in zip(ids, events, strict=True)
    ]
    assert {r[4] for r in stored[:BATCH]} == {1000.0}
    first_of_key: dict[str, int] = {}
    for event_id, _, key, _, _ in stored:
        first_of_key.setdefault(key, event_id)
    assert [r[0] for r in stored if r[3] == 1] == sorted(first_of_key.values())
    counts = dict(conn.execute("SELECT state, n FROM counts").fetchall())
    assert counts[int(State.PENDING)] == BATCH + 1
    conn.close()


def test_ids_are_the_stored_rows_after_the_newest_rows_were_deleted(tmp_path: Path) -> None:
    """The ids come from the cursor (the last one and the count), not from the rows:
    they must still be the rows' own when the newest ids were deleted (a purge), so
    the next id is past every id the table ever had, not past the highest left."""
    store = SQLiteStore(tmp_path / "o.sqlite3")
    first = store.enqueue_many([_event(n) for n in range(BATCH)], now=1000.0)
    conn = sqlite3.connect(tmp_path / "o.sqlite3")
    with conn:
        conn.execute("DELETE FROM events WHERE id > ?", (first[100],))
    events = [replace(_event(n), body=f'{{"again":{n}}}'.encode()) for n in range(BATCH)]
    ids = store.enqueue_many(events, now=1001.0)
    store.close()
    assert ids[0] == first[-1] + 1
    stored = dict(conn.execute("SELECT body, id FROM events WHERE id > ?", (first[100],)))
    conn.close()
    assert [stored[e.body] for e in events] == ids


def test_a_row_refused_in_a_later_group_stores_nothing_of_the_batch(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "o.sqlite3")
    events = [_event(n) for n in range(BATCH)]
    events[200] = replace(events[200], body=cast(bytes, None))  # NOT NULL: SQLite refuses it
    with pytest.raises(OutboxError, match=f"store {BATCH} events.*NOT queued"):
        store.enqueue_many(events, now=1000.0)
    assert store.stats().pending == 0
    assert store.enqueue_many([_event(0)], now=1001.0) == [1]
    store.close()


@pytest.mark.parametrize("now", [False, True], ids=["enqueue_many", "enqueue_many_now"])
def test_a_refused_row_of_a_one_statement_batch_leaves_no_transaction_open(
    tmp_path: Path, now: bool
) -> None:
    """A batch of one ``INSERT`` is a transaction of its own (no BEGIN/COMMIT around
    it): a refused row stores none of it, leaves this thread's connection outside any
    transaction, and the next write (either way) stores as usual."""
    store = SQLiteStore(tmp_path / "o.sqlite3")
    assert store.enqueue_many([_event(0)], now=1000.0) == [1]
    events = [_event(n) for n in range(1, 11)]
    events[5] = replace(events[5], body=cast(bytes, None))  # NOT NULL: SQLite refuses it
    write = store.enqueue_many_now if now else store.enqueue_many
    with pytest.raises(OutboxError, match=r"store 10 events.*NOT queued"):
        write(events, now=1001.0)
    assert not store._connect().in_transaction
    assert store.stats().pending == 1
    assert write([_event(11)], now=1002.0) == [2]  # rolled back whole, ids included
    assert store.enqueue_many([_event(12)], now=1003.0) == [3]
    assert store.stats().pending == 3
    store.close()


def test_a_batch_of_more_than_one_statement_is_never_written_without_waiting(
    tmp_path: Path,
) -> None:
    """The non-waiting write takes one ``INSERT`` (128 rows) at most: a bigger batch is
    answered ``None`` (not stored, for the thread that may wait), which then stores
    it whole."""
    store = SQLiteStore(tmp_path / "o.sqlite3")
    store.migrate()
    events = [_event(n) for n in range(129)]
    assert store.enqueue_many_now(events, now=1000.0) is None
    assert store.stats().pending == 0
    assert store.enqueue_many_now(events[:128], now=1000.0) == list(range(1, 129))
    assert store.enqueue_many(events, now=1001.0) == list(range(129, 258))
    assert store.stats().pending == 257
    store.close()


def _assert_stored_as_given(path: Path, ids: list[int], events: list[NewEvent]) -> None:
    """Each row at ``path`` is the event given for its id, destination and all."""
    conn = sqlite3.connect(path)
    stored = conn.execute(
        "SELECT id, kind, route, order_key, dedup_key, base_url, credential, body"
        " FROM events ORDER BY id"
    ).fetchall()
    conn.close()
    assert stored == [
        (i, e.kind, e.route, e.order_key, e.dedup_key, e.base_url, e.credential.reveal(), e.body)
        for i, e in zip(ids, events, strict=True)
    ]


@pytest.mark.parametrize("size", [4, 200], ids=["one statement", "two statements"])
@pytest.mark.parametrize("differing", ["kind", "base_url", "credential", "none"])
def test_rows_that_differ_only_in_one_destination_field_each_keep_their_own(
    tmp_path: Path, differing: str, size: int
) -> None:
    """A group whose rows all have one destination binds it once; a row that differs
    in one field of it (kind, base URL, credential) must not take the first row's
    value: each row is stored with its own (with 200 rows the row differs in the
    second statement, the first being all one destination)."""
    credential = Secret(KEYS[0])
    route = route_key("pagerduty.alert", credential)
    first = NewEvent(
        kind="pagerduty.alert",
        route=route,
        order_key=order_key(route, "k0"),
        credential=credential,
        body=b'{"n":0}',
        dedup_key="k0",
    )
    changes: dict[str, dict[str, Any]] = {
        "kind": {"kind": "pagerduty.change"},
        "base_url": {"base_url": "https://a.example"},
        # The same key in another Secret is the same destination; another key is not.
        "credential": {"credential": Secret(KEYS[1])},
        "none": {"credential": Secret(KEYS[0])},
    }
    events = [
        replace(first, order_key=order_key(route, f"k{n}"), body=f'{{"n":{n}}}'.encode())
        for n in range(size)
    ]
    events[-2] = replace(events[-2], **changes[differing])
    store = SQLiteStore(tmp_path / "o.sqlite3")
    ids = store.enqueue_many(events, now=1000.0)
    store.close()
    _assert_stored_as_given(tmp_path / "o.sqlite3", ids, events)


def _insert_counting(
    path: Path, events: list[NewEvent], variable_limit: int | None = None
) -> tuple[list[int], list[int]]:
    """``_insert_all(events)`` in one transaction on a new store at ``path``: the ids,
    and the number of parameters of each INSERT statement it ran (in order)."""
    store = SQLiteStore(path)
    conn = store._connect()
    if variable_limit is not None:
        cast(Any, conn).setlimit(cast(Any, sqlite3).SQLITE_LIMIT_VARIABLE_NUMBER, variable_limit)
    inserts: list[int] = []

    class Counting:
        """The connection, counting the parameters of each INSERT run on it."""

        def __getattr__(self, name: str) -> Any:
            return getattr(conn, name)

        def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
            if sql.startswith("INSERT OR ROLLBACK INTO events"):
                inserts.append(len(params))
            return conn.execute(sql, params)

    conn.execute("BEGIN IMMEDIATE")
    ids = _insert_all(cast(sqlite3.Connection, Counting()), events, 1000.0)
    conn.execute("COMMIT")
    store.close()
    return ids, inserts


#: Two whole bulk statements and a rest, for one destination.
BULK_BATCH = 2 * 5000 + 77


def _one_destination(n: int) -> NewEvent:
    return replace(_event(n * len(KEYS)), body=f'{{"n":{n}}}'.encode())  # always KEYS[0]


@pytest.mark.parametrize(
    ("variable_limit", "statements"),
    # 5,000 rows per statement, then 77; with room for 331 rows only: 30 of those,
    # then the rest 128 at a time (128 + 19).
    [(None, 3), (999, 32)],
    ids=["default limit", "limit lowered to 999"],
)
def test_a_big_batch_to_one_destination_goes_in_big_statements_within_the_limit(
    tmp_path: Path, variable_limit: int | None, statements: int
) -> None:
    """``Outbox.put`` of a ``send --queue`` chunk: while 5,000 rows with one destination
    are left they are one statement (one release of the GIL for all of them, so the
    thread storing them and the one preparing the next chunk run side by side), never
    more variables than the library allows, and the same ids, order and heads."""
    events = [_one_destination(n) for n in range(BULK_BATCH)]
    ids, inserts = _insert_counting(tmp_path / "o.sqlite3", events, variable_limit)

    assert len(inserts) == statements
    assert ids == list(range(1, BULK_BATCH + 1))
    check = sqlite3.connect(tmp_path / "o.sqlite3")
    stored = check.execute("SELECT id, body, order_key, head FROM events ORDER BY id").fetchall()
    check.close()
    assert [(r[0], r[1]) for r in stored] == [(i, e.body) for i, e in zip(ids, events, strict=True)]
    first_of_key: dict[str, int] = {}
    for event_id, _, key, _ in stored:
        first_of_key.setdefault(key, event_id)
    assert [r[0] for r in stored if r[3] == 1] == sorted(first_of_key.values())


def _switching(n: int) -> NewEvent:
    """Runs of 4,000 rows to one key, the next run to another: never 5,000 alike."""
    return _one_destination(n) if n // 4000 % 2 == 0 else _event(n * len(KEYS) + 1)


def _mixed_then_one(n: int) -> NewEvent:
    """100 rows over three routing keys, then rows all to KEYS[0]."""
    return _event(n) if n < 100 else _one_destination(n)


@pytest.mark.parametrize(
    ("make", "rows", "bulk_statements", "statements"),
    [
        # Checks at rows 0, 4,096, 8,064, 12,032 find the next run's first row; all
        # 125 statements are of 128 rows (the last of 0).
        (_switching, 16_000, 0, 125),
        # The check at row 0 finds row 1 of another key: one statement of 128 rows,
        # then 5,000 at row 128 and 5,128, and the last 1,972 in 16 statements.
        (_mixed_then_one, 12_100, 2, 1 + 2 + 16),
    ],
    ids=["runs of 4,000", "100 mixed, then one destination"],
)
def test_a_big_batch_of_mixed_destinations_compares_each_row_about_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: Any,
    rows: int,
    bulk_statements: int,
    statements: int,
) -> None:
    """A batch of more than 5,000 rows of several destinations: the bulk check
    compares each row about once (a check again at every 128-row step compared up to
    5,000 rows per 128 written), a run of one destination after mixed rows still
    goes as one statement, and every row is stored with its own destination."""
    from alertwire.outbox.sqlite import store as store_module

    compared: list[int] = []
    shared = store_module._shared

    def counting(group: Any, now: float) -> list[object] | int:
        found = shared(group, now)
        if len(group) == 5000:
            compared.append(found if isinstance(found, int) else len(group))
        return found

    monkeypatch.setattr(store_module, "_shared", counting)
    events = [make(n) for n in range(rows)]
    ids, inserts = _insert_counting(tmp_path / "o.sqlite3", events)

    assert sum(compared) <= rows
    assert inserts.count(5 + 3 * 5000) == bulk_statements
    assert len(inserts) == statements
    assert ids == list(range(1, rows + 1))
    _assert_stored_as_given(tmp_path / "o.sqlite3", ids, events)
