"""The schema-version rule both stores apply before migrating (their SQL differs, this does not).

Each store keeps its version in an ``alertwire_schema`` table and reads
``max(version)`` from it; an outbox written by a newer alertwire is refused
rather than migrated "down" or used with columns this version does not know.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import OutboxError


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
