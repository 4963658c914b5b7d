"""Is the outbox writable right now? The answer behind ``GET /healthz``.

Only a real write can tell: a full disk, an immutable file or a read-only
mount all let a file be opened and read. For SQLite the probe is one
transaction that rewrites the database header's ``user_version`` with its
own value (one WAL frame, one fsync with ``synchronous=FULL``, no change to
any row), on the ingest writer's thread so it never races a group commit.
Other stores (PostgreSQL) are probed with a read of the queue statistics,
and every store also reports the last failed commit until a commit succeeds.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from .._errors import AlertwireError

__all__ = ["WriteProbe"]


class WriteProbe:
    """``probe()`` returns ``None`` when the store took a write, else the reason (no path)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        path = getattr(store, "path", None)
        self._path: Path | None = path if isinstance(path, Path) else None
        self._conn: sqlite3.Connection | None = None

    def probe(self) -> str | None:
        if self._path is None:
            try:
                self._store.stats()
            except AlertwireError as exc:
                from ._sink import store_failure_reason

                return store_failure_reason(exc)
            return None
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute(f"PRAGMA user_version = {int(version)}")
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            from ._sink import explain_sqlite

            self.close()  # a fresh connection next time: the fault may be cleared by then
            return explain_sqlite(exc)
        return None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            from ..outbox.sqlite import configure

            assert self._path is not None
            # mode=rw: never create the file (that is the store's job, with its permissions).
            conn = sqlite3.connect(
                f"file:{self._path}?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            configure(conn)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
