"""What a transport is: send one :class:`Request`, return its :class:`Response`.

Transports are thin. They map every failure to get an answer to
:class:`~alertwire.NetworkError` and never retry, never parse, never log a
header (headers may carry a token). Retries and status policy live above
them, once (:mod:`alertwire.protocol.http`).

:class:`Request` and :class:`Response` are plain values with no I/O: the
protocol modules build the one and read the other without knowing which
transport carried them, which is what lets a test swap the network for a
:class:`~alertwire.transport.MockTransport`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

from .._record_methods import dataclass_eq, dataclass_hash, dataclass_repr

if TYPE_CHECKING:
    import ssl

__all__ = ["AsyncTransport", "Request", "Response", "Transport", "Verify"]

#: TLS verification: ``True`` (system trust store), a CA bundle path, or an SSLContext.
Verify: TypeAlias = "bool | str | os.PathLike[str] | ssl.SSLContext"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Request:
    """One HTTP request to make. ``headers`` may carry a credential: never log them."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes = field(repr=False)

    # eq=False, repr=False above and these instead: the same methods, not compiled at import
    # (alertwire._record_methods says why; docs/cli.md, "Start-up cost", the figures).
    __eq__ = dataclass_eq
    __hash__ = dataclass_hash

    def __repr__(self) -> str:
        return f"Request({self.method} {self.url}, {len(self.body)} bytes)"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Response:
    """What a transport received: status, headers (lower-case names) and raw body.

    :meth:`header` looks names up in lower case: a transport hands over a
    mapping that is case-insensitive (urllib3's, aiohttp's) or whose names
    it lower-cased.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes

    # eq=False, repr=False above and these instead: the same methods, not compiled at import
    # (alertwire._record_methods says why; docs/cli.md, "Start-up cost", the figures).
    __eq__ = dataclass_eq
    __hash__ = dataclass_hash
    __repr__ = dataclass_repr

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@runtime_checkable
class Transport(Protocol):
    """A synchronous transport: what ``http_client=`` of a sync client accepts."""

    def send(self, request: Request, *, timeout: float) -> Response: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncTransport(Protocol):
    """An asynchronous transport: what ``http_client=`` of an async client accepts."""

    async def send(self, request: Request, *, timeout: float) -> Response: ...

    async def aclose(self) -> None: ...


def ssl_context(verify: Verify) -> ssl.SSLContext | None:
    """An SSLContext for ``verify`` (``None`` means the library's own default).

    ``ssl`` is imported here, when a transport is made, not with this module:
    the protocol modules import :class:`Request` from here and must stay
    cheap to import (``alertwire trigger --dry-run`` opens no connection).
    """
    import ssl

    verify = check_verify(verify)
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        try:
            return ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            # Raw, these are a FileNotFoundError without the path, or an SSLError:
            # neither an AlertwireError a caller catches, and neither says which setting.
            from .._errors import ConfigurationError

            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise ConfigurationError(
                f"verify: cannot use {verify!r} as a CA bundle (PEM certificates): {reason}"
            ) from exc
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return None


def check_verify(verify: object) -> bool | str | ssl.SSLContext:
    """``verify`` as :func:`ssl_context` takes it (a path-like as its ``str``), or a
    :class:`~alertwire.ConfigurationError` naming it; no file is read here.

    Anything else (a ``pathlib.Path`` once, ``None``, ``0``) meant the system store
    without a word: a private CA given as a Path was ignored, and every https send
    then failed certificate verification, as a retryable NetworkError. An async
    client, whose transport is made at its first send, checks this when it is made.
    """
    if isinstance(verify, os.PathLike):
        verify = os.fspath(verify)
    if isinstance(verify, (bool, str)):
        return verify
    # An SSLContext exists only once ``ssl`` is imported: no import here for the others.
    ssl_module = sys.modules.get("ssl")
    if ssl_module is not None and isinstance(verify, ssl_module.SSLContext):
        context: ssl.SSLContext = verify
        return context
    from .._errors import ConfigurationError

    raise ConfigurationError(
        "verify must be True, False, a CA bundle path or an ssl.SSLContext,"
        f" got {type(verify).__name__}"
    )
