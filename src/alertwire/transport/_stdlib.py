"""The default sync transport: the standard library's ``http.client``, pooled, keep-alive.

Why not urllib3 (still available as :class:`~alertwire.transport.Urllib3Transport`):
measured against a local keep-alive endpoint (docs/architecture.md,
"Transports"), a request through ``http.client`` costs well under half the
client CPU of urllib3's ``HTTPConnectionPool.urlopen``, whose own layers
(its header dict, retry and timeout objects, connection checks, response
wrapper) sit on top of the same ``http.client`` calls. And ``import urllib3``
costs a one-event ``alertwire trigger`` more than its request.

What is done here beyond calling ``http.client``, and why:

* **One write per request.** ``http.client`` sends the head and the body in
  two ``send`` calls; on a keep-alive connection that wakes the server twice
  and costs a second system call. :class:`_OneWrite` joins them (the body of
  an alert is a few hundred bytes).
* **A pool per origin, thread-safe.** Idle connections wait in a list under a
  lock; a thread that finds none opens its own, and at most ``maxsize`` idle
  ones are kept (urllib3's ``block=False`` does the same), so ``send_many``
  on threads works as it did.
* **A dropped connection is not reused.** A server closes idle keep-alive
  connections (PagerDuty's load balancers do, silently); before reusing one,
  a zero-timeout poll sees the close and a fresh connection is opened instead
  of failing the request, as urllib3 checks.

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
tunnel (``http.client``'s ``set_tunnel``), so certificates are checked
against the service's name exactly as without a proxy.
"""

from __future__ import annotations

import http.client
import select
import threading
from typing import TYPE_CHECKING

from .._errors import NetworkError
from ._base import Request, Response, Verify, ssl_context
from ._proxy import Proxy, ProxySettings, proxy_settings

if TYPE_CHECKING:
    import ssl

__all__ = ["StdlibTransport"]

#: scheme, host, port
_Origin = tuple[str, str, int]

#: Methods whose empty body still gets ``Content-Length: 0`` (what ``http.client.request`` does).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

_HAS_POLL = hasattr(select, "poll")


class _OneWrite(http.client.HTTPConnection):
    """``http.client``'s connection, writing the request's head and body in one ``send``.

    ``http.client`` sends the head from ``endheaders`` and the body in a
    second ``send``. The transport sets :attr:`body` before ``endheaders``
    (with the connection already open, so no other write can come between);
    the head's ``send`` then carries the body along.
    """

    body: bytes | None = None

    def send(self, data: object) -> None:
        body = self.body
        if body is not None and isinstance(data, bytes):
            self.body = None
            data = data + body
        super().send(data)  # type: ignore[arg-type]


class _OneWriteTLS(_OneWrite, http.client.HTTPSConnection):
    """The same over TLS."""


def _dropped(connection: http.client.HTTPConnection) -> bool:
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
    """Keep-alive ``http.client`` connections, pooled per origin; safe to share between threads.

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
        self._proxies: ProxySettings | None = (
            ProxySettings.everywhere(proxy)
            if proxy is not None
            else proxy_settings()
            if trust_env
            else None
        )
        #: origin -> the proxy it goes through (None: direct), decided once per origin.
        self._via: dict[_Origin, Proxy | None] = {}

    def _proxy_for(self, origin: _Origin) -> Proxy | None:
        if self._proxies is None:
            return None
        if origin not in self._via:
            self._via[origin] = self._proxies.for_origin(*origin)
        return self._via[origin]

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

    def _checkout(self, origin: _Origin, timeout: float) -> _OneWrite:
        """An open idle connection to ``origin``, else a new one (connected here)."""
        connection = self._take_idle(origin)
        while connection is not None and _dropped(connection):
            connection.close()
            connection = self._take_idle(origin)
        if connection is not None:
            if connection.timeout != timeout:
                connection.timeout = timeout
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
            return connection
        scheme, host, port = origin
        proxy = self._proxy_for(origin)
        to_host, to_port = (host, port) if proxy is None else (proxy.host, proxy.port)
        if scheme == "https":
            connection = _OneWriteTLS(to_host, to_port, timeout=timeout, context=self._tls())
            if proxy is not None:
                login = (
                    {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
                )
                connection.set_tunnel(host, port, headers=login)
        else:
            connection = _OneWrite(to_host, to_port, timeout=timeout)
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
            connection = self._checkout(origin, timeout)
            body = request.body
            headers = request.headers
            # As http.client's request() does: a caller's own Host, Accept-Encoding or
            # Content-Length replaces the one that would be added.
            given = {name.lower() for name in headers}
            connection.putrequest(
                request.method,
                path,
                skip_host="host" in given,
                skip_accept_encoding="accept-encoding" in given,
            )
            for name, value in headers.items():
                connection.putheader(name, value)
            if self._proxies is not None and origin[0] == "http":
                # Plain HTTP through a proxy: the proxy reads each request's own head.
                proxy = self._proxy_for(origin)
                if proxy is not None and proxy.authorization:
                    connection.putheader("Proxy-Authorization", proxy.authorization)
            if "content-length" not in given and (body or request.method in _BODY_METHODS):
                connection.putheader("Content-Length", str(len(body)))
            if body:
                connection.body = body
            connection.endheaders()
            answer = connection.getresponse()
            data = answer.read()
            reusable = not answer.will_close
        except (OSError, http.client.HTTPException) as exc:
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
        headers = {name.lower(): value for name, value in answer.getheaders()}
        return Response(answer.status, headers, data)

    def close(self) -> None:
        """Close the idle connections; a later send opens new ones."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
