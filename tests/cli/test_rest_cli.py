"""``alertwire incidents list|show|ack|resolve`` run as subprocesses against the sandbox.

The sandbox runs in this process (a thread) and only accepts :data:`TOKEN`;
the command reads the token from a file or the environment, as users do.
:func:`run` checks for every invocation that the token never reaches stdout
or stderr, and that an error is one line (after any retry warnings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alertwire import PagerDuty
from alertwire.sandbox import Sandbox
from tests.support.loopback_server import Answer, LoopbackServer
from tests.support.rest_answers import BULK_IDS, refuse_a_bulk_update_of_one

ALERTWIRE = str(Path(sys.executable).with_name("alertwire"))
TOKEN = "u+Cli7okenAbcdEfgh12"  # 20 characters, a REST API key's shape
KEY = "CliRoutingKey0123456789abcdefABC"
ME = "oncall@example.com"
FAST = ("--max-backoff", "0")


@pytest.fixture(scope="module")
def _sandbox() -> Iterator[Sandbox]:
    with Sandbox(api_token=TOKEN) as sandbox:
        yield sandbox


@pytest.fixture
def sb(_sandbox: Sandbox) -> Sandbox:
    _sandbox.reset()
    return _sandbox


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(sb: Sandbox, *args: str, env: dict[str, str] | None = None) -> Done:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    base.update(
        ALERTWIRE_PAGERDUTY_API_TOKEN=TOKEN,
        ALERTWIRE_PAGERDUTY_API_URL=sb.url,
        ALERTWIRE_PAGERDUTY_FROM=ME,
    )
    base.update(env or {})
    done = subprocess.run(
        [ALERTWIRE, "incidents", *args],
        capture_output=True,
        text=True,
        env={k: v for k, v in base.items() if v},
        timeout=60,
        check=False,
    )
    for stream in (done.stdout, done.stderr):
        assert TOKEN not in stream
    if done.returncode != 0:
        # One error line (retry warnings may come before it, as for the send commands).
        errors = [line for line in done.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1, done.stderr
        assert done.stderr.rstrip().splitlines()[-1] == errors[0]
    return Done(done.returncode, done.stdout, done.stderr)


def page(sb: Sandbox, summary: str, dedup_key: str) -> None:
    with PagerDuty(KEY, base_url=sb.url) as events:
        events.trigger(summary, source="db-1", severity="critical", dedup_key=dedup_key)


def test_page_then_acknowledge_and_resolve_by_dedup_key(sb: Sandbox) -> None:
    page(sb, "disk full on db-1", "disk-db-1")
    page(sb, "cpu hot on web-1", "cpu-web-1")

    listed = run(sb, "list")
    assert listed.code == 0
    assert len(listed.out.splitlines()) == 2
    assert "disk full on db-1" in listed.out

    acked = run(sb, "ack", "--dedup-key", "disk-db-1")
    assert acked.code == 0, acked.err
    incident = next(i for i in sb.incidents() if i["incident_key"] == "disk-db-1")
    assert incident["status"] == "acknowledged"
    assert incident["id"] in acked.out
    assert "acknowledged" in acked.out

    shown = run(sb, "show", "--dedup-key", "disk-db-1", "--json").json()
    assert shown["ok"] is True
    assert shown["incident"]["status"] == "acknowledged"

    resolved = run(sb, "resolve", incident["id"], "--json").json()
    assert [i["status"] for i in resolved["incidents"]] == ["resolved"]
    assert [i["title"] for i in run(sb, "list", "--json").json()["incidents"]] == [
        "cpu hot on web-1"
    ]
    history = run(sb, "list", "--dedup-key", "disk-db-1", "--status", "resolved")
    assert incident["id"] in history.out


def test_acknowledging_a_resolved_incident_by_key_never_reopens_it(sb: Sandbox) -> None:
    page(sb, "x", "k1")
    assert run(sb, "resolve", "--dedup-key", "k1").code == 0
    again = run(sb, "resolve", "--dedup-key", "k1")
    assert again.code == 0
    assert "resolved" in again.out
    refused = run(sb, "ack", "--dedup-key", "k1")
    assert refused.code == 3
    assert "re-open" in refused.err
    assert [i["status"] for i in sb.incidents()] == ["resolved"]


def test_unknown_incidents_exit_3_with_pagerdutys_text(sb: Sandbox) -> None:
    missing = run(sb, "show", "PNOSUCH")
    assert missing.code == 3
    assert "Not Found" in missing.err
    no_key = run(sb, "show", "--dedup-key", "never-paged", "--json")
    assert no_key.code == 3
    assert no_key.json()["ok"] is False
    assert no_key.json()["error"] == "NotFound"


MALFORMED = {
    "not objects": [1, 2],
    "no id": [{"status": "triggered", "title": "t"}],
    "a service that is not an object": [
        {"id": "P1", "status": "triggered", "service": "S", "title": "t"}
    ],
}


@pytest.mark.parametrize("incidents", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize(
    "command",
    [
        ("list",),
        ("list", "--dedup-key", "k"),
        ("show", "--dedup-key", "k"),
        ("show", "P1"),
        ("ack", "--dedup-key", "k"),
        ("resolve", "P1"),
    ],
    ids=" ".join,
)
def test_a_malformed_answer_is_one_error_line_not_a_traceback(
    sb: Sandbox, incidents: list[Any], command: tuple[str, ...]
) -> None:
    """Whatever a server answers in place of incidents, the command prints a line, never
    a traceback (exit 1, which says a demo step failed)."""
    answer = {"incidents": incidents, "incident": incidents[0], "more": False}
    with LoopbackServer() as server:
        server.respond_with(lambda _: Answer(200, answer))
        done = run(sb, *command, env={"ALERTWIRE_PAGERDUTY_API_URL": server.url})
    assert "Traceback" not in done.err
    if incidents is MALFORMED["a service that is not an object"]:
        # The incident is usable: shown without its service.
        assert done.code == 0, done.err
        assert done.out.startswith(("P1  triggered", "id: P1\n"))
    else:
        assert done.code == 3, done.err
        assert "PagerDuty REST API answered" in done.err


def test_a_refusals_texts_are_quoted_on_the_one_error_line(sb: Sandbox) -> None:
    """PagerDuty's error message and errors, should they hold line breaks or control
    characters, are said on the one line the error is."""
    refusal = {"error": {"message": "Invalid\nInput", "code": 2001, "errors": ["a\r\nb\x1b[2K"]}}
    with LoopbackServer() as server:
        server.respond_with(lambda _: Answer(400, refusal))
        done = run(sb, "list", env={"ALERTWIRE_PAGERDUTY_API_URL": server.url})
    assert done.code == 3
    assert done.err.endswith("(HTTP 400): Invalid Input (code 2001): a b\\x1b[2K\n")


def test_listed_and_shown_fields_stay_on_their_line(sb: Sandbox) -> None:
    """Anyone holding a routing key writes an incident's title: a line break in it split
    the one-line-per-incident listing, and an escape sequence reached the reader's
    terminal raw. --json keeps the title as it is."""
    title = "disk full\non db-1 \x1b[31mRED\x1b[0m"
    page(sb, title, "escapes")
    listed = run(sb, "list")
    assert listed.code == 0
    [line] = listed.out.splitlines()
    assert line.endswith("  disk full on db-1 \\x1b[31mRED\\x1b[0m")
    shown = run(sb, "show", "--dedup-key", "escapes")
    assert "title: disk full on db-1 \\x1b[31mRED\\x1b[0m\n" in shown.out
    assert "\x1b" not in listed.out + shown.out
    assert run(sb, "list", "--json").json()["incidents"][0]["title"] == title


def test_a_bulk_update_refused_part_way_says_what_changed_before(sb: Sandbox) -> None:
    """More than 250 ids are several requests: the error of a later one was all that was
    said, and the help said nothing changed."""
    with LoopbackServer() as server:
        server.respond_with(refuse_a_bulk_update_of_one)
        done = run(sb, "ack", *BULK_IDS, env={"ALERTWIRE_PAGERDUTY_API_URL": server.url})
    assert done.code == 3
    warning, error = done.err.splitlines()
    assert warning == (
        "alertwire: the first 250 incidents given were set to acknowledged before this"
        " failure; the others were not changed"
    )
    assert "HTTP 404" in error


def test_token_from_a_file_and_a_wrong_token(sb: Sandbox, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    ok = run(
        sb,
        "list",
        env={
            "ALERTWIRE_PAGERDUTY_API_TOKEN": "",
            "ALERTWIRE_PAGERDUTY_API_TOKEN_FILE": str(token_file),
        },
    )
    assert ok.code == 0, ok.err
    wrong = run(sb, "list", env={"ALERTWIRE_PAGERDUTY_API_TOKEN": "v" * 20})
    assert wrong.code == 3
    assert "401" in wrong.err
    assert "v" * 20 not in wrong.err


def test_configuration_errors_exit_2(sb: Sandbox) -> None:
    no_token = run(sb, "list", env={"ALERTWIRE_PAGERDUTY_API_TOKEN": ""})
    assert no_token.code == 2
    assert "ALERTWIRE_PAGERDUTY_API_TOKEN" in no_token.err
    integration_key = run(sb, "list", env={"ALERTWIRE_PAGERDUTY_API_TOKEN": KEY})
    assert integration_key.code == 2
    assert "integration" in integration_key.err
    assert KEY not in integration_key.err
    nothing = run(sb, "ack")
    assert nothing.code == 2
    off_loopback = run(sb, "list", "--api-url", "http://example.com")
    assert off_loopback.code == 2


def test_retries_run_out_with_exit_4(sb: Sandbox) -> None:
    sb.fail_next_rest(503, 503)
    done = run(sb, "list", "--max-attempts", "2", *FAST)
    assert done.code == 4
    assert "retries exhausted after 2 attempts" in done.err


def test_tls_sandbox_with_ca_file_and_an_oauth_token() -> None:
    with Sandbox(tls=True, api_token=TOKEN) as tls:
        assert tls.ca_file is not None
        with PagerDuty(KEY, base_url=tls.url, verify=tls.ca_file) as events:
            events.trigger("over tls", source="h", severity="info", dedup_key="tls")
        untrusted = run(tls, "list", "--max-attempts", "2", *FAST)
        assert untrusted.code == 4  # TLS verification failed: a network error, retried
        done = run(
            tls,
            "ack",
            "--dedup-key",
            "tls",
            "--oauth",
            "--ca-file",
            tls.ca_file,
            env={"ALERTWIRE_PAGERDUTY_FROM": ""},
        )
        assert done.code == 0, done.err
        assert [i["status"] for i in tls.incidents()] == ["acknowledged"]
