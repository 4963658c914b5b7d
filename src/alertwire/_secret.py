"""Secret: routing keys and tokens as a type that cannot leak by accident.

A key held as a plain ``str`` ends up in a log line, a traceback or a repr
sooner or later (Apprise logged routing keys at debug level). Holding it as a
:class:`Secret` makes every accidental rendering show ``Secret('…abcd')``;
only an explicit :meth:`Secret.reveal` gives the value, and the few places
that call it (building a request body, storing a row) are easy to audit with
``grep reveal``.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["Secret", "credential", "redact"]

_SHOWN: Final = 4


class Secret:
    """A credential whose ``repr``/``str`` show only its last four characters."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The value itself: call only where it must go on the wire or to disk."""
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the value replaced by its safe rendering.

        For text we did not write (a server's error body that quotes our
        request): the one place a key could reach a message unasked.
        """
        return (
            text.replace(self._value, repr(self)) if self._value and self._value in text else text
        )

    @property
    def last4(self) -> str:
        return self._value[-_SHOWN:] if len(self._value) > _SHOWN * 2 else ""

    def __repr__(self) -> str:
        return f"Secret('…{self.last4}')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # OpenSSL's hashlib behind it: loaded when first compared, not at start-up

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("alertwire.Secret", self._value))

    def __copy__(self) -> Secret:
        return self  # immutable: copying settings that hold a key must not trip __reduce__

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled: store it deliberately with reveal()")


def credential(value: object, field: str) -> Secret:
    """``value`` as a :class:`Secret`, or a :class:`~alertwire.ValidationError` naming
    ``field`` when it is not a string at all.

    Every client's key or token goes through here before its own rules: given
    ``None`` (``PagerDuty(os.environ.get("PD_KEY"))`` with the variable unset)
    it raised ``Secret``'s own TypeError, "a Secret holds a str, not NoneType",
    which names neither the setting nor the rule.
    """
    if isinstance(value, (str, Secret)):
        return Secret(value)
    from ._errors import ValidationError

    if value is None:
        raise ValidationError(field, "is required and must not be blank, got None")
    raise ValidationError(field, f"must be a string, not {type(value).__name__}")


def redact(value: str) -> str:
    """The display form of a raw key string: ``…abcd`` (nothing at all for short ones)."""
    return f"…{Secret(value).last4}"
