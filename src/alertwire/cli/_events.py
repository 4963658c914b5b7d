"""Events from command-line arguments and from JSON lines, built by the library's models.

The models are the validation boundary: this module only maps spellings
(``--class`` and ``"class"`` to ``class_``, ``--detail KEY=VALUE`` to
``custom_details``) and lets the model raise a ValidationError that names
the field. A JSON line may use exactly the keyword arguments of the model's
constructor (read from its signature, so a field added to a model is
accepted here without a second list), plus ``"type"``.
"""

from __future__ import annotations

import argparse
import functools
import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import _json
from .._errors import ValidationError
from ._deliver import Job

if TYPE_CHECKING:
    from ..outbox.machine import Destination

__all__ = ["LINE_TYPES", "custom_details", "job_from_args", "job_from_line"]


def custom_details(args: argparse.Namespace) -> dict[str, Any] | str | None:
    """``--details-json`` (an object or a string), with each ``--detail KEY=VALUE`` set on top."""
    base: Any = None
    details_json = getattr(args, "details_json", None)  # a command without the flags: None
    if details_json is not None:
        try:
            base = _json.loads(details_json)
        except _json.JSONDecodeError as exc:
            raise ValidationError("--details-json", f"must be valid JSON ({exc})") from None
        if not isinstance(base, (dict, str)):
            raise ValidationError(
                "--details-json", f"must be a JSON object or string, not {type(base).__name__}"
            )
    if getattr(args, "detail", None):
        if isinstance(base, str):
            raise ValidationError("--detail", "cannot be added to a --details-json string")
        return {**(base or {}), **dict(args.detail)}
    return base  # type: ignore[no-any-return]


@functools.cache
def _model(name: str) -> Any:
    if name == "bigpanda":
        from ..models.bigpanda import BigPandaAlert

        return BigPandaAlert
    from ..models import pagerduty

    # Only the one asked for: the others load on first access (models.pagerduty's _WHERE).
    return getattr(pagerduty, _MODEL_NAMES[name])


_MODEL_NAMES: Mapping[str, str] = {
    "trigger": "TriggerAlert",
    "acknowledge": "AcknowledgeAlert",
    "resolve": "ResolveAlert",
    "change": "Change",
}


#: The ``"type"`` of a JSON line, and where that event goes.
LINE_TYPES: Mapping[str, Destination] = {
    "trigger": "pagerduty",
    "acknowledge": "pagerduty",
    "resolve": "pagerduty",
    "change": "pagerduty",
    "bigpanda": "bigpanda",
}


@functools.cache
def _signature(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """(all keyword names, required names) of the model's constructor."""
    parameters = [
        p
        for p in inspect.signature(_model(name)).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    return (
        frozenset(p.name for p in parameters),
        frozenset(p.name for p in parameters if p.default is p.empty),
    )


def _not_json(text: str, exc: _json.JSONDecodeError) -> str:
    """Where a line stops being JSON, as a column of that line.

    The parser's own words count the line's newline as the start of a second
    line: a line that simply ends too early (``{"type": "trigger"``) read "line 2
    column 1", which points at nothing in the user's file. Its position is in
    characters, so the column is one a text editor shows."""
    end = len(text.rstrip("\r\n"))
    return f"is not valid JSON: {exc.msg} at column {min(exc.pos, end) + 1}"


def job_from_line(raw: bytes, line: int) -> Job:
    """One line of input, as read, as a validated job; a ValidationError names the field
    at fault (or says the line is not UTF-8 text, or not JSON)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("event", "is not UTF-8 text") from None
    try:
        value = _json.loads(text)
    except _json.JSONDecodeError as exc:
        raise ValidationError("event", _not_json(text, exc)) from None
    if not isinstance(value, dict):
        raise ValidationError("event", f"must be a JSON object, not {type(value).__name__}")
    fields = value  # the parser's own fresh dict: no copy needed
    kind = fields.pop("type", None)
    if not isinstance(kind, str) or kind not in LINE_TYPES:
        raise ValidationError("type", f"must be one of {', '.join(LINE_TYPES)}; got {kind!r:.40}")
    allowed, required = _signature(kind)
    if "class" in fields and "class_" in allowed:
        if "class_" in fields:
            raise ValidationError("class", "give either 'class' or 'class_', not both")
        fields["class_"] = fields.pop("class")
    # Two set comparisons for the usual line; the loops (which name the field, as
    # before) only for a line that fails them.
    if not fields.keys() <= allowed:
        for name in fields:
            if name not in allowed:
                raise ValidationError(
                    name, f"is not a field of a {kind} event (fields: {', '.join(sorted(allowed))})"
                )
    if not required <= fields.keys():
        for name in sorted(required):
            if name not in fields:
                raise ValidationError(name, f"is required for a {kind} event")
    return Job(LINE_TYPES[kind], _model(kind)(**fields), line)


def job_from_args(args: argparse.Namespace, kind: str, **computed: Any) -> Job:
    """One event of ``kind`` from a command's parsed flags, by the rule a JSON line follows.

    A flag whose ``dest`` is a keyword argument of the model's constructor (read
    from its signature, as for JSON lines) is that argument, when given;
    ``computed`` holds what no single flag does (``custom_details`` from
    ``--detail`` and ``--details-json``, BigPanda's ``tags``), ``None`` meaning
    not given. So a command lists the fields it sets once, as its options.
    """
    allowed, _ = _signature(kind)
    given = {name: getattr(args, name, None) for name in allowed}
    given.update(computed)
    fields = {name: value for name, value in given.items() if value is not None}
    return Job(LINE_TYPES[kind], _model(kind)(**fields))
