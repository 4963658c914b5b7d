"""The HTTP/1.1 answer parser and request head of AsyncioTransport, as pure logic.

Bytes reach the parser in whatever pieces TCP delivers them, so each answer
here is fed whole and split at every position; the transport's own tests
(tests/transport/test_transport_asyncio.py) run the same framings over real
sockets.
"""

from __future__ import annotations

import gzip
import zlib

import pytest

from alertwire.transport._h1 import AnswerError, ResponseParser, check_target, request_head
from alertwire.transport._http11 import MAX_BODY

ACCEPTED = b'{"status":"success","dedup_key":"k1"}'


def _length(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
    head += b"".join(extra) + b"Content-Length: %d\r\n\r\n" % len(body)
    return head + body


def _chunked(*chunks: bytes, trailers: bytes = b"") -> bytes:
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for chunk in chunks:
        out += b"%x;ext=1\r\n" % len(chunk) + chunk + b"\r\n"
    return out + b"0\r\n" + trailers + b"\r\n"


def _splits(data: bytes) -> list[list[bytes]]:
    """``data`` whole, byte by byte, and cut in two at every position."""
    return [[data], [data[i : i + 1] for i in range(len(data))]] + [
        [data[:i], data[i:]] for i in range(1, len(data))
    ]


def _parse(pieces: list[bytes], *, no_body: bool = False) -> ResponseParser:
    parser = ResponseParser(no_body=no_body)
    done = [parser.feed(piece) for piece in pieces]
    assert done[-1] is True
    assert not any(done[:-1])
    return parser


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (_length(ACCEPTED), ACCEPTED),
        (_length(b""), b""),
        (_chunked(b'{"status":', b'"success"}'), b'{"status":"success"}'),
        (_chunked(b"abc", trailers=b"X-Trailer: 1\r\n"), b"abc"),
        (_chunked(), b""),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + _length(ACCEPTED), ACCEPTED),
    ],
    ids=["length", "empty", "chunked", "trailers", "no-chunks", "after-100-continue"],
)
def test_every_split_of_a_framed_answer_parses_to_the_same_body(answer: bytes, body: bytes) -> None:
    for pieces in _splits(answer):
        parser = _parse(pieces)
        assert parser.body() == body
        assert parser.reusable is True
        assert parser.status in (200, 202)


def test_a_large_chunk_in_many_reads_is_read_whole() -> None:
    """A REST page may come as one big chunk over many reads."""
    data = bytes(range(256)) * 4096  # 1 MiB
    answer = _chunked(data, b"tail")
    parser = ResponseParser()
    pieces = [answer[i : i + 65536] for i in range(0, len(answer), 65536)]
    assert [parser.feed(piece) for piece in pieces][-1] is True
    assert parser.body() == data + b"tail"


def test_headers_are_lower_cased_and_a_repeated_one_keeps_its_last_value() -> None:
    """As the sync default reads them (``_http11.parse_head``, the one reading of a head)."""
    parser = _parse([_length(ACCEPTED, b"Retry-After: 7\r\n", b"retry-after: 9\r\n")])
    assert parser.headers["retry-after"] == "9"
    assert parser.headers["content-type"] == "application/json"


def test_an_answer_to_close_is_read_to_the_end_and_not_reused() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\n\r\nhello ") is False
    assert parser.feed(b"world") is False
    assert parser.feed_eof() is True
    assert (parser.body(), parser.reusable) == (b"hello world", False)


def test_connection_close_and_http_1_0_are_not_reused() -> None:
    assert _parse([_length(ACCEPTED, b"Connection: close\r\n")]).reusable is False
    old = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    assert _parse([old]).reusable is False
    kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}"
    assert _parse([kept]).reusable is True


def test_a_length_that_is_not_a_number_is_read_to_the_close_as_the_sync_default_does() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}") is False
    assert parser.feed_eof() is True
    assert (parser.body(), parser.reusable) == (b"{}", False)


def test_bytes_after_the_answer_make_the_connection_not_reusable() -> None:
    parser = _parse([_length(ACCEPTED) + b"HTTP/1.1 200 OK\r\n"])
    assert parser.body() == ACCEPTED
    assert parser.reusable is False


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_and_head_answers_end_with_the_head(status: int) -> None:
    parser = _parse([b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status])
    assert (parser.status, parser.body(), parser.reusable) == (status, b"", True)
    head = _parse([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"], no_body=True)
    assert (head.body(), head.reusable) == (b"", True)


def test_a_close_before_the_answer_is_complete_is_an_error() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 202 Accepted\r\nContent-Length: 50\r\n\r\n{")
    with pytest.raises(AnswerError, match="before the answer was complete"):
        parser.feed_eof()
    with pytest.raises(AnswerError):
        ResponseParser().feed_eof()


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
    ],
    ids=["not-http", "bad-status", "bad-chunk-size", "bad-chunk-end"],
)
def test_malformed_answers_are_refused(answer: bytes) -> None:
    with pytest.raises(AnswerError):
        ResponseParser().feed(answer)


def test_an_endless_head_is_refused() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(AnswerError, match="bytes of answer head"):
        parser.feed(b"X-Padding: " + b"a" * (1 << 20))


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, no zlib header
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
def test_a_compressed_body_is_decoded(coding: str, encode: object) -> None:
    assert callable(encode)
    packed = encode(ACCEPTED)
    parser = _parse([_length(packed, b"Content-Encoding: %s\r\n" % coding.encode())])
    assert parser.body() == ACCEPTED


def test_a_body_over_the_limit_is_refused_however_it_is_framed() -> None:
    # Before, an answer was read for as long as it came (18 GB of one before the test
    # that found it was stopped), and a small gzip body decompressed to any size.
    over = MAX_BODY + 1
    declared = ResponseParser()
    with pytest.raises(AnswerError, match="body is over"):
        declared.feed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % over)
    chunked = ResponseParser()
    with pytest.raises(AnswerError, match="body is over"):
        chunked.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % over)
    to_close = ResponseParser()
    to_close.feed(b"HTTP/1.1 200 OK\r\n\r\n")
    mebibyte = b"x" * (1 << 20)
    with pytest.raises(AnswerError, match="body is over"):
        for _ in range(over // len(mebibyte) + 1):
            to_close.feed(mebibyte)
    bomb = zlib.compress(b"\0" * over, 1)  # about 32 KB
    packed = _parse([_length(bomb, b"Content-Encoding: deflate\r\n")])
    with pytest.raises(AnswerError, match="body is over"):
        packed.body()
    exactly = _parse(
        [_length(zlib.compress(b"\0" * MAX_BODY, 1), b"Content-Encoding: deflate\r\n")]
    )
    assert len(exactly.body()) == MAX_BODY


def test_a_truncated_compressed_body_is_an_error() -> None:
    parser = _parse([_length(gzip.compress(ACCEPTED)[:-3], b"Content-Encoding: gzip\r\n")])
    with pytest.raises(AnswerError, match="truncated"):
        parser.body()


def test_a_body_that_is_not_what_its_coding_says_is_an_error() -> None:
    parser = _parse([_length(b"not gzip", b"Content-Encoding: gzip\r\n")])
    with pytest.raises(AnswerError, match="gzip"):
        parser.body()


def test_the_request_head_adds_host_and_identity_unless_given() -> None:
    lines, close, length = request_head(
        "api.example.test:8443", {"Content-Type": "application/json"}
    )
    assert lines == (
        b"Host: api.example.test:8443\r\n"
        b"Accept-Encoding: identity\r\n"
        b"Content-Type: application/json\r\n"
    )
    assert (close, length) == (False, False)
    given, close, length = request_head(
        "h", {"host": "other", "Accept-Encoding": "gzip", "Connection": "close"}
    )
    assert given == b"host: other\r\nAccept-Encoding: gzip\r\nConnection: close\r\n"
    assert close is True
    assert request_head("h", {"Content-Length": "7"})[2] is True


@pytest.mark.parametrize(
    "headers",
    [{"X-A": "1\r\nX-Injected: 2"}, {"X-A\r\nX-B": "1"}, {"": "1"}, {"X:A": "1"}],
)
def test_a_header_that_would_smuggle_another_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="Invalid header"):
        request_head("h", headers)


def test_a_request_line_with_a_space_or_control_character_is_refused() -> None:
    check_target("POST", "/v2/enqueue?a=1")
    for method, target in [("POST", "/a b"), ("POST", "/a\r\nX: 1"), ("PO ST", "/"), ("", "/")]:
        with pytest.raises(ValueError, match="invalid HTTP request line"):
            check_target(method, target)
