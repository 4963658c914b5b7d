"""A loopback PagerDuty/BigPanda stand-in for the relay tests: records arrival order,
injects faults by plan, and watches for one event or key in flight twice.

Why not ``tests.support.loopback_server``: the relay tests need an open-ended fault
*plan* (a function of the request number, for hundreds of requests), a
per-key in-flight tracker (two relays must never send one key at once), and
a port that can be closed and reopened (the outage test).
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = ["OK", "RANK", "Arrival", "Fault", "Upstream", "random_faults", "upstream"]


@dataclass(frozen=True)
class Fault:
    """``status`` (with ``retry_after``) or ``reset`` (RST, no answer)."""

    status: int = 202
    retry_after: float | None = None
    reset: bool = False
    body: dict[str, Any] | None = None


OK = Fault()


@dataclass(frozen=True)
class Arrival:
    seq: int
    path: str
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    status: int | None  # None: reset without answer

    @property
    def key(self) -> str | None:
        key = self.body.get("dedup_key")
        return key if isinstance(key, str) else None

    @property
    def action(self) -> str | None:
        action = self.body.get("event_action")
        return action if isinstance(action, str) else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        up = self.server.upstream
        fault, seq = up._begin(body, raw)
        try:
            if up.delay:
                time.sleep(up.delay)
            if fault.reset:
                up._record(seq, self.path, body, raw, dict(self.headers), None)
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True
                return
            up._record(seq, self.path, body, raw, dict(self.headers), fault.status)
        finally:
            up._end(body, raw)
        if fault.body is not None:
            payload = fault.body
        elif fault.status < 300 and self.path.endswith("/v2/enqueue"):
            payload = {
                "status": "success",
                "message": "Event processed",
                "dedup_key": body.get("dedup_key"),
            }
        elif fault.status < 300:
            payload = {"status": "success", "message": "processed"}
        else:
            payload = {"status": "error", "message": f"injected {fault.status}"}
        data = json.dumps(payload).encode()
        self.send_response(fault.status)
        self.send_header("Content-Type", "application/json")
        if fault.retry_after is not None:
            self.send_header("Retry-After", f"{fault.retry_after:g}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, port: int, upstream: Upstream) -> None:
        self.upstream = upstream
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A relay killed mid-request leaves a broken pipe here: expected."""


class Upstream:
    """``plan(seq, body) -> Fault`` decides each answer (default: 202)."""

    def __init__(
        self,
        plan: Callable[[int, dict[str, Any]], Fault] | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        self.plan = plan or (lambda seq, body: OK)
        self.delay = delay
        self._lock = threading.Lock()
        self._seq = 0
        self.arrivals: list[Arrival] = []
        self._inflight_keys: Counter[str] = Counter()
        self._inflight_bodies: Counter[bytes] = Counter()
        self.overlapping_keys = 0
        self.overlapping_events = 0
        self.begun = 0
        self.inflight = 0
        self.max_inflight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- server side
    def _begin(self, body: dict[str, Any], raw: bytes) -> tuple[Fault, int]:
        with self._lock:
            self._seq += 1
            seq = self._seq
            self.begun += 1
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            key = _ident(body)
            self._inflight_keys[key] += 1
            if self._inflight_keys[key] > 1:
                self.overlapping_keys += 1
            self._inflight_bodies[raw] += 1
            if self._inflight_bodies[raw] > 1:
                self.overlapping_events += 1
        return self.plan(seq, body), seq

    def _end(self, body: dict[str, Any], raw: bytes) -> None:
        with self._lock:
            self.inflight -= 1
            self._inflight_keys[_ident(body)] -= 1
            self._inflight_bodies[raw] -= 1

    def _record(
        self,
        seq: int,
        path: str,
        body: dict[str, Any],
        raw: bytes,
        headers: dict[str, str],
        status: int | None,
    ) -> None:
        with self._lock:
            self.arrivals.append(Arrival(seq, path, body, raw, headers, status))

    # -- test side
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accepted(self) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if a.status is not None and a.status < 300]

    def accepted_count(self) -> int:
        return len(self.accepted())

    def start(self) -> Upstream:
        self._server = _Server(self.port, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _ident(body: dict[str, Any]) -> str:
    key = body.get("dedup_key")
    if isinstance(key, str):
        # The ordering unit is (routing key, dedup key): one dedup key under two
        # routing keys is two independent keys that may rightly be in flight together.
        return json.dumps([body.get("routing_key"), key])
    return json.dumps([body.get(n) for n in ("app_key", "host", "check")])


#: Where each action stands in an incident's life: a key's arrivals must never go back.
RANK = {"trigger": 0, "acknowledge": 1, "resolve": 2}


def random_faults(seed: int) -> Callable[[int, dict[str, Any]], Fault]:
    """A fault plan for crash and several-relay tests: about 7 % 503, 5 % 429 (0.05 s
    Retry-After), 5 % connection resets, the rest accepted; the same request number
    always gets the same answer, and the same seed the same plan."""
    rng = random.Random(seed)
    table: dict[int, Fault] = {}

    def plan(seq: int, body: dict[str, Any]) -> Fault:
        if seq not in table:
            roll = rng.random()
            if roll < 0.07:
                table[seq] = Fault(503)
            elif roll < 0.12:
                table[seq] = Fault(429, retry_after=0.05)
            elif roll < 0.17:
                table[seq] = Fault(reset=True)
            else:
                table[seq] = OK
        return table[seq]

    return plan


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A started upstream, stopped after the test (registered for every test by conftest)."""
    up = Upstream().start()
    yield up
    up.stop()
