"""AsyncioTransport, the async default, on real sockets: keep-alive, framing, failures.

The client tests (tests/clients/test_clients_pagerduty.py,
tests/clients/test_bigpanda_clients.py, tests/rest/test_rest_client.py) run
every status path through it; these pin what is the transport's own job:
which connection a request travels on, how an answer is framed on the wire
(a chunked answer in pieces), that a connection the server closed or a
request that failed, timed out or was cancelled is never reused, and that
``limit`` bounds the requests in flight. What it promises alike with the
sync default (the request as sent, TLS trust, no proxy variables) is tested
for both in tests/transport/test_transport_defaults.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import ssl
import threading
import urllib.request
import warnings
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from alertwire import AsyncPagerDuty, NetworkError, TriggerAlert
from alertwire.sandbox import Sandbox
from alertwire.transport import AsyncioTransport, Request
from alertwire.transport._asyncio import READ_SIZE
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.loopback_server import Answer, LoopbackServer, serve
from tests.support.sandbox_http import enqueue_request, trigger
from tests.support.waiting import async_wait_for

server = pytest.fixture(serve)


@pytest.fixture
async def transport() -> AsyncIterator[AsyncioTransport]:
    t = AsyncioTransport()
    yield t
    await t.aclose()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_requests_share_one_keep_alive_connection(
    server: LoopbackServer, transport: AsyncioTransport
) -> None:
    for n in range(5):
        answer = await transport.send(enqueue_request(server.url, trigger(f"k{n}")), timeout=5)
        assert answer.status == 202
        assert json.loads(answer.body)["dedup_key"] == f"k{n}"
    assert len(server.connections) == 1
    assert [r.json()["dedup_key"] for r in server.received] == [f"k{n}" for n in range(5)]


# --- a server scripted byte by byte -----------------------------------------------------------


class _RawServer:
    """A listening socket whose connections are each handed to ``script(conn)`` in a thread."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections = 0
        self._script = script
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        # The client may go away first: some tests stage it.
        with conn, contextlib.suppress(OSError):
            self._script(conn)

    def close(self) -> None:
        # Closing a socket does not wake a thread blocked in accept(): shutting it down does.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accepter.join(timeout=10)
        for thread in self._threads:
            thread.join(timeout=10)


def _read_request(conn: socket.socket) -> bytes:
    """One request's bytes (head and Content-Length body); b"" if the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return b""
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += conn.recv(65536)
    return data


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], _RawServer]]:
    servers: list[_RawServer] = []

    def start(script: Callable[[socket.socket], None]) -> _RawServer:
        servers.append(_RawServer(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


async def test_a_chunked_answer_in_pieces_is_read_whole_and_the_connection_reused(
    raw_server: Callable[[Callable[[socket.socket], None]], _RawServer],
    transport: AsyncioTransport,
) -> None:
    pieces = [
        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n",
        b'c\r\n{"status":"s\r\n',
        b'18\r\nuccess","dedup_key":"k"}\r\n',
        b"0\r\n\r\n",
    ]

    def chunked(conn: socket.socket) -> None:
        while _read_request(conn):
            for piece in pieces:
                conn.sendall(piece)

    srv = raw_server(chunked)
    for _ in range(3):
        answer = await transport.send(enqueue_request(srv.url), timeout=5)
        assert (answer.status, answer.body) == (202, b'{"status":"success","dedup_key":"k"}')
    assert srv.connections == 1


async def test_answers_larger_than_a_read_arrive_byte_for_byte_one_after_another(
    raw_server: Callable[[Callable[[socket.socket], None]], _RawServer],
    transport: AsyncioTransport,
) -> None:
    """A connection reads into one buffer of its own, reused for every read: each
    answer must still arrive exactly as sent, not overwritten by the next read."""
    bodies = [bytes([ord("a") + n]) * (3 * READ_SIZE + 17 * n + 1) for n in range(3)]

    def large_answers(conn: socket.socket) -> None:
        for body in bodies:
            if not _read_request(conn):
                return
            head = f"HTTP/1.1 400 Bad Request\r\nContent-Length: {len(body)}\r\n\r\n"
            conn.sendall(head.encode() + body)

    srv = raw_server(large_answers)
    got = [(await transport.send(enqueue_request(srv.url), timeout=5)).body for _ in bodies]
    assert got == bodies
    assert srv.connections == 1


async def test_an_answer_framed_by_the_close_is_read_whole_and_the_next_one_reconnects(
    raw_server: Callable[[Callable[[socket.socket], None]], _RawServer],
    transport: AsyncioTransport,
) -> None:
    def answer_then_close(conn: socket.socket) -> None:
        if _read_request(conn):
            conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n\r\n")
            conn.sendall(b'{"status":"success"}')

    srv = raw_server(answer_then_close)
    for _ in range(2):
        answer = await transport.send(enqueue_request(srv.url), timeout=5)
        assert (answer.status, answer.body) == (202, b'{"status":"success"}')
    assert srv.connections == 2
    assert transport._idle.get(("http", "127.0.0.1", _port(srv.url))) in (None, [])


async def test_connection_close_in_the_answer_is_honoured(
    server: LoopbackServer, transport: AsyncioTransport
) -> None:
    server.script(Answer(headers={"Connection": "close"}))
    for _ in range(2):
        assert (await transport.send(enqueue_request(server.url), timeout=5)).status == 202
    assert len(server.connections) == 2


async def test_a_callers_host_and_length_headers_are_not_doubled(
    raw_server: Callable[[Callable[[socket.socket], None]], _RawServer],
    transport: AsyncioTransport,
) -> None:
    """As the sync default (and http.client) do: the caller's Host and Content-Length win."""
    heads: list[list[bytes]] = []

    def record(conn: socket.socket) -> None:
        while data := _read_request(conn):
            heads.append(data.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:])
            conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")

    srv = raw_server(record)
    given = {"Content-Type": "application/json", "host": "example.test", "Content-Length": "7"}
    for headers in (given, {"Content-Type": "application/json"}):
        request = Request("POST", srv.url + "/v2/enqueue", headers, b'{"a":1}')
        assert (await transport.send(request, timeout=5)).status == 202
    mine, default = ([line.partition(b":")[0].lower() for line in head] for head in heads)
    assert mine.count(b"host") == mine.count(b"content-length") == 1
    assert b"host: example.test" in heads[0]
    assert default.count(b"host") == default.count(b"content-length") == 1
    assert b"Content-Length: 7" in heads[1]


async def test_a_close_in_the_middle_of_an_answer_is_a_network_error_and_not_reused(
    raw_server: Callable[[Callable[[socket.socket], None]], _RawServer],
    transport: AsyncioTransport,
) -> None:
    answers = iter([b'HTTP/1.1 202 Accepted\r\nContent-Length: 40\r\n\r\n{"status"'])

    def cut_short_once(conn: socket.socket) -> None:
        while _read_request(conn):
            short = next(answers, None)
            if short is not None:
                conn.sendall(short)
                return  # closes the connection mid-answer
            conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")

    srv = raw_server(cut_short_once)
    with pytest.raises(NetworkError, match=r"no answer from 127\.0\.0\.1:\d+: AnswerError"):
        await transport.send(enqueue_request(srv.url), timeout=5)
    answer = await transport.send(enqueue_request(srv.url), timeout=5)
    assert (answer.status, answer.body) == (202, b"{}")
    assert srv.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_reused(
    server: LoopbackServer, transport: AsyncioTransport
) -> None:
    """PagerDuty's load balancers close idle connections without ``Connection: close``."""
    server.script(Answer(action="answer_then_close"))
    assert (await transport.send(enqueue_request(server.url), timeout=5)).status == 202
    [idle] = transport._idle[("http", "127.0.0.1", _port(server.url))]
    await async_wait_for("the event loop to see the server's close", lambda: idle.closed)
    assert (await transport.send(enqueue_request(server.url), timeout=5)).status == 202
    assert len(server.connections) == 2


async def test_a_connection_idle_past_the_keep_alive_bound_is_not_reused(
    server: LoopbackServer, transport: AsyncioTransport
) -> None:
    assert (await transport.send(enqueue_request(server.url), timeout=5)).status == 202
    [idle] = transport._idle[("http", "127.0.0.1", _port(server.url))]
    idle.idle_since -= 3600  # as if an hour had passed: a load balancer may have forgotten it
    assert (await transport.send(enqueue_request(server.url), timeout=5)).status == 202
    assert len(server.connections) == 2
    assert idle.closed


async def test_a_slow_server_times_out_and_its_late_answer_is_never_read(
    server: LoopbackServer, transport: AsyncioTransport
) -> None:
    server.script(Answer(delay=2.0))
    with pytest.raises(NetworkError, match=r"no answer from 127\.0\.0\.1:\d+: TimeoutError"):
        await transport.send(enqueue_request(server.url, trigger("slow")), timeout=0.2)
    assert transport._idle.get(("http", "127.0.0.1", _port(server.url))) in (None, [])
    answer = await transport.send(enqueue_request(server.url, trigger("next")), timeout=5)
    assert json.loads(answer.body)["dedup_key"] == "next"
    assert len(server.connections) == 2


async def test_a_cancelled_send_drops_its_connection(
    server: LoopbackServer, transport: AsyncioTransport
) -> None:
    server.script(Answer(delay=2.0))
    sending = asyncio.ensure_future(
        transport.send(enqueue_request(server.url, trigger("late")), timeout=30)
    )
    await async_wait_for("the request to arrive", lambda: server.received)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    assert transport._in_flight == 0
    answer = await transport.send(enqueue_request(server.url, trigger("next")), timeout=5)
    assert json.loads(answer.body)["dedup_key"] == "next"
    assert len(server.connections) == 2


@pytest.mark.parametrize("action", ["reset", "close"])
async def test_no_answer_is_a_network_error_and_the_connection_is_dropped(
    server: LoopbackServer, transport: AsyncioTransport, action: str
) -> None:
    server.script(Answer(action=action))  # type: ignore[arg-type]
    with pytest.raises(NetworkError, match=r"no answer from 127\.0\.0\.1:\d+") as caught:
        await transport.send(enqueue_request(server.url), timeout=5)
    assert caught.value.__cause__ is not None
    assert transport._idle.get(("http", "127.0.0.1", _port(server.url))) in (None, [])
    assert (await transport.send(enqueue_request(server.url), timeout=5)).status == 202


async def test_limit_bounds_the_requests_in_flight(server: LoopbackServer) -> None:
    transport = AsyncioTransport(limit=2)
    try:
        sends = [
            transport.send(enqueue_request(server.url, trigger(f"c{n}")), timeout=10)
            for n in range(8)
        ]
        answers = await asyncio.gather(*sends)
    finally:
        await transport.aclose()
    assert [json.loads(a.body)["dedup_key"] for a in answers] == [f"c{n}" for n in range(8)]
    assert len(server.connections) == 2
    assert transport._in_flight == 0
    assert transport._idle == {}


async def test_a_send_waiting_for_a_slot_times_out(server: LoopbackServer) -> None:
    transport = AsyncioTransport(limit=1)
    server.script(Answer(delay=2.0))
    try:
        slow = asyncio.ensure_future(transport.send(enqueue_request(server.url), timeout=30))
        await async_wait_for("the first request to arrive", lambda: server.received)
        with pytest.raises(NetworkError, match="TimeoutError"):
            await transport.send(enqueue_request(server.url), timeout=0.1)
        assert (await slow).status == 202
        assert transport._slot_waiters == type(transport._slot_waiters)()
    finally:
        await transport.aclose()


async def test_aclose_then_send_opens_a_new_connection(server: LoopbackServer) -> None:
    transport = AsyncioTransport()
    assert (await transport.send(enqueue_request(server.url), timeout=5)).status == 202
    await transport.aclose()
    assert transport._idle == {}
    assert (await transport.send(enqueue_request(server.url), timeout=5)).status == 202
    await transport.aclose()
    assert len(server.connections) == 2


def test_one_transport_serves_one_loop_after_another(server: LoopbackServer) -> None:
    """``asyncio.run`` twice (each closing the transport as ``async with`` would): the
    second loop opens its own connection instead of touching the first loop's."""
    transport = AsyncioTransport()

    async def once() -> int:
        try:
            return (await transport.send(enqueue_request(server.url), timeout=5)).status
        finally:
            await transport.aclose()

    assert asyncio.run(once()) == 202
    assert asyncio.run(once()) == 202
    assert len(server.connections) == 2


def test_a_loop_that_ends_without_aclose_closes_its_pooled_connections(
    server: LoopbackServer,
) -> None:
    """``asyncio.run`` twice with no ``aclose()``: the first loop's pooled connection is
    closed while that loop still runs (``asyncio.run`` finishes the transport's guard
    on its way out), not left to the garbage collector with an unclosed-transport
    ResourceWarning; the second loop opens its own."""
    transport = AsyncioTransport()
    sockets: list[socket.socket] = []

    async def once() -> int:
        status = (await transport.send(enqueue_request(server.url), timeout=5)).status
        [[connection]] = transport._idle.values()
        assert connection.transport is not None
        sockets.append(connection.transport.get_extra_info("socket"))
        return status

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(once()) == 202
        assert sockets[0].fileno() == -1  # closed before the first loop ended
        assert asyncio.run(once()) == 202
        gc.collect()
        assert sockets[1].fileno() == -1
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert len(server.connections) == 2


async def test_proxy_variables_are_not_read(
    server: LoopbackServer, transport: AsyncioTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not yet, as the aiohttp session before it: a proxy is configured with an
    httpx.AsyncClient (docs/transports.md)."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert (await transport.send(enqueue_request(server.url), timeout=5)).status == 202
    assert len(server.received) == 1


async def test_a_header_that_would_smuggle_another_is_refused_before_sending(
    server: LoopbackServer, transport: AsyncioTransport
) -> None:
    request = Request("POST", server.url + "/v2/enqueue", {"X-A": "1\r\nX-B: 2"}, b"{}")
    with pytest.raises(ValueError, match="Invalid header"):
        await transport.send(request, timeout=5)
    assert server.received == []


# --- TLS (trust itself: tests/transport/test_transport_defaults.py) -----------------------


async def test_tls_connections_are_kept_alive(alertwire_sandbox_tls: Sandbox) -> None:
    assert alertwire_sandbox_tls.ca_file is not None
    transport = AsyncioTransport(verify=alertwire_sandbox_tls.ca_file)
    try:
        for _ in range(3):
            assert (
                await transport.send(enqueue_request(alertwire_sandbox_tls.url), timeout=5)
            ).status == 202
        assert sum(len(idle) for idle in transport._idle.values()) == 1
    finally:
        await transport.aclose()


async def test_a_tls_answer_larger_than_a_read_arrives_whole(
    alertwire_sandbox_tls: Sandbox,
) -> None:
    """TLS hands decrypted bytes to the connection's own buffer too: an answer of several
    reads (the sandbox's schema, about 28 KB) arrives as the standard library reads it."""
    assert alertwire_sandbox_tls.ca_file is not None
    url = alertwire_sandbox_tls.url + "/sandbox/openapi.json"
    context = ssl.create_default_context(cafile=str(alertwire_sandbox_tls.ca_file))
    with urllib.request.urlopen(url, context=context, timeout=5) as answer:
        expected = answer.read()
    assert len(expected) > READ_SIZE
    transport = AsyncioTransport(verify=alertwire_sandbox_tls.ca_file)
    try:
        for _ in range(2):
            got = await transport.send(Request("GET", url, {}, b""), timeout=5)
            assert (got.status, got.body) == (200, expected)
        assert sum(len(idle) for idle in transport._idle.values()) == 1
    finally:
        await transport.aclose()


@pytest.mark.parametrize("limit", [True, 2.5, "8", 0])
def test_a_limit_that_is_no_whole_number_from_1_is_refused_by_name(limit: object) -> None:
    """``True`` was a limit of one request in flight; ``"8"`` a bare TypeError."""
    with pytest.raises(ValueError, match="limit must be a whole number, at least 1"):
        AsyncioTransport(limit=limit)  # type: ignore[arg-type]


def test_a_client_used_from_a_second_threads_running_loop_is_refused_and_the_first_keeps_its_connection(
    server: LoopbackServer,
) -> None:
    """Two threads' loops at once: the second is refused with a RuntimeError naming the
    cause, instead of aborting the first loop's connections (from the wrong thread)."""
    client = AsyncPagerDuty(KEY, base_url=server.url)
    first_sent = threading.Event()
    second_tried = threading.Event()
    sent: list[str | None] = []

    def first_thread() -> None:
        async def main() -> None:
            sent.append((await client.send(TriggerAlert("a", dedup_key="a-1"))).dedup_key)
            first_sent.set()
            await asyncio.to_thread(second_tried.wait, 30)  # this loop keeps running
            sent.append((await client.send(TriggerAlert("a", dedup_key="a-2"))).dedup_key)

        asyncio.run(main())

    thread = threading.Thread(target=first_thread)
    thread.start()
    try:
        assert first_sent.wait(30)

        async def second() -> None:
            await client.send(TriggerAlert("b", dedup_key="b-1"))

        with pytest.raises(RuntimeError) as caught:
            asyncio.run(second())
    finally:
        second_tried.set()
        thread.join(30)
    message = str(caught.value)
    assert "event loop running in another thread" in message
    assert "one client per thread" in message
    assert KEY not in message
    assert sent == ["a-1", "a-2"]
    assert [r.json()["dedup_key"] for r in server.received] == ["a-1", "a-2"]
    assert len(server.connections) == 1  # the first loop's connection was never dropped
