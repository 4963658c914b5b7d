"""Stopping a sandbox closes every connection, TLS included, leaving no socket open.

A TLS connection is closed gracefully (close_notify, then a wait for the
client's), which an idle keep-alive client never answers; the sandbox's loop
stopped long before that wait ended, so the server's socket stayed open
until the garbage collector found it (a ResourceWarning at the end of a test
session that kept a TLS client around, as the suite's own did).
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from alertwire.sandbox import Sandbox
from tests.support.raw_http import read_message

#: A bound on a wait for the server's end of the connection, never an expectation of speed.
BOUND = 15.0


def _read_response(tls: ssl.SSLSocket) -> bytes:
    message = read_message(tls)
    assert message is not None
    return message[0]


def test_stop_closes_an_idle_tls_keep_alive_connection() -> None:
    with Sandbox(tls=True) as sandbox:
        url = urlsplit(sandbox.url)
        assert url.hostname is not None and url.port is not None and sandbox.ca_file is not None
        context = ssl.create_default_context(cafile=str(sandbox.ca_file))
        raw = socket.create_connection((url.hostname, url.port), timeout=BOUND)
        tls = context.wrap_socket(raw, server_hostname=url.hostname)
        tls.sendall(b"GET /sandbox/alerts HTTP/1.1\r\nHost: sandbox\r\n\r\n")
        assert _read_response(tls).startswith(b"HTTP/1.1 200")
        # The connection is now idle and kept alive by the client; the sandbox stops.
    try:
        assert tls.recv(1) == b""  # the server's close_notify
        with tls.unwrap() as plain:
            closed = plain.recv(1) == b""  # and then the TCP connection itself
    except (ConnectionError, ssl.SSLError):
        closed = True  # a reset: closed as well
    except TimeoutError:
        closed = False
    finally:
        tls.close()
        raw.close()
    assert closed, "the sandbox stopped but kept the TLS connection's socket open"


def _refuses_connections(url: str) -> bool:
    """Nothing listens at ``url`` any more (only asked of a stopped sandbox: a connection
    that sent no request would be left to the server to close)."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=BOUND):
            return False
    except ConnectionRefusedError:
        return True


def test_leaving_with_and_close_both_stop_the_sandbox() -> None:
    """``with`` exit goes through :meth:`Sandbox.close`, which is :meth:`Sandbox.stop`."""
    with Sandbox() as sandbox:
        url = sandbox.url
        assert repr(sandbox) == f"Sandbox({url})"
    assert repr(sandbox) == "Sandbox(stopped)"
    assert _refuses_connections(url)

    other = Sandbox().start()
    url = other.url
    other.close()
    assert repr(other) == "Sandbox(stopped)"
    assert _refuses_connections(url)
