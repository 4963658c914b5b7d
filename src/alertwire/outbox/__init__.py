"""The durable outbox: accepted means delivered, in order, through crashes.

``Outbox`` stores (one fsync per transaction, owner-only file). The rules
both stores share live in :mod:`alertwire.outbox.machine`;
:mod:`alertwire.outbox.sqlite` is the embedded store. This package holds
storage and rules only: it never imports who feeds it (:mod:`alertwire.ingest`)
or who drains it (:mod:`alertwire.relay`, where ``Relay`` lives).
``from alertwire.outbox import Relay`` still works, resolved on first use
(PEP 562), so the import graph has no cycle and an enqueue-only producer
never imports aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._outbox import DEFAULT_FILENAME, Enqueued, Outbox, default_outbox_path, store_for
from .machine import DeadEvent, QueueStats, State, Store

__all__ = [
    "DEFAULT_FILENAME",
    "DeadEvent",
    "Enqueued",
    "Outbox",
    "QueueStats",
    "Relay",
    "State",
    "Store",
    "default_outbox_path",
    "store_for",
]

if TYPE_CHECKING:
    from ..relay import Relay


def __getattr__(name: str) -> Any:
    """``Relay`` on first use: an alias for :class:`alertwire.relay.Relay`, the old path."""
    if name == "Relay":
        from ..relay import Relay

        return Relay
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
