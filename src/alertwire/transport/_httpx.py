"""Adapters for a caller's own ``httpx.Client`` / ``httpx.AsyncClient``.

For users who need httpx's proxies, auth hooks or mock transports. The
adapter wraps, never subclasses, and never closes the caller's client: the
caller made it and owns its life. httpx is imported only when one is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import NetworkError
from ._base import Request, Response

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncHttpxTransport", "HttpxTransport"]


def _network_error(request: Request, exc: BaseException) -> NetworkError:
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return NetworkError(f"no answer from {request.url.split('/')[2]}: {reason}")


def _build(
    client: httpx.Client | httpx.AsyncClient, request: Request, timeout: float
) -> httpx.Request:
    """Our request as the caller's client's own (``build_request`` is synchronous on both
    client types), so its defaults apply exactly as they would to ``client.request``."""
    return client.build_request(
        request.method, request.url, content=request.body, headers=request.headers, timeout=timeout
    )


class HttpxTransport:
    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def send(self, request: Request, *, timeout: float) -> Response:
        import httpx

        try:
            answer = self._client.send(_build(self._client, request, timeout))
        except httpx.TransportError as exc:
            raise _network_error(request, exc) from exc
        return Response(answer.status_code, answer.headers, answer.content)

    def close(self) -> None:
        """The caller's client stays open: it is theirs."""


class AsyncHttpxTransport:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, request: Request, *, timeout: float) -> Response:
        import httpx

        try:
            answer = await self._client.send(_build(self._client, request, timeout))
        except httpx.TransportError as exc:
            raise _network_error(request, exc) from exc
        return Response(answer.status_code, answer.headers, answer.content)

    async def aclose(self) -> None:
        """The caller's client stays open: it is theirs."""
