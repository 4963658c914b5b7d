"""The SQLite store: the embedded default outbox (the public names, where they were)."""

from __future__ import annotations

from .store import _COUNTS as _COUNTS
from .store import _EVENTS_V1 as _EVENTS_V1
from .store import _EXPIRED_HEADS as _EXPIRED_HEADS
from .store import _LEASE as _LEASE
from .store import _NEXT_LEASE_END as _NEXT_LEASE_END
from .store import _NEXT_ROUTE as _NEXT_ROUTE
from .store import _OLDEST_HEADS as _OLDEST_HEADS
from .store import _OLDEST_OPEN as _OLDEST_OPEN
from .store import _ROUTE_DUE as _ROUTE_DUE
from .store import _ROUTE_HEADS as _ROUTE_HEADS
from .store import _SCHEMA as _SCHEMA
from .store import (
    BUSY_TIMEOUT_MS,
    SCHEMA_VERSION,
    SQLiteStore,
    configure,
    is_busy,
    is_retryable,
)
from .store import (
    _explain as _explain,
)

__all__ = [
    "BUSY_TIMEOUT_MS",
    "SCHEMA_VERSION",
    "SQLiteStore",
    "configure",
    "is_busy",
    "is_retryable",
]
