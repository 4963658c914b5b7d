"""A sync transport on the standard library's ``http.client``: for one-shot processes.

``import urllib3`` costs more than the request it makes when a cron job or a
shell loop sends a single alert (docs/architecture.md, "Transports": ``import urllib3`` about
110-146 ms against about 67 ms for ``http.client``, ``ssl`` and ``json``
together), and a process that sends one event has no use for a pool. So the
command line's single-event commands use this; everything else, including
``alertwire send``, keeps the urllib3 default, which is thread-safe.

One keep-alive connection per origin, reopened after a failure; not
thread-safe. Like every transport it never retries and maps every failure to
get an answer to :class:`~alertwire.NetworkError`.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from .._errors import NetworkError
from ._base import Request, Response, Verify, ssl_context

__all__ = ["StdlibTransport"]

_Origin = tuple[str, str, int]


class StdlibTransport:
    """``http.client`` connections, one per origin, for a single thread."""

    def __init__(self, *, verify: Verify = True) -> None:
        self._context = ssl_context(verify)
        self._connections: dict[_Origin, http.client.HTTPConnection] = {}

    def _connection(self, origin: _Origin, timeout: float) -> http.client.HTTPConnection:
        connection = self._connections.get(origin)
        if connection is None:
            scheme, host, port = origin
            if scheme == "https":
                connection = http.client.HTTPSConnection(
                    host, port, timeout=timeout, context=self._context
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=timeout)
            self._connections[origin] = connection
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection

    def send(self, request: Request, *, timeout: float) -> Response:
        parts = urlsplit(request.url)
        scheme = parts.scheme
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, host, port)
        connection = self._connection(origin, timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(request.method, path, body=request.body, headers=request.headers)
            answer = connection.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(origin)
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise NetworkError(f"no answer from {host}:{port}: {reason}") from exc
        if answer.will_close:
            self._drop(origin)
        headers = {name.lower(): value for name, value in answer.getheaders()}
        return Response(answer.status, headers, body)

    def _drop(self, origin: _Origin) -> None:
        connection = self._connections.pop(origin, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for origin in list(self._connections):
            self._drop(origin)
