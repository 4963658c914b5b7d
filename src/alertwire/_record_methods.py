"""The ``__eq__``, ``__hash__`` and ``__repr__`` that ``@dataclass`` generates, without compiling them.

Why: ``@dataclass`` writes every method it generates as source text and
compiles it; a frozen dataclass gets five (``__eq__``, ``__hash__``,
``__repr__``, ``__setattr__``, ``__delattr__``), plus ``__init__``. A
one-event ``alertwire trigger`` defines seven public dataclasses
(TriggerAlert, Link, Image, EventResult, RetryPolicy, Request, Response),
and those compilations were the largest part of alertwire's own start-up
(docs/cli.md, "Start-up cost").

A class that passes ``eq=False, repr=False`` to ``@dataclass`` and assigns
these functions in its body instead gets the same methods without their
compilation (``@dataclass`` compiles a method before it looks whether the
class defines one, so defining them alone saves nothing): for a frozen class
three of its five compilations. It stays a dataclass with the same fields
(``fields``, ``replace``, ``asdict``, ``__match_args__`` and frozenness
unchanged); only ``__dataclass_params__`` records ``eq`` and ``repr`` as
false, since the decorator did not write them. The functions behave as the
generated ones do (Python 3.11's; later versions compare field by field,
which differs only for a value unequal to itself, such as a NaN):

* ``__eq__``: the tuples of the ``compare`` fields of two instances of
  exactly the same class, else ``NotImplemented``;
* ``__hash__``: the hash of that tuple (the fields whose ``hash`` is true, or
  ``None`` and ``compare`` true);
* ``__repr__``: ``QualName(name=value!r, ...)`` over the ``repr`` fields,
  ``...`` for an instance already being shown (recursion).

Each class's field names are read once, from its ``__dataclass_fields__``.
tests/project/test_record_methods.py compares them with generated ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from threading import get_ident
from typing import Any

__all__ = ["dataclass_eq", "dataclass_hash", "dataclass_repr", "slot_setters"]

_Getter = Callable[[Any], tuple[Any, ...]]

_compared: dict[type, _Getter] = {}
_hashed: dict[type, _Getter] = {}
_shown: dict[type, tuple[str, ...]] = {}


def _getter(names: list[str]) -> _Getter:
    """A function returning the tuple of these attributes (``attrgetter`` unwraps just one)."""
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    if not names:
        return lambda obj: ()
    return attrgetter(*names)  # a tuple for two or more names


def _compared_values(cls: type) -> _Getter:
    getter = _compared.get(cls)
    if getter is None:
        getter = _compared[cls] = _getter([f.name for f in fields(cls) if f.compare])
    return getter


def dataclass_eq(self: Any, other: object) -> Any:
    """``__eq__`` as ``@dataclass(eq=True)`` generates it."""
    if other.__class__ is self.__class__:
        values = _compared_values(self.__class__)
        return values(self) == values(other)
    return NotImplemented


def dataclass_hash(self: Any) -> int:
    """``__hash__`` as ``@dataclass(eq=True, frozen=True)`` generates it."""
    getter = _hashed.get(self.__class__)
    if getter is None:
        chosen = [f.name for f in fields(self) if (f.compare if f.hash is None else f.hash)]
        getter = _hashed[self.__class__] = _getter(chosen)
    return hash(getter(self))


_running: set[tuple[int, int]] = set()


def dataclass_repr(self: Any) -> str:
    """``__repr__`` as ``@dataclass(repr=True)`` generates it, recursion guard included."""
    key = id(self), get_ident()
    if key in _running:
        return "..."
    _running.add(key)
    try:
        names = _shown.get(self.__class__)
        if names is None:
            names = _shown[self.__class__] = tuple(f.name for f in fields(self) if f.repr)
        shown = ", ".join([f"{name}={getattr(self, name)!r}" for name in names])
        return f"{self.__class__.__qualname__}({shown})"
    finally:
        _running.discard(key)


def slot_setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    """Each field's setter of a frozen ``slots=True`` dataclass, in field order.

    For an ``__init__`` written by hand on a class made per event (a model, an
    outbox row): ``setter(self, value)`` stores into the field's slot, as the
    ``object.__setattr__(self, name, value)`` a frozen class's ``__init__`` calls
    does, without looking the name up in the class at every call (measured: 14
    fields set in 0.82 instead of 1.19 us). Read from the finished class: the
    ``slots=True`` decorator returns a new one.
    """
    return tuple(cls.__dict__[f.name].__set__ for f in fields(cls))
