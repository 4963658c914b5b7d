"""What both default transports promise alike, on real sockets: each test runs once with
StdlibTransport (sync) and once with AsyncioTransport (async).

The request as it arrives, the answer as it is handed back, a refused
connection, and whose TLS certificates are trusted (docs/transports.md,
"What the defaults do"). What is one transport's own (threads, one write,
proxies, chunked answers, cancellation, ``limit``) is in
tests/transport/test_transport_stdlib.py, test_transport_proxy.py and
test_transport_asyncio.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from alertwire import ConfigurationError, NetworkError
from alertwire.sandbox import Sandbox
from alertwire.transport import AsyncioTransport, Request, Response, StdlibTransport
from tests.support.loopback_server import Answer, LoopbackServer, serve
from tests.support.sandbox_http import enqueue_request

server = pytest.fixture(serve)

KINDS = ("sync", "async")


def _send(kind: str, request: Request, **options: Any) -> Response:
    """``request`` through a new default transport of ``kind``, closed afterwards."""
    return send_each(kind, [request], **options)[0]


def send_each(kind: str, requests: list[Request], **options: Any) -> list[Response]:
    """``requests`` one after the other through one new default transport of ``kind``
    (so keep-alive is used), closed afterwards; the first failure is raised."""
    if kind == "sync":
        transport = StdlibTransport(**options)
        try:
            return [transport.send(request, timeout=10) for request in requests]
        finally:
            transport.close()

    async def send() -> list[Response]:
        transport = AsyncioTransport(**options)
        try:
            return [await transport.send(request, timeout=10) for request in requests]
        finally:
            await transport.aclose()

    return asyncio.run(send())


@pytest.mark.parametrize("kind", KINDS)
def test_the_request_arrives_whole_with_its_length_and_the_answer_headers_lowercased(
    server: LoopbackServer, kind: str
) -> None:
    server.script(Answer(status=429, headers={"Retry-After": "7"}, body="slow down"))
    request = enqueue_request(server.url)
    answer = _send(kind, request)
    assert (answer.status, answer.body, answer.header("Retry-After")) == (429, b"slow down", "7")
    assert answer.headers["retry-after"] == "7"
    [received] = server.received
    assert received.body == request.body
    assert received.headers["content-length"] == str(len(request.body))
    assert received.headers["content-type"] == "application/json"
    assert received.headers["host"] == server.url.split("/")[2]


@pytest.mark.parametrize("kind", KINDS)
def test_a_query_string_and_a_get_without_body_travel_as_given(
    server: LoopbackServer, kind: str
) -> None:
    server.script(Answer(status=200, body={"ok": True}))
    answer = _send(kind, Request("GET", server.url + "/incidents?limit=2", {}, b""))
    assert (answer.status, json.loads(answer.body)) == (200, {"ok": True})
    [received] = server.received
    assert (received.method, received.path, received.body) == ("GET", "/incidents?limit=2", b"")
    assert "content-length" not in received.headers


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_connection_is_a_network_error_naming_the_host(kind: str) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(NetworkError, match=f"no answer from 127.0.0.1:{port}") as caught:
        _send(kind, enqueue_request(f"http://127.0.0.1:{port}"))
    assert caught.value.__cause__ is not None


# --- TLS: whose certificates are trusted ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_tls_default_trust_refuses_a_private_ca(alertwire_sandbox_tls: Sandbox, kind: str) -> None:
    with pytest.raises(NetworkError, match="CERTIFICATE_VERIFY_FAILED"):
        _send(kind, enqueue_request(alertwire_sandbox_tls.url))


@pytest.mark.parametrize("kind", KINDS)
def test_tls_trusts_a_ca_file_given_as_verify(alertwire_sandbox_tls: Sandbox, kind: str) -> None:
    assert alertwire_sandbox_tls.ca_file is not None
    answer = _send(
        kind, enqueue_request(alertwire_sandbox_tls.url), verify=alertwire_sandbox_tls.ca_file
    )
    assert answer.status == 202


@pytest.mark.parametrize("kind", KINDS)
def test_tls_trusts_a_ca_file_given_as_a_path(alertwire_sandbox_tls: Sandbox, kind: str) -> None:
    """A ``pathlib.Path`` was not read at all: the system store was used instead, and
    the send failed certificate verification as a retryable NetworkError."""
    assert alertwire_sandbox_tls.ca_file is not None
    ca_file = Path(alertwire_sandbox_tls.ca_file)
    answer = _send(kind, enqueue_request(alertwire_sandbox_tls.url), verify=ca_file)
    assert answer.status == 202


@pytest.mark.parametrize("kind", KINDS)
def test_tls_default_trust_honours_ssl_cert_file(
    alertwire_sandbox_tls: Sandbox, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    assert alertwire_sandbox_tls.ca_file is not None
    monkeypatch.setenv("SSL_CERT_FILE", alertwire_sandbox_tls.ca_file)
    assert _send(kind, enqueue_request(alertwire_sandbox_tls.url)).status == 202


@pytest.mark.parametrize("cls", [StdlibTransport, AsyncioTransport])
def test_tls_checks_host_names_with_the_default_and_a_ca_file(
    tmp_path: Path, cls: type[StdlibTransport] | type[AsyncioTransport]
) -> None:
    """The server is bound to 127.0.0.1 only, so a wrong name cannot be staged on loopback:
    the context every connection uses is checked instead."""
    import ssl

    from alertwire.wire import make_server_tls

    ca_file = make_server_tls("127.0.0.1", tmp_path / "ca.pem").ca_file
    for verify in (True, str(ca_file)):
        context = cls(verify=verify)._tls()
        assert context.check_hostname is True
        assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("kind", KINDS)
def test_tls_verify_false_skips_the_check(alertwire_sandbox_tls: Sandbox, kind: str) -> None:
    assert _send(kind, enqueue_request(alertwire_sandbox_tls.url), verify=False).status == 202


@pytest.mark.parametrize("cls", [StdlibTransport, AsyncioTransport])
def test_an_unusable_ca_file_fails_when_the_transport_is_made(
    tmp_path: Path, cls: type[StdlibTransport] | type[AsyncioTransport]
) -> None:
    """Not at the first send as a retryable NetworkError: the CLI says exit 2 for it. A
    ConfigurationError naming the file, not the loader's FileNotFoundError without it."""
    with pytest.raises(ConfigurationError, match=r"missing\.pem"):
        cls(verify=str(tmp_path / "missing.pem"))
