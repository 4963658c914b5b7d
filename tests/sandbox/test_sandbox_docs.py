"""docs/sandbox.md's complete examples run, as a reader would paste them.

A complete example is a block that starts its own sandbox (``with Sandbox(``)
or defines tests for the ``alertwire_sandbox`` fixture (``def test_…``, run by
pytest in a subprocess, as a user's suite would run it:
tests/support/doc_examples.py). The page's other blocks are fragments that
need a caller's names (PagerDuty's own client pointed at a running
``alertwire sandbox --tls``, which tests/sandbox/test_sandbox_pagerduty_official.py
and test_sandbox_rest_official.py run; the sink protocol).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.doc_examples import python_blocks, run_block

PAGE = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"
COMPLETE = [
    b for b in python_blocks(PAGE) if "with Sandbox(" in b or re.search(r"^def test_", b, re.M)
]


def test_the_page_has_the_examples_it_promises() -> None:
    assert len(COMPLETE) >= 3
    assert any("alertwire_sandbox" in b for b in COMPLETE)
    assert any("fail_next(" in b for b in COMPLETE)
    assert any("/incidents?incident_key=" in b for b in COMPLETE)


@pytest.mark.parametrize("code", COMPLETE, ids=[f"block{i}" for i in range(len(COMPLETE))])
def test_sandbox_doc_block_runs(code: str, tmp_path: Path) -> None:
    run_block(code, tmp_path)
