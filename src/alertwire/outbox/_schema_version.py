"""The schema-version rules both stores apply (their SQL differs, these do not).

Each store keeps its version in an ``alertwire_schema`` table and reads
``max(version)`` from it; an outbox written by a newer alertwire is refused
rather than migrated "down" or used with columns this version does not know.
An older one is brought up step by step (:func:`upgrade`), each step's
statements then its version recorded, in the caller's one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._errors import OutboxError

__all__ = ["stored_version", "upgrade"]

logger = logging.getLogger("alertwire.outbox")


def stored_version(row: Sequence[Any] | None, *, location: str, supported: int) -> int:
    """The version a ``SELECT max(version)`` row holds (``0``: a new outbox).

    Raises :class:`~alertwire.OutboxError` when it is newer than ``supported``
    (the newest this alertwire understands): the fix is to upgrade alertwire.
    """
    version = 0 if row is None or row[0] is None else int(row[0])
    if version > supported:
        raise OutboxError(
            f"the outbox {location} has schema version {version}, newer than this"
            f" alertwire understands ({supported}): upgrade alertwire"
        )
    return version


def upgrade(
    execute: Callable[[str], Any],
    migrations: Mapping[int, Sequence[str]],
    *,
    supported: int,
    location: str,
    record: Callable[[int], object],
) -> int:
    """Bring the outbox to version ``supported``; returns it.

    Reads the stored version (:func:`stored_version`, the ``alertwire_schema``
    table created if missing), then for each step after it, in order, runs its
    ``migrations`` through ``execute`` and ``record(step)`` (the store's SQL for
    writing the version); one INFO line a step. The caller holds the
    transaction and the lock that makes one process migrate.
    """
    execute("CREATE TABLE IF NOT EXISTS alertwire_schema (version INTEGER NOT NULL)")
    row = execute("SELECT max(version) FROM alertwire_schema").fetchone()
    version = stored_version(row, location=location, supported=supported)
    for step in range(version + 1, supported + 1):
        for statement in migrations[step]:
            execute(statement)
        record(step)
        logger.info("event=outbox_migrated outbox=%s version=%d", location, step)
    return supported
