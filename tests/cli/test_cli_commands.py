"""The installed ``alertwire`` command, run as a subprocess against real loopback servers.

Every command and every exit code (0, 2, 3, 4). The server here answers by
the first path segment of the base URL (``/ok``, ``/s400``, ``/s503``...), so
each test picks its answer by URL and nothing is shared between tests;
a body containing ``server-rejects`` is always answered 400, which is how a
``send`` file gets a line that passes our validation but not the service's.
The alert lifecycle and ``--ca-file`` run against the real sandbox.

:func:`run` asserts, for every single invocation, that neither the routing
key, the BigPanda token nor the app key appears in stdout or stderr.
Subprocesses retry with ``--max-backoff 0``: the documented option, not a hook.
"""

from __future__ import annotations

import itertools
import json
import os
import pty
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest

from tests.support.waiting import wait_for

ALERTWIRE = str(Path(sys.executable).with_name("alertwire"))
KEY = secrets.token_hex(16)  # 32 alphanumeric characters, like an integration key
TOKEN = "bptok" + secrets.token_hex(12)
APP_KEY = "app" + secrets.token_hex(8)
SECRETS = (KEY, TOKEN, APP_KEY)
FAST = ("--max-backoff", "0")

PD_400_TEXT = (
    "'payload.severity' is invalid (must be one of the following:"
    " 'critical', 'warning', 'error' or 'info')"
)
PD_400 = {"errors": [PD_400_TEXT], "message": "Event object is invalid", "status": "invalid event"}


@dataclass
class Hit:
    mode: str
    path: str
    headers: dict[str, str]
    body: bytes
    arrived: int
    answered: int = -1

    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mode, _, rest = self.path.lstrip("/").partition("/")
        hit = self.server.record(mode, "/" + rest, dict(self.headers.items()), body)
        status, payload = self._answer(hit)
        if b"slow" in body:
            time.sleep(0.3)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        self.server.answered(hit)

    def _answer(self, hit: Hit) -> tuple[int, Any]:
        if b"server-rejects" in hit.body:
            return 400, PD_400
        if hit.mode == "s400":
            return 400, PD_400
        if hit.mode == "s400text":
            return 400, b"Invalid routing key"
        if hit.mode == "s502html":  # a proxy's error page: lines, and a terminal escape
            return 502, PROXY_PAGE
        if hit.mode == "s400lines":  # PagerDuty's JSON shape, its texts on several lines
            return 400, {
                "status": "invalid event",
                "message": "Event object\nis invalid",
                "errors": ["first\r\nproblem", "\x1b[2Ksecond"],
            }
        if hit.mode == "s401":
            return 401, b"Unauthorized: the token is not valid"
        if hit.mode == "s429":
            return 429, b"Request Limit Exceeded"
        if hit.mode == "s503":
            return 503, b"Service Unavailable"
        if hit.mode == "echo":  # a careless service quoting the request back
            return 400, json.dumps({"headers": hit.headers, "body": hit.body.decode()}).encode()
        if hit.path.endswith("/data/v2/alerts"):
            return 201, {"status": "created"}
        if hit.path.endswith("/change/enqueue"):
            return 202, {"message": "Change event processed", "status": "success"}
        sent = hit.json()
        return 202, {
            "dedup_key": sent.get("dedup_key"),
            "message": "Event processed",
            "status": "success",
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.sequence = itertools.count()
        self.hits: list[Hit] = []

    def record(self, mode: str, path: str, headers: dict[str, str], body: bytes) -> Hit:
        with self.lock:
            hit = Hit(
                mode, path, {k.lower(): v for k, v in headers.items()}, body, next(self.sequence)
            )
            self.hits.append(hit)
            return hit

    def answered(self, hit: Hit) -> None:
        with self.lock:
            hit.answered = next(self.sequence)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up makes a late write fail: expected."""


class Service:
    def __init__(self, server: _Server) -> None:
        self._server = server

    def url(self, mode: str) -> str:
        host, port = cast("tuple[str, int]", self._server.server_address[:2])  # an AF_INET server
        return f"http://{host}:{port}/{mode}"

    def hits(self, mode: str) -> list[Hit]:
        with self._server.lock:
            return [h for h in self._server.hits if h.mode == mode]


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Service(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def mode() -> str:
    """A path segment of its own for each test, so hits never mix."""
    return "ok" + secrets.token_hex(4)


RUNS: list[subprocess.CompletedProcess[str]] = []


@pytest.fixture(scope="module", autouse=True)
def _no_run_printed_a_secret() -> Iterator[None]:
    """Belt and braces over :func:`run`'s own check: all of this module's runs together."""
    yield
    everything = "".join(r.stdout + r.stderr for r in RUNS)
    for secret in SECRETS:
        assert secret not in everything


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    environment.update(env or {})
    done = subprocess.run(
        [ALERTWIRE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    RUNS.append(done)
    printed = done.stdout + done.stderr
    for secret in SECRETS:
        assert secret not in printed
        assert secret[:12] not in printed
    assert "Traceback" not in done.stderr, done.stderr
    return done


def pd_env(service: Service, mode: str) -> dict[str, str]:
    return {"ALERTWIRE_ROUTING_KEY": KEY, "ALERTWIRE_PAGERDUTY_URL": service.url(mode)}


def bp_env(service: Service, mode: str) -> dict[str, str]:
    return {
        "ALERTWIRE_BIGPANDA_TOKEN": TOKEN,
        "ALERTWIRE_BIGPANDA_APP_KEY": APP_KEY,
        "ALERTWIRE_BIGPANDA_URL": service.url(mode),
    }


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("alertwire: ")
    return lines[0]


# --- exit 0: every command delivers ----------------------------------------


def test_trigger_sends_every_field_and_prints_the_dedup_key(service: Service, mode: str) -> None:
    done = run(
        "trigger", "disk full on db1",
        "--severity", "CRIT", "--source", "db1", "--dedup-key", "disk-db1",
        "--component", "postgres", "--group", "db", "--class", "disk",
        "--detail", "free=1%", "--detail", "mount=/var",
        "--details-json", '{"free": "0%", "owner": "dba"}',
        "--link", "https://runbook.example/disk", "--link-text", "runbook",
        "--link", "https://grafana.example/d/1",
        "--image", "https://grafana.example/d/1.png",
        "--client", "cron", "--client-url", "https://cron.example",
        "--timestamp", "2015-07-17T08:42:58.315+0000",
        env=pd_env(service, mode),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "disk-db1\n"
    assert done.stderr == ""
    [hit] = service.hits(mode)
    assert hit.path == "/v2/enqueue"
    assert hit.json() == {
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "disk-db1",
        "payload": {
            "summary": "disk full on db1",
            "source": "db1",
            "severity": "critical",
            "timestamp": "2015-07-17T08:42:58.315+0000",
            "component": "postgres",
            "group": "db",
            "class": "disk",
            "custom_details": {"free": "1%", "owner": "dba", "mount": "/var"},
        },
        "images": [{"src": "https://grafana.example/d/1.png"}],
        "links": [
            {"href": "https://runbook.example/disk", "text": "runbook"},
            {"href": "https://grafana.example/d/1"},
        ],
        "client": "cron",
        "client_url": "https://cron.example",
    }


def test_trigger_without_a_key_prints_the_generated_one(service: Service, mode: str) -> None:
    done = run("trigger", "x", "--json", env=pd_env(service, mode))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    [hit] = service.hits(mode)
    assert result["ok"] is True and result["exit_code"] == 0
    assert result["http_status"] == 202
    assert result["dedup_key"] == hit.json()["dedup_key"]
    assert len(result["dedup_key"]) == 32


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve(service: Service, mode: str, action: str) -> None:
    done = run(action, "disk-db1", env=pd_env(service, mode))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "disk-db1\n"
    [hit] = service.hits(mode)
    assert hit.json() == {"routing_key": KEY, "event_action": action, "dedup_key": "disk-db1"}


def test_change(service: Service, mode: str) -> None:
    done = run(
        "change", "deployed v1.2", "--source", "ci", "--detail", "sha=abc",
        "--link", "https://ci.example/1", "--link-text", "build",
        env=pd_env(service, mode),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Change event processed\n"
    [hit] = service.hits(mode)
    assert hit.path == "/v2/change/enqueue"
    assert hit.json() == {
        "routing_key": KEY,
        "payload": {"summary": "deployed v1.2", "source": "ci", "custom_details": {"sha": "abc"}},
        "links": [{"href": "https://ci.example/1", "text": "build"}],
    }


def test_bigpanda(service: Service, mode: str, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = bp_env(service, mode)
    del env["ALERTWIRE_BIGPANDA_TOKEN"]
    done = run(
        "bigpanda", "crit", "--host", "db1", "--check", "disk", "--description", "full",
        "--tag", "team=dba", "--tag", "dc=ams", "--tag", "dc=fra",
        "--token-file", str(token_file), "--json",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["http_status"] == 201
    [hit] = service.hits(mode)
    assert hit.path == "/data/v2/alerts"
    assert hit.headers["authorization"] == f"Bearer {TOKEN}"
    assert hit.json() == {
        "app_key": APP_KEY,
        "status": "critical",
        "host": "db1",
        "check": "disk",
        "description": "full",
        "team": "dba",
        "dc": ["ams", "fra"],
    }


def test_routing_key_file_and_flag(service: Service, mode: str, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    url = ("--pagerduty-url", service.url(mode))
    assert run("resolve", "a", "--routing-key-file", str(key_file), *url).returncode == 0
    assert run("resolve", "b", "--routing-key", KEY, *url).returncode == 0
    env = {"ALERTWIRE_ROUTING_KEY_FILE": str(key_file)}
    assert run("resolve", "c", *url, env=env).returncode == 0
    assert [h.json()["routing_key"] for h in service.hits(mode)] == [KEY] * 3


def test_a_routing_key_flag_is_stripped_and_an_empty_one_is_not_given(
    service: Service, mode: str
) -> None:
    """``--routing-key " $KEY"`` was refused (the variable's value is stripped, the
    flag's was not), and ``--routing-key "$KEY"`` with the variable unset was refused
    as an invalid key instead of falling back, as every empty flag does."""
    url = ("--pagerduty-url", service.url(mode))
    assert run("resolve", "a", "--routing-key", f" {KEY}\n", *url).returncode == 0
    env = {"ALERTWIRE_ROUTING_KEY": KEY}
    assert run("resolve", "b", "--routing-key", "", *url, env=env).returncode == 0
    assert [h.json()["routing_key"] for h in service.hits(mode)] == [KEY] * 2
    missing = run("resolve", "c", "--routing-key", "", *url)
    assert missing.returncode == 2
    assert "no PagerDuty routing key" in one_line_error(missing)


def test_one_event_loads_no_async_or_pool_library(service: Service, mode: str) -> None:
    """Start-up cost: a one-event send needs neither asyncio/aiohttp nor urllib3's pool."""
    heavy = ("aiohttp", "asyncio", "urllib3", "httpx", "concurrent.futures", "sqlite3")
    code = (
        "import sys\n"
        "from alertwire.cli.main import main\n"
        "code = main(['trigger', 'x', '--source', 'h'])\n"
        f"print(code, [m for m in {heavy!r} if m in sys.modules])\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    environment.update(pd_env(service, mode))
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines()[-1] == "0 []"
    assert len(service.hits(mode)) == 1  # it did send


# --- --dry-run: validated, shown redacted, nothing sent -----------------------


def test_dry_run_sends_nothing_and_redacts_the_key(service: Service, mode: str) -> None:
    done = run("trigger", "x", "--dedup-key", "k1", "--dry-run", env=pd_env(service, mode))
    assert done.returncode == 0, done.stderr
    first, _, body = done.stdout.partition("\n")
    assert first == f"POST {service.url(mode)}/v2/enqueue"
    shown = json.loads(body)
    assert shown["routing_key"] == "…" + KEY[-4:]
    assert shown["dedup_key"] == "k1"
    assert service.hits(mode) == []


def test_dry_run_json(service: Service, mode: str) -> None:
    env = {**pd_env(service, mode), **bp_env(service, mode)}
    done = run("bigpanda", "ok", "--host", "h", "--dry-run", "--json", env=env)
    assert done.returncode == 0, done.stderr
    preview = json.loads(done.stdout)
    assert preview["dry_run"] is True
    assert preview["url"] == service.url(mode) + "/data/v2/alerts"
    assert preview["body"] == {"app_key": "…" + APP_KEY[-4:], "status": "ok", "host": "h"}
    assert "headers" not in preview
    assert service.hits(mode) == []


def test_dry_run_still_validates(service: Service, mode: str) -> None:
    done = run("trigger", "x", "--severity", "loud", "--dry-run", env=pd_env(service, mode))
    assert done.returncode == 2
    assert "severity" in one_line_error(done)


# --- exit 2: bad input or configuration, nothing sent -----------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("trigger", "x", "--severity", "loud"), "severity"),
        (("trigger", "x", "--image", "http://insecure.example/a.png"), "images.src"),
        (("trigger", "x", "--timestamp", "yesterday"), "timestamp"),
        (("trigger", "x", "--details-json", "{nope"), "--details-json"),
        (("bigpanda", "sideways", "--host", "h"), "status"),
    ],
    ids=["severity", "image", "timestamp", "details-json", "bigpanda-status"],
)
def test_bad_field_names_the_field(
    service: Service, mode: str, args: tuple[str, ...], named: str
) -> None:
    env = {**pd_env(service, mode), **bp_env(service, mode)}
    done = run(*args, "--json", env=env)
    assert done.returncode == 2
    assert named in one_line_error(done)
    result = json.loads(done.stdout)
    assert result["exit_code"] == 2
    assert result["problems"][0]["field"] == named
    assert service.hits(mode) == []


def test_missing_routing_key_names_the_variables(service: Service, mode: str) -> None:
    done = run("trigger", "x", env={"ALERTWIRE_PAGERDUTY_URL": service.url(mode)})
    assert done.returncode == 2
    line = one_line_error(done)
    assert "ALERTWIRE_ROUTING_KEY" in line and "--routing-key-file" in line
    assert service.hits(mode) == []


def test_missing_bigpanda_settings_name_the_variables(service: Service, mode: str) -> None:
    env = bp_env(service, mode)
    del env["ALERTWIRE_BIGPANDA_TOKEN"]
    assert "ALERTWIRE_BIGPANDA_TOKEN" in one_line_error(
        run("bigpanda", "ok", "--host", "h", env=env)
    )
    env = bp_env(service, mode)
    del env["ALERTWIRE_BIGPANDA_APP_KEY"]
    done = run("bigpanda", "ok", "--host", "h", env=env)
    assert done.returncode == 2
    assert "ALERTWIRE_BIGPANDA_APP_KEY" in one_line_error(done)
    assert service.hits(mode) == []


def test_unreadable_key_file(service: Service, mode: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-key"
    done = run("trigger", "x", "--routing-key-file", str(missing), env=pd_env(service, mode))
    assert done.returncode == 2
    assert str(missing) in one_line_error(done)
    assert service.hits(mode) == []


def test_wrong_key_shape_is_refused_before_sending(service: Service, mode: str) -> None:
    env = {**pd_env(service, mode), "ALERTWIRE_ROUTING_KEY": KEY[:20]}
    done = run("trigger", "x", env=env)
    assert done.returncode == 2
    assert "routing_key" in one_line_error(done)
    assert service.hits(mode) == []


def test_clear_text_url_off_loopback_is_refused() -> None:
    env = {"ALERTWIRE_ROUTING_KEY": KEY}
    done = run("trigger", "x", "--pagerduty-url", "http://pagerduty.example", env=env)
    assert done.returncode == 2
    assert "clear text" in one_line_error(done)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("trigger", "x", "--pagerduty-url", "ftp://h"), "--pagerduty-url"),
        (
            ("bigpanda", "critical", "--host", "h", "--app-key", "a", "--bigpanda-url", "ftp://h"),
            "--bigpanda-url",
        ),
        (("incidents", "list", "--api-url", "ftp://h"), "--api-url"),
        (("incidents", "ack", "P1", "--api-url", "http://127.0.0.1:9", "--from", "me"), "--from"),
        (("relay", "--drain", "--pagerduty-url", "ftp://h"), "--pagerduty-url"),
    ],
)
def test_a_bad_setting_is_named_as_the_option_the_user_gave(
    args: tuple[str, ...], option: str, tmp_path: Path
) -> None:
    # Once "base_url must be ...", "default_from: must be ...", "pagerduty_url must be
    # ...": names of the library's arguments, which the user never typed.
    env = {
        "ALERTWIRE_ROUTING_KEY": KEY,
        "ALERTWIRE_BIGPANDA_TOKEN": "t" * 32,
        "ALERTWIRE_PAGERDUTY_API_TOKEN": "u" * 20,
        "ALERTWIRE_OUTBOX": str(tmp_path / "outbox.sqlite3"),
    }
    done = run(*args, env=env)
    assert done.returncode == 2, done.stderr
    error = one_line_error(done)
    assert option in error, error
    assert not any(name in error for name in ("base_url", "default_from", "pagerduty_url"))


@pytest.mark.parametrize("queue", [False, True], ids=["send", "queue"])
def test_a_url_with_a_bad_port_is_exit_2_and_nothing_queued(queue: bool, tmp_path: Path) -> None:
    # Once a traceback (exit 1) when sending, and stored when queued: the relay's
    # every try of it then crashed, until max_age.
    outbox = tmp_path / "outbox.sqlite3"
    env = {"ALERTWIRE_ROUTING_KEY": KEY, "ALERTWIRE_OUTBOX": str(outbox)}
    extra = ("--queue",) if queue else ()
    done = run("trigger", "x", "--pagerduty-url", "http://127.0.0.1:187914", *extra, env=env)
    assert done.returncode == 2, done.stderr
    assert "Port out of range" in one_line_error(done)
    assert done.stdout == "" and not outbox.exists()


@pytest.mark.parametrize("queue", [False, True], ids=["send", "queue"])
def test_a_full_endpoint_url_is_exit_2_and_nothing_sent_or_queued(
    queue: bool, service: Service, mode: str, tmp_path: Path
) -> None:
    """``$ALERTWIRE_PAGERDUTY_URL`` set to ``.../v2/enqueue`` (Alertmanager's ``url:``,
    PagerDuty's own pages): the path was added again, a 404 and exit 3, and a queued
    event was dead-lettered by the relay."""
    outbox = tmp_path / "outbox.sqlite3"
    env = {
        **pd_env(service, mode),
        "ALERTWIRE_PAGERDUTY_URL": service.url(mode) + "/v2/enqueue",
        "ALERTWIRE_OUTBOX": str(outbox),
    }
    extra = ("--queue",) if queue else ()
    done = run("trigger", "x", *extra, env=env)
    assert done.returncode == 2, done.stderr
    assert "without /v2/enqueue" in one_line_error(done)
    assert done.stdout == "" and not outbox.exists()
    assert service.hits(mode) == []
    relay = run("relay", "--drain", env=env)
    assert relay.returncode == 2 and "without /v2/enqueue" in one_line_error(relay)


def _send_read_one_line(lines: Path, tail: str = "") -> tuple[int, str]:
    """``alertwire send --dry-run`` of 2,000 valid lines (then ``tail``) whose reader
    stops after the first line of output: its exit code and standard error."""
    valid = "".join(f'{{"type": "trigger", "summary": "s{n}"}}\n' for n in range(2000))
    lines.write_text(valid + tail)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    environment["ALERTWIRE_ROUTING_KEY"] = KEY
    process = subprocess.Popen(
        [ALERTWIRE, "send", "--dry-run", str(lines)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    assert process.stdout is not None and process.stderr is not None
    with process.stdout, process.stderr:
        assert process.stdout.readline() == b"# line 1\n"
        process.stdout.close()  # far more than a pipe's buffer is still to come
        errors = process.stderr.read().decode()
    return process.wait(timeout=60), errors


def test_a_reader_that_stops_early_ends_the_command_quietly_with_141(tmp_path: Path) -> None:
    # `alertwire queue dead | head -1` once ended in a BrokenPipeError traceback and exit 1.
    code, errors = _send_read_one_line(tmp_path / "events.jsonl")
    assert code == 141, errors
    assert errors == ""


def test_a_reader_that_stops_early_does_not_hide_a_failed_line(tmp_path: Path) -> None:
    # `alertwire send events.jsonl | head` exited 141 where a line had failed: the 2
    # (or 3, 4) a script checks for was lost, and so was the failed line's error.
    bad = '{"type": "trigger", "severity": "bad"}\n'
    code, errors = _send_read_one_line(tmp_path / "events.jsonl", bad)
    assert code == 2, errors
    assert [e.split(":")[1].strip() for e in errors.splitlines()] == ["line 2001"]


def _run_into_full_disk(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """``alertwire *args > /dev/full``: its exit code and standard error."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    with open(os.devnull, encoding="utf-8") as nothing, open("/dev/full", "w") as full:
        done = subprocess.run(
            [ALERTWIRE, *args],
            stdin=nothing,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env={**environment, **env},
            timeout=60,
            check=False,
        )
    assert "Traceback" not in done.stderr, done.stderr
    for secret in SECRETS:
        assert secret not in done.stderr
    return done.returncode, done.stderr


UNWRITABLE = "alertwire: error: could not write to standard output (No space left on device)"


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_an_output_on_a_full_disk_is_said_once_and_the_sent_event_not_failed(
    json_output: bool, service: Service, mode: str
) -> None:
    """``alertwire trigger x > /dev/full`` sent the page, then ended in a traceback and
    exit 1 (the demo's code). The page stays sent and is not reported as failed: 141, as
    for a closed pipe, and one line on stderr says why the output is missing."""
    extra = ("--json",) if json_output else ()
    code, errors = _run_into_full_disk("trigger", "disk full", *extra, env=pd_env(service, mode))
    assert code == 141, errors
    (line,) = errors.splitlines()
    assert line.startswith(UNWRITABLE)
    assert [h.json()["payload"]["summary"] for h in service.hits(mode)] == ["disk full"]


def test_a_refusal_on_a_full_disk_keeps_its_own_exit_code(service: Service) -> None:
    """A refused event's code (3) wins over the output's failure, and its error line is
    still said after the one about the output."""
    code, errors = _run_into_full_disk("trigger", "x", "--json", env=pd_env(service, "s400"))
    assert code == 3, errors
    unwritable, refused = errors.splitlines()
    assert unwritable.startswith(UNWRITABLE)
    assert refused.startswith("alertwire: error: ")


def test_a_listing_on_a_full_disk_is_said_once(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    env = {"ALERTWIRE_ROUTING_KEY": KEY, "ALERTWIRE_OUTBOX": str(outbox)}
    stored = run("trigger", "x", "--queue", env=env)
    assert stored.returncode == 0, stored.stderr
    code, errors = _run_into_full_disk("queue", "status", env=env)
    assert code == 141, errors
    (line,) = errors.splitlines()
    assert line.startswith(UNWRITABLE)


def test_a_closed_standard_output_changes_no_exit_code(tmp_path: Path) -> None:
    """Cron and daemons start commands with standard output closed (``>&-``): Python
    then has no ``sys.stdout`` at all, and every command ended in a traceback and exit
    120 after storing its event (a wrapper retrying on it pages twice)."""
    outbox = tmp_path / "outbox.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(ALERTWIRE_ROUTING_KEY=KEY, ALERTWIRE_OUTBOX=str(outbox))
    for args, code in (
        (["trigger", "x", "--queue"], 0),
        (["trigger", "x", "--queue", "--severity", "bad"], 2),
        (["trigger", "x", "--queue", "--json", "--timeout", "0"], 2),
    ):
        done = subprocess.run(
            ["sh", "-c", 'exec "$@" >&-', "sh", ALERTWIRE, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == code, done.stderr
        assert "Traceback" not in done.stderr
    status = run("queue", "status", "--json", env={"ALERTWIRE_OUTBOX": str(outbox)})
    assert json.loads(status.stdout)["pending"] == 1


def test_a_mistyped_option_does_not_echo_its_value(service: Service, mode: str) -> None:
    """``--routng-key KEY``: argparse's "unrecognized arguments" quoted the key on
    stderr, and the ``--json`` usage document on stdout, which scripts capture."""
    for extra in ((), ("--json",)):
        done = run("trigger", "x", *extra, "--routng-key", KEY, env=pd_env(service, mode))
        assert done.returncode == 2
        assert KEY not in done.stdout + done.stderr
        assert "unrecognized arguments: --routng-key and 1 value (not shown)" in done.stderr
    assert service.hits(mode) == []


def test_a_usage_error_on_a_full_disk_is_still_exit_2() -> None:
    code, errors = _run_into_full_disk("trigger", "x", "--json", "--timeout", "0", env={})
    assert code == 2, errors


def test_ctrl_c_while_sending_says_what_it_leaves_behind() -> None:
    """Once exit 130 and nothing else: was the page sent or not?"""
    listener = socket.create_server(("127.0.0.1", 0))
    received = threading.Event()

    def swallow() -> None:  # reads the request, never answers
        connection, _ = listener.accept()
        with connection:
            while b"\r\n\r\n" not in connection.recv(65536):
                pass
            received.set()
            connection.recv(1)  # until the client is gone

    server = threading.Thread(target=swallow, daemon=True)
    server.start()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    environment["ALERTWIRE_ROUTING_KEY"] = KEY
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    process = subprocess.Popen(
        [ALERTWIRE, "trigger", "x", "--timeout", "60", "--pagerduty-url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    try:
        assert received.wait(timeout=60)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        listener.close()
    assert process.returncode == 130
    assert out == b""
    (line,) = err.decode().splitlines()
    assert line.startswith("alertwire: interrupted: an event being sent may or may not have")


def test_ctrl_c_during_send_of_many_lines_starts_no_further_line(
    tmp_path: Path, alertwire_sandbox: Any
) -> None:
    """Leaving the thread pool ran every line already handed to it: Ctrl-C on a
    mistaken ``send`` of hundreds of pages sent them all, then said "interrupted".

    Each page takes the sandbox 1.5 s to record, far longer than any stall of a
    loaded machine between counting the pages and the signal's arrival: the bound
    below is broken only by a thread that finishes two more pages in that time.
    (At 100 ms a stall of 200 ms did it.) Few lines keep the run short.
    """
    lines = 16
    concurrency = 2
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            json.dumps({"type": "trigger", "summary": f"page {i}", "source": "cron"}) + "\n"
            for i in range(lines)
        )
    )
    alertwire_sandbox.faults(latency_ms=1500)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    environment["ALERTWIRE_ROUTING_KEY"] = KEY
    argv = [ALERTWIRE, "send", str(events), "--concurrency", str(concurrency)]
    process = subprocess.Popen(
        [*argv, "--pagerduty-url", alertwire_sandbox.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    try:
        wait_for("the first pages to arrive", lambda: len(alertwire_sandbox.events()) >= 2)
        seen = len(alertwire_sandbox.events())
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    # Those in flight when Ctrl-C came may still land (and one more per thread started
    # while the signal was on its way); nothing after them.
    assert len(alertwire_sandbox.events()) <= seen + 2 * concurrency < lines


@pytest.mark.parametrize(
    "args",
    [
        ("trigger",),
        ("trigger", "x", "--no-such-option"),
        ("trigger", "x", "--link-text", "orphan"),
        ("trigger", "x", "--max-attempts", "0"),
        ("nonsense",),
        (),
    ],
    ids=[
        "no-summary",
        "unknown-option",
        "orphan-link-text",
        "zero-attempts",
        "unknown-command",
        "no-command",
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    done = run(*args)
    assert done.returncode == 2
    assert one_line_error(done).startswith("alertwire: error: ")
    assert done.stdout == ""


# --- exit 3: rejected, the service's own text printed --------------------------


def test_400_prints_pagerdutys_error_text(service: Service) -> None:
    done = run("trigger", "x", *FAST, env=pd_env(service, "s400"))
    assert done.returncode == 3
    assert PD_400_TEXT in one_line_error(done)


PROXY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>\x1b[2Knginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize("command", [("trigger", "x"), ("bigpanda", "critical", "--host", "h")])
def test_a_proxys_error_page_is_quoted_on_the_one_error_line(
    service: Service, command: tuple[str, ...]
) -> None:
    """Its line breaks were printed as they came (one error, eight lines), and its control
    characters reached the terminal, where a carriage return or an escape rewrites what
    the line says."""
    env = {**pd_env(service, "s502html"), **bp_env(service, "s502html")}
    done = run(*command, "--max-attempts", "1", env=env)
    assert done.returncode == 4
    line = one_line_error(done)
    assert "(HTTP 502): <html> <head><title>502 Bad Gateway</title></head> <body>" in line
    assert "<center>\\x1b[2Knginx</center> </body> </html>" in line
    assert "\r" not in done.stderr


def test_a_refusals_texts_are_quoted_on_the_one_error_line(service: Service) -> None:
    """The message and errors of a JSON refusal are the service's text too: their line
    breaks and control characters are said the same way as a page's."""
    done = run("trigger", "x", *FAST, env=pd_env(service, "s400lines"))
    assert done.returncode == 3
    assert one_line_error(done).endswith(
        "(HTTP 400): Event object is invalid: first problem; \\x1b[2Ksecond"
    )


def test_400_plain_text_body_is_printed_verbatim(service: Service) -> None:
    done = run("resolve", "k", "--json", *FAST, env=pd_env(service, "s400text"))
    assert done.returncode == 3
    assert "Invalid routing key" in one_line_error(done)
    result = json.loads(done.stdout)
    assert (result["error"], result["http_status"], result["body"]) == (
        "BadRequest",
        400,
        "Invalid routing key",
    )


@pytest.mark.parametrize("command", ["change", "bigpanda"])
def test_401_is_rejected(service: Service, command: str) -> None:
    env = {**pd_env(service, "s401"), **bp_env(service, "s401")}
    args = ("bigpanda", "ok", "--host", "h") if command == "bigpanda" else ("change", "x")
    before = len(service.hits("s401"))
    done = run(*args, *FAST, env=env)
    assert done.returncode == 3
    assert "the token is not valid" in one_line_error(done)
    assert len(service.hits("s401")) == before + 1  # never retried


def test_a_service_echoing_the_key_cannot_make_us_print_it(service: Service) -> None:
    env = {**pd_env(service, "echo"), **bp_env(service, "echo")}
    for args in (("trigger", "x"), ("bigpanda", "ok", "--host", "h")):
        done = run(*args, "--json", *FAST, env=env)
        assert done.returncode == 3
        assert "…" in done.stdout  # the redacted form stands where the secret was
    assert any(KEY.encode() in h.body for h in service.hits("echo"))


# --- exit 4: retryable failure, retries exhausted --------------------------------


def test_5xx_is_retried_then_exit_4(service: Service) -> None:
    before = len(service.hits("s503"))
    done = run("trigger", "x", "--max-attempts", "3", *FAST, env=pd_env(service, "s503"))
    assert done.returncode == 4
    last = done.stderr.splitlines()[-1]
    assert "retries exhausted after 3 attempts" in last and "HTTP 503" in last
    assert len(service.hits("s503")) == before + 3


@pytest.mark.parametrize("command", ["acknowledge", "bigpanda"])
def test_429_with_one_attempt_is_exit_4(service: Service, command: str) -> None:
    env = {**pd_env(service, "s429"), **bp_env(service, "s429")}
    args = ("bigpanda", "ok", "--host", "h") if command == "bigpanda" else ("acknowledge", "k")
    done = run(*args, "--max-attempts", "1", "--json", env=env)
    assert done.returncode == 4
    assert "retries exhausted" in one_line_error(done)
    result = json.loads(done.stdout)
    assert (result["error"], result["retryable"], result["attempts"]) == ("RateLimited", True, 1)


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_connection_refused_is_exit_4() -> None:
    env = {"ALERTWIRE_ROUTING_KEY": KEY, "ALERTWIRE_PAGERDUTY_URL": _refused_url()}
    done = run("resolve", "k", "--max-attempts", "2", *FAST, env=env)
    assert done.returncode == 4
    assert "retries exhausted after 2 attempts" in done.stderr.splitlines()[-1]


# --- send --------------------------------------------------------------------------

MIXED = [
    {"type": "trigger", "summary": "disk full", "dedup_key": "d1", "class": "disk"},  # 1
    {"type": "acknowledge", "dedup_key": "d1"},  # 2
    None,  # 3: blank
    {"type": "trigger", "summary": "x", "severity": "loud"},  # 4: invalid field
    "{not json",  # 5: invalid JSON
    {"type": "trigger", "summary": "server-rejects this"},  # 6: the service says 400
    {"type": "change", "summary": "deployed", "source": "ci"},  # 7
    {"type": "bigpanda", "status": "critical", "host": "db1", "tags": {"team": "dba"}},  # 8
    {"type": "page", "summary": "x"},  # 9: unknown type
    {"type": "resolve", "dedup_key": "d1", "class_": "x"},  # 10: not a field of resolve
    {"type": "resolve", "dedup_key": "d1"},  # 11
]


def _lines(items: list[Any]) -> str:
    out = []
    for item in items:
        out.append("" if item is None else item if isinstance(item, str) else json.dumps(item))
    return "\n".join(out) + "\n"


def test_send_mixed_file_reports_each_failed_line(
    service: Service, mode: str, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(_lines(MIXED))
    env = {**pd_env(service, mode), **bp_env(service, mode)}
    done = run("send", str(path), *FAST, env=env)
    assert done.returncode == 3  # the worst line: rejected by the service
    errors = done.stderr.splitlines()
    assert [e.split(":")[1].strip() for e in errors] == [
        "line 4",
        "line 5",
        "line 6",
        "line 9",
        "line 10",
    ]
    assert "severity" in errors[0]
    assert PD_400_TEXT in errors[2]
    assert "type" in errors[3]
    assert "class_" in errors[4]
    assert done.stdout == "10 events: 5 delivered, 4 invalid, 1 rejected\n"
    sent = service.hits(mode)
    assert len(sent) == 6  # the valid lines, and nothing else
    assert sorted(h.json().get("event_action", h.path) for h in sent) == [
        "/data/v2/alerts",
        "/v2/change/enqueue",
        "acknowledge",
        "resolve",
        "trigger",
        "trigger",
    ]
    first = next(h for h in sent if h.json().get("dedup_key") == "d1")
    assert first.json()["payload"]["class"] == "disk"


def test_send_json_from_stdin(service: Service, mode: str) -> None:
    env = {**pd_env(service, mode), **bp_env(service, mode)}
    done = run("send", "-", "--json", *FAST, env=env, stdin=_lines(MIXED))
    assert done.returncode == 3
    report = json.loads(done.stdout)
    assert report["exit_code"] == 3 and report["ok"] is False
    assert report["summary"] == {
        "events": 10,
        "delivered": 5,
        "previewed": 0,
        "invalid": 4,
        "rejected": 1,
        "retries_exhausted": 0,
        "held_back": 0,
        "not_sent": 0,
    }
    by_line = {r["line"]: r for r in report["results"]}
    assert sorted(by_line) == [1, 2, 4, 5, 6, 7, 8, 9, 10, 11]
    assert by_line[1]["dedup_key"] == "d1" and by_line[1]["exit_code"] == 0
    assert by_line[4]["problems"][0]["field"] == "severity"
    assert by_line[6]["errors"] == [PD_400_TEXT]
    assert by_line[8]["http_status"] == 201


def test_send_strict_sends_nothing_when_a_line_is_invalid(service: Service, mode: str) -> None:
    env = {**pd_env(service, mode), **bp_env(service, mode)}
    done = run("send", "--strict", *FAST, env=env, stdin=_lines(MIXED))
    assert done.returncode == 2
    assert "nothing sent" in done.stderr
    assert service.hits(mode) == []


def test_send_exit_4_is_the_worst(service: Service) -> None:
    lines = [
        {"type": "resolve", "dedup_key": "a"},
        {"type": "trigger", "summary": "server-rejects"},
    ]
    done = run(
        "send", "--max-attempts", "2", *FAST, env=pd_env(service, "s503"), stdin=_lines(lines)
    )
    # Both lines fail: the 503 one after its retries (4), the other is also answered 400 (3).
    assert done.returncode == 4
    assert "line 1: retries exhausted after 2 attempts" in done.stderr
    assert "line 2:" in done.stderr and PD_400_TEXT in done.stderr


def test_send_missing_key_is_exit_2_with_nothing_sent(service: Service, mode: str) -> None:
    env = pd_env(service, mode)  # no BigPanda settings, but the file has a BigPanda line
    done = run("send", env=env, stdin=_lines(MIXED))
    assert done.returncode == 2
    assert "ALERTWIRE_BIGPANDA_TOKEN" in done.stderr.splitlines()[-1]
    assert service.hits(mode) == []


def test_send_dry_run(service: Service, mode: str) -> None:
    env = {**pd_env(service, mode), **bp_env(service, mode)}
    done = run("send", "--dry-run", "--json", env=env, stdin=_lines([MIXED[0], MIXED[7]]))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["previewed"] == 2
    assert [r["body"].get("routing_key", r["body"].get("app_key")) for r in report["results"]] == [
        "…" + KEY[-4:],
        "…" + APP_KEY[-4:],
    ]
    assert service.hits(mode) == []


def test_send_keeps_file_order_for_one_dedup_key(service: Service, mode: str) -> None:
    """The resolve leaves only after the (slow) trigger of its key was answered."""
    lines: list[Any] = [{"type": "trigger", "summary": "slow", "dedup_key": "ordered"}]
    lines += [{"type": "trigger", "summary": f"other {i}"} for i in range(6)]
    lines += [{"type": "resolve", "dedup_key": "ordered"}]
    done = run("send", "--concurrency", "8", env=pd_env(service, mode), stdin=_lines(lines))
    assert done.returncode == 0, done.stderr
    hits = service.hits(mode)
    assert len(hits) == 8
    trigger = next(h for h in hits if h.json()["event_action"] == "trigger" and b"slow" in h.body)
    resolve = next(h for h in hits if h.json()["event_action"] == "resolve")
    assert resolve.arrived > trigger.answered
    # ...while other keys did not wait for the slow one.
    assert min(h.arrived for h in hits if b"other" in h.body) < trigger.answered


@pytest.mark.parametrize(("answer", "code"), [("ok", 3), ("s503", 4)])
def test_a_failed_line_holds_back_the_rest_of_its_key(
    service: Service, answer: str, code: int
) -> None:
    """Sent after its failed trigger, the resolve would be undone by re-sending the
    failed line; held back, the failed and held lines re-send as the file meant."""
    failing = "server-rejects" if code == 3 else "down"  # 400, or every answer a 503
    lines = [
        {"type": "trigger", "summary": failing, "dedup_key": "held"},  # 1: fails
        {"type": "acknowledge", "dedup_key": "held"},  # 2: held back
        {"type": "change", "summary": "unrelated", "source": "ci"},  # 3
        {"type": "resolve", "dedup_key": "held"},  # 4: held back
    ]
    mode = answer + secrets.token_hex(4) if answer == "ok" else answer
    before = len(service.hits(mode))
    done = run(
        "send", "--json", "--max-attempts", "1", env=pd_env(service, mode), stdin=_lines(lines)
    )
    assert done.returncode == code, done.stderr
    report = json.loads(done.stdout)
    by_line = {r["line"]: r for r in report["results"]}
    for line in (2, 4):
        assert by_line[line]["exit_code"] == code and by_line[line]["attempts"] == 0
        assert by_line[line]["message"].startswith("not sent: line 1, an earlier event")
    assert report["summary"]["held_back"] == 2
    # Line 3 is delivered, or fails too when the service answers every request 503.
    failed = {"rejected": 1, "retries_exhausted": 0} if code == 3 else {"retries_exhausted": 2}
    assert {k: report["summary"][k] for k in failed} == failed
    sent = [h.json() for h in service.hits(mode)[before:]]
    assert [h.get("dedup_key") for h in sent if "event_action" in h] == ["held"]  # line 1 only
    assert "line 4: not sent: line 1" in done.stderr


def test_send_progress_bar_only_on_a_terminal(service: Service, mode: str) -> None:
    lines = [{"type": "trigger", "summary": f"e{i}"} for i in range(5)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(pd_env(service, mode))
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [ALERTWIRE, "send"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    ) as proc:
        os.close(follower)
        stdout, _ = proc.communicate(_lines(lines).encode(), timeout=60)
        terminal = b""
        while select.select([leader], [], [], 0)[0]:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            terminal += chunk
    os.close(leader)
    assert proc.returncode == 0
    # Redrawn in place, with the count, the rate and the time left (tqdm's line).
    assert b"\r" in terminal and b"5/5 [" in terminal and b"event/s]" in terminal
    assert b"<00:00" in terminal
    assert b"5/5" not in stdout and KEY.encode() not in terminal + stdout
    piped = run("send", env=pd_env(service, mode), stdin=_lines(lines))
    assert piped.returncode == 0
    assert piped.stderr == ""  # no bar when stderr is not a terminal


# --- against the sandbox ---------------------------------------------------------------


def test_alert_lifecycle_in_the_sandbox(alertwire_sandbox: Any) -> None:
    env = {"ALERTWIRE_ROUTING_KEY": KEY, "ALERTWIRE_PAGERDUTY_URL": alertwire_sandbox.url}
    key = run("trigger", "disk full", "--source", "db1", env=env).stdout.strip()
    [alert] = alertwire_sandbox.alerts()
    assert (alert["dedup_key"], alert["status"]) == (key, "triggered")
    assert run("acknowledge", key, env=env).returncode == 0
    assert alertwire_sandbox.alerts()[0]["status"] == "acknowledged"
    assert run("resolve", key, env=env).returncode == 0
    assert alertwire_sandbox.alerts()[0]["status"] == "resolved"


def test_ca_file_trusts_the_sandboxs_private_ca(alertwire_sandbox_tls: Any) -> None:
    env = {"ALERTWIRE_ROUTING_KEY": KEY, "ALERTWIRE_PAGERDUTY_URL": alertwire_sandbox_tls.url}
    untrusted = run("trigger", "x", "--max-attempts", "1", env=env)
    assert untrusted.returncode == 4
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr or "certificate" in untrusted.stderr
    done = run("trigger", "x", "--ca-file", alertwire_sandbox_tls.ca_file, env=env)
    assert done.returncode == 0, done.stderr
    assert len(alertwire_sandbox_tls.alerts()) == 1


def test_unusable_ca_file_is_exit_2(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    env = {"ALERTWIRE_ROUTING_KEY": KEY, "ALERTWIRE_PAGERDUTY_URL": "https://127.0.0.1:9"}
    done = run("trigger", "x", "--ca-file", str(bogus), env=env)
    assert done.returncode == 2
    assert "--ca-file" in one_line_error(done)
    missing = run("trigger", "x", "--ca-file", str(tmp_path / "none.pem"), env=env)
    assert missing.returncode == 2


def test_relay_checks_its_ca_file_like_the_sending_commands(tmp_path: Path) -> None:
    """The same rule and the same words as ``trigger --ca-file``, before any outbox is made."""
    outbox = tmp_path / "outbox.sqlite3"
    missing = str(tmp_path / "none.pem")
    done = run("relay", "--drain", "--outbox", str(outbox), "--ca-file", missing)
    assert done.returncode == 2
    assert one_line_error(done) == f"alertwire: error: --ca-file {missing!r} is not a readable file"
    assert not outbox.exists()
    # A file that holds no certificate: an ssl.SSLError traceback and exit 1 once.
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    done = run("relay", "--drain", "--outbox", str(outbox), "--ca-file", str(bogus))
    assert done.returncode == 2
    assert f"cannot use {str(bogus)!r} as a CA bundle" in one_line_error(done)
