"""The relay: deliver what the outbox holds, at least once, in order per key.

This package is the outbox's consumer, kept apart from it so the layers run
one way (``relay`` -> ``outbox``, ``relay`` -> ``ingest`` -> ``outbox``; the
outbox never imports who feeds or drains it):

* :mod:`._service`: :class:`Relay`, the service: settings, a run in the
  foreground or a thread, stop requests and signals, the ingest endpoint on
  the same event loop with ``listen=``, drains bounded in time;
* :mod:`._loop`: ``DeliveryLoop``, what a run does: claim heads, send
  them, settle their outcomes (group commit), per-key order;
* :mod:`._destinations`: where a stored row goes, and its request and answer
  through the sans-IO protocol modules;
* :mod:`._outage`: how a store that stops answering is lived through
  (backoff, one line at each end, the health answer);
* :mod:`._dead_letters`: how dead letters are said (WARNING lines, summarised
  in bulk);
* :mod:`._metrics_http`: :class:`MetricsEndpoint`, ``/metrics`` and ``/healthz``
  on a port of their own (``--metrics-listen``).

``from alertwire.outbox import Relay`` keeps working (a lazy alias to this
package), and an enqueue-only producer never imports this package at all.
"""

from __future__ import annotations

from ._metrics_http import MetricsEndpoint
from ._service import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_MAX_BACKOFF,
    Relay,
    RelayReport,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_MAX_BACKOFF",
    "MetricsEndpoint",
    "Relay",
    "RelayReport",
]
