"""Ingest: the relay as a local, durable PagerDuty- and BigPanda-compatible endpoint.

Point any tool that speaks PagerDuty's Events API v2 or BigPanda's Alerts API
(Alertmanager, Grafana, Flux, curl) at the relay instead of the service: the
same routes and answers as the sandbox (:mod:`alertwire.wire`, one
implementation), but an accepted event is committed to the durable outbox
before it is answered, and the relay in the same process delivers it at least
once, in order per key. See ``docs/ingest.md``.

* :class:`IngestServer` runs the endpoint on an event loop (``Relay(...,
  listen=...)`` starts one for you);
* :class:`IngestConfig` says where and how (TLS, allow-lists, group commit);
* :class:`OutboxSink` is the sink the wire routes are fed;
* :func:`load_allowlist` reads an allow-list file.
"""

from __future__ import annotations

from ._allow import Allowlist, load_allowlist
from ._commit import GroupCommitter
from ._server import DEFAULT_LISTEN_PORT, IngestConfig, IngestServer, parse_listen
from ._sink import OutboxSink

__all__ = [
    "DEFAULT_LISTEN_PORT",
    "Allowlist",
    "GroupCommitter",
    "IngestConfig",
    "IngestServer",
    "OutboxSink",
    "load_allowlist",
    "parse_listen",
]
