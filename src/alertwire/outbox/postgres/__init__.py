"""The PostgreSQL store (the public names, where they were)."""

from __future__ import annotations

from .store import _MIGRATIONS as _MIGRATIONS
from .store import SCHEMA_VERSION, PostgresStore, redact_url
from .store import _lock_key as _lock_key

__all__ = ["SCHEMA_VERSION", "PostgresStore", "redact_url"]
