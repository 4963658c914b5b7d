"""Server start-up, written once for the sandbox and the ingest endpoint.

Both serve an ``aiohttp.web.Application`` on a TCP port, plain or TLS, with
the same protection against slow and hostile clients (:mod:`._guard`): read
deadlines, a connection cap, rate-limited logging. aiohttp has no read
deadline of its own (its only timer is the keep-alive one) and its
``TCPSite`` cannot wrap the connection protocol, so the listening socket is
opened here with ``loop.create_server`` around the runner's ``web.Server``
(``AppRunner.server``), which aiohttp documents as a protocol factory for
exactly that call ("Low Level Server" in its docs). Public APIs only.

Stopping (:meth:`RunningServer.stop`): the listening socket closes first
(new connections are refused), then the runner closes idle connections and
waits up to ``shutdown_timeout`` for requests in flight.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .._errors import ConfigurationError
from .._throttle import Throttle, ThrottleFilter
from ._guard import Guards, ServerLimits

__all__ = ["RunningServer", "start_server"]

#: aiohttp's own server messages (a handler's unexpected error...), rate-limited.
_AIOHTTP_LOGGER = logging.getLogger("alertwire.wire.aiohttp")


class _UnparsedRequestFilter(logging.Filter):
    """aiohttp's report of a request it could not parse, without the client's bytes.

    aiohttp answers a malformed request head (a header value with a control
    character, a line over 8 KiB, a bad ``Content-Length`` or chunk size...)
    with a 400 itself, and logs it at ERROR with a traceback whose message
    quotes the offending line. That line may carry a secret: a token read from
    a file with a stray ``\\r`` or control byte put ``Authorization: Bearer
    <token>`` in our log, a long request line its ``?routing_key=`` or
    ``?access_token=`` query. It is the client's fault, already answered: one
    WARNING line (never raised above what aiohttp chose) naming the kind of
    trouble and the peer, with no bytes and no traceback. Runs before the
    throttle, which then counts each kind separately.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        peer = args[0] if len(args) == 1 else "?"
        record.msg = (
            f"event=bad_request error={type(exc).__name__} status={exc.code} peer=%s:"
            " the request could not be parsed; answered without it, nothing stored"
        )
        record.args = (peer,)
        record.exc_info = record.exc_text = None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _throttled_logger() -> logging.Logger:
    # One logger for the process, so one throttle at the default interval: not the
    # interval of whichever server happened to start first.
    if not any(isinstance(f, ThrottleFilter) for f in _AIOHTTP_LOGGER.filters):
        _AIOHTTP_LOGGER.addFilter(_UnparsedRequestFilter())
        _AIOHTTP_LOGGER.addFilter(ThrottleFilter(Throttle()))
    return _AIOHTTP_LOGGER


def _throttle_loop_errors(
    loop: asyncio.AbstractEventLoop, throttle: Throttle
) -> Callable[[], None] | None:
    """Rate-limit what the event loop itself reports about our servers.

    When descriptors run out anyway (other code in the process holds many),
    asyncio's accept loop reports every failed ``accept()`` with a traceback
    through the loop's exception handler: thousands of lines a second. This
    handler passes each kind of message on at most once per interval, with a
    count, to whatever handler was there before (or the default one), until
    the server stops (the returned function puts the previous one back).
    """
    previous = loop.get_exception_handler()
    if getattr(previous, "_alertwire_throttled", False):
        return None

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        held = throttle.admit(f"loop:{context.get('message', '')}")
        if held is None:
            return
        if held:
            context = {
                **context,
                "message": f"{context.get('message', '')} ({held} similar suppressed)",
            }
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handle._alertwire_throttled = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handle)

    def restore() -> None:
        if loop.get_exception_handler() is handle:
            loop.set_exception_handler(previous)

    return restore


@dataclass(slots=True)
class RunningServer:
    """A started server: its port, its guards (for tests and metrics), and :meth:`stop`."""

    runner: web.AppRunner
    server: asyncio.Server
    port: int
    guards: Guards
    restore_loop_handler: Callable[[], None] | None = None

    async def stop(self) -> None:
        self.server.close()
        factory = self.runner.server
        transports = [] if factory is None else [h.transport for h in factory.connections]
        await self.runner.cleanup()
        # A TLS connection is closed gracefully: close_notify, then a wait for the
        # client's, which an idle keep-alive client never sends. The loop may stop long
        # before that would time out, leaving the socket open: abort what is left.
        for transport in transports:
            if transport is not None:
                transport.abort()
        if self.restore_loop_handler is not None:
            self.restore_loop_handler()


async def start_server(
    app: web.Application,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    limits: ServerLimits,
    shutdown_timeout: float,
) -> RunningServer:
    """Serve ``app`` on ``host:port`` (0: any free port) with ``limits``.

    Raises :class:`~alertwire.ConfigurationError` naming the address when the
    port cannot be bound (in use, not permitted), with nothing left running.
    """
    guards = Guards(limits)
    app.middlewares.insert(0, guards.middleware)
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        logger=_throttled_logger(),
    )
    await runner.setup()
    restore = _throttle_loop_errors(asyncio.get_running_loop(), guards.throttle)
    factory = runner.server
    assert factory is not None  # set by setup()
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            guards.factory(factory),
            host,
            port,
            ssl=ssl_context,
            # A TLS handshake is part of getting a request in: the same deadline
            # (asyncio's default would hold a stalled handshake for 60 s, uncounted).
            ssl_handshake_timeout=None if ssl_context is None else limits.header_timeout,
            reuse_address=True,
            backlog=limits.backlog(),
        )
    except OSError as exc:
        await runner.cleanup()
        if restore is not None:
            restore()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sockets = server.sockets
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return RunningServer(
        runner=runner, server=server, port=bound, guards=guards, restore_loop_handler=restore
    )
