"""A PostgreSQL outbox URL with a setting libpq refuses is a configuration error, not an outage.

libpq checks its connection options before it talks to any server, and says
so without a SQLSTATE and without the server's "FATAL:": the same shape as a
refused connection, which is passing. Each URL below is refused by the real
libpq in psycopg (no server is needed: the port is a closed one), and must
be *not* passing: ``trigger --queue`` exits 2, not 5 ("retry later"), and
``alertwire relay`` exits 2 at once instead of waiting for a fix that will
not come. A refused connection, a missing Unix socket and a host name that
does not resolve stay passing (docs/delivery-guarantee.md).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from alertwire import ConfigurationError, OutboxError
from alertwire.outbox import Outbox
from tests.support.outbox_backends import fresh_pg_target
from tests.support.pg_cluster import PostgresCluster
from tests.support.services import free_port

PASSWORD = "pw" + secrets.token_hex(8)
KEY = secrets.token_hex(16)
ALERTWIRE = str(Path(sys.executable).with_name("alertwire"))


def _url(tail: str = "", *, host: str = "127.0.0.1", port: int | None = None) -> str:
    return f"postgresql://aw:{PASSWORD}@{host}:{port or free_port()}/alertwire{tail}"


#: One URL per libpq (or psycopg) text in ``_MISCONFIGURED``, and the words it says.
REFUSED_SETTINGS = [
    ("?sslmode=bogus", 'invalid sslmode value: "bogus"'),
    ("?gssencmode=bogus", 'invalid gssencmode value: "bogus"'),
    ("?target_session_attrs=bogus", 'invalid target_session_attrs value: "bogus"'),
    ("?ssl_min_protocol_version=bogus", 'invalid "ssl_min_protocol_version" value: "bogus"'),
    ("?keepalives=abc", 'invalid integer value "abc" for connection option "keepalives"'),
    (
        "?ssl_min_protocol_version=TLSv1.3&ssl_max_protocol_version=TLSv1.2",
        "invalid SSL protocol version range",
    ),
    (
        "?min_protocol_version=3.2&max_protocol_version=3.0",
        '"min_protocol_version" is greater than "max_protocol_version"',
    ),
    ("?host=a,b&port=1,2,3", "could not match 3 port numbers to 2 hosts"),
    ("?hostaddr=127.0.0.1,127.0.0.2", "could not match 1 host names with 2 hostaddr values"),
    ("?hostaddr=bogus", 'could not parse network address "bogus"'),
    ("?sslmode=require&sslrootcert=system", 'weak sslmode "require" may not be used'),
    ("?require_auth=password,!md5", "cannot be mixed with non-negative methods"),
    ("?require_auth=!password,md5", "cannot be mixed with negative methods"),
    ("?service=alertwire-no-such-service", 'definition of service "alertwire-no-such-service"'),
    (
        "?gssencmode=require&host=/tmp",
        "GSSAPI encryption required but it is not supported over a local socket",
    ),
]


@pytest.mark.parametrize(("tail", "words"), REFUSED_SETTINGS, ids=[t for t, _ in REFUSED_SETTINGS])
def test_a_setting_libpq_refuses_is_a_configuration_error(
    tail: str, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = tmp_path / "pg_service.conf"
    services.write_text("")  # no service of that name, and none from the machine's own file
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    with pytest.raises(OutboxError) as caught, Outbox.open(_url(tail)) as box:
        box.stats()
    assert not caught.value.retryable
    assert isinstance(caught.value, ConfigurationError)
    assert box.store.is_passing(caught.value) is False
    assert words in str(caught.value) and PASSWORD not in str(caught.value)


def test_a_port_out_of_range_and_an_unusable_service_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "pg_service.conf"
    broken.write_text("[alertwire]\nthis line is not a setting\n")
    for service_file, url, words in (
        (broken, _url(port=99999), 'invalid port number: "99999"'),
        (broken, _url("?service=alertwire"), "syntax error in service file"),
        (tmp_path / "none.conf", _url("?service=alertwire"), "service file .* not found"),
    ):
        monkeypatch.setenv("PGSERVICEFILE", str(service_file))
        with pytest.raises(ConfigurationError, match=words) as caught, Outbox.open(url) as box:
            box.stats()
        assert isinstance(caught.value, OutboxError) and not caught.value.retryable


@pytest.mark.parametrize(
    "url",
    [
        _url(),  # nothing listens: refused
        "postgresql://aw@/alertwire?host=/nonexistent-alertwire-dir",  # no such Unix socket
        _url(host="alertwire-test.invalid"),  # a host name that does not resolve (now)
    ],
    ids=["refused", "no-socket", "unresolved-host"],
)
def test_a_server_that_cannot_be_reached_stays_passing(url: str) -> None:
    with pytest.raises(OutboxError) as caught, Outbox.open(url) as box:
        box.stats()
    assert caught.value.retryable, caught.value
    assert not isinstance(caught.value, ConfigurationError)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTWIRE_", "PG"))}
    env["ALERTWIRE_ROUTING_KEY"] = KEY
    return subprocess.run(
        [ALERTWIRE, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_the_cli_says_bad_configuration_in_one_line_without_the_password() -> None:
    url = _url("?sslmode=bogus")
    queued = _cli("trigger", "--queue", "--outbox", url, "disk full")
    assert queued.returncode == 2, queued.stderr  # was 5: "not stored, retry the same command"
    [line] = queued.stderr.splitlines()
    assert line.startswith("alertwire: error: cannot open the outbox postgresql://aw:***@")
    assert line.endswith(
        ': the URL has a setting libpq refuses: invalid sslmode value: "bogus"; NOT queued'
    )
    relay = _cli("relay", "--drain", "--outbox", url, "--pagerduty-url", "http://127.0.0.1:9")
    # Was: an ERROR "kind='passing'" line, then waiting for the outbox forever.
    assert relay.returncode == 2, relay.stderr
    assert 'invalid sslmode value: "bogus"' in relay.stderr
    assert "kind='passing'" not in relay.stderr
    # A listening relay refuses the setting before it says it listens: a banner, then an
    # exit, told a reader (or a supervisor's log) that it was serving.
    listener = _cli("relay", "--listen", "127.0.0.1:0", "--outbox", url)
    assert listener.returncode == 2, listener.stderr
    assert 'invalid sslmode value: "bogus"' in listener.stderr
    assert "listening" not in listener.stdout + listener.stderr
    for done in (queued, relay, listener):
        assert PASSWORD not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.postgres
def test_tls_required_of_a_server_without_tls_is_a_configuration_error(
    postgres_cluster: PostgresCluster,
) -> None:
    """``sslmode=require`` against a server that does not speak TLS (the test cluster):
    libpq's refusal has no SQLSTATE and no "FATAL:", so it was passing: ``trigger
    --queue`` said "NOT queued, retry" (5) and a relay waited for ever for a server
    that will never offer TLS by itself."""
    url, _schema = fresh_pg_target(postgres_cluster)
    url += "&sslmode=require"
    with pytest.raises(OutboxError) as caught, Outbox.open(url) as box:
        box.stats()
    assert isinstance(caught.value, ConfigurationError) and not caught.value.retryable
    assert "server does not support SSL, but SSL was required" in str(caught.value)
    queued = _cli("trigger", "--queue", "--outbox", url, "disk full")
    assert queued.returncode == 2, queued.stderr
    [line] = queued.stderr.splitlines()
    assert "server does not support SSL, but SSL was required" in line
