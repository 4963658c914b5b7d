"""docs/transports.md's examples run: every ```python block, as a reader would paste it.

A block that defines tests (``def test_…``) is saved as a test file and run by
pytest in a subprocess, the way a user's own suite would run it (as
tests/project/test_readme.py does for the README); any other block runs as a script.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "transports.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)


def test_the_page_has_the_examples_it_promises() -> None:
    tests = [b for b in BLOCKS if "MockTransport(" in b and re.search(r"^def test_", b, re.M)]
    assert len(tests) >= 3
    assert any("PagerDuty(" in b for b in tests)
    assert any("AsyncBigPanda(" in b for b in tests)
    assert any("PagerDutyAPI(" in b for b in tests)
    assert any("class OneShotTransport" in b for b in BLOCKS)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_transport_doc_block_runs(code: str, tmp_path: Path) -> None:
    tests = len(re.findall(r"^def test_", code, re.MULTILINE))
    if tests:
        script = tmp_path / "test_from_docs.py"
        script.write_text(code, encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    else:
        script = tmp_path / "example.py"
        script.write_text(code, encoding="utf-8")
        command = [sys.executable, str(script)]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    if tests:
        assert f"{tests} passed" in done.stdout, done.stdout
    if "print(" in code:
        assert done.stdout.strip(), "the example prints something"
