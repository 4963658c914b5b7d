"""``alertwire send`` with no file, at a terminal: it says what it waits for.

A real pseudo-terminal on the child's standard input and error, so
``isatty()`` is the real answer; the test types a line and Ctrl-D as a
person would, after the hint has appeared (never after a sleep).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_send_queue_stream import GUARD, cli_env

HINT = b"alertwire: reading JSON lines from the terminal; end with Ctrl-D (or give a FILE)"


def read_until(leader: int, wanted: bytes, seen: bytes = b"") -> bytes:
    """What the terminal shows, until ``wanted`` is among it or the child ends."""
    while wanted not in seen:
        ready, _, _ = select.select([leader], [], [], GUARD)
        assert ready, f"the terminal showed nothing more within {GUARD}s: {seen[-300:]!r}"
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


@pytest.mark.parametrize("queue", [False, True], ids=["dry-run", "queue"])
def test_send_at_a_terminal_says_it_reads_the_terminal_then_reads_it(
    tmp_path: Path, queue: bool
) -> None:
    import pty

    leader, follower = pty.openpty()
    line = json.dumps({"type": "trigger", "summary": "typed"})
    with subprocess.Popen(
        [sys.executable, "-m", "alertwire.cli.main", "send", "--queue" if queue else "--dry-run"],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=cli_env(tmp_path / "outbox.sqlite3"),
    ) as proc:
        os.close(follower)
        try:
            shown = read_until(leader, HINT)
            os.write(leader, line.encode() + b"\n\x04")  # a line, then Ctrl-D at a line's start
            shown = read_until(leader, b"\x00never", shown)
        except BaseException:
            proc.kill()  # still reading the terminal: leaving the block would wait for ever
            raise
        stdout = proc.stdout.read() if proc.stdout is not None else b""
    os.close(leader)
    assert proc.returncode == 0, shown
    assert HINT in shown
    summary = (
        "1 event: 0 delivered, 1 queued in the outbox"
        if queue
        else "1 event: 0 delivered, 1 valid (dry run"
    )
    assert stdout.decode().splitlines()[-1].startswith(summary), stdout


def test_send_from_a_pipe_says_nothing_extra(tmp_path: Path) -> None:
    line = json.dumps({"type": "trigger", "summary": "piped"})
    done = subprocess.run(
        [sys.executable, "-m", "alertwire.cli.main", "send", "--dry-run"],
        input=line + "\n",
        capture_output=True,
        text=True,
        timeout=GUARD,
        check=False,
        env=cli_env(tmp_path / "outbox.sqlite3"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("mode", [["--dry-run"], ["--queue"], ["--queue", "--strict"]])
def test_send_with_standard_input_closed_says_so_in_one_line(
    tmp_path: Path, mode: list[str]
) -> None:
    """``<&-`` (or a service manager's closed stdin) was a traceback."""
    command = [sys.executable, "-m", "alertwire.cli.main", "send", *mode]
    done = subprocess.run(
        ["bash", "-c", 'exec "$@" <&-', "bash", *command],
        capture_output=True,
        text=True,
        timeout=GUARD,
        check=False,
        env=cli_env(tmp_path / "outbox.sqlite3"),
    )
    assert done.returncode == 2
    assert done.stderr == "alertwire: error: standard input is closed: give the events as a FILE\n"
