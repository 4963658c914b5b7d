"""The default async transport: HTTP/1.1 over asyncio's own sockets, keep-alive, pooled.

Why not aiohttp (still available as :class:`~alertwire.transport.AiohttpTransport`):
profiled on the concurrent bench (docs/transports.md, "The async default"),
``ClientSession.request`` spent more client CPU in its own layers (request
and response objects, payload registry, stream reader, timer and tracing
contexts, cookie jar) than in the socket calls underneath. A client of a
JSON API needs little of that: this transport is an
:class:`asyncio.BufferedProtocol` per connection that writes each request in
one ``write`` and parses the answer with
:class:`~alertwire.transport._h1.ResponseParser` as its bytes arrive. It also spares an async client's first send aiohttp's import
(about 0.4 s).

What it does, and why:

* **A pool per origin.** Idle connections wait in a list (most recently
  used first out); ``limit`` bounds the requests in flight across origins
  (aiohttp's ``TCPConnector(limit=...)``, which it replaces): more wait for a
  free slot, within their timeout.
* **A dropped connection is not reused.** The event loop reads every idle
  connection, so a server's close is seen as it arrives and the connection
  leaves the pool; one idle longer than :data:`KEEPALIVE` seconds is closed
  instead of reused (aiohttp's ``keepalive_timeout``), since a load
  balancer may have forgotten it without a word.
* **Any failure closes the connection.** A timeout, an error, a cancelled
  caller or an answer the parser refuses: that connection is aborted, never
  pooled, so a late answer can never be read as the next request's.
* **One loop at a time.** A send from a second thread's loop while the
  first loop still runs raises ``RuntimeError`` (naming the cause) instead
  of taking the pool from under the first: make one client per thread.
* **A loop that ends closes its connections.** One transport may serve
  one loop after another (``asyncio.run`` per batch). A loop that has
  closed can close nothing, so a pooled connection left on it would reach
  the garbage collector open (``ResourceWarning: unclosed transport``). So
  the first send on a loop starts a guard, an async generator that loop
  knows of: ``asyncio.run`` (and any owner calling ``shutdown_asyncgens()``)
  finishes it on the way out, while the loop still runs, and it aborts that
  loop's connections. ``aclose()`` (``async with``) remains the way to close
  them at a time of one's choosing.
* **The timeout is per attempt and total**: waiting for a slot, connecting,
  the TLS handshake, writing and reading all count (aiohttp's
  ``ClientTimeout(total=...)``).

What stays as it was with aiohttp: TLS verification (``verify=True`` is
``ssl.create_default_context()``: the system store, ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` honoured, host names checked; a CA path or an ``SSLContext``
as given), no redirects followed, no retries (the client's ``RetryPolicy``
decides), every failure to get an answer a :class:`~alertwire.NetworkError`
naming the host, header names in the :class:`Response` in lower case.

Proxies, as the sync default: ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``
and ``NO_PROXY`` honoured (``trust_env=False`` ignores them), loopback always
direct, ``proxy=`` for every origin (the rules: :mod:`._proxy`). ``https://``
goes through a ``CONNECT`` tunnel, then TLS runs inside it with
``loop.start_tls``, verified against the service's own name.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from .._errors import NetworkError
from .._numbers import is_whole
from ._base import Request, Response, Verify, ssl_context
from ._h1 import AnswerError, ResponseParser, check_target, request_head
from ._http11 import host_header, parse_head
from ._proxy import Proxy, ProxySettings, check_tunnel, transport_proxies

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator, Mapping

__all__ = ["AsyncioTransport"]

#: Seconds an idle keep-alive connection may wait in the pool before it is closed instead.
KEEPALIVE = 15.0

#: Bytes read from a connection's socket at a time, into a buffer of its own made once.
#: A plain :class:`asyncio.Protocol` gets a fresh 256 KiB ``bytes`` per read, which glibc
#: may map and unmap each time (a system call, page faults, and a TLB shoot-down in a
#: process with threads): measured 25-40% of the relay's throughput (docs/transports.md).
#: An answer of PagerDuty or BigPanda fits in one read; a larger one takes several.
READ_SIZE = 16 * 1024

#: Methods whose empty body still gets ``Content-Length: 0`` (what ``http.client`` does).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _Route:
    """What a URL (without its query) resolves to, worked out once per URL."""

    __slots__ = ("heads", "host", "netloc", "origin", "path", "port", "proxy", "tls")

    def __init__(self, url: str, proxies: ProxySettings | None = None) -> None:
        from urllib.parse import quote, urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r:.80}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.netloc = parts.netloc.rpartition("@")[2]  # what errors name: never a userinfo
        self.origin = (parts.scheme, self.host, self.port)
        path = parts.path or "/"
        self.path = path if path.isascii() else quote(path, safe="/%:@!$&'()*+,;=~")
        check_target("GET", self.path)
        #: The proxy this origin goes through (``None``: direct).
        self.proxy: Proxy | None = None if proxies is None else proxies.for_origin(*self.origin)
        if self.proxy is not None and not self.tls:
            self.path = f"http://{self.netloc}{self.path}"  # a proxy's absolute form
        #: Headers (as a tuple of items) -> encoded lines, "Connection: close", length given.
        self.heads: dict[tuple[tuple[str, str], ...], tuple[bytes, bool, bool]] = {}

    def host_header(self) -> str:
        return host_header(self.host, self.port, tls=self.tls)

    def head(self, headers: Mapping[str, str]) -> tuple[bytes, bool, bool]:
        """The header lines for ``headers``: encoded once per distinct set of headers."""
        key = tuple(headers.items())
        found = self.heads.get(key)
        if found is None:
            if len(self.heads) >= 16:
                self.heads.clear()  # a caller varying its headers must not grow this for ever
            found = self.heads[key] = request_head(self.host_header(), headers)
        return found


class _Connection(asyncio.BufferedProtocol):
    """One keep-alive connection: at most one request in flight, its answer parsed as it comes."""

    __slots__ = ("_parser", "_read_into", "_waiter", "closed", "idle_since", "lost", "transport")

    def __init__(self) -> None:
        self._read_into = memoryview(bytearray(READ_SIZE))
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        #: Done once the socket is closed: what ``aclose()`` waits for.
        self.lost: asyncio.Future[None] | None = None
        self._parser: ResponseParser | None = None
        self._waiter: asyncio.Future[ResponseParser] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport: we made it
        self.lost = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_into

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self._read_into[:nbytes]))

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # bytes nobody asked for: this connection cannot be trusted
            self.abort()
            return
        try:
            done = parser.feed(data)
        except AnswerError as exc:
            self._fail(exc)
            self.abort()
            return
        if done:
            self._finish(parser)

    def eof_received(self) -> bool:
        self.closed = True
        parser = self._parser
        if parser is not None:
            try:
                done = parser.feed_eof()
            except AnswerError as exc:
                self._fail(exc)
            else:
                if done:
                    self._finish(parser)
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)
        parser = self._parser
        if exc is None and parser is not None:
            # A TLS server may close without a close_notify, so no eof_received came: an
            # answer framed by the close is complete all the same.
            try:
                if parser.feed_eof():
                    self._finish(parser)
                    return
            except AnswerError as incomplete:
                exc = incomplete
        self._fail(
            exc
            if exc is not None
            else ConnectionResetError("the server closed the connection before answering")
        )

    def _finish(self, parser: ResponseParser) -> None:
        self._parser = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(parser)

    def _fail(self, exc: BaseException) -> None:
        self._parser = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def request(self, data: bytes, parser: ResponseParser) -> asyncio.Future[ResponseParser]:
        """Write one request; the future completes with its parsed answer (or the failure)."""
        assert self.transport is not None
        waiter: asyncio.Future[ResponseParser] = asyncio.get_running_loop().create_future()
        self._parser = parser
        self._waiter = waiter
        self.transport.write(data)
        return waiter

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _TunnelAnswer(asyncio.Protocol):
    """Reads a proxy's answer to ``CONNECT``: its head, up to the blank line. ``extra``
    is what came after it: nothing, after a 2xx (the service's TLS bytes come only
    after our ClientHello); a refusal's body, which nobody reads."""

    def __init__(self) -> None:
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.extra = b""
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            self.extra += data
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0:
            self.head.set_result(self._buffer[:end])
            self.extra = self._buffer[end + 4 :]
        elif len(self._buffer) > 65536:
            self.head.set_exception(AnswerError("the proxy's answer head is too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(exc or ConnectionError("the proxy closed the connection"))


async def _tunnel(
    loop: asyncio.AbstractEventLoop, proxy: Proxy, host: str, port: int, context: ssl.SSLContext
) -> _Connection:
    """A connection to ``host:port`` through ``proxy``: ``CONNECT``, then TLS inside the
    tunnel (``loop.start_tls``), checked against ``host`` as a direct one is."""
    raw, answer = await loop.create_connection(_TunnelAnswer, proxy.host, proxy.port)
    try:
        raw.write(proxy.tunnel_request(host, port))
        _, status, _ = parse_head(await answer.head)
        check_tunnel(status)
        if answer.extra:
            raise AnswerError("the proxy sent bytes after accepting the tunnel")
        connection = _Connection()
        tls = await loop.start_tls(raw, connection, context, server_hostname=host)
    except BaseException:
        raw.abort()
        raise
    if tls is None:  # the loop closed the transport meanwhile
        raise ConnectionError("the tunnel closed during the TLS handshake")
    connection.connection_made(tls)
    return connection


def _expire(waiter: asyncio.Future[Any]) -> None:
    """The deadline passed: the awaiting send fails with ``TimeoutError`` (unless done)."""
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class AsyncioTransport:
    """Keep-alive HTTP/1.1 connections over asyncio, pooled per origin; ``limit`` bounds the
    requests in flight. Made on the loop of its first send, like the aiohttp session was."""

    def __init__(
        self,
        *,
        limit: int = 100,
        verify: Verify = True,
        trust_env: bool = True,
        proxy: str | None = None,
    ) -> None:
        if not is_whole(limit, minimum=1):
            raise ValueError(f"limit must be a whole number, at least 1, got {limit!r:.40}")
        self._limit = limit
        #: Read now: a proxy setting we cannot use is a ConfigurationError here.
        self._proxies = transport_proxies(trust_env=trust_env, proxy=proxy)
        # A CA path is read now, so an unusable one fails when the transport is made (the
        # client's first send), not as a retryable NetworkError; the system store loads
        # on first https use.
        self._context: ssl.SSLContext | None = ssl_context(verify) if verify is not True else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._in_flight = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        #: Alive while ``_loop`` runs; its end closes that loop's connections (``_closing_with``).
        self._guard: AsyncGenerator[None, None] | None = None
        #: URL (without its query) -> its route: split once per URL, not per request.
        self._routes: dict[str, _Route] = {}

    def _route(self, url: str) -> _Route:
        route = self._routes.get(url)
        if route is None:
            if len(self._routes) >= 1024:
                # REST paths carry ids (/incidents/PXXXX): the cache must not grow for ever.
                self._routes.clear()
            route = self._routes[url] = _Route(url, self._proxies)
        return route

    def _tls(self) -> ssl.SSLContext:
        """One context for every TLS connection (making one loads the CA store: milliseconds)."""
        if self._context is None:
            import ssl

            self._context = ssl.create_default_context()
        return self._context

    async def send(self, request: Request, *, timeout: float) -> Response:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            await self._adopt(loop)
        url, mark, query = request.url.partition("?")
        route = self._route(url)
        target = route.path
        if mark:
            target = f"{target}?{query}"
            check_target(request.method, target)
        headers = request.headers
        if route.proxy is not None and route.proxy.authorization and not route.tls:
            # Plain HTTP through a proxy: the proxy reads each request's own head.
            headers = {**headers, "Proxy-Authorization": route.proxy.authorization}
        head, close, length_given = route.head(headers)
        body = request.body
        method = request.method
        framing = b"\r\n"
        if not length_given and (body or method in _BODY_METHODS):
            framing = b"Content-Length: %d\r\n\r\n" % len(body)
        data = b"".join((f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), head, framing, body))
        deadline = loop.time() + timeout
        if self._in_flight >= self._limit:
            await self._wait_for_slot(loop, deadline, route.netloc)
        self._in_flight += 1
        connection: _Connection | None = None
        try:
            connection = self._take_idle(route.origin, loop.time())
            if connection is None:
                connection = await self._connect(route, loop, deadline)
            self._busy.add(connection)
            waiter = connection.request(data, ResponseParser(no_body=method == "HEAD"))
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                parser = await waiter
            finally:
                timer.cancel()
            answer = Response(parser.status, parser.headers, parser.body())
        except (OSError, asyncio.TimeoutError, AnswerError) as exc:
            if connection is not None:
                self._busy.discard(connection)
                connection.abort()
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            via = route.proxy
            through = "" if via is None else f" (through the proxy {via.host}:{via.port})"
            raise NetworkError(f"no answer from {route.netloc}{through}: {reason}") from exc
        except BaseException:  # cancelled: the answer may still come, so never reuse this one
            if connection is not None:
                self._busy.discard(connection)
                connection.abort()
            raise
        finally:
            self._release_slot()
        self._busy.discard(connection)
        if parser.reusable and not close and not connection.closed:
            connection.idle_since = loop.time()
            self._idle.setdefault(route.origin, []).append(connection)
        else:
            connection.close()
        return answer

    async def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """First send, or a send on another loop: connections of the old loop are unusable.

        An old loop still running (in another thread) is refused with a
        ``RuntimeError``: two loops at once would each need the pool's
        connections, and a pool per loop is what one client per thread gives.
        An old loop that stopped but was not closed: its connections are aborted
        here. A closed loop can close nothing: its guard closed them as it ended, if its owner finished
        its async generators (``asyncio.run`` does); if not, they are left to the
        garbage collector. Then this loop gets its own guard (``_closing_with``).
        """
        if self._loop is not None and self._loop.is_running():
            # Another thread's loop, still running: its connections (idle and in
            # flight) are its own, and aborting them from here, as a loop that has
            # ended allows, would fail that thread's sends for no fault of theirs.
            raise RuntimeError(
                "this async client is in use by an event loop running in another thread;"
                " an async client (and its transport) serves one event loop at a time:"
                " make one client per thread, or hand the sends to the first loop"
                " (asyncio.run_coroutine_threadsafe)"
            )
        if self._loop is not None:
            if self._loop.is_closed():
                self._idle = {}
                self._busy = set()
            else:
                self._drop_all()
        self._loop = loop
        self._in_flight = 0
        self._slot_waiters.clear()
        guard = self._guard = self._closing_with(loop)
        await guard.asend(None)  # first iterated here: ``loop`` now finishes it as it ends

    async def _closing_with(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
        """Suspended for as long as ``loop`` runs; finished by the loop's owner on the way
        out (``shutdown_asyncgens()``), when it aborts the connections made on ``loop``
        and waits (briefly) for their sockets to close. A transport that has moved on
        to another loop since has nothing of this loop's left to close."""
        try:
            yield
        finally:
            if self._loop is loop:
                await self._close_all()

    def _take_idle(self, origin: tuple[str, str, int], now: float) -> _Connection | None:
        """The most recently used open idle connection to ``origin``, if any."""
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < KEEPALIVE:
                return connection
            connection.close()
        return None

    async def _connect(
        self, route: _Route, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> _Connection:
        context = self._tls() if route.tls else None
        proxy = route.proxy
        if proxy is not None and context is not None:
            return await asyncio.wait_for(
                _tunnel(loop, proxy, route.host, route.port, context),
                max(deadline - loop.time(), 0.0),
            )
        host, port = (route.host, route.port) if proxy is None else (proxy.host, proxy.port)
        opening = loop.create_connection(
            _Connection,
            host,
            port,
            ssl=context,
            server_hostname=route.host if context is not None else None,
        )
        _, connection = await asyncio.wait_for(opening, max(deadline - loop.time(), 0.0))
        return connection

    async def _wait_for_slot(
        self, loop: asyncio.AbstractEventLoop, deadline: float, netloc: str
    ) -> None:
        """Wait until fewer than ``limit`` requests are in flight (or the deadline passes)."""
        while self._in_flight >= self._limit:
            waiter: asyncio.Future[None] = loop.create_future()
            self._slot_waiters.append(waiter)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                await waiter
            except BaseException as exc:
                if waiter in self._slot_waiters:
                    self._slot_waiters.remove(waiter)
                elif self._in_flight < self._limit:
                    self._wake_next()  # woken, but leaving: the wake-up goes to the next one
                if isinstance(exc, TimeoutError):
                    raise NetworkError(f"no answer from {netloc}: TimeoutError") from exc
                raise
            finally:
                timer.cancel()

    def _release_slot(self) -> None:
        self._in_flight -= 1
        if self._slot_waiters:
            self._wake_next()

    def _wake_next(self) -> None:
        waiters = self._slot_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _drop_all(self) -> list[_Connection]:
        """Abort every connection (idle and busy); the ones dropped."""
        idle, self._idle = self._idle, {}
        busy, self._busy = self._busy, set()
        dropped = [connection for connections in idle.values() for connection in connections]
        dropped.extend(busy)
        for connection in dropped:
            connection.abort()
        return dropped

    async def aclose(self) -> None:
        """Close every connection, and wait (briefly) until their sockets are closed; a later
        send opens new ones.

        Aborted rather than closed: a TLS close would wait for the server's
        ``close_notify``, which may never come, and a loop that ends first
        leaves the socket open (the ``unclosed transport`` warning aiohttp's
        users know). Nothing is lost: no request is in flight on an idle
        connection, and a busy one is being given up anyway.
        """
        if self._loop is not asyncio.get_running_loop():
            await self._adopt(asyncio.get_running_loop())
            return
        await self._close_all()

    async def _close_all(self) -> None:
        """Abort every connection of the current loop, and wait (at most a second) until
        their sockets are closed."""
        lost = [c.lost for c in self._drop_all() if c.lost is not None and not c.lost.done()]
        if lost:
            await asyncio.wait(lost, timeout=1.0)
