"""What a transport is: send one :class:`Request`, return its :class:`Response`.

Transports are thin. They map every failure to get an answer to
:class:`~alertwire.NetworkError` and never retry, never parse, never log a
header (headers may carry a token). Retries and status policy live above
them, once.
"""

from __future__ import annotations

import ssl
from typing import Protocol, TypeAlias, runtime_checkable

from ..protocol._http import Request, Response

__all__ = ["AsyncTransport", "SyncTransport", "Verify"]

#: TLS verification: ``True`` (system trust store), a CA bundle path, or an SSLContext.
Verify: TypeAlias = "bool | str | ssl.SSLContext"


@runtime_checkable
class SyncTransport(Protocol):
    def send(self, request: Request, *, timeout: float) -> Response: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncTransport(Protocol):
    async def send(self, request: Request, *, timeout: float) -> Response: ...

    async def aclose(self) -> None: ...


def ssl_context(verify: Verify) -> ssl.SSLContext | None:
    """An SSLContext for ``verify`` (``None`` means the library's own default)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return None
