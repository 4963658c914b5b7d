"""Every command has help, and every help shows the exit codes.

The commands are found by walking the real parser (nested sub-commands
included), so a command added later by any module is covered without
touching this file. In-process: ``--help`` is argparse's own printing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from alertwire.cli import _exit, main

ALERTWIRE = str(Path(sys.executable).with_name("alertwire"))


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield (*prefix, name), command
                yield from _commands(command, (*prefix, name))


COMMANDS = sorted(path for path, _ in _commands(main.build_parser()))


def test_the_expected_commands_exist() -> None:
    names = {path[0] for path in COMMANDS}
    assert {"trigger", "acknowledge", "resolve", "change", "bigpanda", "send"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help_with_exit_codes(path: tuple[str, ...]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main.main([*path, "--help"])
    assert exited.value.code == 0
    text = out.getvalue()
    assert text.startswith("usage: alertwire " + " ".join(path))
    # A description or a per-option help beyond the bare usage line.
    assert len(text.splitlines()) > 5
    assert _listed_codes(text) == EXIT_CODES.get(path, SENDING)


#: The codes each command can return; every other command sends (or queues) events.
SENDING = {0, 2, 3, 4, 5}
EXIT_CODES: dict[tuple[str, ...], set[int]] = {
    ("relay",): {0, 2, 5, 6, 7},
    ("queue",): {0, 2, 5, 7},
    ("queue", "status"): {0, 2, 5, 7},
    ("queue", "dead"): {0, 2, 5},
    ("queue", "retry"): {0, 2, 5},
    ("queue", "purge"): {0, 2, 5},
    ("queue", "migrate"): {0, 2, 5},
    ("sandbox",): {0, 2},
    ("demo",): {0, 1, 2},
    ("incidents",): {0, 2, 3, 4},
    ("incidents", "list"): {0, 2, 3, 4},
    ("incidents", "show"): {0, 2, 3, 4},
    ("incidents", "ack"): {0, 2, 3, 4},
    ("incidents", "resolve"): {0, 2, 3, 4},
}


def _listed_codes(text: str) -> set[int]:
    """The codes in the ``exit codes:`` list at the end of a help text."""
    assert text.count("exit codes:") == 1, text
    listing = text.split("exit codes:", 1)[1]
    return {int(m) for m in re.findall(r"^  (\d+)  ", listing, re.M)}


def test_top_level_help_lists_commands_and_exit_codes() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main.main(["--help"])
    for path in COMMANDS:
        if len(path) == 1:
            assert path[0] in out.getvalue()
    assert _listed_codes(out.getvalue()) == {0, 2, 3, 4, 5, 6, 7}
    assert _exit.ALL_CODES_EPILOG in out.getvalue()


def test_the_parser_lists_the_commands_it_made_nested_ones_included() -> None:
    """``main.subcommands`` walks the groups the parser recorded: the same tree as argparse's."""
    parser = main.build_parser()

    def tree(parser: argparse.ArgumentParser) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for command in main.subcommands(parser):
            path = tuple(command.prog.split()[1:])
            found |= {path} | tree(command)
        return found

    assert tree(parser) == set(COMMANDS)


def test_a_command_made_without_the_exit_codes_still_shows_them() -> None:
    """A module that adds a (nested) command with its own epilog, or none, still gets the list."""
    parser = main._Parser(prog="alertwire")
    outer = parser.add_subparsers().add_parser("outer", epilog="Read the docs.")
    inner = outer.add_subparsers().add_parser("inner")
    main._with_exit_codes(parser)
    assert outer.epilog == f"Read the docs.\n\n{_exit.EPILOG}"
    assert inner.epilog == _exit.EPILOG


def test_routing_key_flag_warns_about_the_process_list() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main.main(["trigger", "--help"])
    text = " ".join(out.getvalue().split())
    assert "visible to other users in the process list" in text


def test_installed_command_prints_help() -> None:
    done = subprocess.run(
        [ALERTWIRE, "send", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "exit codes:" in done.stdout
    assert done.stderr == ""


def test_in_process_run_leaves_logging_as_it_was(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``main()`` called from a program (or a test) adds no lasting handler to ``alertwire``."""
    import logging

    logger = logging.getLogger("alertwire")
    before = (list(logger.handlers), logger.propagate, logger.level)
    monkeypatch.setenv("ALERTWIRE_ROUTING_KEY", "0123456789abcdef0123456789abcdef")
    assert main.main(["trigger", "x" * 1100, "--dry-run", "--dedup-key", "k"]) == 0
    assert "alertwire: summary of 1100 characters shortened" in capsys.readouterr().err
    assert (list(logger.handlers), logger.propagate, logger.level) == before


@pytest.mark.parametrize("quiet", [False, True])
def test_in_process_relay_leaves_every_alertwire_logger_as_it_was(
    quiet: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``relay`` turns its log on for the run only: before this, ``--quiet`` left
    ``alertwire.relay`` at WARNING for good and silenced later callers' INFO lines."""
    import logging

    names = ("alertwire", "alertwire.relay", "alertwire.outbox")
    state = [(list(lg.handlers), lg.propagate, lg.level) for lg in map(logging.getLogger, names)]
    argv = ["relay", "--drain", "--outbox", str(tmp_path / "o.sqlite3")]
    assert main.main([*argv, "--quiet"] if quiet else argv) == 0
    capsys.readouterr()
    after = [(list(lg.handlers), lg.propagate, lg.level) for lg in map(logging.getLogger, names)]
    assert after == state


def test_relay_takes_sigterm_from_its_first_instant() -> None:
    """A SIGTERM that arrives while ``alertwire relay`` is still starting is a clean
    stop handed to the relay once it exists, not the default kill (exit -15)."""
    import os
    import signal

    from alertwire.cli import relay_cmd

    before = signal.getsignal(signal.SIGTERM)
    stopped: list[str] = []
    with relay_cmd._early_stop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (main) thread
        assert stop.requested
        stop.forward_to(lambda: stopped.append("stop"))
        assert stopped == ["stop"]  # remembered, then handed over at once
        os.kill(os.getpid(), signal.SIGTERM)
        assert stopped == ["stop", "stop"]  # later ones go straight to the relay
    assert signal.getsignal(signal.SIGTERM) is before
