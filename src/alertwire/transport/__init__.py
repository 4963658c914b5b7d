"""Transports: how a request reaches the service, and how to write or fake one.

A transport sends one :class:`Request` and returns its :class:`Response`.
It never retries, never reads the answer, never logs a header: the clients
above it do that, once. Every client takes one through ``http_client=``:

* the default, made for you: :class:`StdlibTransport` (sync, HTTP/1.1 on
  sockets, pooled, thread-safe) or :class:`AsyncioTransport` (async,
  HTTP/1.1 over asyncio's own sockets, pooled); both honour the proxy
  variables (``HTTPS_PROXY``, ``NO_PROXY``...);
* :class:`AiohttpTransport`: one aiohttp session (the async default before
  :class:`AsyncioTransport` measured cheaper);
* :class:`Urllib3Transport`: urllib3's pools, for a caller who prefers them;
* your own ``httpx.Client`` / ``httpx.AsyncClient`` (wrapped for you in
  :class:`HttpxTransport` / :class:`AsyncHttpxTransport`), for HTTP/2 or SOCKS;
* :class:`MockTransport` (``handler(request) -> Response``), for unit tests;
* anything with the :class:`Transport` (or :class:`AsyncTransport`) methods.

docs/transports.md shows each, with examples that run. The adapters load
their HTTP library only when first used, so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _lazy_exports
from ._base import AsyncTransport, Request, Response, Transport, Verify, check_verify
from ._mock import Handler, MockTransport

__all__ = [
    "AiohttpTransport",
    "AsyncHttpxTransport",
    "AsyncTransport",
    "AsyncioTransport",
    "Handler",
    "HttpxTransport",
    "MockTransport",
    "Request",
    "Response",
    "StdlibTransport",
    "Transport",
    "Urllib3Transport",
    "Verify",
    "check_verify",
]

#: The adapters, each loaded with its HTTP library on first access.
_WHERE: dict[str, str] = {
    "AiohttpTransport": "._aiohttp",
    "AsyncHttpxTransport": "._httpx",
    "AsyncioTransport": "._asyncio",
    "HttpxTransport": "._httpx",
    "StdlibTransport": "._stdlib",
    "Urllib3Transport": "._urllib3",
}

if TYPE_CHECKING:
    from ._aiohttp import AiohttpTransport
    from ._asyncio import AsyncioTransport
    from ._httpx import AsyncHttpxTransport, HttpxTransport
    from ._stdlib import StdlibTransport
    from ._urllib3 import Urllib3Transport


_load, __dir__ = _lazy_exports(globals(), _WHERE)

if not TYPE_CHECKING:
    __getattr__ = _load

del TYPE_CHECKING
