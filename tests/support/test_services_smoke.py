"""Smoke tests of the real-server fixtures in ``tests/support/services.py`` and of conftest's rules.

Each fixture is used for real once: a query through PostgreSQL's password
login, an alert through Alertmanager's API, a page with a JavaScript timer
rendered by Chromium. If one of these fails, the tests built on the fixture
would fail for reasons that have nothing to do with alertwire; this file says
so first.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from alertwire import _retry
from alertwire._errors import NetworkError
from tests.support.services import Chromium, PostgresCluster, RunningAlertmanager, free_port

REPO = Path(__file__).resolve().parents[2]


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))


# --- PostgreSQL ------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_password_login_over_tcp(postgres_dsn: str) -> None:
    assert postgres_dsn.startswith("postgresql://alertwire:")
    assert "@127.0.0.1:" in postgres_dsn
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute("select 1, current_user, current_database()").fetchone()
    assert row == (1, "alertwire", "alertwire")


@pytest.mark.postgres
def test_postgres_rejects_a_wrong_password(postgres_cluster: PostgresCluster) -> None:
    wrong = postgres_cluster.dsn.replace(postgres_cluster.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=10)


@pytest.mark.postgres
def test_postgres_new_database_is_empty_and_separate(postgres_cluster: PostgresCluster) -> None:
    dsn = postgres_cluster.new_database()
    assert dsn != postgres_cluster.dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table t (x int)")
        conn.execute("insert into t values (42)")
        assert conn.execute("select x from t").fetchall() == [(42,)]
    with psycopg.connect(postgres_cluster.dsn) as conn:
        found = conn.execute("select to_regclass('public.t') is not null").fetchone()
    assert found == (False,)


# --- Alertmanager ----------------------------------------------------------

ALERTMANAGER_CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1h
receivers:
  - name: blackhole
"""


@pytest.mark.alertmanager
def test_alertmanager_starts_and_accepts_an_alert(
    run_alertmanager: Callable[[str], RunningAlertmanager],
) -> None:
    base_url, process = run_alertmanager(ALERTMANAGER_CONFIG)
    assert process.poll() is None
    with urllib.request.urlopen(f"{base_url}/-/ready", timeout=10) as response:
        assert response.status == 200

    alert = [{"labels": {"alertname": "SmokeTest", "severity": "critical"}}]
    request = urllib.request.Request(
        f"{base_url}/api/v2/alerts",
        data=json.dumps(alert).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"{base_url}/api/v2/alerts", timeout=10) as response:
        alerts = json.load(response)
    assert [a["labels"]["alertname"] for a in alerts] == ["SmokeTest"]


@pytest.mark.alertmanager
def test_alertmanager_bad_config_is_a_clear_error(
    run_alertmanager: Callable[[str], RunningAlertmanager],
) -> None:
    with pytest.raises(RuntimeError, match="alertmanager exited"):
        run_alertmanager("route:\n  receiver: nobody\n")


# --- Chromium --------------------------------------------------------------

PAGE = b"""<!doctype html>
<html><head><title>smoke</title></head>
<body style="margin:0;background:#ff0000">
<p id="static">served by http.server</p>
<p id="late">waiting</p>
<script>
setTimeout(function () {
  document.getElementById("late").textContent = "set by a timer after 2 seconds";
}, 2000);
</script>
</body></html>
"""


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.browser
def test_chromium_dumps_the_dom_after_js_timers(chromium: Chromium, page_url: str) -> None:
    dom = chromium.dump_dom(page_url, virtual_time_budget_ms=10_000)
    assert "served by http.server" in dom
    # Virtual time ran the 2-second timer without the test waiting for it.
    assert "set by a timer after 2 seconds" in dom


@pytest.mark.browser
def test_chromium_screenshot_has_the_requested_size(
    chromium: Chromium, page_url: str, tmp_path: Path
) -> None:
    png = chromium.screenshot(page_url, tmp_path / "page.png", 320, 200)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (320, 200)


# --- conftest rules --------------------------------------------------------


def test_retries_are_instant_in_tests() -> None:
    error = NetworkError("boom")
    assert _retry.RetryPolicy(initial_backoff=10.0).delay(error, 3) == 0.0


def test_real_retry_delays_fixture_turns_them_back_on(real_retry_delays: None) -> None:
    error = NetworkError("boom")
    delays = {_retry.RetryPolicy(initial_backoff=10.0).delay(error, 3) for _ in range(20)}
    assert any(d > 0.0 for d in delays)


SKIPPING_TEST = """\
import pytest

def test_needs_something_missing():
    pytest.skip("pretend the server is missing")
"""


@pytest.mark.parametrize(
    ("require_all", "expected_rc", "expected_summary"),
    [("1", 1, "1 failed"), ("0", 0, "1 skipped")],
)
def test_skips_fail_when_everything_is_required(
    tmp_path: Path, require_all: str, expected_rc: int, expected_summary: str
) -> None:
    test_file = tmp_path / "test_skipping.py"
    test_file.write_text(SKIPPING_TEST)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["ALERTWIRE_REQUIRE_ALL"] = require_all
    # Only our conftest as a plugin: the installed ones would only slow the start.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-q",
            str(test_file),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == expected_rc, result.stdout + result.stderr
    assert expected_summary in result.stdout
