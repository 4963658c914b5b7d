"""docs/rest.md's examples run: every ```python block, as a reader would paste it.

Each block starts its own sandbox, so the page's promise ("every example
runs against the local sandbox") is checked, and a block that prints must
print something (as tests/project/test_readme.py does for the README).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "rest.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)


def test_the_page_has_the_examples_it_promises() -> None:
    assert len(BLOCKS) >= 4
    assert any("incident_for_dedup_key" in b and "acknowledge" in b for b in BLOCKS)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_rest_doc_block_runs(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    if "print(" in code:
        assert done.stdout.strip(), "the example prints something"
