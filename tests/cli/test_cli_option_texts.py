"""A refused option value gets one line that states the rule it broke, exactly.

"must be more than 1, got '0'" for an option that accepts 1, or "must be zero
or more than 0" contradict themselves; each text here says the rule the
parser enforces, and the boundary value the rule allows is accepted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alertwire.cli.main import build_parser

ALERTWIRE = str(Path(sys.executable).with_name("alertwire"))


def _alertwire(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, with no ALERTWIRE_* setting but an outbox path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env["ALERTWIRE_OUTBOX"] = str(tmp_path / "outbox.sqlite3")
    return subprocess.run(
        [ALERTWIRE, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["relay", "--concurrency", "0"], "argument --concurrency: must be at least 1, got '0'"),
        (
            ["relay", "--concurrency", "1.5"],
            "argument --concurrency: must be a whole number, got '1.5'",
        ),
        (["relay", "--rate-limit", "-1"], "argument --rate-limit: must be 0 or more, got '-1'"),
        (["relay", "--rate-limit", "x"], "argument --rate-limit: must be a number, got 'x'"),
        (
            ["relay", "--max-backoff", "0"],
            "argument --max-backoff: must be more than 0 seconds, got '0'",
        ),
        (["send", "--concurrency", "0"], "argument --concurrency: must be from 1 to 32, got '0'"),
        (
            ["relay", "--drain-timeout", "-1"],
            "argument --drain-timeout: must be 0 seconds or more, got '-1'",
        ),
        (
            ["relay", "--drain-timeout", "inf"],
            "argument --drain-timeout: must be 0 seconds or more, got 'inf'",
        ),
        (
            ["send", "--timeout", "0"],
            "argument --timeout: must be more than 0 and at most 86400 seconds, got '0'",
        ),
        (  # too large for a socket: an OverflowError traceback, exit 1, once
            ["trigger", "x", "--timeout", "1e300"],
            "argument --timeout: must be more than 0 and at most 86400 seconds, got '1e300'",
        ),
        (
            ["send", "--timeout", "soon"],
            "argument --timeout: must be a number of seconds, got 'soon'",
        ),
        (
            ["send", "--max-time", "nan"],
            "argument --max-time: must be 0 seconds or more, got 'nan'",
        ),
        (
            ["send", "--max-attempts", "101"],
            "argument --max-attempts: must be from 1 to 100, got '101'",
        ),
        (
            ["sandbox", "--rate-limit", "0"],
            "argument --rate-limit: must be from 1 to 1000000, got '0'",
        ),
    ],
)
def test_a_refused_value_names_the_rule_in_one_line_with_exit_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = _alertwire(args, tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"alertwire: error: {message} (see alertwire {args[0]} --help)\n"
    assert not (tmp_path / "outbox.sqlite3").exists()


@pytest.mark.parametrize(
    ("args", "dest", "value"),
    [
        (["relay", "--concurrency", "1"], "concurrency", 1),
        (["relay", "--rate-limit", "0"], "rate_limit", 0.0),
        (["relay", "--drain-timeout", "0"], "drain_timeout", 0.0),
        (["send", "--max-time", "0"], "max_time", 0.0),
        (["send", "--timeout", "86400"], "timeout", 86400.0),
        (["send", "--max-attempts", "100"], "max_attempts", 100),
        (["send", "--concurrency", "32"], "concurrency", 32),
        (["sandbox", "--rate-limit", "1"], "rate_limit", 1),
    ],
)
def test_the_boundary_each_rule_allows_is_accepted(
    args: list[str], dest: str, value: float
) -> None:
    assert getattr(build_parser().parse_args(args), dest) == value


def test_a_lease_not_longer_than_the_timeout_is_said_as_the_option(tmp_path: Path) -> None:
    """The relay's refusal named the library's argument, lease_seconds, which no
    user typed."""
    done = _alertwire(["relay", "--drain", "--lease", "5", "--timeout", "10"], tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "alertwire: error: --lease (5) must be longer than the HTTP timeout (10):"
        " a send must never outlive its lease\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trigger", "x", "--json", "--timeout", "0"], "argument --timeout: must be more than 0"),
        (["send", "--json", "--bogus"], "unrecognized arguments: --bogus"),
        (["resolve", "--json"], "the following arguments are required: DEDUP_KEY"),
    ],
)
def test_a_usage_error_with_json_is_a_json_document_too(
    args: list[str], message: str, tmp_path: Path
) -> None:
    """``--json`` prints a document for exit code 2 (docs/cli.md); a usage error printed
    nothing on standard output, so a script parsing it failed on an empty string."""
    done = _alertwire(args, tmp_path)
    assert done.returncode == 2
    document = json.loads(done.stdout)
    assert document["ok"] is False and document["exit_code"] == 2
    assert document["error"] == "UsageError" and document["message"].startswith(message)
    assert done.stderr.startswith(f"alertwire: error: {message}")
    assert len(done.stderr.splitlines()) == 1
    without = _alertwire([a for a in args if a != "--json"], tmp_path)
    assert without.returncode == 2 and without.stdout == ""
