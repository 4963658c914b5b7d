"""The links and images a PagerDuty event may carry: :class:`Link` and :class:`Image`.

A module of their own so that an event without any (the common case, and
every one-event ``alertwire trigger`` without ``--link``) never creates
these two dataclasses: each costs the CLI's start-up about half a
millisecond (docs/cli.md, "Start-up cost"). :mod:`alertwire.models.pagerduty`
still exports both, loading this module on first access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from .._errors import ValidationError
from .pagerduty import _require_str

__all__ = ["Image", "Link", "images", "links"]

_Part = TypeVar("_Part", "Link", "Image")


def _coerce(cls: type[_Part], value: object, name: str) -> _Part:
    """``cls`` from itself, a bare URL, or a mapping of its fields (absent ones ``None``).

    One rule for :class:`Link` and :class:`Image`: their constructors take
    their fields in declaration order, the first being the URL.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        return cls(value)
    if isinstance(value, Mapping):
        given: list[Any] = [value.get(f.name) for f in fields(cls)]  # checked by cls
        return cls(*given)
    raise ValidationError(
        name, f"items must be {cls.__name__}, mapping or URL, not {type(value).__name__}"
    )


@dataclass(frozen=True, slots=True, init=False)
class Link:
    """A link shown on the alert: ``href`` required, ``text`` optional."""

    href: str
    text: str | None = None

    def __init__(self, href: str, text: str | None = None) -> None:
        if not isinstance(href, str) or not href.strip():
            raise ValidationError("links.href", "is required and must not be blank")
        object.__setattr__(self, "href", href)
        object.__setattr__(self, "text", _require_str(text, "links.text"))

    @classmethod
    def coerce(cls, value: Link | Mapping[str, Any] | str) -> Link:
        """Accept a Link, ``{"href": ..., "text": ...}`` or a bare URL."""
        return _coerce(cls, value, "links")

    def wire(self) -> dict[str, str]:
        return {"href": self.href} if self.text is None else {"href": self.href, "text": self.text}


@dataclass(frozen=True, slots=True, init=False)
class Image:
    """An image shown on the alert: ``src`` must be an https:// URL (PagerDuty's rule)."""

    src: str
    href: str | None = None
    alt: str | None = None

    def __init__(self, src: str, href: str | None = None, alt: str | None = None) -> None:
        if not isinstance(src, str) or not src.strip():
            raise ValidationError("images.src", "is required and must not be blank")
        if not src.lower().startswith("https://"):
            raise ValidationError("images.src", "must be an https:// URL")
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "href", _require_str(href, "images.href"))
        object.__setattr__(self, "alt", _require_str(alt, "images.alt"))

    @classmethod
    def coerce(cls, value: Image | Mapping[str, Any] | str) -> Image:
        """Accept an Image, ``{"src": ..., "href": ..., "alt": ...}`` or a bare URL."""
        return _coerce(cls, value, "images")

    def wire(self) -> dict[str, str]:
        out = {"src": self.src}
        if self.href is not None:
            out["href"] = self.href
        if self.alt is not None:
            out["alt"] = self.alt
        return out


def _parts(cls: type[_Part], values: object, name: str) -> tuple[_Part, ...]:
    """An event's ``links`` or ``images``: a sequence of what :func:`_coerce` takes."""
    if isinstance(values, (str, Mapping)) or not isinstance(values, Iterable):
        raise ValidationError(name, f"must be a sequence of {name}")
    return tuple(_coerce(cls, v, name) for v in values)


def links(values: object) -> tuple[Link, ...]:
    """An event's ``links`` argument (not ``None``, not empty: the caller settles those)."""
    return _parts(Link, values, "links")


def images(values: object) -> tuple[Image, ...]:
    """An event's ``images`` argument (not ``None``, not empty: the caller settles those)."""
    return _parts(Image, values, "images")
