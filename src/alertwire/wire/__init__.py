"""The wire server: PagerDuty's and BigPanda's HTTP routes, written once, fed a sink.

The sandbox and the relay's ingest endpoint are the same routes with the same
validation and the same answers (docs/architecture.md: "one wire server, two sinks");
only what happens to an accepted event differs. Use::

    app = web.Application()
    add_wire_routes(app, my_sink)   # my_sink implements Sink

A sink gets an :class:`IncomingPagerDuty` (dedup key already assigned) or an
:class:`IncomingBigPanda` (a batch already split, with each alert's bytes to
store): everything it keeps, read once, so it never parses the body again.
It returns once the event is kept, or raises a
:class:`SinkRefused` (:class:`SinkUnavailable` 503, :class:`SinkRateLimited`
429, :class:`SinkForbidden` 403).

:func:`start_server` serves such an application (both servers use it), with
read deadlines and a connection cap (:class:`ServerLimits`) so a slow or
hostile client cannot hold the server; :func:`make_server_tls` gives either
server https from a throwaway CA (the optional extra ``alertwire[tls]``).

For routes of their own, both servers answer alike with :func:`refusal`
(the JSON error body, with ``Retry-After`` from :func:`retry_after_value`;
:func:`bigpanda_refusal` in BigPanda's shape),
and write repeated trouble to the log at most once per interval through a
:class:`Throttle`.
"""

from __future__ import annotations

from .._throttle import Throttle
from ._answers import bigpanda_refusal, refusal, retry_after_value
from ._body import MAX_DEPTH
from ._guard import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    ServerLimits,
)
from ._routes import BIGPANDA_PATH, WIRE_PATHS, add_wire_routes, wire_routes
from ._serve import RunningServer, start_server
from ._sink import (
    IncomingBigPanda,
    IncomingPagerDuty,
    Sink,
    SinkForbidden,
    SinkRateLimited,
    SinkRefused,
    SinkUnavailable,
)
from ._tls import ServerTLS, make_server_tls

__all__ = [
    "BIGPANDA_PATH",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "MAX_DEPTH",
    "WIRE_PATHS",
    "IncomingBigPanda",
    "IncomingPagerDuty",
    "RunningServer",
    "ServerLimits",
    "ServerTLS",
    "Sink",
    "SinkForbidden",
    "SinkRateLimited",
    "SinkRefused",
    "SinkUnavailable",
    "Throttle",
    "add_wire_routes",
    "bigpanda_refusal",
    "make_server_tls",
    "refusal",
    "retry_after_value",
    "start_server",
    "wire_routes",
]
