"""The delivery loop, once for sync and once for async, shared by every client.

A sender owns a transport and asks the :class:`RetryPolicy` after each
failure; the destination-specific parts (build the request, read the answer)
come in as arguments, so PagerDuty and BigPanda clients differ only in their
sans-IO protocol module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from . import _log
from ._config import DEFAULT_TIMEOUT
from ._errors import DeliveryError
from ._retry import RetryPolicy
from .transport import AsyncTransport, MockTransport, Request, Response, Transport, Verify

__all__ = [
    "DEFAULT_TIMEOUT",
    "AsyncSender",
    "SyncSender",
    "async_transport_for",
    "sync_transport_for",
]

if TYPE_CHECKING:
    from threading import Event

T = TypeVar("T")


def _is_httpx(client: object, name: str) -> bool:
    cls = type(client)
    return cls.__module__.split(".")[0] == "httpx" and any(c.__name__ == name for c in cls.__mro__)


def sync_transport_for(http_client: Any, *, verify: Verify, pool_size: int) -> Transport:
    """The default transport (pooled HTTP/1.1 on sockets), an adapter for the caller's ``httpx.Client``, or
    the caller's own :class:`~alertwire.transport.Transport` (a ``MockTransport`` in tests)."""
    if http_client is None:
        from .transport import StdlibTransport

        return StdlibTransport(maxsize=pool_size, verify=verify)
    if _is_httpx(http_client, "Client"):
        from .transport import HttpxTransport

        return HttpxTransport(http_client)
    if isinstance(http_client, Transport):
        return http_client
    raise TypeError(
        "http_client must be an httpx.Client or an alertwire.transport.Transport,"
        f" not {type(http_client).__name__}"
    )


def async_transport_for(http_client: Any, *, verify: Verify, pool_size: int) -> AsyncTransport:
    """The default asyncio transport, an adapter for the caller's ``httpx.AsyncClient``, or
    the caller's own :class:`~alertwire.transport.AsyncTransport`.

    A :class:`~alertwire.transport.MockTransport` serves async clients too, as
    httpx's does: one mock, one handler, whichever client a test uses.
    """
    if http_client is None:
        from .transport import AsyncioTransport

        return AsyncioTransport(limit=pool_size, verify=verify)
    if _is_httpx(http_client, "AsyncClient"):
        from .transport import AsyncHttpxTransport

        return AsyncHttpxTransport(http_client)
    if isinstance(http_client, MockTransport):
        return http_client.as_async()
    if isinstance(http_client, AsyncTransport):
        return http_client
    raise TypeError(
        "http_client must be an httpx.AsyncClient or an alertwire.transport.AsyncTransport,"
        f" not {type(http_client).__name__}"
    )


def _retry_step(
    retry: RetryPolicy, request: Request, exc: DeliveryError, attempt: int, started: float
) -> float | None:
    """Decide, without sleeping, what follows failed ``attempt``: the wait before the next, or
    ``None`` to give up (the caller re-raises ``exc``, marked with its attempts and why).

    The sync and async loops differ only in how they wait, so this one sans-IO step is
    what both run; it is reached only after a failure, so a first-try success costs nothing.
    """
    exc.attempts = attempt
    elapsed = time.monotonic() - started
    wait = retry.next_delay(exc, attempt, elapsed)
    if wait is None:
        if exc.retryable:
            exc.gave_up = retry.gave_up(exc, attempt, elapsed)
        return None
    _log.warning(
        "attempt %d to %s failed (%s); retrying in %.2f s",
        attempt,
        request.url,
        type(exc).__name__,
        wait,
    )
    return wait


class SyncSender:
    """Send a request, classify the answer, retry per the policy; sleeps between tries."""

    def __init__(self, transport: Transport, *, timeout: float, retry: RetryPolicy) -> None:
        self.transport = transport
        self.timeout = timeout
        self.retry = retry

    def deliver(
        self, request: Request, parse: Callable[[Response], T], *, stop: Event | None = None
    ) -> T:
        """The answer, parsed; the last error once the policy gives up.

        ``stop`` (``send_many``'s threads): once it is set, no further try is made and
        a wait between tries ends at once, raising the last error. Ctrl-C reaches only
        the main thread; without it the threads slept out their retries (up to the
        policy's ``max_elapsed``, two minutes by default) before Ctrl-C took effect.
        """
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return parse(self.transport.send(request, timeout=self.timeout))
            except DeliveryError as exc:
                if stop is not None and stop.is_set():
                    # Stopped already: no retry to decide, nor to announce ("retrying
                    # in X s" said, then the error raised at once, misled the reader).
                    exc.attempts = attempt
                    raise
                wait = _retry_step(self.retry, request, exc, attempt, started)
                if wait is None:
                    raise
                if stop is None:
                    time.sleep(wait)
                elif stop.wait(wait):
                    raise

    def close(self) -> None:
        self.transport.close()


class AsyncSender:
    """The async twin of :class:`SyncSender`."""

    def __init__(self, transport: AsyncTransport, *, timeout: float, retry: RetryPolicy) -> None:
        self.transport = transport
        self.timeout = timeout
        self.retry = retry

    async def deliver(self, request: Request, parse: Callable[[Response], T]) -> T:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return parse(await self.transport.send(request, timeout=self.timeout))
            except DeliveryError as exc:
                wait = _retry_step(self.retry, request, exc, attempt, started)
                if wait is None:
                    raise
                import asyncio  # here, not at the top: sync-only users never pay for it

                await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self.transport.aclose()
