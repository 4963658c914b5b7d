"""Ctrl-C during ``alertwire send FILE`` (many lines, sent on threads).

Real processes, a real SIGINT and the sandbox over loopback HTTP. Each test
waits on what the sandbox observed (a fault consumed, an event recorded),
never on a guessed time; the only bound is the generous guard of
``communicate``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import DEADLINE, wait_for

ALERTWIRE = str(Path(sys.executable).with_name("alertwire"))
KEY = secrets.token_hex(16)
TOKEN = "bptok" + secrets.token_hex(12)
APP_KEY = "app" + secrets.token_hex(8)
#: Longer than any guard below: a run that slept it out fails the test rather than passing late.
RETRY_AFTER = 600


def _line(kind: str, i: int) -> dict[str, Any]:
    if kind == "pagerduty":
        return {"type": "trigger", "summary": f"page {i}", "source": "cron"}
    return {"type": "bigpanda", "status": "critical", "host": f"db{i}", "check": "disk"}


def _environment(sandbox: Any) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    environment.update(
        ALERTWIRE_ROUTING_KEY=KEY,
        ALERTWIRE_PAGERDUTY_URL=sandbox.url,
        ALERTWIRE_BIGPANDA_TOKEN=TOKEN,
        ALERTWIRE_BIGPANDA_APP_KEY=APP_KEY,
        ALERTWIRE_BIGPANDA_URL=sandbox.url,
    )
    return environment


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes a test started, killed if the test failed before they ended."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def _send(
    sandbox: Any, tmp_path: Path, lines: list[dict[str, Any]], *args: str
) -> subprocess.Popen[bytes]:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    # --max-time above RETRY_AFTER, so the policy waits for it rather than giving up.
    argv = [ALERTWIRE, "send", str(events), "--max-time", str(RETRY_AFTER * 2), *args]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_environment(sandbox)
    )


def _no_fault_left(sandbox: Any) -> bool:
    """Every queued ``fail_next`` answer was given: each went to a request."""
    return not sandbox.faults()["fail_next"]


@pytest.mark.parametrize("kind", ["pagerduty", "bigpanda"])
def test_ctrl_c_ends_the_retry_waits_of_the_sends_in_flight(
    kind: str, tmp_path: Path, alertwire_sandbox: Any, started: list[subprocess.Popen[bytes]]
) -> None:
    """The threads slept out a 429's Retry-After after Ctrl-C, then sent again: the
    interrupt took effect minutes late and the events went out after it."""
    alertwire_sandbox.fail_next(429, 429, retry_after=RETRY_AFTER)
    lines = [_line(kind, i) for i in range(6)]
    process = _send(alertwire_sandbox, tmp_path, lines, "--concurrency", "2")
    started.append(process)
    # Both threads got their 429 and wait RETRY_AFTER before the next try.
    wait_for("both sends in flight to be answered 429", lambda: _no_fault_left(alertwire_sandbox))
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=DEADLINE)  # a guard against a hang, far below RETRY_AFTER
    assert process.returncode == 130, err
    assert alertwire_sandbox.events() == []  # no try after the interrupt, no line started


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_ctrl_c_says_which_lines_were_answered_in_flight_and_never_sent(
    json_output: bool,
    tmp_path: Path,
    alertwire_sandbox: Any,
    started: list[subprocess.Popen[bytes]],
) -> None:
    """All Ctrl-C said was "an event being sent may or may not have reached the
    service": nothing of the lines answered before it, nor of the lines never sent.

    One thread, so the order is the file's: line 1 is refused (400, an answer), line 2
    gets a 429 and waits for its retry when Ctrl-C comes, lines 3 to 6 never start.
    """
    alertwire_sandbox.fail_next(400, {"status": 429, "retry_after": RETRY_AFTER})
    lines = [_line("pagerduty", i) for i in range(6)]
    args = ["--concurrency", "1", *(["--json"] if json_output else [])]
    process = _send(alertwire_sandbox, tmp_path, lines, *args)
    started.append(process)
    wait_for("line 2 to be answered 429", lambda: _no_fault_left(alertwire_sandbox))
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=DEADLINE)
    assert process.returncode == 130, err
    assert alertwire_sandbox.events() == []
    said = err.decode().splitlines()
    assert not [s for s in said if "an event being sent" in s]  # not the generic message
    assert [s for s in said if s.startswith("alertwire: line 1: ")]  # the refusal, as usual
    (in_flight,) = [s for s in said if s.startswith("alertwire: line 2: ")]
    assert "interrupted (Ctrl-C) while being sent: it may or may not have reached" in in_flight
    assert said[-1].startswith(
        "alertwire: interrupted: 4 lines NOT sent (lines 3-6); 1 line in flight, which may or"
        " may not have reached the service"
    )
    if not json_output:
        assert out.decode() == (
            "6 events: 0 delivered, 1 rejected,"
            " 1 in flight at Ctrl-C (may or may not have arrived), 4 not sent\n"
        )
        return
    document = json.loads(out)
    assert (document["exit_code"], document["interrupted"]) == (130, True)
    summary = document["summary"]
    assert (summary["events"], summary["delivered"], summary["rejected"]) == (6, 0, 1)
    assert (summary["in_flight"], summary["not_sent"]) == (1, 4)
    results = {r["line"]: (r["exit_code"], r.get("error")) for r in document["results"]}
    assert results == {
        1: (3, "BadRequest"),
        2: (130, "InFlight"),
        **{line: (130, "NotSent") for line in range(3, 7)},
    }
