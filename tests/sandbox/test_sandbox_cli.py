"""``alertwire sandbox`` and ``alertwire demo`` as the user runs them: subprocesses."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.sandbox_http import KEY, post, trigger

COMMAND = [sys.executable, "-m", "alertwire.cli.main"]


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*COMMAND, "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if m := re.search(r"listening on (\S+)", line):
            return process, m.group(1)
    process.wait(timeout=10)
    raise AssertionError(f"the sandbox did not start (exit {process.returncode})")


def refused(*args: str) -> subprocess.CompletedProcess[str]:
    """``alertwire sandbox ARGS`` run to its end: for options it refuses before serving
    (one that served instead fails the test at the timeout)."""
    return subprocess.run(
        [*COMMAND, "sandbox", "--port", "0", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sandbox_command_serves_and_exits_cleanly_on_signal(sig: signal.Signals) -> None:
    process, url = start("--rate-limit", "2")
    try:
        assert url.startswith("http://127.0.0.1:")
        assert [post(url + "/v2/enqueue", trigger()).status for _ in range(3)] == [202, 202, 429]
        with urllib.request.urlopen(url + "/sandbox/alerts") as r:
            alerts = json.loads(r.read())
        assert len(alerts) == 2 and KEY not in json.dumps(alerts, ensure_ascii=False)
        with urllib.request.urlopen(url + "/") as r:
            assert b"alertwire sandbox" in r.read()
    finally:
        process.send_signal(sig)
        rest, _ = process.communicate(timeout=20)
    assert process.returncode == 0, rest
    assert "alertwire sandbox stopped" in rest
    assert "Traceback" not in rest and KEY not in rest


def test_sandbox_command_refuses_a_non_loopback_host() -> None:
    done = subprocess.run(
        [*COMMAND, "sandbox", "--host", "0.0.0.0", "--port", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "not a loopback address" in done.stderr and "--allow-non-loopback" in done.stderr


def test_sandbox_command_reports_a_busy_port() -> None:
    process, url = start()
    try:
        port = url.rsplit(":", 1)[1]
        done = subprocess.run(
            [*COMMAND, "sandbox", "--port", port],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2
        assert "cannot listen" in done.stderr and "Traceback" not in done.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def test_sandbox_help() -> None:
    done = subprocess.run(
        [*COMMAND, "sandbox", "--help"], check=False, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    for option in (
        "--host",
        "--port",
        "--tls",
        "--rate-limit",
        "--allow-non-loopback",
        "--ca-file",
    ):
        assert option in done.stdout


def test_demo_walks_the_whole_story_and_exits_0() -> None:
    done = subprocess.run(
        [*COMMAND, "demo"], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for step in (
        "Trigger an alert",
        "Acknowledge it",
        "Resolve it",
        "Find its incident through the REST API",
        "change event",
        "BigPanda alert",
        "retried",
        "validation error",
    ):
        assert step in out
    assert "UNEXPECTED" not in out
    assert out.count("ok: ") == 9
    assert "'payload.severity' is invalid" in out
    assert re.search(
        r"incident P\w+ 'resolved'\n\s+its log entries: trigger, acknowledge, resolve", out
    )
    # The final table: one resolved alert, one triggered (the retried one).
    table = out.split("The sandbox's final state", 1)[1]
    assert re.search(
        r"^1\s+…\w{4}\s+[0-9a-f]{32}\s+resolved\s+warning\s+Disk 91% full on db1$", table, re.M
    )
    assert re.search(r"^2\s+…\w{4}\s+[0-9a-f]{32}\s+triggered\s+error\s+Replica lag", table, re.M)
    from alertwire.cli.demo_cmd import DEMO_BIGPANDA_TOKEN, DEMO_REST_TOKEN, DEMO_ROUTING_KEY

    for secret in (DEMO_ROUTING_KEY, DEMO_BIGPANDA_TOKEN, DEMO_REST_TOKEN):
        assert secret not in out + done.stderr


@pytest.mark.parametrize("mark", ["", "\ufeff"], ids=["plain", "byte-order-mark"])
def test_sandbox_command_serves_rest_with_a_fixed_token_and_limit(
    tmp_path: Path, mark: str
) -> None:
    """The token file is read as every key file is: a byte order mark (a Windows
    editor's) is not part of the token; it was, and every request was refused."""
    token = "sandbox-cli-token-Z9Q1"
    token_file = tmp_path / "token"
    token_file.write_text(mark + token + "\n", encoding="utf-8")
    process, url = start("--api-token-file", str(token_file), "--rest-rate-limit", "2")
    assert process.stdout is not None
    banner = []
    # Read the rest of the banner through the same buffered pipe: communicate() with a
    # timeout reads the raw descriptor and would miss lines already buffered here.
    for line in process.stdout:
        banner.append(line)
        if "Stop with" in line:
            break
    try:
        assert post(url + "/v2/enqueue", trigger("disk")).status == 202

        def get(path: str, value: str) -> tuple[int, dict[str, str], object]:
            req = urllib.request.Request(
                url + path, headers={"Authorization": f"Token token={value}"}
            )
            try:
                with urllib.request.urlopen(req) as r:
                    return r.status, dict(r.headers), json.loads(r.read())
            except urllib.error.HTTPError as exc:
                return exc.code, dict(exc.headers), json.loads(exc.read())

        status, headers, body = get("/incidents", token)
        assert status == 200 and headers["ratelimit-limit"] == "2"
        assert [i["incident_key"] for i in body["incidents"]] == ["disk"]  # type: ignore[index]
        assert get("/incidents", "some-other-token")[0] == 401
        assert get("/incidents", token)[0] == 200
        assert get("/incidents", token)[0] == 429
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=20)
    assert process.returncode == 0, rest
    printed = "".join(banner) + rest
    assert "REST API:" in printed and "REST limit: 2 requests per minute per token" in printed
    assert token not in printed


@pytest.mark.parametrize("content", [None, ""])
def test_sandbox_command_refuses_a_missing_or_empty_token_file(
    tmp_path: Path, content: str | None
) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    result = refused("--api-token-file", str(token_file))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--api-token-file" in lines[0], result.stderr


@pytest.mark.parametrize("where", ["missing-dir/ca.pem", "."], ids=["no-directory", "a-directory"])
def test_sandbox_command_says_where_it_cannot_write_the_ca(tmp_path: Path, where: str) -> None:
    """``--tls --ca-file`` where no file can be written was a traceback and exit 1."""
    path = tmp_path / where
    result = refused("--tls", "--ca-file", str(path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("alertwire: error: cannot write the CA certificate to")
    assert str(path) in lines[0]
    assert "listening" not in result.stdout


def test_sandbox_command_refuses_a_ca_file_without_tls(tmp_path: Path) -> None:
    """It served plain http and wrote no CA where the user waited for one; the relay's
    --tls-ca-file without --tls is refused the same way."""
    ca = tmp_path / "ca.pem"
    result = refused("--ca-file", str(ca))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == "alertwire: error: --ca-file goes with --tls\n"
    assert "listening" not in result.stdout
    assert not ca.exists()


def test_a_request_that_cannot_be_parsed_is_logged_without_its_bytes() -> None:
    # aiohttp answers these 400 itself and logged them at ERROR with a traceback
    # quoting the offending line: here a token with a stray control byte (a token
    # file with a bad line ending) and a request line too long with a key in its query.
    token, key = "bp-token-in-a-bad-header-Q7", "0123456789abcdef0123456789abQ7Q7"
    process, url = start()
    assert process.stdout is not None
    for line in process.stdout:  # the rest of the banner, through the same buffered pipe
        if "Stop with" in line:
            break
    port = int(url.rsplit(":", 1)[1])
    heads = [
        f"POST /data/v2/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\x01\r\n"
        "Content-Length: 2\r\n\r\n{}",
        f"GET /sandbox/alerts?routing_key={key}&pad={'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    try:
        for head in heads:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(head.encode())
                assert re.match(rb"HTTP/1\.[01] 400 ", sock.recv(4096))
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=20)
    assert process.returncode == 0, rest
    assert token not in rest and key not in rest, rest
    assert "Traceback" not in rest, rest
    assert re.search(r"event=bad_request error=\w+ status=400 peer=127\.0\.0\.1: ", rest), rest
