"""The PostgreSQL store: one outbox shared by relays on several hosts.

Split by job: :mod:`._schema` (tables, indexes, the head/counter trigger,
migrations), :mod:`._connection` (the pool, transactions, retries and what an
error means), :mod:`._redact` (the password kept out of every text) and
:mod:`.store` (the queries and operations of :class:`PostgresStore`, and why
they hold with several relays). This module keeps the public names where
they were.
"""

from __future__ import annotations

# The private names below are the old single module's, read here by the query-plan
# and migration tests.
from ._redact import redact_url
from ._schema import SCHEMA_VERSION
from .store import _CLAIM as _CLAIM
from .store import _CLAIM_OLDEST as _CLAIM_OLDEST
from .store import _CLAIM_PACED as _CLAIM_PACED
from .store import _COUNTS as _COUNTS
from .store import _NEXT_DUE as _NEXT_DUE
from .store import _OLDEST_OPEN as _OLDEST_OPEN
from .store import _RESCUE as _RESCUE
from .store import PostgresStore

__all__ = ["SCHEMA_VERSION", "PostgresStore", "redact_url"]
