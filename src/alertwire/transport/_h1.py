"""HTTP/1.1 on the wire, without I/O: a request's bytes out, a response parsed from bytes in.

:class:`~alertwire.transport.AsyncioTransport` speaks HTTP/1.1 itself
(docs/transports.md, "The async default"), so what it writes and how it reads
an answer live here, apart from the sockets, where a test can feed a parser
any split of any answer. Only what a client of a JSON API needs: one request
at a time per connection (no pipelining), answers framed by
``Content-Length``, ``Transfer-Encoding: chunked`` or the connection's close,
informational (1xx) answers skipped, ``gzip``/``deflate`` bodies decoded (we
ask for ``identity``, as ``http.client`` does, but a server may not listen).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["H1Error", "ResponseParser", "request_head"]

#: A head longer than this is refused (aiohttp's and http.client's limits are of this order).
MAX_HEAD = 65536

#: What may not appear in a header name or value, a method or a request target.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_FORBIDDEN_NAME = re.compile(r"[\x00-\x20\x7f:]")
_FORBIDDEN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class H1Error(ValueError):
    """The server's bytes are not an HTTP/1.1 answer (taken for a network failure above)."""


def request_head(host: str, headers: Mapping[str, str]) -> tuple[bytes, bool]:
    """The header lines every request with these ``headers`` to ``host`` carries, and whether
    the caller asked for ``Connection: close``.

    Built once per (host, headers) by the transport, not per request. As
    ``http.client`` does, a caller's own ``Host`` or ``Accept-Encoding``
    replaces the default one; ``Content-Length`` is added per request unless
    the caller gave one. A CR or LF in a name or value is a ``ValueError``:
    it would let one header smuggle in another.
    """
    given = {name.lower() for name in headers}
    lines: list[str] = []
    if "host" not in given:
        lines.append(f"Host: {host}\r\n")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: identity\r\n")
    for name, value in headers.items():
        if not name or _FORBIDDEN_NAME.search(name) or _FORBIDDEN_VALUE.search(value):
            raise ValueError(f"invalid HTTP header {name!r:.40}")
        lines.append(f"{name}: {value}\r\n")
    close = headers.get("Connection", headers.get("connection", "")).lower() == "close"
    return "".join(lines).encode("latin-1"), close


def check_target(method: str, target: str) -> None:
    """A method or request target with a space or control character is a ``ValueError``."""
    if not method or _FORBIDDEN.search(method) or _FORBIDDEN.search(target):
        raise ValueError(f"invalid HTTP request line: {method!r:.10} {target!r:.80}")


# Body framing, after the head.
_LENGTH, _CHUNKED, _TO_CLOSE, _DONE = range(4)


class ResponseParser:
    """One answer, fed the bytes as they come: :meth:`feed` says when it is complete.

    After completion: :attr:`status`, :attr:`headers` (lower-case names; a
    repeated header keeps its first value, as the aiohttp transport's
    mapping did), :meth:`body`, and :attr:`reusable` (the connection may
    carry another request: HTTP/1.1 without ``Connection: close``, framed by
    length or chunks, nothing unasked after it).
    """

    __slots__ = (
        "_buffer",
        "_chunks",
        "_mode",
        "_need",
        "_no_body",
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
                    raise H1Error("answer head too long")
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
            self._chunks.append(buffer)
            self._buffer = b""
            return False
        if buffer:  # after _DONE
            self.reusable = False
        return True

    def feed_eof(self) -> bool:
        """The server closed: ``True`` if that completes the answer, else :class:`H1Error`."""
        if self._mode == _TO_CLOSE:
            self._mode = _DONE
            return True
        if self._mode == _DONE:
            return True
        raise H1Error("the server closed the connection before the answer was complete")

    def body(self) -> bytes:
        """The body as sent (``gzip``/``deflate`` decoded)."""
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        coding = self.headers.get("content-encoding")
        if coding and data:
            data = _decoded(data, coding)
        return data

    def _head(self, head: bytes, rest: bytes) -> bytes:
        """Parse one head; return the bytes after it. Sets the framing for the body."""
        lines = head.decode("latin-1").split("\r\n")
        version, _, status_and_reason = lines[0].partition(" ")
        status_text = status_and_reason[:3]
        if not version.startswith("HTTP/1.") or not status_text.isdigit():
            raise H1Error(f"not an HTTP/1.x status line: {lines[0][:40]!r}")
        status = int(status_text)
        headers: dict[str, str] = {}
        name = ""
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and name:  # obsolete line folding
                headers[name] += " " + line.strip()
                continue
            name, colon, value = line.partition(":")
            if not colon:
                raise H1Error("malformed header line in the answer")
            name = name.strip().lower()
            if name not in headers:
                headers[name] = value.strip()
        if 100 <= status < 200 and status != 101:
            return rest  # informational: the real answer follows; _mode stays "before the head"
        self.status = status
        self.headers = headers
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self.reusable = "close" not in connection
        else:
            self.reusable = "keep-alive" in connection
        encoding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if self._no_body or status in (204, 304):
            self._mode = _DONE
        elif encoding is not None:
            if encoding.lower().rstrip().endswith("chunked"):
                self._mode = _CHUNKED
                self._need = -1  # next: a size line
            else:
                self._mode = _TO_CLOSE
                self.reusable = False
        elif length is not None:
            if not length.isdigit():
                raise H1Error("malformed Content-Length in the answer")
            self._mode = _LENGTH
            self._need = int(length)
        else:
            self._mode = _TO_CLOSE
            self.reusable = False
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
                    if len(buffer) > MAX_HEAD:
                        raise H1Error("chunk size line too long")
                    self._buffer = buffer
                    return False
                size_text = buffer[:end].split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise H1Error("malformed chunk size in the answer") from None
                if size < 0:
                    raise H1Error("malformed chunk size in the answer")
                buffer = buffer[end + 2 :]
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
                raise H1Error("a chunk did not end with CRLF")
            self._chunks.append(buffer[: need - 2])
            buffer = buffer[need:]
            self._need = -1


def _decoded(data: bytes, coding: str) -> bytes:
    """A body in ``gzip`` or ``deflate`` decoded; any other coding is handed on as sent."""
    import zlib

    coding = coding.strip().lower()
    try:
        if coding in ("gzip", "x-gzip"):
            return zlib.decompress(data, 16 + zlib.MAX_WBITS)
        if coding == "deflate":
            try:
                return zlib.decompress(data)
            except zlib.error:
                return zlib.decompress(data, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    except zlib.error as exc:
        raise H1Error(f"cannot decode the {coding} body: {exc}") from exc
    return data
