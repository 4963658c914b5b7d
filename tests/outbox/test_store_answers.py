"""Stores answer for themselves: a write probe and an explanation, both on the Store protocol.

Ingest asks the store (never a store module) whether it takes writes and what
went wrong, so a new store needs no change to ingest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alertwire import OutboxError
from alertwire.outbox.machine import Store, public_reason
from alertwire.outbox.postgres import PostgresStore
from alertwire.outbox.sqlite import SQLiteStore


def test_the_store_protocol_declares_the_probe_and_the_explanation() -> None:
    assert callable(getattr(Store, "check_writable", None))
    assert callable(getattr(Store, "explain", None))
    assert callable(getattr(Store, "is_passing", None))


def test_sqlite_probes_with_a_real_write_and_explains_a_damaged_file(tmp_path: Path) -> None:
    good = SQLiteStore(tmp_path / "good.sqlite3")
    good.check_writable()  # creates the file and takes a write
    good.close()
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"not a database, " * 512)
    store = SQLiteStore(damaged)
    with pytest.raises(OutboxError) as info:
        store.check_writable()
    reason = store.explain(info.value)
    assert reason == "the file is damaged or not an outbox"
    assert str(tmp_path) not in reason


def test_without_a_store_cause_the_reason_names_only_the_kind(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "outbox.sqlite3")
    secretive = OutboxError(f"cannot write {tmp_path}/outbox.sqlite3", retryable=True)
    assert store.explain(secretive) == "the outbox is unavailable for now"
    assert store.explain(OutboxError("x")) == "the outbox is unusable"
    assert public_reason(RuntimeError("x")) == "RuntimeError"


def test_postgres_explains_by_kind_never_the_server() -> None:
    store = PostgresStore("postgresql://aw:hunter2@db.internal.example:5432/alerts")
    error = OutboxError("cannot enqueue in the outbox db.internal.example/alerts", retryable=True)
    assert store.explain(error) == "the outbox is unavailable for now"
    store.close()


def test_postgres_passing_is_its_flag() -> None:
    """PostgreSQL maps each failure with its own passing rule and raises it without a
    cause, so the flag is the whole answer (no server needed: nothing is opened)."""
    store = PostgresStore("postgresql://aw@db.internal.example:5432/alerts")
    assert store.is_passing(OutboxError("lost connection", retryable=True))
    assert not store.is_passing(OutboxError("password authentication failed"))
    store.close()
