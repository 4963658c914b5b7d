"""Timestamps as PagerDuty accepts them: ISO 8601, with or without offset.

``datetime.fromisoformat`` is too strict on Python 3.10 (it refuses
``+0000`` and ``Z``, both of which PagerDuty's own examples use), so the
accepted grammar is written out here once, for the models and the wire rules.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from typing import TypeGuard

__all__ = ["format_iso8601", "is_iso8601", "parse_iso8601", "to_aware"]


@functools.cache
def _grammar() -> re.Pattern[str]:
    """The accepted grammar, compiled on first use: an event without a timestamp (a
    one-event ``alertwire trigger``, usually) never needs it, and compiling it costs
    that command about half a percent of its instructions (docs/cli.md, "Start-up cost")."""
    return re.compile(
        r"(?P<date>\d{4}-\d{2}-\d{2})"
        r"[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d{1,9}))?)?"
        r"(?P<tz>Z|z|[+-]\d{2}(?::?\d{2})?)?",
        re.ASCII,  # \d must not match other scripts' digits: PagerDuty's parser would not
    )


def is_iso8601(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a string :func:`parse_iso8601` accepts (what the wire rules allow)."""
    if not isinstance(value, str):
        return False
    try:
        parse_iso8601(value)
    except ValueError:
        return False
    return True


def parse_iso8601(text: str) -> datetime:
    """Parse an ISO 8601 date-time; offset-less values are taken as UTC.

    Raises ``ValueError`` for anything else (including impossible dates).
    """
    match = _grammar().fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 date-time: {text[:64]!r}")
    year, month, day = (int(p) for p in match["date"].split("-"))
    frac = match["frac"] or ""
    micros = int((frac + "000000")[:6]) if frac else 0
    tzinfo = timezone.utc
    tz = match["tz"]
    if tz and tz not in ("Z", "z"):
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise ValueError(f"offset out of range: {tz!r}")
        tzinfo = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return datetime(
        year,
        month,
        day,
        int(match["h"]),
        int(match["m"]),
        int(match["s"] or 0),
        micros,
        tzinfo=tzinfo,
    )


def to_aware(value: datetime) -> datetime:
    """A naive datetime is local time (what ``datetime.now()`` means); make it explicit."""
    return value if value.tzinfo is not None else value.astimezone()


def format_iso8601(value: datetime) -> str:
    """Millisecond precision with a numeric offset, the form of PagerDuty's own examples."""
    return to_aware(value).isoformat(timespec="milliseconds")
