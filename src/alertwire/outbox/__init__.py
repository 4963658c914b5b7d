"""The durable outbox and its relay: accepted means delivered, in order, through crashes.

``Outbox`` stores (one fsync per transaction, owner-only file); ``Relay``
(in :mod:`alertwire.outbox.relay`, imported lazily because it pulls in
aiohttp) delivers. The rules both stores share live in
:mod:`alertwire.outbox.machine`; :mod:`alertwire.outbox.sqlite` is the
embedded store.
"""

from __future__ import annotations

from ._outbox import DEFAULT_FILENAME, Enqueued, Outbox, default_outbox_path, store_for
from .machine import DeadEvent, QueueStats, State, Store

__all__ = [
    "DEFAULT_FILENAME",
    "DeadEvent",
    "Enqueued",
    "Outbox",
    "QueueStats",
    "State",
    "Store",
    "default_outbox_path",
    "store_for",
]
