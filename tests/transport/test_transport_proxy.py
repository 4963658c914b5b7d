"""The default sync transport through a real HTTP proxy (Debian's tinyproxy).

What is pinned: ``HTTPS_PROXY`` and friends are honoured (a page from behind a
corporate proxy must leave the network), ``NO_PROXY`` and loopback go direct,
TLS is verified end to end through the ``CONNECT`` tunnel, proxy credentials
log in and never show, and a proxy setting we cannot use is refused when the
transport is made, naming the variable. The rules themselves (which variable,
what ``NO_PROXY`` matches) are pure logic and are tested without a network.

A test that must prove the request went *through* the proxy sends to a name
only the proxy would try to resolve (``*.invalid`` never resolves): the
error then comes from the proxy, and the proxy's log names the host.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from alertwire import NetworkError
from alertwire.sandbox import Sandbox
from alertwire.transport import AsyncioTransport, StdlibTransport
from alertwire.transport._proxy import ProxySettings, proxy_settings
from tests.support.keys import ROUTING_KEY
from tests.support.sandbox_http import enqueue_request
from tests.support.services import RunningProxy
from tests.support.waiting import wait_for
from tests.transport.test_transport_defaults import KINDS, send_each

UNRESOLVABLE = "alertwire-proxy-test.invalid"


@pytest.fixture
def proxy(run_tinyproxy: Callable[..., RunningProxy]) -> RunningProxy:
    return run_tinyproxy()


@pytest.fixture
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    yield monkeypatch


# --- the rules, without a network ----------------------------------------------------------


def test_no_variable_means_no_proxy() -> None:
    assert proxy_settings({"PATH": "/usr/bin"}) is None
    assert proxy_settings({"NO_PROXY": "example.com"}) is None  # nothing to bypass


def test_each_scheme_takes_its_variable_then_all_proxy() -> None:
    settings = proxy_settings({"HTTPS_PROXY": "http://secure:3128", "ALL_PROXY": "proxy.corp:8080"})
    assert settings is not None
    via_https = settings.for_origin("https", "events.pagerduty.com", 443)
    via_http = settings.for_origin("http", "example.com", 80)
    assert via_https is not None and (via_https.host, via_https.port) == ("secure", 3128)
    assert via_http is not None and (via_http.host, via_http.port) == ("proxy.corp", 8080)


def test_lower_case_wins_and_an_empty_one_unsets() -> None:
    settings = proxy_settings({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"})
    assert settings is not None
    chosen = settings.for_origin("https", "x.example", 443)
    assert chosen is not None and chosen.host == "lower"
    assert proxy_settings({"HTTPS_PROXY": "http://upper:1", "https_proxy": ""}) is None


def test_http_proxy_is_ignored_in_a_cgi_request() -> None:
    """In CGI, HTTP_PROXY can be set by a request's own ``Proxy:`` header (httpoxy)."""
    assert proxy_settings({"HTTP_PROXY": "http://evil:1", "REQUEST_METHOD": "GET"}) is None


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "direct"),
    [
        ("*", "events.pagerduty.com", 443, True),
        ("pagerduty.com", "events.pagerduty.com", 443, True),
        (".pagerduty.com", "events.pagerduty.com", 443, True),
        ("pagerduty.com", "notpagerduty.com", 443, False),
        (" other.example , pagerduty.com ", "pagerduty.com", 443, True),
        ("events.pagerduty.com:8443", "events.pagerduty.com", 443, False),
        ("events.pagerduty.com:443", "events.pagerduty.com", 443, True),
        ("10.0.0.0/8", "10.20.30.40", 443, True),
        ("10.0.0.0/8", "11.0.0.1", 443, False),
        ("fd00::/8", "fd00::1", 443, True),
        ("192.0.2.7", "192.0.2.7", 80, True),
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, direct: bool) -> None:
    settings = proxy_settings({"ALL_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy})
    assert settings is not None
    assert (settings.for_origin("https", host, port) is None) is direct


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.9.9.9", "::1", "api.localhost"])
def test_loopback_is_always_direct_unless_a_proxy_is_given_explicitly(host: str) -> None:
    from_env = proxy_settings({"ALL_PROXY": "http://proxy:3128"})
    assert from_env is not None and from_env.for_origin("https", host, 443) is None
    assert ProxySettings.everywhere("http://proxy:3128").for_origin("https", host, 443) is not None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("socks5://proxy:1080", "only http:// proxies"),
        ("https://proxy:3128", "only http:// proxies"),
        ("http://:3128", "not a proxy address"),
        ("http://proxy:99999", "not a proxy address"),
        ("http://alice:12/34@proxy:3128", "the user or password in the proxy URL must be"),
    ],
)
def test_an_unusable_proxy_is_refused_naming_the_variable(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=f"^https_proxy: {says}"):
        proxy_settings({"https_proxy": value})


def _forms(user: str, password: str) -> list[str]:
    """Every form a proxy password could leak in: as typed, and as its Basic header."""
    import base64

    return [password, base64.b64encode(f"{user}:{password}".encode()).decode()]


def test_proxy_credentials_never_show() -> None:
    settings = proxy_settings({"HTTPS_PROXY": "http://alice:s3cr%40t@proxy:3128"})
    assert settings is not None
    chosen = settings.for_origin("https", "x.example", 443)
    assert chosen is not None and chosen.authorization is not None
    assert chosen.authorization == "Basic " + _forms("alice", "s3cr@t")[1]
    for shown in ["s3cr", *_forms("alice", "s3cr@t")]:
        assert shown not in repr(settings) and shown not in repr(chosen)
    for refused_url in ("socks5://alice:s3cret@proxy:1080", "http://alice:s3/cret@proxy:3128"):
        with pytest.raises(ValueError) as refused:
            proxy_settings({"HTTPS_PROXY": refused_url})
        assert "s3" not in str(refused.value) and "cret" not in str(refused.value)


# --- through a real proxy, with each default transport -----------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_tls_through_the_proxy_is_verified_end_to_end(
    alertwire_sandbox_tls: Sandbox, proxy: RunningProxy, kind: str
) -> None:
    """CONNECT tunnel: the sandbox's certificate is checked against its own name."""
    ca_file = alertwire_sandbox_tls.ca_file
    assert ca_file is not None
    before = len(alertwire_sandbox_tls.events())
    request = enqueue_request(alertwire_sandbox_tls.url)
    answers = send_each(kind, [request, request], proxy=proxy.url, verify=ca_file)
    assert [answer.status for answer in answers] == [202, 202]
    assert len(alertwire_sandbox_tls.events()) == before + 2
    port = alertwire_sandbox_tls.url.rsplit(":", 1)[1]
    assert proxy.log().count(f"CONNECT 127.0.0.1:{port}") == 1  # one tunnel, kept alive
    with pytest.raises(NetworkError, match="CERTIFICATE_VERIFY_FAILED"):
        send_each(kind, [request], proxy=proxy.url)  # the system store does not know this CA


@pytest.mark.parametrize("kind", KINDS)
def test_plain_http_through_the_proxy(
    alertwire_sandbox: Sandbox, proxy: RunningProxy, kind: str
) -> None:
    before = len(alertwire_sandbox.events())
    assert (
        send_each(kind, [enqueue_request(alertwire_sandbox.url)], proxy=proxy.url)[0].status == 202
    )
    assert len(alertwire_sandbox.events()) == before + 1
    assert f"POST {alertwire_sandbox.url}/v2/enqueue" in proxy.log()


@pytest.mark.parametrize("kind", KINDS)
def test_proxy_credentials_log_in_and_never_show(
    alertwire_sandbox_tls: Sandbox, run_tinyproxy: Callable[..., RunningProxy], kind: str
) -> None:
    guarded = run_tinyproxy(login=("alice", "s3cret"))
    ca_file = alertwire_sandbox_tls.ca_file
    assert ca_file is not None
    request = enqueue_request(alertwire_sandbox_tls.url)
    with pytest.raises(NetworkError, match=r"through the proxy 127\.0\.0\.1:.*407"):
        send_each(kind, [request], proxy=guarded.url, verify=ca_file)
    wrong_url = guarded.url.replace("http://", "http://alice:wr0ngpass@")
    with pytest.raises(NetworkError, match=r"Tunnel connection failed: 40[17]") as refused:
        send_each(kind, [request], proxy=wrong_url, verify=ca_file)
    for shown in _forms("alice", "wr0ngpass"):
        assert shown not in str(refused.value)
    logged_in_url = guarded.url.replace("http://", "http://alice:s3cret@")
    assert send_each(kind, [request], proxy=logged_in_url, verify=ca_file)[0].status == 202
    made = StdlibTransport if kind == "sync" else AsyncioTransport
    for shown in _forms("alice", "s3cret"):
        assert shown not in repr(vars(made(proxy=logged_in_url)))


@pytest.mark.parametrize("kind", KINDS)
def test_https_proxy_variable_routes_through_the_proxy(
    proxy: RunningProxy, no_proxy_variables: pytest.MonkeyPatch, kind: str
) -> None:
    no_proxy_variables.setenv("HTTPS_PROXY", proxy.url)
    with pytest.raises(NetworkError, match=r"through the proxy 127\.0\.0\.1:\d+") as failed:
        send_each(kind, [enqueue_request(f"https://{UNRESOLVABLE}")])
    assert f"CONNECT {UNRESOLVABLE}:443" in proxy.log(), str(failed.value)


@pytest.mark.parametrize("kind", KINDS)
def test_no_proxy_and_trust_env_false_go_direct(
    proxy: RunningProxy, no_proxy_variables: pytest.MonkeyPatch, kind: str
) -> None:
    no_proxy_variables.setenv("HTTPS_PROXY", proxy.url)
    no_proxy_variables.setenv("NO_PROXY", ".invalid")
    for options in ({}, {"trust_env": False}):
        with pytest.raises(NetworkError) as failed:  # our own name lookup fails
            send_each(kind, [enqueue_request(f"https://{UNRESOLVABLE}")], **options)
        assert "through the proxy" not in str(failed.value)
    no_proxy_variables.delenv("NO_PROXY")
    with pytest.raises(NetworkError):
        send_each(kind, [enqueue_request(f"https://{UNRESOLVABLE}")], trust_env=False)
    assert UNRESOLVABLE not in proxy.log()


def test_the_cli_pages_through_https_proxy_and_refuses_an_unusable_one(
    proxy: RunningProxy, no_proxy_variables: pytest.MonkeyPatch
) -> None:
    """``alertwire trigger`` is where proxies matter most: a script behind one."""
    command = [
        sys.executable,
        "-m",
        "alertwire.cli.main",
        "trigger",
        "disk full",
        "--source",
        "db1",
    ]
    target = ["--pagerduty-url", f"https://{UNRESOLVABLE}", "--max-attempts", "1"]
    env = {"ALERTWIRE_ROUTING_KEY": ROUTING_KEY, "HTTPS_PROXY": proxy.url, "PATH": "/usr/bin"}
    done = subprocess.run(
        [*command, *target], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 4, done.stderr  # retryable: not delivered, try again later
    assert "through the proxy" in done.stderr, done.stderr
    wait_for("the proxy's log line", lambda: f"CONNECT {UNRESOLVABLE}:443" in proxy.log())
    env["HTTPS_PROXY"] = "socks5://alice:s3cret@127.0.0.1:1080"
    done = subprocess.run(
        [*command, *target], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr  # a setting to fix, not a passing failure
    assert done.stderr.count("\n") == 1 and "HTTPS_PROXY: only http:// proxies" in done.stderr
    assert "s3cret" not in done.stdout + done.stderr
