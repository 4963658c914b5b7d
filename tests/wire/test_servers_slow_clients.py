"""Slow and hostile clients of both servers (the sandbox and the ingest endpoint).

Raw sockets, real loopback servers. Every wait is on something observable
(the server closing the socket: ``recv`` returns ``b""``, or an answer
arriving), bounded by a generous deadline: a server that holds a stalled
client forever fails the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alertwire import ConfigurationError
from alertwire._throttle import Throttle
from alertwire.ingest import IngestConfig
from alertwire.outbox import Outbox
from alertwire.relay import Relay
from alertwire.sandbox import Sandbox
from alertwire.wire import ServerLimits
from alertwire.wire._guard import default_connection_cap
from tests.support.ingest_process import RelayProcess
from tests.support.sandbox_http import post, request, trigger

#: How long a test waits for the server to act; far beyond every deadline used here.
BOUND = 30.0

Serve = Callable[[ServerLimits], int]


@pytest.fixture(params=["sandbox", "ingest"])
def serve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Serve]:
    """Start the server under test with ``limits``; returns its port."""
    stops: list[Callable[[], object]] = []

    def start(limits: ServerLimits) -> int:
        upstream = Sandbox(limits=limits).start()
        stops.append(upstream.stop)
        if request.param == "sandbox":
            return upstream.port
        relay = Relay(
            Outbox(tmp_path / "outbox.sqlite3"),
            pagerduty_url=upstream.url,
            bigpanda_url=upstream.url,
            rate_limit_per_minute=0,
            poll_interval=0.05,
            listen=IngestConfig(host="127.0.0.1", port=0, limits=limits),
        )
        relay.start()
        stops.append(lambda: relay.stop(timeout=30))
        assert relay.listening.wait(BOUND)
        assert relay.ingest is not None and relay.ingest.port is not None
        return relay.ingest.port

    yield start
    for stop in reversed(stops):
        stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
    sock.settimeout(BOUND)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; fails if it has not closed within BOUND."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            return received
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {BOUND}s: {received[:200]!r}")
        if not chunk:
            return received
        received += chunk


HEAD = b"POST /v2/enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def test_a_request_head_that_never_ends_is_answered_408_and_closed(serve: Serve) -> None:
    port = serve(ServerLimits(header_timeout=0.5))
    with connect(port) as sock:
        sock.sendall(HEAD + b"X-Slow: 1\r\n")  # the blank line that ends a head never comes
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_the_ingest_endpoint_counts_dropped_connections_in_its_metrics(tmp_path: Path) -> None:
    with Sandbox() as upstream:
        relay = Relay(
            Outbox(tmp_path / "outbox.sqlite3"),
            pagerduty_url=upstream.url,
            listen=IngestConfig(
                host="127.0.0.1", port=0, limits=ServerLimits(header_timeout=0.5, body_timeout=0.5)
            ),
        )
        relay.start()
        try:
            assert relay.listening.wait(BOUND) and relay.ingest is not None
            port = relay.ingest.port
            assert port is not None
            for stall in (HEAD, HEAD + b"Content-Length: 100\r\n\r\n{"):
                with connect(port) as sock:
                    sock.sendall(stall)
                    read_until_closed(sock)
            metrics = request("GET", f"http://127.0.0.1:{port}/metrics").body.decode()
        finally:
            relay.stop(timeout=30)
    assert 'alertwire_ingest_connections_dropped_total{reason="slow_head"} 1.0' in metrics
    assert 'alertwire_ingest_connections_dropped_total{reason="slow_body"} 1.0' in metrics
    assert 'alertwire_ingest_connections_dropped_total{reason="over_cap"} 0.0' in metrics


async def test_servers_sharing_one_metrics_registry_share_the_count() -> None:
    from alertwire.ingest import IngestServer
    from alertwire.outbox.metrics import OutboxMetrics

    with tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(Path(tmp) / "outbox.sqlite3")
        metrics = OutboxMetrics(outbox.store)
        first = IngestServer(outbox, IngestConfig(port=0), metrics=metrics)
        second = IngestServer(outbox, IngestConfig(port=0), metrics=metrics)  # no duplicate
        assert first.connections_dropped is second.connections_dropped
        outbox.close()


def test_an_idle_connection_is_closed_quietly(serve: Serve) -> None:
    port = serve(ServerLimits(header_timeout=0.5))
    with connect(port) as sock:
        assert read_until_closed(sock) == b""


def test_a_body_that_stops_half_way_is_closed_without_a_5xx(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    port = serve(ServerLimits(body_timeout=0.5))
    with connect(port) as sock:
        sock.sendall(HEAD + b"Content-Length: 200\r\n\r\n" + b'{"routing_key": "')
        answer = read_until_closed(sock)
    assert b"HTTP/1.1 5" not in answer
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def request_bytes(body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    return HEAD + b"Content-Length: %d\r\n\r\n" % len(data) + data


def send_then_half_close(sock: socket.socket, data: bytes) -> None:
    """``data`` and the end of the sending side in one segment (``TCP_CORK`` holds the
    data until the shutdown flushes both), so the server meets the end before it
    has started handling the request: the case that used to lose the answer."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)


def test_a_client_that_shuts_its_sending_side_after_the_request_gets_its_answer(
    serve: Serve,
) -> None:
    """``nc -N`` and socat end a request with a half-close; the answer must still come,
    or a client that retries an unanswered request pages twice."""
    port = serve(ServerLimits())
    with connect(port) as sock:
        send_then_half_close(sock, request_bytes(trigger("half-closed-1")))
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 202 "), answer[:200]
    assert b'"dedup_key":"half-closed-1"' in answer.replace(b" ", b"")


def test_pipelined_requests_before_a_half_close_are_stored_only_if_answered(
    tmp_path: Path,
) -> None:
    """The rule that matters: every stored event was answered, so a client that
    sends again what got no answer never duplicates a page."""
    with Sandbox() as upstream:
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        relay = Relay(
            outbox,
            pagerduty_url=upstream.url,
            listen=IngestConfig(host="127.0.0.1", port=0),
        )
        relay.start()
        try:
            assert relay.listening.wait(BOUND) and relay.ingest is not None
            port = relay.ingest.port
            assert port is not None
            with connect(port) as sock:
                piped = b"".join(request_bytes(trigger(f"piped-{n}")) for n in range(3))
                send_then_half_close(sock, piped)
                answer = read_until_closed(sock)
        finally:
            relay.stop(timeout=30)
        stats = outbox.stats()
        outbox.close()
    answered = answer.count(b"HTTP/1.1 202 ")
    assert answered >= 1, answer[:200]
    assert stats.pending + stats.leased + stats.delivered + stats.dead == answered


def test_a_body_cut_short_by_a_half_close_is_closed_at_once(serve: Serve) -> None:
    """Without waiting for the body deadline: the rest can never arrive."""
    port = serve(ServerLimits(body_timeout=BOUND * 4))
    with connect(port) as sock:
        send_then_half_close(sock, HEAD + b"Content-Length: 200\r\n\r\n" + b'{"routing_key": "')
        answer = read_until_closed(sock)
    assert b"HTTP/1.1 5" not in answer
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4")


def test_a_head_cut_short_by_a_half_close_is_closed_at_once(serve: Serve) -> None:
    port = serve(ServerLimits(header_timeout=BOUND * 4))
    with connect(port) as sock:
        send_then_half_close(sock, HEAD + b"X-Cut: 1\r\n")
        answer = read_until_closed(sock)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4")


def test_blank_lines_then_a_half_close_are_closed_at_once(serve: Serve) -> None:
    """Blank lines are not a head (the parser skips them before one): nothing to answer."""
    port = serve(ServerLimits(header_timeout=BOUND * 4))
    with connect(port) as sock:
        send_then_half_close(sock, b"\r\n\r\n\r\n")
        assert read_until_closed(sock) == b""


def test_a_request_after_blank_lines_then_a_half_close_is_answered(serve: Serve) -> None:
    port = serve(ServerLimits())
    with connect(port) as sock:
        send_then_half_close(sock, b"\r\n" + request_bytes(trigger("after-blank-1")))
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 202 "), answer[:200]


def test_a_stalled_tls_handshake_meets_the_head_deadline() -> None:
    with (
        Sandbox(tls=True, limits=ServerLimits(header_timeout=0.5)) as sandbox,
        connect(sandbox.port) as sock,
    ):
        sock.sendall(b"\x16\x03\x01\x00\xff")  # the start of a ClientHello, then nothing
        assert read_until_closed(sock) == b""


def test_deadlines_hold_over_tls_too() -> None:
    with Sandbox(tls=True, limits=ServerLimits(header_timeout=0.5)) as sandbox:
        assert sandbox.ca_file is not None
        context = ssl.create_default_context(cafile=sandbox.ca_file)
        with (
            connect(sandbox.port) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            sock.sendall(HEAD)
            assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_a_keep_alive_connection_gets_the_head_deadline_again_after_an_answer(
    serve: Serve,
) -> None:
    port = serve(ServerLimits(header_timeout=0.5))
    body = b'{"routing_key": "0123456789abcdef0123456789ABWXYZ", "event_action": "trigger"}'
    with connect(port) as sock:
        sock.sendall(HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        first = sock.recv(65536)  # the first answer (400: no payload), connection kept open
        assert first.startswith(b"HTTP/1.1 400 "), first
        assert b"\r\n\r\n{" in first and first.endswith(b"}"), "one whole answer"
        sock.sendall(HEAD)  # a second request that stalls in its head
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_connections_beyond_the_cap_get_503_and_a_valid_request_gets_through_later(
    serve: Serve,
) -> None:
    cap = 6
    port = serve(ServerLimits(header_timeout=2.0, max_connections=cap))
    with contextlib.ExitStack() as stack:
        stalled = [stack.enter_context(connect(port)) for _ in range(cap)]
        for sock in stalled:
            sock.sendall(HEAD)  # half a head each
        # Accepted in order: every connection after the first `cap` is refused at once.
        for _ in range(3):
            with connect(port) as extra:
                answer = read_until_closed(extra)
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert b"\r\nRetry-After: 1\r\n" in answer
        # The stalled ones are closed by their head deadline, which frees the slots.
        for sock in stalled:
            assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
    assert post(f"http://127.0.0.1:{port}/v2/enqueue", trigger("slow-1")).status == 202


def test_a_valid_request_gets_through_while_stalled_clients_are_connected(serve: Serve) -> None:
    port = serve(ServerLimits(header_timeout=BOUND, body_timeout=BOUND, max_connections=64))
    with contextlib.ExitStack() as stack:
        for n in range(40):
            sock = stack.enter_context(connect(port))
            sock.sendall(HEAD if n % 2 else HEAD + b"Content-Length: 100\r\n\r\n{")
        answer = post(f"http://127.0.0.1:{port}/v2/enqueue", trigger("through-1"))
    assert answer.status == 202


def test_trouble_is_logged_once_per_interval_with_a_count(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    port = serve(ServerLimits(header_timeout=0.3, log_interval=3600))
    caplog.set_level(logging.WARNING, logger="alertwire.wire")
    for _ in range(5):
        with connect(port) as sock:
            sock.sendall(HEAD)
            assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
    lines = [r.getMessage() for r in caplog.records if "slow_request_head" in r.getMessage()]
    assert len(lines) == 1, lines


def test_throttle_counts_what_it_held_back() -> None:
    now = [0.0]
    throttle = Throttle(10.0, clock=lambda: now[0])
    assert throttle.admit("a") == 0
    assert throttle.admit("a") is None
    assert throttle.admit("a") is None
    assert throttle.admit("b") == 0  # kinds are limited separately
    now[0] = 10.0
    assert throttle.admit("a") == 2
    assert throttle.admit("a") is None


@pytest.mark.parametrize(
    "limits",
    [{"header_timeout": 0}, {"body_timeout": -1}, {"max_connections": 0}, {"log_interval": 0}],
)
def test_limits_are_checked(limits: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(limits))):
        ServerLimits(**limits)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"max_connections": True}, "max_connections must be a whole number, at least 1"),
        ({"max_connections": "64"}, "max_connections must be a whole number, at least 1"),
        ({"max_connections": 2.5}, "max_connections must be a whole number, at least 1"),
        ({"header_timeout": True}, "header_timeout must be a positive number of seconds"),
        ({"body_timeout": "5"}, "body_timeout must be a positive number of seconds"),
    ],
)
def test_server_limits_that_are_no_number_are_refused_by_name(
    kwargs: dict[str, object], says: str
) -> None:
    """Compared only, ``True`` was a cap of one connection (or a one-second deadline)
    and a ``"64"`` a bare TypeError."""
    with pytest.raises(ConfigurationError, match=says):
        ServerLimits(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------ a real relay with few file descriptors

_NOFILE = """
import os, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
os.execv(sys.argv[2], sys.argv[2:])
"""


_LIMIT = 128


class _FewDescriptors(RelayProcess):
    """``alertwire relay --listen`` under ``ulimit -n 128``."""

    def command(self) -> list[str]:
        return [sys.executable, "-c", _NOFILE, str(_LIMIT), *super().command()]


def post_until_accepted(url: str) -> int:
    """POST one event, coming back on 503 as a client told ``Retry-After`` would (bounded)."""
    for _ in range(int(BOUND / 0.1)):
        status = post(url, trigger("after-the-storm")).status
        if status != 503:
            return status
        threading.Event().wait(0.1)
    pytest.fail(f"still 503 after {BOUND}s")


def test_a_relay_short_of_descriptors_refuses_cleanly_and_keeps_serving(tmp_path: Path) -> None:
    clients = 150  # beyond the descriptor limit, with what the relay holds itself
    cap = default_connection_cap(_LIMIT)
    with Sandbox() as upstream:
        relay = _FewDescriptors(
            tmp_path, outbox=tmp_path / "outbox.sqlite3", pagerduty_url=upstream.url
        )
        relay.start()
        try:
            with contextlib.ExitStack() as stack:
                socks = []
                for _ in range(clients):
                    sock = stack.enter_context(connect(relay.port))
                    sock.sendall(HEAD)  # each stalls in its head
                    socks.append(sock)
                # The first `cap` are held until their head deadline (408); later ones are
                # refused at once: a 503, or a bare close (a reset) once too many refused
                # connections wait to be read. Connecting them all takes a while (the listen
                # backlog is small under a low limit), so a late one may find a slot freed
                # by a deadline. Every client gets an answer or a close; none hangs.
                answers = [read_until_closed(sock)[:13] for sock in socks]
            assert set(answers) <= {b"HTTP/1.1 408 ", b"HTTP/1.1 503 ", b""}, set(answers)
            assert answers[:cap] == [b"HTTP/1.1 408 "] * cap
            assert answers.count(b"HTTP/1.1 503 ") > 0
            assert post_until_accepted(f"{relay.url}/v2/enqueue") == 202
        finally:
            code = relay.terminate()
        stderr = relay.stderr_path.read_text(errors="replace")
    assert code == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "Too many open files" not in stderr
    assert len(stderr) < 20_000, stderr[-2000:]


async def test_requests_in_progress_are_counted_from_the_first_byte_to_the_answer() -> None:
    """``Guards.in_progress`` and ``Guards.alone``: what the ingest endpoint asks before
    it commits on its loop."""
    import asyncio

    from aiohttp import web

    from alertwire.wire import start_server
    from tests.support.waiting import async_wait_for

    release = asyncio.Event()

    async def held(request: web.Request) -> web.Response:
        await request.read()
        await release.wait()
        return web.Response(text="ok")

    async def answer(reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        assert await reader.readexactly(2) == b"ok"
        return head

    app = web.Application()
    app.router.add_post("/held", held)
    running = await start_server(
        app, host="127.0.0.1", port=0, ssl_context=None, limits=ServerLimits(), shutdown_timeout=5
    )
    guards = running.guards
    request_bytes = b"POST /held HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    try:
        _, idle_writer = await asyncio.open_connection("127.0.0.1", running.port)
        _, partial = await asyncio.open_connection("127.0.0.1", running.port)
        partial.write(request_bytes[:10])
        await async_wait_for("a partial head counted", lambda: guards.in_progress == 1)
        assert guards.alone(3600)  # nobody answered yet
        answered = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
            writer.write(request_bytes)
            answered.append((reader, writer))
        await async_wait_for("two requests held", lambda: guards.in_progress == 3)
        assert not guards.alone(0)
        partial.close()
        await async_wait_for("a closed connection uncounted", lambda: guards.in_progress == 2)
        release.set()
        for reader, _ in answered:
            assert (await answer(reader)).startswith(b"HTTP/1.1 200")
        await async_wait_for("answered requests uncounted", lambda: guards.in_progress == 0)
        assert not guards.alone(3600) and guards.alone(0)  # answered just now
        (first_reader, first), (_, second) = answered
        first.write(request_bytes)  # answered at once (released): the last answer is first's
        assert (await answer(first_reader)).startswith(b"HTTP/1.1 200")
        await async_wait_for("the answer uncounted", lambda: guards.in_progress == 0)
        second.write(request_bytes[:10])
        await async_wait_for("second's head counted", lambda: guards.in_progress == 1)
        assert not guards.alone(3600)  # another connection was answered just now
        first.write(request_bytes[:10])
        await async_wait_for("both heads counted", lambda: guards.in_progress == 2)
        second.close()
        await async_wait_for("second gone", lambda: guards.in_progress == 1)
        assert guards.alone(3600)  # the one in progress is the one answered last
        assert guards.open == 2  # the idle one and first's
        idle_writer.close()
        first.close()
        await async_wait_for("connections gone", lambda: guards.open == 0)
        assert guards.in_progress == 0
    finally:
        await running.stop()
