"""docs/rest.md's examples run: every ```python block, as a reader would paste it.

Each block starts its own sandbox, so the page's promise ("every example
runs against the local sandbox") is checked, and a block that prints must
print something (tests/support/doc_examples.py, as for every checked page).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.doc_examples import python_blocks, run_block

PAGE = Path(__file__).resolve().parents[2] / "docs" / "rest.md"
BLOCKS = python_blocks(PAGE)


def test_the_page_has_the_examples_it_promises() -> None:
    assert len(BLOCKS) >= 4
    assert any("incident_for_dedup_key" in b and "acknowledge" in b for b in BLOCKS)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_rest_doc_block_runs(code: str, tmp_path: Path) -> None:
    run_block(code, tmp_path)
