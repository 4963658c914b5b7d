"""Reading a request body safely: a size cap while reading, JSON with a depth cap.

Never buffer what a client sends without a bound: the body is read in chunks
and reading stops one byte past the cap. A body that turns out too large
while streaming is drained without being kept, up to :data:`DRAIN_MAX`, so
that a client still sending can read our 400 instead of a reset; a body
*declared* too large is not read at all. Either way the answer closes the
connection (the routes call ``force_close``).

Nesting is capped at :data:`MAX_DEPTH` levels, the models' own limit
(:data:`alertwire.models.limits.MAX_NESTING_DEPTH`, checked by the same
function on the same bytes), so an event the models accept is never refused
here. A body nested deeper is answered as unrecognized, like malformed JSON.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .. import _json
from ..models.limits import EVENT_MAX_BYTES, MAX_NESTING_DEPTH
from ..models.nesting import nested_deeper_than

__all__ = [
    "DRAIN_MAX",
    "MAX_DEPTH",
    "BrokenBody",
    "NotAnObject",
    "Unparseable",
    "parse_object",
    "read_capped",
]

#: Containers deeper than this are refused (a top-level object is depth 1).
MAX_DEPTH: Final = MAX_NESTING_DEPTH
#: How much of an oversized body is drained (and discarded) before answering.
DRAIN_MAX: Final = 8 * 1024 * 1024
_CHUNK: Final = 64 * 1024


class Unparseable(ValueError):
    """Not JSON at all, or (``too_deep``) nested deeper than :data:`MAX_DEPTH`."""

    def __init__(self, message: str, *, too_deep: bool = False) -> None:
        super().__init__(message)
        self.too_deep = too_deep


class NotAnObject(ValueError):
    """Valid JSON, but the top level is not an object."""


class BrokenBody(ValueError):
    """The body itself did not arrive intact: bad chunked encoding, a connection lost
    mid-body, a compressed body that does not decompress."""


async def read_capped(request: web.Request, cap: int = EVENT_MAX_BYTES) -> tuple[bytes, int]:
    """The body, at most ``cap + 1`` bytes of it, and the size the client declared or sent.

    The second value is what the size rule is checked against: the declared
    ``Content-Length`` when it is larger than what was read, so a 10 MB body
    is refused without reading 10 MB. A body that breaks off raises
    :class:`BrokenBody` (a client's fault, answered 400, never a 5xx), and so
    does a body that cannot be decoded as its ``Content-Encoding`` says
    (``gzip``/``deflate`` that is not): aiohttp decompresses while we read and
    raises its ``RequestPayloadError`` for that, which is not an
    ``HttpProcessingError``.
    """
    try:
        return await _read_capped(request, cap)
    except (
        HttpProcessingError,
        web.RequestPayloadError,
        ConnectionError,
        asyncio.IncompleteReadError,
    ) as exc:
        raise BrokenBody(type(exc).__name__) from exc


async def _read_capped(request: web.Request, cap: int) -> tuple[bytes, int]:
    declared = request.content_length
    if declared is not None and declared > cap:
        return b"", declared
    chunks: list[bytes] = []
    size = 0
    while size <= cap:
        chunk = await request.content.read(min(_CHUNK, cap + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > cap:
        await _drain(request)
    return b"".join(chunks), size


async def _drain(request: web.Request) -> None:
    drained = 0
    while drained < DRAIN_MAX:
        chunk = await request.content.read(_CHUNK)
        if not chunk:
            return
        drained += len(chunk)
    # Still more: stop here; aiohttp closes a connection whose body was not read.


def parse_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; :class:`Unparseable` or :class:`NotAnObject` otherwise."""
    try:
        value = _json.loads(raw)
    except _json.JSONDecodeError as exc:
        raise Unparseable("JSON parse error") from exc
    if nested_deeper_than(raw, MAX_DEPTH):
        raise Unparseable(f"nested deeper than {MAX_DEPTH} levels", too_deep=True)
    if not isinstance(value, dict):
        raise NotAnObject(type(value).__name__)
    return value
