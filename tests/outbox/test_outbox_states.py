"""The outbox states are named once (``alertwire.outbox.states``) and every store keeps them.

Two checks: the stores' SQL sources carry no state number written by hand
(every one comes from the enum), and driving every move through each store
(SQLite and PostgreSQL, through the shared ``outbox`` fixture) shows exactly
the moves :data:`~alertwire.outbox.states.TRANSITIONS` allows, read back from
the database row itself.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import pkgutil
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from alertwire import Secret
from alertwire.outbox import Outbox
from alertwire.outbox.machine import (
    ClaimTerms,
    Delivered,
    MarkDead,
    NewEvent,
    Reschedule,
    Store,
)
from alertwire.outbox.sqlite import SQLiteStore
from alertwire.outbox.sqlite._schema import MIGRATIONS
from alertwire.outbox.states import ACTIVE, FINISHED, TRANSITIONS, State

# ---------------------------------------------------------------- no magic numbers

#: How a state number would be written by hand in SQL: a comparison with ``state``,
#: a column default, a CASE arm, a VALUES row of numbers, the counters' ``s = 0``.
_BARE_STATE = re.compile(
    r"\bstate\s*(?:=|<>|!=|\bIN\b)\s*\(?\s*\d"
    r"|\bstate\b[^,\n]*\bDEFAULT\s+\d"
    r"|\bTHEN\s+\d"
    r"|\bVALUES\s*\(\s*\(?\s*\d"
    r"|\(\s*s\s*=\s*\d",
    re.IGNORECASE,
)


def _store_modules() -> Iterator[ModuleType]:
    """The stores' modules: each store package's sub-modules (or a single module)."""
    for name in ("alertwire.outbox.sqlite", "alertwire.outbox.postgres"):
        module = importlib.import_module(name)
        yield module
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
            yield importlib.import_module(f"{name}.{info.name}")


def _string_parts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every piece of string text written in the source, f-string parts included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_state_number_is_written_by_hand_in_the_stores_sql() -> None:
    found: list[str] = []
    modules = list(_store_modules())
    assert len(modules) >= 2
    for module in modules:
        source = inspect.getsource(module)
        for line, text in _string_parts(ast.parse(source)):
            for match in _BARE_STATE.finditer(text):
                found.append(f"{module.__name__}:{line}: {match.group(0)!r}")
    assert found == []


def test_the_pattern_finds_what_a_hand_written_state_looks_like() -> None:
    """The check above would see a number written by hand (it is not blind)."""
    for written in (
        "WHERE state IN (0, 1)",
        "AND x.state = 1",
        "state smallint NOT NULL DEFAULT 0,",
        "WHEN OLD.state = 1 THEN 0 ELSE",
        "INSERT INTO counts (state, n) VALUES (0, 0), (1, 0)",
        "FROM (VALUES (0), (2), (3))",
        "OR (s = 0 AND e.state",
    ):
        assert _BARE_STATE.search(written), written
    for fine in ("state = :state", "state = %(pending)s", "attempts = 0", "head = 1"):
        assert not _BARE_STATE.search(fine), fine


def test_states_contract() -> None:
    assert set(State) == ACTIVE | FINISHED and not ACTIVE & FINISHED
    assert set(TRANSITIONS) == set(State)
    # Every state is reachable from PENDING, and nothing leaves DELIVERED.
    seen, todo = {State.PENDING}, [State.PENDING]
    while todo:
        for nxt in TRANSITIONS[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(State)
    assert TRANSITIONS[State.DELIVERED] == frozenset()


# ---------------------------------------------------------------- every move, both stores

_NOW = 1_000_000.0
_LEASE = 60.0


def _state_reader(target: str) -> Callable[[int], State]:
    """Reads one row's ``state`` straight from the database (not through the store)."""
    if target.startswith("postgresql://"):
        import psycopg

        def read_pg(event_id: int) -> State:
            with psycopg.connect(target, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT state FROM alertwire_events WHERE id = %(id)s", {"id": event_id}
                ).fetchone()
            assert row is not None
            return State(row[0])

        return read_pg

    def read_sqlite(event_id: int) -> State:
        conn = sqlite3.connect(target)
        try:
            row = conn.execute("SELECT state FROM events WHERE id = ?", (event_id,)).fetchone()
        finally:
            conn.close()
        assert row is not None
        return State(row[0])

    return read_sqlite


class _Driver:
    """One row at a time, each with its own key, moved with the store's own operations."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.keys = itertools.count()
        self.now = _NOW

    def tick(self) -> float:
        self.now += 10 * _LEASE  # past any lease taken before
        return self.now

    def new(self) -> int:
        n = next(self.keys)
        event = NewEvent(
            kind="pagerduty.alert",
            route=f"route-{n}",
            order_key=f"key-{n}",
            credential=Secret(f"R{n:031d}"),
            body=b"{}",
        )
        (event_id,) = self.store.enqueue_many([event], now=self.tick())
        return event_id

    def claim(self, owner: str) -> list[int]:
        now = self.tick()
        rows = self.store.claim(
            ClaimTerms(owner=owner, now=now, lease_until=now + _LEASE, limit=10, pace_interval=0)
        )
        return [r.id for r in rows]

    def settle(self, outcome: Any, owner: str) -> bool:
        (applied,) = self.store.settle([outcome], owner=owner)
        return applied

    def attempt(self, event_id: int, to: State) -> bool:
        """Every store operation that could move a row to ``to``; whether one accepted."""
        if to is State.LEASED:
            return event_id in self.claim("taker")
        if to is State.PENDING:
            rescheduled = self.settle(Reschedule(event_id, self.now, "try later", 503), "owner")
            return rescheduled or self.store.retry_dead([event_id], now=self.tick()) > 0
        if to is State.DELIVERED:
            return self.settle(Delivered(event_id, self.now, 202), "owner")
        return self.settle(MarkDead(event_id, self.now, "rejected", 400), "owner")

    def put_in(self, state: State) -> int:
        """A new row in ``state``, leased (if so) by ``owner``, nothing else claimable."""
        event_id = self.new()
        if state is State.PENDING:
            return event_id
        assert self.claim("owner") == [event_id]
        if state is State.DELIVERED:
            assert self.settle(Delivered(event_id, self.now, 202), "owner")
        elif state is State.DEAD:
            assert self.settle(MarkDead(event_id, self.now, "rejected", 400), "owner")
        return event_id

    def finish(self, event_id: int, state: State) -> None:
        """Take the row out of the way of the next scenario (nothing left claimable)."""
        if state is State.PENDING:
            self.claim("cleaner")
            state = State.LEASED
            owner = "cleaner"
        else:
            owner = "taker" if state is State.LEASED else "owner"
        if state is State.LEASED:
            for who in (owner, "owner", "taker"):
                if self.settle(Delivered(event_id, self.now, 202), who):
                    break


def test_the_stores_allow_exactly_the_named_transitions(outbox: Outbox, outbox_target: str) -> None:
    read = _state_reader(outbox_target)
    drive = _Driver(outbox.store)
    allowed: set[tuple[State, State]] = set()
    refused: set[tuple[State, State]] = set()
    for start, to in itertools.product(State, State):
        event_id = drive.put_in(start)
        assert read(event_id) is start
        accepted = drive.attempt(event_id, to)
        assert read(event_id) is (to if accepted else start), (start, to, accepted)
        (allowed if accepted else refused).add((start, to))
        drive.finish(event_id, read(event_id))
    expected = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert allowed == expected
    assert refused == set(itertools.product(State, State)) - expected


# ---------------------------------------------------------------- the schema did not move

_DATA = Path(__file__).resolve().parents[1] / "data"
_SQLITE_SCHEMA_V2 = _DATA / "outbox_sqlite_schema_v2.sql"
_SQLITE_SCHEMA_V3 = _DATA / "outbox_sqlite_schema_v3.sql"
_SQLITE_SCHEMA_V4 = _DATA / "outbox_sqlite_schema_v4.sql"


def _sqlite_master(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    return "\n".join(f"-- {kind} {name}\n{sql};\n" for kind, name, sql in rows)


def test_the_sqlite_migrations_to_version_2_still_make_its_schema_text(tmp_path: Path) -> None:
    """Byte for byte what the hand-written SQL made (the file was written by the code
    before the states were named): building the SQL from the enum changed no
    schema, so existing outboxes need no migration. A released version's text
    never changes; a new version adds a migration and a new expected file."""
    path = tmp_path / "outbox.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE alertwire_schema (version INTEGER NOT NULL)")
    for version in (1, 2):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
    conn.close()
    assert _sqlite_master(path) == _SQLITE_SCHEMA_V2.read_text()


def test_the_sqlite_migrations_to_version_3_still_make_its_schema_text(tmp_path: Path) -> None:
    """Version 3's text, as released (tests/data/outbox_sqlite_schema_v3.sql): the
    files version 4 migrates were built from it."""
    path = tmp_path / "outbox.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE alertwire_schema (version INTEGER NOT NULL)")
    for version in (1, 2, 3):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
    conn.close()
    assert _sqlite_master(path) == _SQLITE_SCHEMA_V3.read_text()


def test_a_fresh_sqlite_outbox_has_the_schema_text_of_version_4(tmp_path: Path) -> None:
    """The current version's text, as released (tests/data/outbox_sqlite_schema_v4.sql)."""
    path = tmp_path / "outbox.sqlite3"
    store = SQLiteStore(path)
    assert store.migrate() == 4
    store.close()
    assert _sqlite_master(path) == _SQLITE_SCHEMA_V4.read_text()
