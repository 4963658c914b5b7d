"""``--metrics-listen``: the relay's metrics and health on a port of their own.

A relay without ``--listen`` has no HTTP server, yet a scraper and a
supervisor still need ``/metrics`` and ``/healthz``. This is that small
server: the standard library's WSGI server in a daemon thread (nothing here
is on the delivery path, and a scrape must not wait for the relay's loop),
answering ``/healthz`` in the ingest endpoint's format. The counters
themselves are :class:`~alertwire.outbox.metrics.OutboxMetrics`, shared with
the ingest endpoint so both count under the same names.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..outbox.metrics import OutboxMetrics

__all__ = ["MetricsEndpoint"]

logger = logging.getLogger("alertwire.relay")

#: Retry-After (seconds) on an unhealthy ``/healthz``, as the ingest endpoint says it.
HEALTH_RETRY_AFTER = "10"
#: How long (seconds) one read of a request may wait: the ingest endpoint's head deadline
#: (``ServerLimits.header_timeout``). Without one, a client that opened a connection and
#: sent half a request (or nothing) held it, and a thread, for good.
READ_TIMEOUT = 10.0
#: Connections served at once, one thread each. Beyond it a connection is answered
#: ``503`` and closed at once, so a flood of clients (or of stalled ones, each held for
#: up to ``read_timeout``) cannot start threads without bound. A scraper and a
#: supervisor need a handful.
MAX_CONNECTIONS = 64
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 21\r\n\r\ntoo many connections\n"
)


class MetricsEndpoint:
    """Serve ``metrics`` on ``/metrics`` (and ``/healthz`` when given ``health``).

    ``health`` returns ``None`` when healthy, else the reason: ``GET /healthz``
    answers ``200 {"status": "ok"}`` or ``503 {"status": "unavailable",
    "reason": ...}`` with ``Retry-After``; without it every path serves the
    metrics. A connection whose request does not arrive is closed after
    ``read_timeout`` seconds of silence; beyond ``max_connections`` at once a
    connection gets ``503`` and is closed. Dropped and refused connections are
    logged at WARNING at most once per 10 s per kind, with the number held back.
    """

    def __init__(
        self,
        metrics: OutboxMetrics,
        *,
        health: Callable[[], str | None] | None = None,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        from .._errors import ConfigurationError
        from .._numbers import is_real, is_whole

        if not is_real(read_timeout, minimum=0, maximum=1e9) or not read_timeout > 0:
            raise ConfigurationError(  # infinite: a stalled client would keep its slot for good
                f"read_timeout must be a positive, finite number of seconds, got {read_timeout!r:.40}"
            )
        if not is_whole(max_connections, minimum=1):
            raise ConfigurationError(
                f"max_connections must be a whole number, at least 1, got {max_connections!r:.40}"
            )
        self.metrics = metrics
        self.health = health
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def serve(self, host: str, port: int) -> int:
        """Start serving in a daemon thread; returns the bound port (``OSError`` if taken)."""
        import socketserver
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        from prometheus_client import make_wsgi_app

        from .._throttle import Throttle

        metrics_app = make_wsgi_app(self.metrics.registry)
        health = self.health
        cap = self.max_connections
        slots = threading.BoundedSemaphore(cap)
        throttle = Throttle()

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            if health is None or environ.get("PATH_INFO") != "/healthz":
                return list(metrics_app(environ, start_response))
            reason = health()
            body = (
                {"status": "ok"} if reason is None else {"status": "unavailable", "reason": reason}
            )
            headers = [("Content-Type", "application/json")]
            if reason is not None:
                headers.append(("Retry-After", HEALTH_RETRY_AFTER))
            start_response("200 OK" if reason is None else "503 Service Unavailable", headers)
            return [json.dumps(body).encode()]

        class Server(socketserver.ThreadingMixIn, WSGIServer):
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

            def process_request(self, request: Any, client_address: Any) -> None:
                if not slots.acquire(blocking=False):
                    throttle.log(
                        logger,
                        logging.WARNING,
                        "over_cap",
                        "event=metrics_connection_refused reason=too_many_connections limit=%d",
                        cap,
                    )
                    with contextlib.suppress(OSError):
                        request.sendall(_BUSY)
                    self.shutdown_request(request)
                    return
                try:
                    super().process_request(request, client_address)
                except BaseException:
                    slots.release()  # no thread started to release it
                    raise

            def process_request_thread(self, request: Any, client_address: Any) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    slots.release()

            def handle_error(self, request: Any, client_address: Any) -> None:
                """One WARNING line for a dropped connection (a timeout, a reset), never
                socketserver's traceback on stderr (a client silent past
                ``read_timeout`` printed twenty lines of it into the relay's log). Any
                other error is a bug: logged at ERROR with its traceback."""
                error = sys.exc_info()[1]
                peer = client_address[0] if client_address else "-"
                if isinstance(error, OSError):  # TimeoutError and resets are OSErrors
                    throttle.log(
                        logger,
                        logging.WARNING,
                        "dropped",
                        "event=metrics_connection_dropped error=%s peer=%s",
                        type(error).__name__,
                        peer,
                    )
                else:
                    logger.error("event=metrics_request_failed peer=%s", peer, exc_info=error)

        class Quiet(WSGIRequestHandler):
            timeout = self.read_timeout  # StreamRequestHandler: the connection's timeout

            def log_message(self, format: str, *args: Any) -> None:
                """No access log (as the ingest endpoint)."""

        server = make_server(host, port, app, Server, handler_class=Quiet)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return int(server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
