"""README and docs/bigpanda.md examples run: every ```python block, as a reader would paste it.

A block that defines a pytest test (``def test_…``) is saved as a test file
and run by pytest in a subprocess, which also proves the ``alertwire_sandbox``
fixture reaches users' own test suites through the plugin entry point.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.doc_examples import python_blocks, run_block

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


def test_readme_shows_what_resolve_prints(alertwire_sandbox: Any, tmp_path: Path) -> None:
    """The Command line block shows each ``$ alertwire resolve`` with the line it prints."""
    [block] = [b for b in CONSOLE if "$ alertwire resolve " in b]
    lines = block.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("$ alertwire resolve "))
    args = lines[at].removeprefix("$ alertwire ").split()
    shown = lines[at + 1] if at + 1 < len(lines) and not lines[at + 1].startswith("$") else ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(
        ALERTWIRE_ROUTING_KEY="0123456789abcdef0123456789abcdef",
        ALERTWIRE_PAGERDUTY_URL=alertwire_sandbox.url,
    )
    done = subprocess.run(
        [str(Path(sys.executable).with_name("alertwire")), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown + "\n"
