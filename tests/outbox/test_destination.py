"""Where an event goes ("pagerduty" | "bigpanda") is spelled once, beside the kinds.

The CLI, ingest, the relay's loop guard and the metrics' ``destination``
label all use :data:`alertwire.outbox.machine.Destination`; two spellings
could drift apart (a third service added to one only) without mypy noticing.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args, get_type_hints

from alertwire.outbox.machine import KINDS, Destination
from alertwire.outbox.metrics import destination_of

SRC = Path(__file__).resolve().parents[2] / "src" / "alertwire"


def _spells_the_destinations(node: ast.AST) -> bool:
    """A ``Literal[...]`` subscript naming both services."""
    if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)):
        return False
    if node.value.id != "Literal":
        return False
    names = {c.value for c in ast.walk(node.slice) if isinstance(c, ast.Constant)}
    return {"pagerduty", "bigpanda"} <= names


def test_destination_is_defined_once() -> None:
    spelled = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if any(map(_spells_the_destinations, ast.walk(ast.parse(path.read_text("utf-8")))))
    )
    assert spelled == ["outbox/machine.py"]


def test_destination_of_returns_a_destination_for_every_kind() -> None:
    assert get_type_hints(destination_of)["return"] == Destination
    assert {kind: destination_of(kind) for kind in KINDS} == {
        kind: kind.split(".", 1)[0] for kind in KINDS
    }
    assert {destination_of(kind) for kind in KINDS} == set(get_args(Destination))
