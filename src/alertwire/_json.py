"""JSON in and out, in one place: orjson, which is several times faster than ``json``.

``dumps`` refuses what JSON cannot hold (sets, arbitrary objects) with
``TypeError``; callers turn that into a ValidationError naming the field.

NaN, Infinity and -Infinity, which JSON has no numbers for, go out as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the spellings of
JavaScript and of Python's ``json``), with one WARNING naming every place
they were found (``payload.custom_details.cpu``). Why not orjson's ``null``:
a metric that came out NaN would read in the alert as "no value", a silent
change of meaning. Why not refuse: the number is one detail of an alert,
and refusing it would lose the whole page. Every body alertwire sends or
stores (the models' wire bytes, the outbox's rows, REST bodies) goes
through :func:`dumps`, so this is the one rule for all of them.
"""

from __future__ import annotations

import math
from typing import Any, Final

import orjson

from . import _log

__all__ = ["JSONDecodeError", "dumps", "loads"]

JSONDecodeError = orjson.JSONDecodeError

#: Outputs shorter than this are copied into a bytes object of their own size (see dumps).
_COPIED_BELOW: Final = 4096
_join = b"".join
_NOTHING: Final = b""


def dumps(value: Any, *, no_floats: bool = False) -> bytes:
    """``value`` as JSON bytes, in a bytes object no bigger than its text.

    ``no_floats``: the caller knows ``value`` holds no NaN or infinity (a
    model whose fields are all strings, or whose details it has looked at;
    anything parsed from JSON, which has no such numbers; alertwire's own
    answers and records), so the search for one is left out. The search runs
    only on an output holding ``null`` (where orjson wrote a non-finite
    float), first as a walk that only looks (about 0.5 us per 1,000 nodes'
    worth of ``isinstance``), and names the places only once one is found.

    orjson writes into a buffer of 4 KiB and shrinks it in place when done;
    the allocator keeps the rest of the buffer's pages, and the next output
    (which again asks for 4 KiB) starts on a fresh page. An output that is
    kept (a model's wire bytes, a body waiting for its commit) so held about
    4 KiB of memory however short it was, and each one cost a page fault:
    1.9 us per short output kept in a list of 1,000, 0.26 us with the copy
    (``TriggerAlert`` keeps one per event). A join with an empty part is the
    cheapest copy; longer outputs, whose buffer grew to fit, stay as they are.
    """
    try:
        data = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(str(exc)) from exc
    # orjson writes a non-finite float as null: only an output with a null can hold
    # one, and the search is a few nanoseconds where the walk below is microseconds.
    if not no_floats and b"null" in data and _holds_non_finite(value):
        found: list[str] = []
        spelled = _spelled_out(value, "", found)
        named = ", ".join(found[:_NAMED_AT_MOST])
        if len(found) > _NAMED_AT_MOST:
            named += f" and {len(found) - _NAMED_AT_MOST} more"
        _log.warning(
            "%s: sent as the strings NaN, Infinity or -Infinity (JSON has no such numbers)",
            named,
        )
        data = orjson.dumps(spelled, option=orjson.OPT_NON_STR_KEYS)
    return _join((data, _NOTHING)) if len(data) < _COPIED_BELOW else data


#: The WARNING names this many places, then says how many more: one line, however many.
_NAMED_AT_MOST: Final = 5


def _holds_non_finite(value: Any) -> bool:
    """Whether a NaN or an infinity is anywhere in what JSON nests (no paths built)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(map(_holds_non_finite, value.values()))
    if isinstance(value, (list, tuple)):
        return any(map(_holds_non_finite, value))
    return False


def _spelled_out(value: Any, path: str, found: list[str]) -> Any:
    """``value`` with each NaN or infinity as its string, the places noted in ``found``.

    Walks what JSON nests (dicts, lists, tuples) and leaves anything else as
    it is; unchanged parts are returned as they are, not copied.
    """
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        found.append(path or "value")
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        before = len(found)
        prefix = f"{path}." if path else ""
        # A key is the caller's text: quoted and cut, so it cannot break the log line.
        out = {k: _spelled_out(v, f"{prefix}{_key(k)}", found) for k, v in value.items()}
        return out if len(found) > before else value
    if isinstance(value, (list, tuple)):
        before = len(found)
        items = [_spelled_out(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
        return items if len(found) > before else value
    return value


def _key(key: object) -> str:
    text = str(key)
    if text.isidentifier() and len(text) <= 40:
        return text
    return repr(text[:40])


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
