"""Flux's ``pagerduty.dedupKey``: one stable key per group of a Flux table.

Every value is rendered as Flux renders it to a string, the columns are
sorted by name and joined as ``name\\nvalue\\n``, and the SHA-256 of that is
the key (lower-case hex). Matching Flux byte for byte matters: a pipeline
that moves from Flux to alertwire keeps resolving the alerts Flux opened.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

__all__ = ["flux_string", "group_dedup_key"]

DEFAULT_EXCLUDE = ("_start", "_stop", "_level")


def flux_string(value: object) -> str:
    """A value as Flux's ``string()`` renders it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        utc = aware.astimezone(timezone.utc)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond * 1000:09d}Z"
    return str(value)


def group_dedup_key(group: Mapping[str, object], exclude: Iterable[str] = DEFAULT_EXCLUDE) -> str:
    """The dedup key Flux's ``pagerduty.dedupKey(exclude=...)`` gives this group key."""
    skip = set(exclude)
    parts = [f"{name}\n{flux_string(group[name])}\n" for name in sorted(group) if name not in skip]
    return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()
