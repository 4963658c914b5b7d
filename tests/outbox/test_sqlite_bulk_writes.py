"""``SQLiteStore.tune_for_bulk_writes``: a bulk producer's own connections only, same durability.

``send --queue`` opts in for its connection (a bigger page cache, rarer
checkpoints: docs/cli.md, ``send --queue``). What must hold: the store that
opted in gets both settings on every connection it opens, on any thread;
another store on the same file keeps SQLite's defaults (the settings are
per connection, never written to the file); and ``synchronous`` stays FULL,
so a commit is fsynced exactly as before.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alertwire.outbox import Outbox
from alertwire.outbox.sqlite import SQLiteStore

DEFAULT_CACHE = -2000  # SQLite's default: 2,000 KiB
DEFAULT_CHECKPOINT = 1000


def _settings(store: SQLiteStore) -> tuple[int, int, int]:
    conn = store._connect()
    return (
        conn.execute("PRAGMA cache_size").fetchone()[0],
        conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
        conn.execute("PRAGMA synchronous").fetchone()[0],
    )


def test_the_store_that_opts_in_is_tuned_on_every_thread_and_no_other(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as bulk, Outbox(path) as other:
        assert isinstance(bulk.store, SQLiteStore) and isinstance(other.store, SQLiteStore)
        bulk.store.tune_for_bulk_writes()
        assert _settings(bulk.store) == (-16384, 16000, 2)  # synchronous=FULL kept
        seen: list[tuple[int, int, int]] = []
        store = bulk.store

        def on_another_thread() -> None:
            seen.append(_settings(store))

        worker = threading.Thread(target=on_another_thread)
        worker.start()
        worker.join()
        assert seen == [(-16384, 16000, 2)]
        assert _settings(other.store) == (DEFAULT_CACHE, DEFAULT_CHECKPOINT, 2)
    with Outbox(path) as reopened:  # nothing of it was stored in the file
        assert isinstance(reopened.store, SQLiteStore)
        assert _settings(reopened.store) == (DEFAULT_CACHE, DEFAULT_CHECKPOINT, 2)
