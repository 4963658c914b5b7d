"""The sync transport's HTTP/1.1 reader, on real sockets, with answers written byte for byte.

The loopback server and the sandbox answer as well-behaved servers do
(``Content-Length``, keep-alive); these stage what they never send:
chunked bodies, a body that ends with the connection, an interim ``100``,
HTTP/1.0, folded and repeated headers, a broken status line, a body cut
short. Each checks the answer read and whether the connection was reused.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from typing import cast

import pytest

from alertwire import NetworkError
from alertwire.transport import Request, Response, StdlibTransport
from alertwire.transport._http11 import MAX_BODY
from tests.support.raw_http import read_message

BODY = b'{"a":1}'


class ThenClose(bytes):
    """An answer after which the server closes the connection."""


class RawServer:
    """Answers each request with the next canned bytes; ``None`` closes the connection
    without answering, a :class:`ThenClose` answer closes it after answering.

    Records how many connections were accepted and every request's head.
    """

    def __init__(self, answers: Sequence[bytes | None]) -> None:
        self._answers = list(answers)
        self.connections = 0
        self.heads: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._answers:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while self._answers:
                    message = read_message(conn, data)
                    if message is None:
                        break  # the client closed this connection
                    head, _, data = message
                    self.heads.append(head)
                    answer = self._answers.pop(0)
                    if answer is None:
                        break
                    conn.sendall(answer)
                    if isinstance(answer, ThenClose):
                        break

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._listener.close()
        self._thread.join(timeout=10)


@pytest.fixture
def transport() -> Iterator[StdlibTransport]:
    t = StdlibTransport()
    yield t
    t.close()


def _post(server: RawServer, transport: StdlibTransport) -> Response:
    request = Request("POST", server.url + "/v2/enqueue", {"Content-Type": "x"}, BODY)
    return transport.send(request, timeout=5)


def test_a_chunked_body_is_joined_and_the_connection_kept(transport: StdlibTransport) -> None:
    chunked = (
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;name=value\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    with RawServer([chunked, chunked]) as server:
        for _ in range(2):
            answer = _post(server, transport)
            assert (answer.status, answer.body) == (202, b'{"a":1}')
        assert server.connections == 1


def test_a_body_without_length_is_read_to_the_close_and_the_connection_not_reused(
    transport: StdlibTransport,
) -> None:
    with RawServer(
        [ThenClose(b"HTTP/1.1 200 OK\r\n\r\nall of it"), b"HTTP/1.1 204 No Content\r\n\r\n"]
    ) as server:
        assert _post(server, transport).body == b"all of it"
        assert _post(server, transport).status == 204
        assert server.connections == 2


def test_an_interim_100_is_skipped(transport: StdlibTransport) -> None:
    with RawServer(
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"]
    ) as server:
        answer = _post(server, transport)
        assert (answer.status, answer.body) == (201, b"ok")


def test_http_1_0_closes_unless_kept_alive(transport: StdlibTransport) -> None:
    with RawServer(
        [
            b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\na",
            b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc",
        ]
    ) as server:
        assert [_post(server, transport).body for _ in range(3)] == [b"a", b"b", b"c"]
        assert server.connections == 2  # the plain HTTP/1.0 answer ended the first


def test_connection_close_ends_the_connection(transport: StdlibTransport) -> None:
    with RawServer(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: Close\r\n\r\na",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
        ]
    ) as server:
        assert [_post(server, transport).body for _ in range(2)] == [b"a", b"b"]
        assert server.connections == 2


def test_header_names_are_lowercased_values_trimmed_folded_lines_joined(
    transport: StdlibTransport,
) -> None:
    with RawServer(
        [
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After:  7 \r\nX-Long: one\r\n\ttwo\r\n"
            b"X-Twice: first\r\nx-twice: second\r\nContent-Length: 0\r\n\r\n"
        ]
    ) as server:
        answer = _post(server, transport)
        assert answer.status == 429
        assert answer.headers == {
            "retry-after": "7",
            "x-long": "one two",
            "x-twice": "second",
            "content-length": "0",
        }
        assert answer.body == b""


def test_the_request_head_is_as_http_client_wrote_it(transport: StdlibTransport) -> None:
    with RawServer([b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"]) as server:
        _post(server, transport)
        port = server.url.rsplit(":", 1)[1]
        assert server.heads == [
            b"POST /v2/enqueue HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{port}\r\n".encode()
            + b"Accept-Encoding: identity\r\nContent-Type: x\r\nContent-Length: 7"
        ]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTQ/1.1 200 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "IncompleteRead"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10", "ended in its head"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 headers"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000 + b"\r\n\r\n", "65536 bytes"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000, "65536 bytes"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200_000, "bytes of answer head"),
    ],
)
def test_a_malformed_answer_is_a_network_error_and_the_connection_dropped(
    transport: StdlibTransport, answer: bytes, reason: str
) -> None:
    with RawServer(
        [ThenClose(answer), b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    ) as server:
        with pytest.raises(NetworkError, match=f"no answer from 127.0.0.1:.*{reason}"):
            _post(server, transport)
        assert _post(server, transport).body == b"ok"
        assert server.connections == 2


def test_a_close_before_any_answer_is_remote_disconnected(transport: StdlibTransport) -> None:
    with RawServer([None]) as server, pytest.raises(NetworkError, match="RemoteDisconnected"):
        _post(server, transport)


@pytest.mark.parametrize(
    "headers",
    [{"X-Evil": "a\r\nInjected: 1"}, {"X:Colon": "v"}, {"X-Evil": "a\nb"}],
)
def test_a_header_that_could_split_the_head_is_refused_before_sending(
    transport: StdlibTransport, headers: dict[str, str]
) -> None:
    with RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]) as server:
        with pytest.raises(ValueError, match="Invalid header"):
            transport.send(Request("POST", server.url + "/", headers, BODY), timeout=5)
        assert server.heads == []


def test_a_path_with_a_space_is_refused_before_sending(transport: StdlibTransport) -> None:
    with RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]) as server:
        with pytest.raises(NetworkError, match="control characters"):
            transport.send(Request("GET", server.url + "/a b", {}, b""), timeout=5)
        assert server.heads == []


def test_a_number_or_bytes_as_a_header_value_is_sent_as_http_client_sent_it(
    transport: StdlibTransport,
) -> None:
    """``Request.headers`` is typed ``str``, but a caller's transport code may pass these."""
    headers = cast("dict[str, str]", {"X-Count": 3, "X-Raw": b"v\xe9"})
    with RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]) as server:
        transport.send(Request("POST", server.url + "/", headers, BODY), timeout=5)
        [head] = server.heads
        assert b"\r\nX-Count: 3\r\nX-Raw: v\xe9\r\n" in head


@pytest.mark.parametrize(
    ("host", "port", "tls", "expected"),
    [
        ("bücher.example", 443, True, "xn--bcher-kva.example"),
        ("bücher.example", 8443, True, "xn--bcher-kva.example:8443"),
        ("events.pagerduty.com", 80, False, "events.pagerduty.com"),
        ("::1", 8080, False, "[::1]:8080"),
    ],
)
def test_the_host_header_is_written_as_http_client_wrote_it(
    host: str, port: int, tls: bool, expected: str
) -> None:
    """A non-ASCII name goes out in its IDNA form, as http.client sent it (and as the
    async default does): a raw one is not valid in a header."""
    from alertwire.transport._http11 import Connection, host_header

    assert host_header(host, port, tls=tls) == expected
    assert Connection(host, port).host_header == host_header(host, port, tls=False)


class TricklingServer:
    """Answers one request a byte at a time, each well within the client's timeout, for
    far longer than it in all: a socket timeout (per call) never fires on it."""

    def __init__(self, answer: bytes, *, every: float = 0.05) -> None:
        self._answer = answer
        self._every = every
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn:
            if read_message(conn) is None:
                return
            for i in range(len(self._answer)):
                try:
                    conn.sendall(self._answer[i : i + 1])
                except OSError:
                    return  # the client gave up
                if self._stop.wait(self._every):  # pacing, not synchronisation
                    return

    def __enter__(self) -> TricklingServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=10)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\n\r\n" + b" " * 100,
        b"HTTP/1.1 202 Accepted\r\nX-Pad: " + b"a" * 100 + b"\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=["body", "head"],
)
def test_the_timeout_bounds_the_whole_attempt_not_each_read(
    transport: StdlibTransport, answer: bytes
) -> None:
    # 100 bytes at one per 50 ms take 5 s; the attempt's timeout is 0.5 s. Before, each
    # read waited up to the timeout afresh, so the answer was read to its end.
    with TricklingServer(answer) as server:
        request = Request("POST", server.url + "/v2/enqueue", {}, BODY)
        with pytest.raises(NetworkError, match="TimeoutError"):
            transport.send(request, timeout=0.5)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (MAX_BODY + 1),
    ],
    ids=["declared", "chunk"],
)
def test_a_body_over_the_limit_is_refused_before_it_is_read(
    transport: StdlibTransport, answer: bytes
) -> None:
    # Before, the transport read on, a declared 10 GB as far as the server sent it.
    with RawServer([ThenClose(answer)]) as server, pytest.raises(NetworkError, match="over"):
        _post(server, transport)
