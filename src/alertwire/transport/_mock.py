"""``MockTransport``: a handler function in place of the network, for users' unit tests.

The same idea as httpx's ``MockTransport``: ``handler(request)`` returns the
:class:`Response` the service would have sent, so a test of code that sends
alerts checks what it sent and how it copes with each answer (a 429, a 500,
a refused key) without a server. The client around it stays real: the
request is built, the answer classified and retried exactly as in
production. For tests over real HTTP, the sandbox is the better stand-in
(docs/sandbox.md); this is for pure unit tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TypeAlias

from ._base import AsyncTransport, Request, Response

__all__ = ["Handler", "MockTransport"]

#: ``handler(request)`` returns the answer; an async client also accepts an ``async def`` handler.
Handler: TypeAlias = Callable[[Request], "Response | Awaitable[Response]"]


def _checked(answer: object) -> Response:
    """The handler's answer, as a transport hands it on: header names in lower case."""
    if not isinstance(answer, Response):
        raise TypeError(
            "MockTransport handler must return an alertwire.transport.Response,"
            f" got {type(answer).__name__}"
        )
    if any(name != name.lower() for name in answer.headers):
        # Real transports give case-insensitive headers; a test writing
        # {"Retry-After": "2"} means the same header and must get it honoured.
        lowered = {name.lower(): value for name, value in answer.headers.items()}
        return Response(answer.status, lowered, answer.body)
    return answer


class MockTransport:
    """A transport that calls ``handler(request)`` instead of sending; for unit tests.

    Pass it as ``http_client=`` to any client, sync or async (``PagerDuty``,
    ``AsyncPagerDuty``, ``BigPanda``, ``AsyncBigPanda``, ``PagerDutyAPI``,
    ``AsyncPagerDutyAPI``): the async ones call the same handler, and also
    accept an ``async def`` handler. To simulate a network failure, raise
    :class:`~alertwire.NetworkError` from the handler (it is retried like a
    real one); any other exception is a bug in the test and propagates as is.
    Retries happen as in production, so each retried attempt calls the
    handler again (``alertwire.instant_retries()`` makes the waits instant).
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    def send(self, request: Request, *, timeout: float) -> Response:
        answer = self.handler(request)
        if isinstance(answer, Awaitable):
            if isinstance(answer, Coroutine):
                answer.close()  # never awaited: close it rather than leave a warning behind
            raise TypeError(
                "MockTransport handler is async (it returned an awaitable):"
                " use it with an async client such as AsyncPagerDuty, or make it a plain function"
            )
        return _checked(answer)

    def close(self) -> None:
        """Nothing to release: the handler holds no connection."""

    def as_async(self) -> AsyncTransport:
        """The same handler behind the async interface (async clients call this for you)."""
        return _AsyncMockTransport(self)

    def __repr__(self) -> str:
        return f"MockTransport({getattr(self.handler, '__qualname__', self.handler)!r})"


class _AsyncMockTransport:
    """:class:`MockTransport` as an :class:`AsyncTransport`; awaits an async handler's answer."""

    def __init__(self, mock: MockTransport) -> None:
        self._mock = mock

    async def send(self, request: Request, *, timeout: float) -> Response:
        answer = self._mock.handler(request)
        if isinstance(answer, Awaitable):
            answer = await answer
        return _checked(answer)

    async def aclose(self) -> None:
        self._mock.close()
