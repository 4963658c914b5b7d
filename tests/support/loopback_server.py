"""A small scriptable HTTP/1.1 server on loopback, for the client tests.

Until the sandbox exists, the clients are tested against this: a real socket
on ``127.0.0.1`` (port 0), keep-alive, and answers scripted per request so
every status path, a delay, a reset or a silent close can be staged. Each
request is recorded with the connection it arrived on, so tests can prove
keep-alive reuse and that a retry carried the same body.

The stdlib server runs in a thread: no event loop of its own, so it serves
the sync and the async clients alike.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast

__all__ = ["Answer", "LoopbackServer", "Received", "serve"]

Action = Literal["answer", "reset", "close", "answer_then_close"]


@dataclass(frozen=True)
class Answer:
    """What to do with one request.

    ``action``: ``answer`` (normal, keep-alive), ``reset`` (RST without an
    answer), ``close`` (FIN without an answer), ``answer_then_close`` (answer,
    then close the idle connection without saying ``Connection: close``, as
    PagerDuty's load balancers do). ``body=None`` means PagerDuty's own 202
    body for the request. ``delay`` seconds pass before the action.
    """

    status: int = 202
    body: bytes | str | dict[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    action: Action = "answer"


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int

    def json(self) -> Any:
        return json.loads(self.body)


def _default_body(path: str, body: bytes) -> dict[str, Any]:
    """PagerDuty's 202 body: alerts echo the dedup key, change events do not."""
    if path.endswith("/change/enqueue"):
        return {"message": "Change event processed", "status": "success"}
    try:
        sent = json.loads(body)
    except ValueError:
        sent = {}
    key = sent.get("dedup_key") if isinstance(sent, dict) else None
    return {
        "dedup_key": key or "generated" + "0" * 23,
        "message": "Event processed",
        "status": "success",
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection_id = self.server.new_connection()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: test output is for test failures."""

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        received = Received(
            self.command,
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            body,
            self.connection_id,
        )
        answer = self.server.record_and_next(received)
        if answer.delay and self.server.stopping.wait(answer.delay):
            self.close_connection = True
            return
        if answer.action == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if answer.action == "close":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        payload = answer.body if answer.body is not None else _default_body(self.path, body)
        if isinstance(payload, dict):
            data = json.dumps(payload).encode()
            content_type = "application/json"
        else:
            data = payload.encode() if isinstance(payload, str) else payload
            content_type = "text/plain; charset=utf-8"
        self.send_response(answer.status)
        headers = {"Content-Type": content_type, **answer.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if answer.action == "answer_then_close":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.script: deque[Answer] = deque()
        self.responder: Callable[[Received], Answer | None] | None = None
        self.received: list[Received] = []

    def new_connection(self) -> int:
        with self._lock:
            return next(self._ids)

    def record_and_next(self, received: Received) -> Answer:
        with self._lock:
            self.received.append(received)
            if self.script:
                return self.script.popleft()
            answer = self.responder(received) if self.responder is not None else None
            return answer if answer is not None else Answer()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout) makes our late write fail: expected here."""


class LoopbackServer:
    """The test-facing handle: ``url``, ``script(...)``, ``received``, ``connections``."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = cast("tuple[str, int]", self._server.server_address[:2])  # an AF_INET server
        return f"http://{host}:{port}"

    def script(self, *answers: Answer) -> None:
        """Queue answers for the next requests, in order; afterwards, 202 success."""
        with self._server._lock:
            self._server.script.extend(answers)

    def respond_with(self, responder: Callable[[Received], Answer | None]) -> None:
        """Answer by content once the script is used up (``None`` = the default 202)."""
        self._server.responder = responder

    @property
    def received(self) -> list[Received]:
        with self._server._lock:
            return list(self._server.received)

    @property
    def connections(self) -> set[int]:
        return {r.connection for r in self.received}

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve() -> Iterator[LoopbackServer]:
    """Generator for a pytest fixture: ``server = pytest.fixture(serve)``."""
    server = LoopbackServer().start()
    try:
        yield server
    finally:
        server.stop()
