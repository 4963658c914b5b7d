"""A JSON line's field checks: the same error, word for word, whichever check catches it.

``job_from_line`` tests a line's names with two set comparisons and walks
the names one by one (to name the field at fault) only when one fails. So
the walk runs only for bad lines: this corpus pins what it says for them
(the first unknown name in the line's order before any missing one; the
missing ones in sorted order) and that good lines of every shape pass, and
compares ``send --queue``'s streamed report for a mix of both with what the
lines themselves raise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alertwire import ValidationError
from alertwire.cli._events import job_from_line
from tests.support.keys import ROUTING_KEY as KEY

TRIGGER_FIELDS = (
    "class_, client, client_url, component, custom_details, dedup_key, group, images,"
    " links, severity, source, summary, timestamp"
)

BAD: list[tuple[dict[str, object], str, str]] = [
    (
        {"type": "trigger", "summary": "x", "bogus": 1, "other": 2},
        "bogus",
        f"is not a field of a trigger event (fields: {TRIGGER_FIELDS})",
    ),
    (
        {"type": "trigger", "zzz": 1, "summary": "x", "aaa": 2},
        "zzz",
        f"is not a field of a trigger event (fields: {TRIGGER_FIELDS})",
    ),
    (  # an unknown name is reported before a missing one
        {"type": "trigger", "nope": 1},
        "nope",
        f"is not a field of a trigger event (fields: {TRIGGER_FIELDS})",
    ),
    ({"type": "trigger"}, "summary", "is required for a trigger event"),
    ({"type": "resolve"}, "dedup_key", "is required for a resolve event"),
    ({"type": "bigpanda"}, "status", "is required for a bigpanda event"),
    (
        {"type": "change", "summary": "x", "class": "y"},
        "class",
        "is not a field of a change event"
        " (fields: custom_details, links, source, summary, timestamp)",
    ),
    (
        {"type": "trigger", "summary": "s", "class": "a", "class_": "b"},
        "class",
        "give either 'class' or 'class_', not both",
    ),
]

GOOD: list[dict[str, object]] = [
    {"type": "trigger", "summary": "disk full"},
    {"type": "trigger", "summary": "disk full", "class": "disk", "dedup_key": "k"},
    {"type": "trigger", "summary": "s", "class_": "disk", "severity": "warn"},
    {"type": "acknowledge", "dedup_key": "k"},
    {"type": "resolve", "dedup_key": "k"},
    {"type": "change", "summary": "deployed", "source": "ci"},
    {"type": "bigpanda", "status": "critical", "host": "db1"},
]


def _raw(line: dict[str, object]) -> bytes:
    return json.dumps(line).encode() + b"\n"


@pytest.mark.parametrize(("line", "field", "rule"), BAD)
def test_a_bad_line_names_the_field_and_the_rule(
    line: dict[str, object], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        job_from_line(_raw(line), 1)
    assert str(caught.value) == f"{field}: {rule}"


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (b'{"type": "trigger", "summary": "x"\n', "unexpected end of data at column 35"),
        (b'{"type": "trigger"\r\n', "unexpected end of data at column 19"),
        (b'{"type": "trigger"', "unexpected end of data at column 19"),
        (
            b'{"type": "trigger",, "summary": "x"}\n',
            "unexpected character, expected a string key at column 20",
        ),
        (
            '{"summary": "\u00e9\u00e9" 1}\n'.encode(),
            "unexpected character, expected ',' or '}' at column 18",
        ),
        (b"nope\n", "invalid literal, expected 'null' at column 1"),
    ],
    ids=[
        "ends early",
        "ends early, CRLF",
        "ends early, last line",
        "double comma",
        "non-ASCII",
        "not JSON",
    ],
)
def test_a_line_that_is_not_json_says_at_which_column_of_that_line(raw: bytes, rule: str) -> None:
    """The column within the line, counted in characters; never the parser's "line 2"
    for the line's own newline."""
    with pytest.raises(ValidationError) as caught:
        job_from_line(raw, 1)
    assert str(caught.value) == f"event: is not valid JSON: {rule}"


@pytest.mark.parametrize("line", GOOD)
def test_a_good_line_of_every_shape_passes(line: dict[str, object]) -> None:
    kind = line["type"]
    job = job_from_line(_raw(line), 7)
    assert job.line == 7
    assert job.destination == ("bigpanda" if kind == "bigpanda" else "pagerduty")


def _send(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``alertwire send *args`` with a routing key and an outbox in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(ALERTWIRE_ROUTING_KEY=KEY, ALERTWIRE_OUTBOX=str(tmp_path / "outbox.sqlite3"))
    return subprocess.run(
        [sys.executable, "-m", "alertwire.cli.main", "send", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_send_queue_reports_the_same_errors_and_stores_every_good_line(tmp_path: Path) -> None:
    lines = [*GOOD[:-1], *(line for line, _, _ in BAD)]  # no BigPanda token here
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(_raw(line) for line in lines))
    for json_output in (False, True):
        done = _send(tmp_path, "--queue", str(path), *(["--json"] if json_output else []))
        assert done.returncode == 2, done.stderr
        good = len(GOOD) - 1
        expected = [
            f"alertwire: line {good + n}: invalid input: {field}: {rule}"
            for n, (_, field, rule) in enumerate(BAD, 1)
        ]
        assert done.stderr.splitlines() == expected
        if json_output:
            report = json.loads(done.stdout)
            assert report["summary"]["queued"] == good
            assert [r["status"] for r in report["results"][:good]] == ["queued"] * good
            assert all(r["dedup_key"] for r in report["results"][:good] if r["line"] != 6)
            assert [r["line"] for r in report["results"]] == list(range(1, len(lines) + 1))
        else:
            assert done.stdout == (
                f"{len(lines)} events: 0 delivered, {good} queued in the outbox,"
                f" {len(BAD)} invalid\n"
            )


@pytest.mark.parametrize("queue", [False, True], ids=["send", "send-queue"])
def test_a_line_over_a_megabyte_is_that_lines_error_and_never_read_whole(
    queue: bool, tmp_path: Path
) -> None:
    """``send`` read its whole input and split it: a line of gigabytes (``send
    /dev/zero``) was held in memory until it ran out. Both modes read a line up to a
    megabyte and skip the rest of a longer one; the lines around it are handled."""
    path = tmp_path / "events.jsonl"
    first = json.dumps({"type": "trigger", "summary": "before"}).encode()
    last = json.dumps({"type": "trigger", "summary": "after"}).encode()
    path.write_bytes(first + b"\n" + b"x" * (3 * 1024 * 1024 + 5) + b"\n" + last)
    done = _send(tmp_path, "--queue" if queue else "--dry-run", "--json", str(path))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "alertwire: line 2: invalid input: event: is longer than 1048576 bytes"
    ]
    report = json.loads(done.stdout)
    assert [r["line"] for r in report["results"]] == [1, 2, 3]
    assert [r["ok"] for r in report["results"]] == [True, False, True]
