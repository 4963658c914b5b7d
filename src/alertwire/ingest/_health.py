"""Is the outbox writable right now? The answer behind ``GET /healthz``.

Only a real write can tell: a full disk, an immutable file or a read-only
mount all let a file be opened and read. So the store is asked to prove it
(:meth:`~alertwire.outbox.Store.check_writable`: SQLite rewrites the database
header's ``user_version`` with its own value, one WAL frame and one fsync,
no change to any row; PostgreSQL reads its queue statistics), on the ingest
writer's thread so it never races a group commit, and says what went wrong in
its own words (:meth:`~alertwire.outbox.Store.explain`). Going through the
store, not a connection of its own, matters:

* the probe waits for a lock exactly as an enqueue does (up to the busy
  timeout, including the waits SQLite's busy handler skips), so a lock held
  for a moment by another producer is not reported as an outage;
* the store creates a missing file (with its permissions): a ``/healthz``
  that came before the first event no longer answered "the file cannot be
  opened" for an outbox nobody had created yet;
* ingest knows no store module: a new store answers for itself.

Every store also reports the last failed commit until a commit succeeds.
"""

from __future__ import annotations

from .._errors import AlertwireError
from ..outbox.machine import Store
from ._sink import store_failure_reason

__all__ = ["WriteProbe"]


class WriteProbe:
    """``probe()`` returns ``None`` when the store took a write, else the reason (no path)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def probe(self) -> str | None:
        try:
            self._store.check_writable()
        except AlertwireError as exc:
            return store_failure_reason(exc, self._store)
        return None

    def close(self) -> None:
        """Nothing of its own to close: the store's connections are the store's."""
