"""Which values count as a whole number or a real number: the one rule every setting uses.

``bool`` is a subclass of ``int``, so ``isinstance(True, int)`` holds: a setting
checked that way took ``concurrency=True`` as 1 and ``page_size=False`` as 0,
and a typo'd flag became a number nobody wrote. A float is never a whole number
here, even ``2.0``: a setting that is a count says so by its type. These
predicates only answer; each caller raises its own error type with its own
message (the field's name and its rule), since a sandbox's fault spec, a
client's argument and a relay's setting are refused in different ways.

Bounds are inclusive; a caller whose bound is exclusive (``timeout > 0``)
compares itself. NaN is within no bounds (it compares false with everything),
so a real number checked with a bound is never NaN; without bounds it may be
NaN or infinite, which the caller decides about.
"""

from __future__ import annotations

from typing import TypeGuard

__all__ = ["is_real", "is_whole"]


def is_whole(
    value: object, *, minimum: int | None = None, maximum: int | None = None
) -> TypeGuard[int]:
    """``value`` is an ``int`` (not a ``bool``), from ``minimum`` to ``maximum`` if given."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def is_real(
    value: object, *, minimum: float | None = None, maximum: float | None = None
) -> TypeGuard[float]:
    """``value`` is an ``int`` or a ``float`` (not a ``bool``), from ``minimum`` to
    ``maximum`` if given (then never NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
