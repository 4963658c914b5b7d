"""What a slow or hostile client meets: read deadlines and a cap on connections.

aiohttp's server has no deadline for reading a request: its only timer is
the keep-alive timeout, and a client that sends half a request head, or a
body that stops half way, holds the connection (and a file descriptor) for
as long as it likes. Enough of them exhaust the process's descriptors, and
then nobody is served. So every connection of our servers goes through a
:class:`_GuardedConnection`, an ordinary asyncio protocol wrapped around
aiohttp's request handler, which enforces :class:`ServerLimits`:

* **head deadline**: a connection must deliver a complete request head
  within ``header_timeout`` seconds of being opened, or of the previous
  answer (so this is also the keep-alive idle timeout). Otherwise it is
  closed, after a ``408`` if part of a head had arrived;
* **body deadline**: once the head is in, the whole body must have arrived
  within ``body_timeout`` seconds, or the connection is closed (the handler
  sees a broken body, which the routes answer without a 5xx). Time spent
  *after* the body is read (a commit waiting for the disk) is not limited
  here: the stores bound it themselves;
* **connection cap**: beyond ``max_connections`` open connections, a new one
  is answered ``503`` with ``Retry-After`` and closed at once, so the
  process never runs out of descriptors (which would fail valid requests,
  the outbox's own files, and flood the log).

Each kind of trouble is logged at WARNING, at most once per
:data:`~.._throttle.DEFAULT_INTERVAL` seconds with a count (:mod:`.._throttle`).

How the wrapper learns that a head is complete without parsing HTTP a
second time: a middleware (:meth:`Guards.middleware`), which aiohttp runs
exactly when a request head has been parsed, tells the connection's guard
(found by ``request.transport``) that a request started and, when the
handler returns, that it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from .._errors import ConfigurationError
from .._numbers import is_real, is_whole
from .._throttle import DEFAULT_INTERVAL, Throttle

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "Guards",
    "ServerLimits",
    "default_backlog",
    "default_connection_cap",
]

logger = logging.getLogger("alertwire.wire")

#: Seconds for a complete request head (and the idle time allowed between requests).
DEFAULT_HEADER_TIMEOUT: Final = 10.0
#: Seconds for a complete body, counted from the end of the head.
DEFAULT_BODY_TIMEOUT: Final = 30.0
#: Open connections at most, unless the descriptor limit asks for fewer (see
#: :meth:`ServerLimits.connection_cap`).
DEFAULT_MAX_CONNECTIONS: Final = 1024
_DEFAULT_BACKLOG: Final = 100
#: Seconds a refused connection may take to read its 503 and close.
REFUSAL_LINGER: Final = 1.0
#: ``Retry-After`` of the 503 given to a connection beyond the cap.
CAP_RETRY_AFTER: Final = 1

_REQUEST_TIMEOUT: Final = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)
_BUSY_BODY: Final = b'{"errors":["Too many open connections; retry later"],"status":"unavailable"}'
_BUSY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
    b"Content-Type: application/json\r\nRetry-After: %d\r\nContent-Length: %d\r\n\r\n%s"
) % (CAP_RETRY_AFTER, len(_BUSY_BODY), _BUSY_BODY)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _descriptor_limit() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """How long a client may take, and how many may be connected at once.

    ``max_connections=None`` (the default) derives the cap from the process's
    open-file limit (:func:`default_connection_cap`), so that held
    connections never starve the outbox, the logs and outgoing connections of
    descriptors; at most :data:`DEFAULT_MAX_CONNECTIONS`.
    """

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_connections: int | None = None
    #: At most one WARNING line per kind of trouble in this many seconds.
    log_interval: float = DEFAULT_INTERVAL

    def __post_init__(self) -> None:
        # Checked by comparison only, True was a one-second deadline or a cap of one
        # connection, and a "5" read from a config file a bare TypeError.
        for name in ("header_timeout", "body_timeout", "log_interval"):
            value = getattr(self, name)
            if not is_real(value) or not value > 0:  # not NaN either
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        if self.max_connections is not None and not is_whole(self.max_connections, minimum=1):
            raise ConfigurationError(
                f"max_connections must be a whole number, at least 1,"
                f" got {self.max_connections!r:.40}"
            )

    def connection_cap(self) -> int:
        if self.max_connections is not None:
            return self.max_connections
        limit = _descriptor_limit()
        return DEFAULT_MAX_CONNECTIONS if limit is None else default_connection_cap(limit)

    def backlog(self) -> int:
        """The listen backlog: see :func:`default_backlog`."""
        limit = _descriptor_limit()
        return _DEFAULT_BACKLOG if limit is None else default_backlog(limit)


def default_backlog(descriptor_limit: int) -> int:
    """The listen backlog under a descriptor limit.

    It is also how many connections asyncio accepts in one go, before any of
    them can be refused (and its descriptor freed, a few loop turns later):
    a sixteenth of the limit (at most 100, asyncio's default) keeps those
    bursts small next to the limit.
    """
    return max(8, min(_DEFAULT_BACKLOG, descriptor_limit // 16))


def default_connection_cap(descriptor_limit: int) -> int:
    """The connection cap under a descriptor limit: what is left after 64 descriptors
    for the process itself (the outbox, logs, outgoing connections), halved to leave
    room for connections being refused (a few accept bursts, and the refusals that
    linger), and at most :data:`DEFAULT_MAX_CONNECTIONS`. Measured: a relay holds
    about 30 descriptors of its own; ``ulimit -n 128`` gives 32 connections, 1024
    gives 480."""
    return max(8, min(DEFAULT_MAX_CONNECTIONS, (descriptor_limit - 64) // 2))


class Guards:
    """The guards of one server's open connections, and the middleware that informs them."""

    def __init__(self, limits: ServerLimits, *, throttle: Throttle | None = None) -> None:
        self.limits = limits
        self.cap = limits.connection_cap()
        self.throttle = throttle if throttle is not None else Throttle(limits.log_interval)
        self._by_transport: dict[asyncio.BaseTransport, _GuardedConnection] = {}
        #: Refused connections being closed gently (see _GuardedConnection._refuse).
        self.lingering = 0
        self.linger_max = limits.backlog()
        #: Connections with a request arriving (some of its head read) or being
        #: handled (see :meth:`alone`).
        self._busy: set[_GuardedConnection] = set()
        #: The connection answered last, and when (``time.monotonic``).
        self._last_answer: tuple[_GuardedConnection | None, float] = (None, 0.0)
        #: Trouble seen so far, by kind (the ingest endpoint exports it as a metric and
        #: may replace the dict with its own, kept across restarts).
        self.counts: dict[str, int] = {}

    @property
    def open(self) -> int:
        return len(self._by_transport)

    @property
    def in_progress(self) -> int:
        """Connections with a request arriving (some of its head read) or being handled."""
        return len(self._busy)

    def alone(self, recent: float) -> bool:
        """No request but (at most) one is in progress, and no *other* connection was
        answered in the last ``recent`` seconds.

        The ingest endpoint commits on its event loop only then (docs/ingest.md,
        "Committing on the loop when nobody else is waiting"): a client that was
        just answered on another connection is likely to send again at once (a busy
        sender waits for each answer), and its request belongs in the same commit.
        """
        if len(self._busy) > 1:
            return False
        answered, at = self._last_answer
        if answered is None or answered in self._busy:
            return True
        return time.monotonic() - at >= recent

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` around aiohttp's own."""

        def make() -> asyncio.Protocol:
            return _GuardedConnection(self, inner)

        return make

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        guard = None if transport is None else self._by_transport.get(transport)
        if guard is None:
            return await handler(request)
        guard.request_started(request)
        try:
            return await handler(request)
        finally:
            guard.request_ended()

    def trouble(self, kind: str, msg: str, *args: object) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.throttle.log(logger, logging.WARNING, kind, msg, *args)

    def _admit(self, transport: asyncio.BaseTransport, guard: _GuardedConnection) -> bool:
        if len(self._by_transport) >= self.cap:
            return False
        self._by_transport[transport] = guard
        return True

    def _forget(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is not None:
            self._by_transport.pop(transport, None)


class _GuardedConnection(asyncio.Protocol):
    """aiohttp's request handler, plus the deadlines; every protocol call is passed on."""

    def __init__(self, guards: Guards, inner: Callable[[], asyncio.Protocol]) -> None:
        self._guards = guards
        self._make_inner = inner
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: Bytes of a request head arrived that no request has started with yet.
        self._head_pending = False
        #: The blank line that ends a head was among the bytes since the head began, and
        #: the last bytes of them, for a blank line split across two reads.
        self._head_ended = False
        self._head_tail = b""
        self._request: web.Request | None = None
        self._lost = False
        self._lingering = False
        #: The client shut its sending side while a request was arriving (:meth:`eof_received`).
        self._client_done = False
        #: Counted in ``Guards.in_progress`` (see :meth:`_recount`).
        self._counted = False

    # ------------------------------------------------------------ asyncio protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if not self._guards._admit(transport, self):
            self._guards.trouble(
                "over_cap",
                "event=connection_refused reason=too_many_connections limit=%d",
                self._guards.cap,
            )
            self._refuse(transport)
            return
        self._inner = self._make_inner()
        self._arm_head_deadline()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._recount()
        self._cancel_timer()
        if self._lingering:
            self._guards.lingering -= 1
        self._guards._forget(self._transport)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        request = self._request
        if request is None or request.content.is_eof():
            # Not body bytes of the request in progress: the start of the next head.
            if not self._head_pending:
                self._head_pending = True
                self._head_ended = False
                self._head_tail = b""
                self._recount()
            if not self._head_ended:
                seen = self._head_tail + data
                if not self._head_tail:  # nothing of the head yet: the parser skips
                    seen = seen.lstrip(b"\r\n")  # blank lines before it, and so do we
                self._head_ended = b"\r\n\r\n" in seen or b"\n\n" in seen
                self._head_tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        """The client shut its sending side (``shutdown(SHUT_WR)``, as ``nc -N``,
        socat and some HTTP/1.0 clients do after the request).

        aiohttp closes the whole connection then, even when a complete request
        has arrived: the event is stored and the 202 is never written, so a
        client that retries pages twice. Instead, a request that has arrived
        (or is still arriving in this read) is answered on the open write side:
        aiohttp is told to finish the request it has and take no more
        (``close()``), then it closes. An idle connection, a head cut short or a
        body cut short (they can never complete) is closed at once as before,
        also when the request only starts after the end arrived
        (:meth:`request_started`). Whether a whole head arrived is known by the
        blank line that ends every head (:meth:`data_received` looks for it, and
        parses nothing else); a client that closes for good looks the same as
        one that half-closes, so the rule must not keep a dead client's
        connection waiting for a deadline.
        """
        inner = self._inner
        if inner is None:
            return None
        request = self._request
        if request is None and not (self._head_pending and self._head_ended):
            return inner.eof_received()
        if request is not None and not request.content.is_eof():
            return inner.eof_received()
        close = getattr(inner, "close", None)
        transport = self._transport
        if close is None or transport is None or transport.get_extra_info("sslcontext"):
            # asyncio's TLS closes after the end whatever we return (and warns if we
            # ask otherwise): a TLS client must keep its side open for the answer.
            return inner.eof_received()
        close()
        self._client_done = True
        return True

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def _refuse(self, transport: asyncio.Transport) -> None:
        """503, then a lingering close when affordable.

        Closing a socket whose request was never read makes the kernel send a
        reset, which can destroy the 503 before the client reads it. So the
        write side is shut (FIN after the 503) and what the client sends is
        discarded until it closes, for at most :data:`REFUSAL_LINGER` seconds,
        and for at most ``backlog`` refused connections at once: beyond that,
        descriptors matter more than a readable refusal.
        """
        with contextlib.suppress(Exception):
            transport.write(_BUSY)
        guards = self._guards
        if guards.lingering >= guards.linger_max or not transport.can_write_eof():
            transport.close()
            return
        guards.lingering += 1
        self._lingering = True
        transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_LINGER, transport.close)

    # ------------------------------------------------------------ deadlines

    def request_started(self, request: web.Request) -> None:
        self._request = request
        self._head_pending = False
        self._head_ended = False
        self._recount()
        self._cancel_timer()
        if self._client_done and not request.content.is_eof() and self._transport is not None:
            # The client has stopped sending and this body is not complete: it never will be.
            self._transport.close()
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(
            self._guards.limits.body_timeout, self._body_deadline, request
        )

    def request_ended(self) -> None:
        self._request = None
        self._guards._last_answer = (self, time.monotonic())
        self._recount()
        self._arm_head_deadline()

    def _recount(self) -> None:
        """Keep ``Guards.in_progress`` in step: this connection counts while a head is
        pending or a request is being handled, and never once it is lost."""
        busy = not self._lost and (self._head_pending or self._request is not None)
        if busy != self._counted:
            self._counted = busy
            if busy:
                self._guards._busy.add(self)
            else:
                self._guards._busy.discard(self)

    def _arm_head_deadline(self) -> None:
        self._cancel_timer()
        if self._lost:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guards.limits.header_timeout, self._head_deadline)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_deadline(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._head_pending:
            # Part of a head arrived, never all of it: a slow or stalled client.
            self._guards.trouble(
                "slow_head",
                "event=connection_closed reason=slow_request_head timeout=%gs",
                self._guards.limits.header_timeout,
            )
            with contextlib.suppress(Exception):
                transport.write(_REQUEST_TIMEOUT)
        # else: an idle connection (nothing sent since the last answer): close quietly.
        transport.close()

    def _body_deadline(self, request: web.Request) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing() or request.content.is_eof():
            return
        self._guards.trouble(
            "slow_body",
            "event=connection_closed reason=slow_request_body timeout=%gs",
            self._guards.limits.body_timeout,
        )
        transport.close()
