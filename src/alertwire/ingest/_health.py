"""Is the outbox writable right now? The answer behind ``GET /healthz``.

Only a real write can tell: a full disk, an immutable file or a read-only
mount all let a file be opened and read. A store that can probe itself
(SQLite's :meth:`~alertwire.outbox.sqlite.SQLiteStore.check_writable`)
does one transaction that rewrites the database header's ``user_version``
with its own value (one WAL frame, one fsync with ``synchronous=FULL``, no
change to any row), on the ingest writer's thread so it never races a group
commit. Going through the store, not a connection of its own, matters:

* the probe waits for a lock exactly as an enqueue does (up to the busy
  timeout, including the waits SQLite's busy handler skips), so a lock held
  for a moment by another producer is not reported as an outage;
* the store creates a missing file (with its permissions): a ``/healthz``
  that came before the first event no longer answered "the file cannot be
  opened" for an outbox nobody had created yet.

Other stores (PostgreSQL) are probed with a read of the queue statistics,
and every store also reports the last failed commit until a commit succeeds.
"""

from __future__ import annotations

from typing import Any

from .._errors import AlertwireError

__all__ = ["WriteProbe"]


class WriteProbe:
    """``probe()`` returns ``None`` when the store took a write, else the reason (no path)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def probe(self) -> str | None:
        check = getattr(self._store, "check_writable", None)
        try:
            if check is not None:
                check()
            else:
                self._store.stats()
        except AlertwireError as exc:
            from ._sink import store_failure_reason

            return store_failure_reason(exc)
        return None

    def close(self) -> None:
        """Nothing of its own to close: the store's connections are the store's."""
