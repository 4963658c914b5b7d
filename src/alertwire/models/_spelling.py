"""Enums read from what people type: the wire spelling in any case, or a short alias.

PagerDuty's severities and BigPanda's statuses are parsed by the same rule
(``CRIT``, ``crit`` and ``critical`` are one value), and refused with the
same message listing what is accepted; the rule lives here once.
"""

from __future__ import annotations

import enum
from typing import Generic, TypeVar

from .._errors import ValidationError

__all__ = ["Spellings"]

_E = TypeVar("_E", bound=enum.Enum)


class Spellings(Generic[_E]):
    """How an enum's members may be spelt: their values, and ``aliases``, case-insensitively."""

    __slots__ = ("_accepted", "_enum", "_table")

    def __init__(self, members: type[_E], **aliases: _E) -> None:
        self._enum = members
        self._table: dict[str, _E] = {**{m.value: m for m in members}, **aliases}
        values = ", ".join(m.value for m in members)
        self._accepted = f"{values} (or {', '.join(aliases)})"

    def parse(self, value: object, field_name: str) -> _E:
        """The member ``value`` names; a :class:`~alertwire.ValidationError` on ``field_name`` if none."""
        if value.__class__ is str:  # a spelling as accepted, the commonest input: one lookup
            found = self._table.get(value)
            if found is not None:
                return found
        if isinstance(value, self._enum):
            return value
        if isinstance(value, str):
            found = self._table.get(value.strip().lower())
            if found is not None:
                return found
        raise ValidationError(field_name, f"must be one of {self._accepted}; got {value!r:.40}")
