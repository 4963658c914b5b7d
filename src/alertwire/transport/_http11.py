"""One HTTP/1.1 connection on a plain or TLS socket: write a request, read its answer.

Why not ``http.client``: measured on the sync transport's own path
(``python -m bench.run --only sequential``, cProfile), ``http.client`` spent
more client CPU writing the head (a ``putheader`` call and its checks per
header) and parsing the answer's headers (through the ``email`` package's
feed parser, built for MIME messages) than alertwire spent building,
validating and encoding the event. And ``import http.client`` loads
``email.parser`` and ``ssl`` (with their own imports): a one-event
``alertwire trigger`` paid for them before sending a byte, also to an
``http://`` URL. Here ``ssl`` is imported only by whoever makes a TLS
connection (the transport, for an ``https://`` URL).

What is read, as ``http.client`` reads it: the status line; the header
lines (names lower-cased, the last of a repeated name kept, obsolete
folded lines joined); then a body by ``Transfer-Encoding: chunked``, else
``Content-Length``, else up to the close. ``1xx`` interim answers are
skipped; ``HEAD``, ``204`` and ``304`` have no body. Whether the connection
can be reused follows ``Connection`` (HTTP/1.1 keeps alive unless ``close``;
HTTP/1.0 closes unless ``keep-alive``), and an answer whose length is only
known by the close, or that is followed by bytes nobody asked for, ends it.
What is refused, as ``http.client`` refuses it: a header name or value that
could split the head (a CR or LF), a method or path with control
characters or spaces, an answer head over 64 KiB per line or over 100
header lines (and, not in ``http.client``, a head over 1 MiB). Lines must
end in CRLF, as RFC 9112 requires of a server.

Anything malformed in an answer is an :class:`AnswerError`; the transport
turns it, like an ``OSError``, into a :class:`~alertwire.NetworkError`.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

    from ._proxy import Proxy

__all__ = [
    "MAX_BODY",
    "AnswerError",
    "Connection",
    "RemoteDisconnected",
    "check_body_size",
    "content_length",
    "header_line",
    "parse_head",
    "will_close",
]

#: The longest answer line and the most header lines read (``http.client``'s limits),
#: and the most bytes of head buffered while waiting for its end (a head never comes
#: near it; a server that sends header lines for ever is cut off there).
_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_HEAD = 1 << 20
#: The largest answer body read (decoded, for the async default's gzip), in bytes. No
#: answer of the Events API, BigPanda or the REST API comes near it (a page of 100
#: incidents is about 1 MB); a server that sends more (a wrong URL serving a file, a
#: hostile or broken proxy streaming for ever) is cut off here, not read until memory
#: runs out (before: 18 GB of one endless answer before the process was stopped).
MAX_BODY = 32 << 20
#: How far (seconds) a socket's timeout may differ from the time left before the
#: deadline before it is set again.
_SLACK = 0.001
#: What one ``recv`` asks for.
_CHUNK = 65536

_LEGAL_NAME = re.compile(r"[^:\s][^:\r\n]*").fullmatch
_SPLITS_HEAD = re.compile(r"\n(?![ \t])|\r(?![ \t\n])").search
_BAD_PATH = re.compile("[\x00-\x20\x7f]").search
_BAD_METHOD = re.compile("[\x00-\x1f]").search
#: What is stripped around a header value.
_BLANKS = " \t"

#: Header names already found legal (a client sends the same few on every request).
_CHECKED_NAMES: set[str] = set()


class AnswerError(Exception):
    """The answer (or the request's path) is not HTTP/1.1 this connection can use."""


class RemoteDisconnected(AnswerError):
    """The server closed the connection before answering (``http.client``'s name for it)."""


def header_line(name: str, value: str) -> str:
    """``name: value`` for a request head; a name or value that could split the head is a
    ``ValueError`` (the one check for both default transports)."""
    if value.__class__ is not str:
        # As http.client took them: bytes as Latin-1, a number as its digits.
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    if name not in _CHECKED_NAMES:
        if not (name.isascii() and _LEGAL_NAME(name)):
            raise ValueError(f"Invalid header name {name!r}")
        if len(_CHECKED_NAMES) < 256:
            _CHECKED_NAMES.add(name)
    if ("\r" in value or "\n" in value) and _SPLITS_HEAD(value):
        raise ValueError(f"Invalid header value for {name!r}")
    return f"{name}: {value}"


class Connection:
    """One keep-alive connection to ``host:port``, over TLS when given a ``context``.

    :meth:`putrequest`, :meth:`putheader` and :meth:`endheaders` write a
    request as ``http.client`` does (its names, so the one-write test reads
    the same); the head and :attr:`body` leave in one ``sendall``: on a
    keep-alive connection a second write would wake the server twice.
    :meth:`request` does the same in one call. Not thread-safe: the pool
    hands each connection to one thread at a time.
    """

    #: The request's body, sent with the head by :meth:`endheaders`, then cleared.
    body: bytes | None = None
    #: When the exchange under way must be over (``time.monotonic()``), or ``None``. The
    #: transport's ``timeout`` is per attempt and total (docs/transports.md), but a
    #: socket's timeout bounds one call: a server trickling its answer a byte at a time,
    #: each within the timeout, held a ``send`` for as long as it kept trickling. With a
    #: deadline, every wait (the write, each read, a new connection) gets what is left.
    deadline: float | None = None

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        context: ssl.SSLContext | None = None,
        proxy: Proxy | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.context = context
        #: Where the TCP connection goes instead of ``host:port`` (over TLS: a tunnel).
        self.proxy = proxy
        #: The socket (an ``ssl.SSLSocket`` over TLS), ``None`` until connected or once
        #: closed. Typed ``Any`` as ``http.client``'s is: a unit test may put a stand-in here.
        self.sock: Any = None
        #: The Host header's value (the port only when it is not the scheme's).
        self.host_header = host_header(host, port, tls=context is not None)
        self._head: list[str] = []
        self._buffer = b""

    def connect(self) -> None:
        """Open the TCP connection (and the TLS session), with :attr:`timeout`."""
        # An ASCII host name goes to getaddrinfo as bytes: a str one would be encoded
        # with the "idna" codec, whose import alone costs a one-event command a millisecond.
        proxy = self.proxy
        host, port = (self.host, self.port) if proxy is None else (proxy.host, proxy.port)
        address = host.encode("ascii") if host.isascii() else host
        timeout = self.timeout if self.deadline is None else self._left()
        sock = socket.create_connection((address, port), timeout)  # type: ignore[arg-type]
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                if proxy is not None:
                    self._tunnel(sock)
                if self.deadline is not None:
                    sock.settimeout(self._left())  # the handshake gets what connecting left
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._buffer = b""

    def _tunnel(self, sock: socket.socket) -> None:
        """Ask the proxy for a tunnel to ``host:port`` (``CONNECT``); TLS then runs inside
        it, end to end. Anything but a 2xx is an ``OSError`` naming the proxy's answer,
        as ``http.client`` words it."""
        from ._proxy import check_tunnel

        assert self.proxy is not None
        sock.sendall(self.proxy.tunnel_request(self.host, self.port))
        self.sock, self._buffer = sock, b""
        try:
            _, status, _ = self._read_head()
        finally:
            self.sock = None
        check_tunnel(status)
        if self._buffer:
            raise AnswerError("the proxy sent bytes after accepting the tunnel")

    def close(self) -> None:
        sock, self.sock = self.sock, None
        self._buffer = b""
        if sock is not None:
            sock.close()

    # --- the request -----------------------------------------------------------------------

    def putrequest(
        self,
        method: str,
        path: str,
        skip_host: bool = False,
        skip_accept_encoding: bool = False,
    ) -> None:
        if _BAD_METHOD(method):
            raise ValueError(f"method can't contain control characters. {method!r}")
        if _BAD_PATH(path):
            raise AnswerError(f"URL can't contain control characters. {path!r}")
        head = self._head = [f"{method} {path} HTTP/1.1"]
        if not skip_host:
            head.append(f"Host: {self.host_header}")
        if not skip_accept_encoding:
            head.append("Accept-Encoding: identity")

    def putheader(self, name: str, value: str) -> None:
        self._head.append(header_line(name, value))

    def endheaders(self) -> None:
        """Send the head and :attr:`body` in one write."""
        head = self._head
        self._head = []
        head.append("\r\n")
        data = "\r\n".join(head).encode("latin-1")
        body = self.body
        if body:
            self.body = None
            data += body
        if self.sock is None:
            self.connect()
        if self.deadline is not None:
            self._bound_wait()
        self.sock.sendall(data)

    def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, length: bool
    ) -> None:
        """The whole request in one call: ``Host`` and ``Accept-Encoding`` unless ``headers``
        has them, ``headers``, then ``Content-Length`` if ``length``."""
        given = {name.lower() for name in headers}
        self.putrequest(method, path, "host" in given, "accept-encoding" in given)
        head = self._head
        head.extend([header_line(name, value) for name, value in headers.items()])
        if length and "content-length" not in given:
            head.append(f"Content-Length: {len(body)}")
        self.body = body
        self.endheaders()

    # --- the answer ------------------------------------------------------------------------

    def getresponse(self, method: str) -> tuple[int, dict[str, str], bytes, bool]:
        """The answer to the request just sent: status, headers (lower-case names), body,
        and whether the connection must be closed after it."""
        while True:
            version, status, headers = self._read_head()
            if not (100 <= status < 200) or status == 101:
                break  # an interim 1xx answer is skipped: the real one follows
        closing = will_close(version, headers)
        if method == "HEAD" or status in (204, 304) or status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        else:
            length = content_length(headers.get("content-length"))
            if length is None:
                body = self._read_to_close()
                closing = True
            else:
                check_body_size(length)
                body = self._read_exactly(length)
        if self._buffer:
            closing = True  # bytes nobody asked for: the next answer could not be told apart
        return status, headers, body, closing

    def _recv(self) -> bytes:
        if self.deadline is not None:
            self._bound_wait()
        data: bytes = self.sock.recv(_CHUNK)
        return data

    def _left(self) -> float:
        """Seconds left before :attr:`deadline`; a ``TimeoutError`` when none are."""
        assert self.deadline is not None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out (the attempt's time is up)")
        return left

    def _bound_wait(self) -> None:
        """Let the socket's next wait last no longer than what is left before the deadline.

        Set only when it differs by more than :data:`_SLACK` from what the socket
        already has: the first read of an answer follows its write by microseconds,
        so one ``settimeout`` (a system call) per request is the usual cost.
        """
        left = self._left()
        sock = self.sock
        current = sock.gettimeout()
        if current is None or abs(current - left) > _SLACK:
            sock.settimeout(left)

    def _read_head(self) -> tuple[str, int, dict[str, str]]:
        buffer = self._buffer
        searched = 0
        while True:
            end = buffer.find(b"\r\n\r\n", searched)
            if end >= 0:
                break
            if len(buffer) - buffer.rfind(b"\r\n") - 2 > _MAX_LINE:
                raise AnswerError("got more than 65536 bytes in one answer line")
            if len(buffer) > _MAX_HEAD:
                raise AnswerError(f"got more than {_MAX_HEAD} bytes of answer head")
            searched = max(len(buffer) - 3, 0)
            data = self._recv()
            if not data:
                if buffer:
                    raise AnswerError(f"the answer ended in its head: {bytes(buffer[:80])!r}")
                raise RemoteDisconnected("Remote end closed connection without response")
            buffer += data
        self._buffer = buffer[end + 4 :]
        return parse_head(buffer[:end])

    def _read_exactly(self, length: int) -> bytes:
        buffer = self._buffer
        if len(buffer) < length:
            parts = [buffer]
            have = len(buffer)
            while have < length:
                data = self._recv()
                if not data:
                    raise AnswerError(
                        f"IncompleteRead({have} bytes read, {length - have} more expected)"
                    )
                parts.append(data)
                have += len(data)
            buffer = b"".join(parts)
        self._buffer = buffer[length:]
        return buffer[:length]

    def _read_line(self) -> bytes:
        buffer = self._buffer
        while (end := buffer.find(b"\r\n")) < 0:
            if len(buffer) > _MAX_LINE:
                raise AnswerError("got more than 65536 bytes in one chunk line")
            data = self._recv()
            if not data:
                raise AnswerError("the answer ended inside a chunk line")
            buffer += data
        self._buffer = buffer[end + 2 :]
        return buffer[:end]

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise AnswerError(f"bad chunk size: {size_line[:20]!r}") from None
            if size < 0:
                raise AnswerError(f"bad chunk size: {size_line[:20]!r}")
            if size == 0:
                while self._read_line():  # trailer fields, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            check_body_size(total)
            parts.append(self._read_exactly(size))
            if self._read_exactly(2) != b"\r\n":
                raise AnswerError("a chunk did not end in CRLF")

    def _read_to_close(self) -> bytes:
        parts = [self._buffer]
        have = len(self._buffer)
        self._buffer = b""
        while data := self._recv():
            parts.append(data)
            have += len(data)
            check_body_size(have)
        return b"".join(parts)


def check_body_size(size: int) -> None:
    """An answer body of ``size`` bytes (declared, or read so far) is an :class:`AnswerError`
    when it is over :data:`MAX_BODY`."""
    if size > MAX_BODY:
        raise AnswerError(f"the answer's body is over {MAX_BODY} bytes (got {size}); not read")


def host_header(host: str, port: int, *, tls: bool) -> str:
    """The ``Host`` header's value, as ``http.client`` writes it: a non-ASCII name in its
    IDNA (``xn--``) form, an IPv6 address in brackets, the port only when it is not the
    scheme's. (Both default transports write it from here.)"""
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    return host if port == (443 if tls else 80) else f"{host}:{port}"


def parse_head(head: bytes) -> tuple[str, int, dict[str, str]]:
    """An answer's head (up to, not with, its blank line): version, status, headers.

    The one reading of a head for both default transports (this module's
    :class:`Connection` and the async ``transport/_h1.py`` parser)."""
    lines = head.decode("latin-1").split("\r\n")
    if len(lines) > _MAX_HEADERS + 1:
        raise AnswerError(f"got more than {_MAX_HEADERS} headers")
    if len(head) > _MAX_LINE and any(len(line) > _MAX_LINE for line in lines):
        raise AnswerError("got more than 65536 bytes in one answer line")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not (version.startswith("HTTP/") and code.isdigit() and rest[3:4] in ("", " ")):
        raise AnswerError(f"bad status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    name = ""
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and name:
            headers[name] = f"{headers[name]} {line.strip(_BLANKS)}"  # obsolete folding
            continue
        key, colon, value = line.partition(":")
        if colon:
            name = key.strip().lower()
            headers[name] = value.strip(_BLANKS)
    return version, int(code), headers


def content_length(value: str | None) -> int | None:
    """The body's length, or ``None`` (read to the close) when absent or not a number."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def will_close(version: str, headers: dict[str, str]) -> bool:
    """Whether the connection ends after this answer, by its version and ``Connection``."""
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.1":
        return "close" in connection
    return not ("keep-alive" in connection or "keep-alive" in headers)
