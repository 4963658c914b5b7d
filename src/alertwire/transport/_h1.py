"""HTTP/1.1 on the wire, without I/O: a request's bytes out, a response parsed from bytes in.

:class:`~alertwire.transport.AsyncioTransport` speaks HTTP/1.1 itself
(docs/transports.md, "The async default"): the event loop hands it bytes as
they arrive, so its answers are read by a parser fed in pieces, here, apart
from the sockets, where a test can feed any split of any answer. The rules
are the sync default's, from ``transport/_http11.py`` (one place for them):
its reading of a head (``parse_head``), of ``Content-Length`` and of
``Connection``, and its check of request header lines. What only this
parser does is framing the body as the bytes come (``Content-Length``,
``Transfer-Encoding: chunked`` or the connection's close; informational
1xx answers skipped), and decoding a ``gzip``/``deflate`` body (we ask for
``identity``, but a server may not listen; aiohttp decoded them too). One
request at a time per connection: no pipelining.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._http11 import (
    MAX_BODY,
    AnswerError,
    check_body_size,
    content_length,
    header_line,
    parse_head,
    will_close,
)

__all__ = ["AnswerError", "ResponseParser", "check_target", "request_head"]

#: The most bytes of head buffered while waiting for its end (``_http11``'s bound).
MAX_HEAD = 1 << 20
#: The longest chunk-size line (``_http11``'s, and ``http.client``'s, line bound).
MAX_LINE = 65536

#: What may not appear in a method or a request target.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")


def request_head(host: str, headers: Mapping[str, str]) -> tuple[bytes, bool, bool]:
    """The header lines every request with these ``headers`` to ``host`` carries, whether
    the caller asked for ``Connection: close``, and whether it gave a ``Content-Length``.

    Built once per (host, headers) by the transport, not per request. As
    ``http.client`` does, a caller's own ``Host`` or ``Accept-Encoding``
    replaces the default one; ``Content-Length`` is added per request unless
    the caller gave one. A header line that could split the head is a
    ``ValueError`` (``_http11.header_line``, the sync default's check).
    """
    given = {name.lower() for name in headers}
    lines: list[str] = []
    if "host" not in given:
        lines.append(f"Host: {host}")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: identity")
    lines.extend(header_line(name, value) for name, value in headers.items())
    lines.append("")
    close = headers.get("Connection", headers.get("connection", "")).lower() == "close"
    return "\r\n".join(lines).encode("latin-1"), close, "content-length" in given


def check_target(method: str, target: str) -> None:
    """A method or request target with a space or control character is a ``ValueError``."""
    if not method or _FORBIDDEN.search(method) or _FORBIDDEN.search(target):
        raise ValueError(f"invalid HTTP request line: {method!r:.10} {target!r:.80}")


# Body framing, after the head.
_LENGTH, _CHUNKED, _TO_CLOSE, _DONE = range(4)


class ResponseParser:
    """One answer, fed the bytes as they come: :meth:`feed` says when it is complete.

    After completion: :attr:`status`, :attr:`headers` (lower-case names; a
    repeated header keeps its last value, as the sync default's do),
    :meth:`body`, and :attr:`reusable` (the connection may carry another
    request: ``Connection`` allows it, framed by length or chunks, nothing
    unasked after it).
    """

    __slots__ = (
        "_buffer",
        "_chunks",
        "_mode",
        "_need",
        "_no_body",
        "_size",
        "headers",
        "reusable",
        "status",
    )

    def __init__(self, *, no_body: bool = False) -> None:
        self._no_body = no_body  # an answer to HEAD: framing headers describe no bytes
        self._buffer = b""
        self._chunks: list[bytes] = []
        self._mode = -1  # before the head
        self._need = 0
        self._size = 0  # body bytes so far, where no Content-Length bounds them
        self.status = 0
        self.headers: dict[str, str] = {}
        self.reusable = False

    def feed(self, data: bytes) -> bool:
        """Take the next bytes; ``True`` once the answer is complete.

        Bytes after a complete answer make the connection not reusable (the
        server sent something unasked) and are dropped.
        """
        buffer = self._buffer + data if self._buffer else data
        while self._mode < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise AnswerError(f"got more than {MAX_HEAD} bytes of answer head")
                self._buffer = buffer
                return False
            buffer = self._head(buffer[:end], buffer[end + 4 :])
        mode = self._mode
        if mode == _LENGTH:
            need = self._need
            if len(buffer) < need:
                self._chunks.append(buffer)
                self._need = need - len(buffer)
                self._buffer = b""
                return False
            self._chunks.append(buffer[:need] if len(buffer) > need else buffer)
            if len(buffer) > need:
                self.reusable = False
            self._mode = _DONE
            self._buffer = b""
            return True
        if mode == _CHUNKED:
            return self._chunked(buffer)
        if mode == _TO_CLOSE:
            self._size += len(buffer)
            check_body_size(self._size)
            self._chunks.append(buffer)
            self._buffer = b""
            return False
        if buffer:  # after _DONE
            self.reusable = False
        return True

    def feed_eof(self) -> bool:
        """The server closed: ``True`` if that completes the answer, else :class:`AnswerError`."""
        if self._mode == _TO_CLOSE:
            self._mode = _DONE
            return True
        if self._mode == _DONE:
            return True
        raise AnswerError("the server closed the connection before the answer was complete")

    def body(self) -> bytes:
        """The body as sent (``gzip``/``deflate`` decoded)."""
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        coding = self.headers.get("content-encoding")
        if coding and data:
            data = _decoded(data, coding)
        return data

    def _head(self, head: bytes, rest: bytes) -> bytes:
        """Parse one head; return the bytes after it. Sets the framing for the body, by the
        sync default's rules (``transport/_http11.py``, ``Connection.getresponse``)."""
        version, status, headers = parse_head(head)
        if 100 <= status < 200 and status != 101:
            return rest  # informational: the real answer follows; _mode stays "before the head"
        self.status = status
        self.headers = headers
        self.reusable = not will_close(version, headers)
        if self._no_body or status in (204, 304) or status < 200:
            self._mode = _DONE
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._mode = _CHUNKED
            self._need = -1  # next: a size line
        else:
            length = content_length(headers.get("content-length"))
            if length is None:
                self._mode = _TO_CLOSE
                self.reusable = False
            else:
                check_body_size(length)
                self._mode = _LENGTH
                self._need = length
        return rest

    def _chunked(self, buffer: bytes) -> bool:
        """Consume chunks from ``buffer``; ``_need`` is the rest of the current chunk plus its
        CRLF, or -1 before a size line, or -2 in the trailers after the last chunk."""
        while True:
            need = self._need
            if need == -2:
                if buffer[:2] == b"\r\n":
                    end = 0
                else:
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        self._buffer = buffer
                        return False
                    end += 2
                if len(buffer) > end + 2:
                    self.reusable = False
                self._mode = _DONE
                self._buffer = b""
                return True
            if need == -1:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > MAX_LINE:
                        raise AnswerError("got more than 65536 bytes in one chunk line")
                    self._buffer = buffer
                    return False
                size_text = buffer[:end].split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise AnswerError("malformed chunk size in the answer") from None
                if size < 0:
                    raise AnswerError("malformed chunk size in the answer")
                buffer = buffer[end + 2 :]
                self._size += size
                check_body_size(self._size)
                self._need = -2 if size == 0 else size + 2
                continue
            if len(buffer) < need:
                if len(buffer) <= need - 2:
                    # Only chunk data so far: keep it now, so a large chunk arriving in many
                    # reads is not joined again with every read.
                    if buffer:
                        self._chunks.append(buffer)
                    self._need = need - len(buffer)
                    buffer = b""
                self._buffer = buffer
                return False
            if buffer[need - 2 : need] != b"\r\n":
                raise AnswerError("a chunk did not end with CRLF")
            self._chunks.append(buffer[: need - 2])
            buffer = buffer[need:]
            self._need = -1


def _decoded(data: bytes, coding: str) -> bytes:
    """A body in ``gzip`` or ``deflate`` decoded; any other coding is handed on as sent."""
    import zlib

    coding = coding.strip().lower()
    try:
        if coding in ("gzip", "x-gzip"):
            return _inflate(data, 16 + zlib.MAX_WBITS)
        if coding == "deflate":
            try:
                return _inflate(data, zlib.MAX_WBITS)
            except zlib.error:
                return _inflate(data, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    except zlib.error as exc:
        raise AnswerError(f"cannot decode the {coding} body: {exc}") from exc
    return data


def _inflate(data: bytes, wbits: int) -> bytes:
    """``data`` decompressed, at most :data:`MAX_BODY` bytes of it: a small compressed
    body can stand for gigabytes, which are never made."""
    import zlib

    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, MAX_BODY + 1)
    if len(out) > MAX_BODY or inflater.unconsumed_tail:
        check_body_size(MAX_BODY + 1)
    if not inflater.eof:  # as zlib.decompress says it
        raise zlib.error("Error -5 while decompressing data: incomplete or truncated stream")
    return out
