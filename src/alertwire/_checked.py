"""Checked: a client setting that may be assigned after construction, checked as the
constructor checks it.

The official PagerDuty client's sessions take ``session.timeout = 30`` and the like;
ours once accepted such assignments and ignored them (senders and headers were made
from the constructor's values), or took a plain string as a key and then showed it
in ``repr()`` and failed every send. The clients' shared settings (``base_url``,
``timeout``, ``retry``) and the event clients' keys are these descriptors (the REST
session's token, ``oauth`` and ``default_from`` are properties that also remake its
headers): the value goes through the same check function the constructor uses (the rules stay
in one place), is stored as ``_<name>``, and ``changed(client)`` runs after, for the
settings other objects were made from (docs/rest.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

__all__ = ["Checked"]

T = TypeVar("T")


class Checked(Generic[T]):
    """``name = Checked(check)``: reads ``_name``; an assignment stores ``check(value)``."""

    def __init__(
        self, check: Callable[[Any], T], *, changed: Callable[[Any], None] | None = None
    ) -> None:
        self._check = check
        self._changed = changed
        self._stored = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._stored = f"_{name}"

    @overload
    def __get__(self, client: None, owner: type | None = None) -> Checked[T]: ...

    @overload
    def __get__(self, client: object, owner: type | None = None) -> T: ...

    def __get__(self, client: object | None, owner: type | None = None) -> T | Checked[T]:
        if client is None:
            return self
        value: T = getattr(client, self._stored)
        return value

    def __set__(self, client: object, value: Any) -> None:
        setattr(client, self._stored, self._check(value))
        if self._changed is not None:
            self._changed(client)
