"""The default async transport: one aiohttp session with a keep-alive connector.

aiohttp is imported here only, and this module only when an async client
first sends, so ``import alertwire`` stays light (aiohttp costs about 0.4 s
to import). Measured (docs/architecture.md, "Transports"): aiohttp keeps its rate as concurrency
grows, where httpx's async client falls off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from .._errors import NetworkError
from ._base import Request, Response, Verify, ssl_context

__all__ = ["AiohttpTransport"]


class AiohttpTransport:
    """A lazily created ``ClientSession``; ``limit`` bounds open connections."""

    def __init__(self, *, limit: int = 100, verify: Verify = True) -> None:
        self._limit = limit
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        # The last request's headers and aiohttp's form of them. A client sends
        # the very same mapping object with every request (JSON_HEADERS, or a
        # BigPanda client's token headers), so this is converted once instead
        # of once per request; checked by identity, and the reference kept
        # here stops the id from being reused by another mapping.
        self._headers_from: Mapping[str, str] | None = None
        self._headers: CIMultiDictProxy[str] | None = None

    def _open(self) -> aiohttp.ClientSession:
        ctx = ssl_context(self._verify)
        connector = aiohttp.TCPConnector(limit=self._limit, ssl=ctx if ctx is not None else True)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    async def send(self, request: Request, *, timeout: float) -> Response:
        session = self._session or self._open()
        limit = self._timeouts.get(timeout)
        if limit is None:
            limit = self._timeouts[timeout] = aiohttp.ClientTimeout(total=timeout)
        headers = self._headers
        if request.headers is not self._headers_from or headers is None:
            headers = self._headers = CIMultiDictProxy(CIMultiDict(request.headers))
            self._headers_from = request.headers
        try:
            async with session.request(
                request.method,
                request.url,
                data=request.body,
                headers=headers,
                timeout=limit,
                allow_redirects=False,
            ) as answer:
                body = await answer.read()
                return Response(answer.status, answer.headers, body)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise NetworkError(f"no answer from {request.url.split('/')[2]}: {reason}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
