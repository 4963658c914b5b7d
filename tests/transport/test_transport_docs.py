"""docs/transports.md's examples run: every ```python block, as a reader would paste it.

A block that defines tests (``def test_…``) is saved as a test file and run by
pytest in a subprocess, the way a user's own suite would run it (as
every checked page does: tests/support/doc_examples.py); any other block runs as a script.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.doc_examples import python_blocks, run_block

PAGE = Path(__file__).resolve().parents[2] / "docs" / "transports.md"
BLOCKS = python_blocks(PAGE)


def test_the_page_has_the_examples_it_promises() -> None:
    tests = [b for b in BLOCKS if "MockTransport(" in b and re.search(r"^def test_", b, re.M)]
    assert len(tests) >= 3
    assert any("PagerDuty(" in b for b in tests)
    assert any("AsyncBigPanda(" in b for b in tests)
    assert any("PagerDutyAPI(" in b for b in tests)
    assert any("class OneShotTransport" in b for b in BLOCKS)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_transport_doc_block_runs(code: str, tmp_path: Path) -> None:
    run_block(code, tmp_path)
