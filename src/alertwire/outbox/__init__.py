"""The durable outbox and its relay: accepted means delivered, in order, through crashes.

``Outbox`` stores (one fsync per transaction, owner-only file); ``Relay``
(in :mod:`alertwire.outbox.relay`, imported lazily because it pulls in
aiohttp) delivers. The rules both stores share live in
:mod:`alertwire.outbox.machine`; :mod:`alertwire.outbox.sqlite` is the
embedded store.
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
    from .relay import Relay


def __getattr__(name: str) -> Any:
    """``Relay`` on first use: it imports aiohttp, which an enqueue-only producer never needs."""
    if name == "Relay":
        from .relay import Relay

        return Relay
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
