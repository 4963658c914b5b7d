"""A tiny HTTP/1.1 keep-alive endpoint that answers every POST with PagerDuty's 202.

Why not the sandbox or aiohttp.web: the endpoint must never be what is
measured. A raw :class:`asyncio.Protocol` that parses only the request line,
``Content-Length`` and ``Connection`` answers tens of thousands of requests a
second on one core, several times what any measured client sends. It runs in
its own process (:class:`Endpoint`), so it does not share the GIL with the
client under test.

``GET /__count`` answers the number of POSTs received so far, so a run can
prove every event reached the endpoint (a benchmark that silently fails
fast would look good). Anything else gets a 404; a request without
``Content-Length`` (chunked bodies) gets a 411 and the connection is closed:
no measured client sends one.

Run alone: ``python -m bench.endpoint`` prints the port, then serves until
stdin closes or the process is terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

__all__ = ["ACCEPTED_BODY", "Endpoint", "serve"]

#: PagerDuty's 202 answer, canned (a fixed dedup key: every client reads one back).
ACCEPTED_BODY = (
    b'{"status":"success","message":"Event processed",'
    b'"dedup_key":"0123456789abcdef0123456789abcdef"}'
)


def _response(status: bytes, body: bytes, *, close: bool = False) -> bytes:
    head = (
        b"HTTP/1.1 " + status + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
    )
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


_ACCEPTED = _response(b"202 Accepted", ACCEPTED_BODY)
_ACCEPTED_CLOSE = _response(b"202 Accepted", ACCEPTED_BODY, close=True)
_NOT_FOUND = _response(b"404 Not Found", b'{"status":"not found"}')
_LENGTH_REQUIRED = _response(b"411 Length Required", b'{"status":"length required"}', close=True)


class _Counter:
    __slots__ = ("posts",)

    def __init__(self) -> None:
        self.posts = 0


class _HTTPProtocol(asyncio.Protocol):
    """One connection: buffer bytes, answer each complete request in order (pipelining too)."""

    def __init__(self, counter: _Counter) -> None:
        self._counter = counter
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        transport = self._transport
        assert transport is not None
        out: list[bytes] = []
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            lower = head.lower()
            length = 0
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17 : stop if stop >= 0 else None])
            elif b"\r\ntransfer-encoding:" in lower:
                out.append(_LENGTH_REQUIRED)
                transport.write(b"".join(out))
                transport.close()
                self._buffer = b""
                return
            total = end + 4 + length
            if len(buffer) < total:
                break
            buffer = buffer[total:]
            close = b"\r\nconnection: close" in lower
            if lower.startswith(b"post "):
                self._counter.posts += 1
                out.append(_ACCEPTED_CLOSE if close else _ACCEPTED)
            elif lower.startswith(b"get /__count "):
                body = str(self._counter.posts).encode()
                out.append(_response(b"200 OK", body, close=close))
            else:
                out.append(_NOT_FOUND)
            if close:
                transport.write(b"".join(out))
                transport.close()
                self._buffer = b""
                return
        self._buffer = buffer
        if out:
            transport.write(b"".join(out) if len(out) > 1 else out[0])


async def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve until stdin closes (the parent went away) or SIGTERM; print the port first."""
    loop = asyncio.get_running_loop()
    counter = _Counter()
    server = await loop.create_server(lambda: _HTTPProtocol(counter), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(bound, flush=True)
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    # stdin closing means the parent died: never outlive it.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    waiter = asyncio.ensure_future(reader.read())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    stopper.cancel()
    server.close()


class Endpoint:
    """The endpoint in a child process: ``with Endpoint() as ep: ep.base_url``."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Endpoint:
        root = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.endpoint"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=root,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip():
            self.stop()
            raise RuntimeError("bench endpoint did not start")
        self.port = int(line)
        return self

    def posts(self) -> int:
        """How many POSTs the endpoint has answered (over a fresh connection)."""
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/__count")
            return int(conn.getresponse().read())
        finally:
            conn.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    asyncio.run(serve())
