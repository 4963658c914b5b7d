"""Acknowledge and resolve: the PagerDuty events that name an open alert by its ``dedup_key``.

Apart from :mod:`alertwire.models.pagerduty` so that a one-event
``alertwire trigger`` never creates these dataclasses (each costs its start-up
about half a millisecond, docs/cli.md "Start-up cost"); that module still
exports both, loading this one on first access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .pagerduty import _dumps, _Event, _raise_problems, _require_str
from .pagerduty_rules import check_alert_event

__all__ = ["AcknowledgeAlert", "ResolveAlert"]


@dataclass(frozen=True, slots=True, init=False)
class _KeyedAction(_Event):
    dedup_key: str
    _wire: bytes = field(repr=False, compare=False, init=False)

    def __init__(self, dedup_key: str) -> None:
        object.__setattr__(self, "dedup_key", _require_str(dedup_key, "dedup_key", optional=False))
        wire = {"event_action": self.event_action, "dedup_key": self.dedup_key}
        _raise_problems(check_alert_event(wire, check_key=False))
        object.__setattr__(self, "_wire", _dumps(wire, no_floats=True))  # strings only


@dataclass(frozen=True, slots=True, init=False)
class AcknowledgeAlert(_KeyedAction):
    """Acknowledge the open alert with this ``dedup_key`` (dropped by PagerDuty if none is open)."""

    event_action: ClassVar[str] = "acknowledge"


@dataclass(frozen=True, slots=True, init=False)
class ResolveAlert(_KeyedAction):
    """Resolve the open alert with this ``dedup_key`` (dropped by PagerDuty if none is open)."""

    event_action: ClassVar[str] = "resolve"
