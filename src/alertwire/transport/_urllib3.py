"""The default sync transport: urllib3 connection pools, retries and redirects off.

Measured (docs/architecture.md, "Transports"): ``HTTPConnectionPool.urlopen`` with retries off is
the fastest pooled client short of hand-built sockets, about 1.3x
``PoolManager.request``; so the pool for each origin is looked up once and
``urlopen`` is called directly.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import urllib3
from urllib3.connectionpool import HTTPConnectionPool

from .._errors import NetworkError
from ._base import Request, Response, Verify, ssl_context

__all__ = ["Urllib3Transport"]

#: Routes cached per transport before the cache is emptied (each one is a dict entry).
_MAX_ROUTES = 1024


class Urllib3Transport:
    """Keep-alive pools per origin; safe to share between threads."""

    def __init__(self, *, maxsize: int = 32, verify: Verify = True) -> None:
        ctx = ssl_context(verify)
        self._manager = urllib3.PoolManager(
            num_pools=8, maxsize=maxsize, retries=False, ssl_context=ctx
        )
        self._routes: dict[str, tuple[HTTPConnectionPool, str]] = {}
        self._timeouts: dict[float, urllib3.Timeout] = {}

    def _route(self, url: str) -> tuple[HTTPConnectionPool, str]:
        route = self._routes.get(url)
        if route is None:
            if len(self._routes) >= _MAX_ROUTES:
                # REST paths carry ids (/incidents/PXXXX): the cache must not grow for ever.
                self._routes.clear()
            parts = urlsplit(url)
            pool = self._manager.connection_from_url(url)
            route = self._routes[url] = (pool, parts.path or "/")
        return route

    def send(self, request: Request, *, timeout: float) -> Response:
        # The route is cached by URL without its query string (REST queries vary per call).
        url, mark, query = request.url.partition("?")
        pool, path = self._route(url)
        if mark:
            path = f"{path}?{query}"
        limit = self._timeouts.get(timeout)
        if limit is None:
            limit = self._timeouts[timeout] = urllib3.Timeout(connect=timeout, read=timeout)
        try:
            answer = pool.urlopen(
                request.method,
                path,
                body=request.body,
                headers=dict(request.headers),
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=limit,
                preload_content=True,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise NetworkError(f"no answer from {pool.host}:{pool.port}: {_reason(exc)}") from exc
        return Response(answer.status, answer.headers, answer.data)

    def close(self) -> None:
        self._manager.clear()
        self._routes.clear()


def _reason(exc: BaseException) -> str:
    """The innermost useful reason (urllib3 wraps the socket error several times)."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return _reason(reason)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
