"""A mapping an event holds and nobody changes: ``custom_details``, BigPanda ``tags``.

An event's wire bytes are made once, at construction, so a mapping changed
afterwards would show in the repr and never reach the service. Why a ``dict``
subclass whose changing methods raise, and not ``types.MappingProxyType``:
a proxy cannot be pickled or deep-copied, and with it neither could any event
holding one (``copy.deepcopy`` is what frameworks such as Airflow's
templating do to arguments; ``pickle`` is what a process pool does). Being a
``dict``, it also serialises, compares and reads as the dict it was made
from.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

__all__ = ["ReadOnlyDict"]

V = TypeVar("V")


class ReadOnlyDict(dict[str, V]):
    """A ``dict`` whose changing methods raise ``TypeError``; copies and pickles as itself."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            "an event's mapping is read-only (it was turned into the body when the event"
            " was made); build a new event, e.g. dataclasses.replace(event, custom_details=...)"
        )

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        # dict's own reduction would rebuild the mapping item by item through __setitem__.
        return (type(self), (dict(self),))

    def __copy__(self) -> ReadOnlyDict[V]:
        return self  # nothing can change it: a copy would be the same

    def __deepcopy__(self, memo: dict[int, Any]) -> ReadOnlyDict[V]:
        import copy

        return type(self)(copy.deepcopy(dict(self), memo))
