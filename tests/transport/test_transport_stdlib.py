"""StdlibTransport, the sync default, on real sockets: keep-alive, threads, failures.

The client tests (tests/clients/test_clients_pagerduty.py,
tests/clients/test_bigpanda_clients.py, tests/rest/test_rest_client.py) run
every status path through it; these pin what
is the transport's own job: which connection a request travels on, that a
silently closed idle connection is not reused, that threads can share it,
and that the head and body leave in one write. What it promises alike with
the async default (the request as sent, TLS trust, no proxy variables) is
tested for both in tests/transport/test_transport_defaults.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from alertwire import NetworkError
from alertwire.transport import Request, StdlibTransport
from alertwire.transport._stdlib import _OneWrite
from tests.support.loopback_server import Answer, LoopbackServer, serve
from tests.support.sandbox_http import enqueue_request, trigger

server = pytest.fixture(serve)

HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def transport() -> Iterator[StdlibTransport]:
    t = StdlibTransport()
    yield t
    t.close()


def test_requests_share_one_keep_alive_connection(
    server: LoopbackServer, transport: StdlibTransport
) -> None:
    for n in range(5):
        answer = transport.send(enqueue_request(server.url, trigger(f"k{n}")), timeout=5)
        assert answer.status == 202
    assert len(server.received) == 5
    assert len(server.connections) == 1
    assert [r.json()["dedup_key"] for r in server.received] == [f"k{n}" for n in range(5)]


def _request_head_as_sent(transport: StdlibTransport, headers: dict[str, str]) -> list[bytes]:
    """Send one POST to a bare socket server; the request's header lines, byte for byte
    (the loopback server folds repeated headers into one, so it cannot show a doubled one)."""
    heads: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def answer_once() -> None:
            conn, _ = listener.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")[1:]
                length = max(
                    int(v)
                    for k, _, v in (x.partition(b":") for x in lines)
                    if k.lower() == b"content-length"
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                heads.extend(lines)
                conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")

        thread = threading.Thread(target=answer_once)
        thread.start()
        request = Request("POST", f"http://127.0.0.1:{port}/v2/enqueue", headers, b'{"a":1}')
        try:
            assert transport.send(request, timeout=5).status == 202
        finally:
            thread.join(timeout=10)
    return heads


def test_a_callers_host_and_length_headers_are_not_doubled(transport: StdlibTransport) -> None:
    """As http.client's own request() does, the caller's Host and Content-Length replace ours."""
    heads = _request_head_as_sent(
        transport, {**HEADERS, "host": "example.test", "Content-Length": "7"}
    )
    names = [line.partition(b":")[0].lower() for line in heads]
    assert names.count(b"host") == 1
    assert names.count(b"content-length") == 1
    assert b"host: example.test" in heads
    default = _request_head_as_sent(transport, HEADERS)
    assert [line for line in default if line.lower().startswith(b"host:")] != []
    assert b"Content-Length: 7" in default


def test_an_idle_connection_the_server_closed_is_not_reused(
    server: LoopbackServer, transport: StdlibTransport
) -> None:
    """PagerDuty's load balancers close idle connections without ``Connection: close``."""
    server.script(Answer(action="answer_then_close"))
    assert transport.send(enqueue_request(server.url), timeout=5).status == 202
    # Wait (on the server's own record, not a sleep) until the close is visible to a poll.
    [idle] = transport._idle[("http", "127.0.0.1", int(server.url.rsplit(":", 1)[1]))]
    assert idle.sock is not None
    assert idle.sock.recv(1, socket.MSG_PEEK) == b""  # blocks until the FIN has arrived
    assert transport.send(enqueue_request(server.url), timeout=5).status == 202
    assert len(server.connections) == 2


def test_threads_share_it_and_idle_connections_are_bounded(server: LoopbackServer) -> None:
    transport = StdlibTransport(maxsize=2)
    failures: list[BaseException] = []
    statuses: list[int] = []
    start = threading.Barrier(6)

    def sender(n: int) -> None:
        start.wait()
        try:
            for i in range(10):
                statuses.append(
                    transport.send(
                        enqueue_request(server.url, trigger(f"t{n}-{i}")), timeout=5
                    ).status
                )
        except BaseException as exc:  # reported by the assert below
            failures.append(exc)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert statuses == [202] * 60
    assert {r.json()["dedup_key"] for r in server.received} == {
        f"t{n}-{i}" for n in range(6) for i in range(10)
    }
    assert len(server.connections) <= 6
    assert sum(len(idle) for idle in transport._idle.values()) <= 2
    transport.close()
    assert transport._idle == {}
    assert (
        transport.send(enqueue_request(server.url), timeout=5).status == 202
    )  # reopens after close()
    transport.close()


def test_no_answer_is_a_network_error_naming_the_host_and_the_connection_is_dropped(
    server: LoopbackServer, transport: StdlibTransport
) -> None:
    server.script(Answer(action="reset"))
    with pytest.raises(NetworkError, match=r"no answer from 127\.0\.0\.1:\d+"):
        transport.send(enqueue_request(server.url), timeout=5)
    assert transport._idle.get(("http", "127.0.0.1", int(server.url.rsplit(":", 1)[1]))) in (
        None,
        [],
    )
    assert transport.send(enqueue_request(server.url), timeout=5).status == 202


def test_loopback_is_reached_directly_whatever_the_proxy_variables_say(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy cannot reach this machine's loopback (the sandbox, a local relay):
    proxy variables are read, but loopback origins never go through them."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    transport = StdlibTransport()
    try:
        assert transport.send(enqueue_request(server.url), timeout=5).status == 202
    finally:
        transport.close()
    assert len(server.received) == 1


# --- one write per request ------------------------------------------------------------------


class _RecordingSocket:
    """Stands in for the socket in a pure unit test of how ``send`` is called."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


def test_the_head_and_the_body_leave_in_one_write() -> None:
    connection = _OneWrite("127.0.0.1", 9)
    sock = _RecordingSocket()
    connection.sock = sock
    connection.putrequest("POST", "/v2/enqueue")
    connection.putheader("Content-Length", "7")
    connection.body = b'{"a":1}'
    connection.endheaders()
    [write] = sock.writes
    assert write.startswith(b"POST /v2/enqueue HTTP/1.1\r\n")
    assert write.endswith(b'\r\n\r\n{"a":1}')
    assert connection.body is None
    connection.sock = None
