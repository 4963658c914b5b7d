"""Running a docs page's ```python blocks (and shell blocks) as a reader would paste them.

One rule for every page whose examples are checked (README, docs/bigpanda.md, docs/sandbox.md,
docs/transports.md, docs/rest.md): a block that defines tests (``def test_…``)
is saved as a test file and run by pytest in a subprocess, the way a user's own
suite would run it, and every one of its tests must pass; any other block runs
as a script. Either must exit 0, and a block that prints must print something.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

__all__ = ["python_blocks", "run_bash", "run_block"]


def python_blocks(page: Path) -> list[str]:
    """The page's ```python blocks, in order."""
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)


def run_block(code: str, tmp_path: Path) -> None:
    """Run one block in ``tmp_path`` (see the module docstring); fails the test if it fails."""
    tests = len(re.findall(r"^def test_", code, re.MULTILINE))
    if tests:
        script = tmp_path / "test_from_docs.py"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    else:
        script = tmp_path / "example.py"
        command = [sys.executable, str(script)]
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    if tests:
        assert f"{tests} passed" in done.stdout, done.stdout
    if "print(" in code:
        assert done.stdout.strip(), "the example prints something"


def run_bash(script: str, *, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A shell block in ``bash -e -o pipefail`` with ``env`` in ``cwd``, output captured
    (60 s: a bound on a hang); the caller asserts the exit code, with the output."""
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )
