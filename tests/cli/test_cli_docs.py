"""The examples in ``docs/cli.md`` run, against the sandbox, and print what the page says.

Every ```` ```sh ```` block runs in bash (``set -e -o pipefail``) with the
installed ``alertwire`` first on ``PATH`` and the sandbox's URLs and a key
in the environment. The ``# ...`` lines of a block are its expected output:
each must be a line of what the block printed (stdout and stderr), or, when
it ends in ``...``, the start of one.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.doc_examples import run_bash

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
BLOCKS = re.findall(r"^```sh\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
KEY = "0123456789abcdef0123456789abcdef"


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i + 1}" for i in range(len(BLOCKS))])
def test_example_runs(block: str, alertwire_sandbox: Any, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        ALERTWIRE_ROUTING_KEY=KEY,
        ALERTWIRE_PAGERDUTY_URL=alertwire_sandbox.url,
        ALERTWIRE_BIGPANDA_TOKEN="sandbox-token-0123",
        ALERTWIRE_BIGPANDA_APP_KEY="sandbox-app-key",
        ALERTWIRE_BIGPANDA_URL=alertwire_sandbox.url,
    )
    done = run_bash(block, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = (done.stdout + done.stderr).splitlines()
    for line in block.splitlines():
        if not line.startswith("# "):
            continue
        expected = line[2:]
        if expected.endswith("..."):
            assert any(p.startswith(expected[:-3]) for p in printed), (expected, printed)
        else:
            assert expected in printed, (expected, printed)
    assert KEY not in done.stdout + done.stderr


SEVERAL_RELAYS = DOC.with_name("several-relays.md")
#: The producer commands (``app$ alertwire ...``) of docs/several-relays.md's examples.
APP_COMMANDS = re.findall(
    r"^\s*app\$\s+(alertwire .+)$", SEVERAL_RELAYS.read_text(encoding="utf-8"), re.M
)


def test_several_relays_page_has_producer_examples() -> None:
    assert APP_COMMANDS


@pytest.mark.parametrize("command", APP_COMMANDS)
def test_several_relays_producer_example_runs(command: str, tmp_path: Path) -> None:
    """As written on the page, against a SQLite outbox instead of the page's PostgreSQL
    (the store does not change what a producer command accepts)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        ALERTWIRE_ROUTING_KEY=KEY,
        ALERTWIRE_OUTBOX=str(tmp_path / "outbox.sqlite3"),
    )
    done = run_bash(command, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert KEY not in done.stdout + done.stderr


def test_the_reference_section_is_the_parsers_own_help() -> None:
    """docs/cli.md's reference is generated: it must equal what the parser prints now."""
    from tests.cli import cli_reference

    assert cli_reference.current(), "docs/cli.md has lost its generated reference section"
    assert cli_reference.current() == cli_reference.render(), (
        "docs/cli.md's reference is stale: run `python -m tests.cli.cli_reference`"
    )
