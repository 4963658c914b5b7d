"""A PagerDuty change event (a deploy, a config push): :class:`Change`.

Apart from :mod:`alertwire.models.pagerduty` so that a one-event
``alertwire trigger`` never creates this dataclass (each costs its start-up
about half a millisecond, docs/cli.md "Start-up cost"); that module still
exports it, loading this one on first access.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from .pagerduty import (
    Link,
    _custom_details,
    _Event,
    _parts,
    _raise_problems,
    _require_str,
    _shorten_summary,
    _wire_bytes,
    default_source,
    plain_details,
    read_only_details,
    wire_timestamp,
)
from .pagerduty_rules import check_change_event

__all__ = ["Change"]


@dataclass(frozen=True, slots=True, init=False)
class Change(_Event):
    """A change event (a deploy, a config push): context for responders, never a page."""

    summary: str
    source: str
    timestamp: str | None
    #: Read-only, and what is sent (``TriggerAlert.custom_details`` says why).
    custom_details: Mapping[str, Any] | str | None
    links: tuple[Link, ...]
    _wire: bytes = field(repr=False, compare=False, init=False)

    kind: ClassVar[Literal["alert", "change"]] = "change"

    def __init__(
        self,
        summary: str,
        *,
        source: str | None = None,
        timestamp: datetime | str | None = None,
        custom_details: Mapping[str, Any] | str | None = None,
        links: Sequence[Link | Mapping[str, Any] | str] | None = (),
    ) -> None:
        object.__setattr__(self, "summary", _shorten_summary(summary))
        object.__setattr__(
            self, "source", default_source() if source is None else _require_str(source, "source")
        )
        object.__setattr__(self, "timestamp", wire_timestamp(timestamp))
        object.__setattr__(self, "custom_details", _custom_details(custom_details))
        object.__setattr__(self, "links", _parts(Link, links, "links"))
        payload: dict[str, Any] = {"summary": self.summary, "source": self.source}
        if self.timestamp is not None:
            payload["timestamp"] = self.timestamp
        if self.custom_details is not None:
            payload["custom_details"] = self.custom_details
        wire: dict[str, Any] = {"payload": payload}
        if self.links:
            wire["links"] = [link.wire() for link in self.links]
        _raise_problems(check_change_event(wire, check_key=False))
        plain = plain_details(self.custom_details)
        object.__setattr__(self, "_wire", _wire_bytes(wire, no_floats=plain))
        details = read_only_details(self.custom_details, self._wire, plain=plain)
        object.__setattr__(self, "custom_details", details)
