"""README and docs/bigpanda.md examples run: every ```python block, as a reader would paste it.

A block that defines a pytest test (``def test_…``) is saved as a test file
and run by pytest in a subprocess, which also proves the ``alertwire_sandbox``
fixture reaches users' own test suites through the plugin entry point. The
README's Command line block runs too, line by line, and prints what it shows.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.doc_examples import python_blocks, run_bash, run_block
from tests.support.keys import BIGPANDA_TOKEN, ROUTING_KEY

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: The pages whose ```python blocks are complete programs, run as a reader would paste them.
#: (Other docs pages show fragments that need a caller's own names: not listed.)
PAGES = [README, ROOT / "docs" / "bigpanda.md"]
EXAMPLES = [(page, code) for page in PAGES for code in python_blocks(page)]
BLOCKS = [code for page, code in EXAMPLES if page == README]


def test_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 5


def _ids() -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for page, _ in EXAMPLES:
        name = page.relative_to(ROOT).as_posix()
        seen[name] = seen.get(name, 0) + 1
        ids.append(f"{name}:block{seen[name]}")
    return ids


@pytest.mark.parametrize("code", [code for _, code in EXAMPLES], ids=_ids())
def test_readme_block_runs(code: str, tmp_path: Path) -> None:
    run_block(code, tmp_path)


CONSOLE = re.findall(r"```console\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
#: What the Command line block's ``alertwire send events.jsonl`` reads: the two lines the
#: README gives as the file's example.
EVENTS_JSONL = (
    '{"type": "trigger", "summary": "Disk full", "severity": "critical", "dedup_key": "disk-db1"}\n'
    '{"type": "resolve", "dedup_key": "disk-db1"}\n'
)
DEDUP_KEY = re.compile(r"[0-9a-f]{32}")


def _command_line_steps() -> list[tuple[str, str]]:
    """The Command line block as (command, what the page shows it printing) pairs."""
    [block] = [b for b in CONSOLE if "$ alertwire resolve " in b]
    steps: list[tuple[str, str]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], ""))
        else:
            command, shown = steps[-1]
            steps[-1] = (command, shown + line + "\n")
    return steps


def test_readme_command_line_block_runs(alertwire_sandbox: Any, tmp_path: Path) -> None:
    """Every line of the Command line block runs against the sandbox, as a reader would
    type it (key files in the home directory, the outbox in its default place), and
    prints what the page shows; a line the page shows as a dedup key prints a new one."""
    (tmp_path / ".config" / "alertwire").mkdir(parents=True)
    (tmp_path / ".config" / "alertwire" / "routing-key").write_text(ROUTING_KEY + "\n")
    (tmp_path / ".config" / "alertwire" / "bigpanda-token").write_text(BIGPANDA_TOKEN + "\n")
    (tmp_path / "events.jsonl").write_text(EVENTS_JSONL, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTWIRE_", "XDG_"))}
    env.update(
        HOME=str(tmp_path),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        ALERTWIRE_PAGERDUTY_URL=alertwire_sandbox.url,
        ALERTWIRE_BIGPANDA_URL=alertwire_sandbox.url,
    )
    steps = _command_line_steps()
    assert len(steps) >= 8
    for at, (command, shown) in enumerate(steps):
        # Each command runs after the block's earlier exports, as in one shell session.
        exports = [c for c, _ in steps[:at] if c.startswith("export ")]
        done = run_bash("\n".join([*exports, command]), env=env, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        if DEDUP_KEY.fullmatch(shown.strip()) and "resolve" not in command:
            assert DEDUP_KEY.fullmatch(done.stdout.strip()), (command, done.stdout)
        else:
            assert done.stdout == shown, (command, done.stdout)
        assert ROUTING_KEY not in done.stdout + done.stderr
        assert BIGPANDA_TOKEN not in done.stdout + done.stderr
    assert [a["dedup_key"] for a in alertwire_sandbox.alerts() if a["status"] == "resolved"] == [
        "disk-db1"
    ]
    assert len(alertwire_sandbox.bigpanda()) == 1
