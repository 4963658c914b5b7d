"""The default sync transport: HTTP/1.1 on the standard library's sockets, pooled, keep-alive.

Why not urllib3 (still available as :class:`~alertwire.transport.Urllib3Transport`):
measured against a local keep-alive endpoint (docs/architecture.md,
"Transports"), urllib3's ``HTTPConnectionPool.urlopen`` layers (its header
dict, retry and timeout objects, connection checks, response wrapper) sit
on top of ``http.client`` calls, and ``import urllib3`` costs a one-event
``alertwire trigger`` more than its request. Why not ``http.client`` either
(this transport's connection until 2026-12): its header writing and its
``email``-based answer parsing cost more client CPU than the rest of a send,
and its import (``email``, ``ssl``) more than a one-event command's request;
:mod:`._http11` writes and reads the same HTTP/1.1 in a few lines (what it
reads and refuses: its docstring).

What is done here, and why:

* **One write per request.** The head and the body leave in one ``sendall``
  (:class:`._http11.Connection`); two writes on a keep-alive connection
  wake the server twice and cost a second system call.
* **A pool per origin, thread-safe.** Idle connections wait in a list under a
  lock; a thread that finds none opens its own, and at most ``maxsize`` idle
  ones are kept (urllib3's ``block=False`` does the same), so ``send_many``
  on threads works as it did.
* **A dropped connection is not reused.** A server closes idle keep-alive
  connections (PagerDuty's load balancers do, silently); before reusing one,
  a zero-timeout poll sees the close and a fresh connection is opened instead
  of failing the request, as urllib3 checks.
* **``ssl`` only for https.** It is imported when the first TLS connection
  is made, so an ``http://`` URL (a local relay, the sandbox) never loads it.

What stays exactly as before: TLS verification (``verify=True`` is
``ssl.create_default_context()``: the system store, ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` honoured, host names checked; a CA path or an
``SSLContext`` as given), no redirects followed, no retries (the client's
``RetryPolicy`` decides), every failure to get an answer a
:class:`~alertwire.NetworkError`.

Proxies: ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` are
honoured (``trust_env=False`` ignores them), with loopback always direct;
``proxy=`` names one proxy for every origin. The rules are
:mod:`alertwire.transport._proxy`'s. ``https://`` goes through a ``CONNECT``
tunnel (:meth:`._http11.Connection.connect`), so certificates are checked
against the service's name exactly as without a proxy.
"""

from __future__ import annotations

import select
import threading
import time
from typing import TYPE_CHECKING

from .._errors import NetworkError
from ._base import Request, Response, Verify, ssl_context
from ._http11 import AnswerError, Connection
from ._proxy import Proxy, transport_proxies

if TYPE_CHECKING:
    import ssl

__all__ = ["StdlibTransport"]

#: scheme, host, port
_Origin = tuple[str, str, int]

#: Methods whose empty body still gets ``Content-Length: 0`` (what ``http.client.request`` does).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

_HAS_POLL = hasattr(select, "poll")

#: The pooled connection (the name the one-write test knows it by).
_OneWrite = Connection


def _dropped(connection: Connection) -> bool:
    """Whether an idle keep-alive connection was closed by the other side (or is gone).

    An idle connection has nothing to read; if it polls readable, the server
    closed it (or sent something unasked): either way it must not be reused.
    """
    sock = connection.sock
    if sock is None:
        return True
    try:
        if _HAS_POLL:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])  # Windows: no poll()
    except (OSError, ValueError):
        return True


class StdlibTransport:
    """Keep-alive HTTP/1.1 connections, pooled per origin; safe to share between threads.

    ``maxsize`` bounds the idle connections kept per origin (more threads
    than that still send, each on a connection of its own, closed after).
    ``trust_env`` reads the proxy variables when the transport is made;
    ``proxy`` (``http://[user:password@]host:port``) overrides them for every
    origin. A proxy setting we cannot use is a
    :class:`~alertwire.ConfigurationError` here.
    """

    def __init__(
        self,
        *,
        maxsize: int = 32,
        verify: Verify = True,
        trust_env: bool = True,
        proxy: str | None = None,
    ) -> None:
        # A CA path is read now, so an unusable one fails at construction (the CLI's
        # exit 2), not at the first send; the system store loads on first https use.
        self._context: ssl.SSLContext | None = ssl_context(verify) if verify is not True else None
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._idle: dict[_Origin, list[_OneWrite]] = {}
        #: URL (without its query) -> origin and path: split once per URL, not per request.
        self._routes: dict[str, tuple[_Origin, str]] = {}
        self._proxies = transport_proxies(trust_env=trust_env, proxy=proxy)

    def _proxy_for(self, origin: _Origin) -> Proxy | None:
        return None if self._proxies is None else self._proxies.for_origin(*origin)

    def _route(self, url: str) -> tuple[_Origin, str]:
        route = self._routes.get(url)
        if route is None:
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            scheme = parts.scheme
            if scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {url!r:.80}")
            port = parts.port or (443 if scheme == "https" else 80)
            if len(self._routes) >= 1024:
                # REST paths carry ids (/incidents/PXXXX): the cache must not grow for ever.
                self._routes.clear()
            origin = (scheme, parts.hostname, port)
            path = parts.path or "/"
            if scheme == "http" and self._proxy_for(origin) is not None:
                path = f"http://{parts.netloc.rpartition('@')[2]}{path}"  # a proxy's absolute form
            route = self._routes[url] = (origin, path)
        return route

    def _tls(self) -> ssl.SSLContext:
        """One context for every TLS connection (making one loads the CA store: milliseconds)."""
        if self._context is None:
            import ssl

            self._context = ssl.create_default_context()
        return self._context

    def _checkout(self, origin: _Origin, timeout: float, deadline: float) -> _OneWrite:
        """An open idle connection to ``origin``, else a new one (connected here), with
        this exchange's ``deadline``: every wait of it, connecting included, ends there."""
        connection = self._take_idle(origin)
        while connection is not None and _dropped(connection):
            connection.close()
            connection = self._take_idle(origin)
        if connection is not None:
            connection.timeout = timeout
            connection.deadline = deadline
            return connection
        scheme, host, port = origin
        context = self._tls() if scheme == "https" else None
        connection = Connection(host, port, timeout, context, self._proxy_for(origin))
        connection.deadline = deadline
        connection.connect()
        return connection

    def _take_idle(self, origin: _Origin) -> _OneWrite | None:
        """The most recently used idle connection to ``origin``, if any (unchecked)."""
        with self._lock:
            idle = self._idle.get(origin)
            return idle.pop() if idle else None

    def _checkin(self, origin: _Origin, connection: _OneWrite) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self._maxsize:
                idle.append(connection)
                return
        connection.close()

    def send(self, request: Request, *, timeout: float) -> Response:
        url, mark, query = request.url.partition("?")
        origin, path = self._route(url)
        if mark:
            path = f"{path}?{query}"
        connection: _OneWrite | None = None
        reusable = False
        try:
            connection = self._checkout(origin, timeout, time.monotonic() + timeout)
            body = request.body
            method = request.method
            # As http.client's request() did: a caller's own Host, Accept-Encoding or
            # Content-Length replaces the one that would be added.
            headers = request.headers
            if self._proxies is not None and origin[0] == "http":
                # Plain HTTP through a proxy: the proxy reads each request's own head.
                proxy = self._proxy_for(origin)
                if proxy is not None and proxy.authorization:
                    headers = {**headers, "Proxy-Authorization": proxy.authorization}
            connection.request(method, path, headers, body, bool(body) or method in _BODY_METHODS)
            status, headers, data, will_close = connection.getresponse(method)
            reusable = not will_close
        except (OSError, AnswerError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            via = self._proxy_for(origin)
            through = "" if via is None else f" (through the proxy {via.host}:{via.port})"
            raise NetworkError(
                f"no answer from {origin[1]}:{origin[2]}{through}: {reason}"
            ) from exc
        finally:
            if connection is not None:
                if reusable:
                    self._checkin(origin, connection)
                else:
                    connection.close()
        return Response(status, headers, data)

    def close(self) -> None:
        """Close the idle connections; a later send opens new ones."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
