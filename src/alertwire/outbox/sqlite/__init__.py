"""The SQLite store: the embedded default outbox.

Split by job: :mod:`._schema` (tables, indexes, triggers, migrations),
:mod:`._connection` (opening the file, durability, pragmas, locks and what
an error means), :mod:`._per_thread` (each thread's connection: closing it
while the thread uses it, closing it when the thread ends) and :mod:`.store` (the queries and operations of
:class:`SQLiteStore`). This module keeps the public names where they were.
"""

from __future__ import annotations

from ._connection import BUSY_TIMEOUT_MS, configure, is_busy, is_retryable

# Private names read through this module: the benchmarks' bare-SQLite baseline
# (_SCHEMA), the query-plan tests (the queries, _EVENTS_V1) and the ingest sink's
# error words (_explain).
from ._connection import _explain as _explain
from ._schema import _EVENTS_V1 as _EVENTS_V1
from ._schema import _SCHEMA as _SCHEMA
from ._schema import SCHEMA_VERSION
from .store import _COUNTS as _COUNTS
from .store import _EXPIRED_HEADS as _EXPIRED_HEADS
from .store import _LEASE as _LEASE
from .store import _NEXT_LEASE_END as _NEXT_LEASE_END
from .store import _NEXT_ROUTE as _NEXT_ROUTE
from .store import _OLDEST_HEADS as _OLDEST_HEADS
from .store import _OLDEST_OPEN as _OLDEST_OPEN
from .store import _ROUTE_DUE as _ROUTE_DUE
from .store import _ROUTE_HEADS as _ROUTE_HEADS
from .store import SQLiteStore

__all__ = [
    "BUSY_TIMEOUT_MS",
    "SCHEMA_VERSION",
    "SQLiteStore",
    "configure",
    "is_busy",
    "is_retryable",
]
