"""Reading one HTTP/1.1 message off a bare socket, for tests that stage the other side by hand.

Tests that write an answer (or a request) byte for byte still need to read
what the code under test sent: a head up to its blank line, then a body of
its ``Content-Length``. Enough for the messages these tests exchange (no
chunked bodies).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["read_message"]


class _Receiver(Protocol):
    def recv(self, size: int, /) -> bytes: ...


def read_message(sock: _Receiver, buffered: bytes = b"") -> tuple[bytes, bytes, bytes] | None:
    """The next message's head and body, and what was read past it; ``None`` if the
    peer closed the connection before a whole head arrived."""
    data = buffered
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            return None
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(rest) < length:
        more = sock.recv(65536)
        if not more:
            break
        rest += more
    return head, rest[:length], rest[length:]
