"""What a successful send returns."""

from __future__ import annotations

from dataclasses import dataclass

from .._record_methods import dataclass_eq, dataclass_hash, dataclass_repr

__all__ = ["EventResult"]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class EventResult:
    """The service accepted the event.

    For PagerDuty, 202 means *enqueued*, not "incident created": ``status`` and
    ``message`` are PagerDuty's own (``success`` / ``Event processed``).
    ``dedup_key`` is the key the alert lives under (``None`` for change events
    and BigPanda alerts).
    """

    status: str
    message: str
    dedup_key: str | None
    http_status: int

    # eq=False, repr=False above and these instead: the same methods, not compiled at import
    # (alertwire._record_methods says why; docs/cli.md, "Start-up cost", the figures).
    __eq__ = dataclass_eq
    __hash__ = dataclass_hash
    __repr__ = dataclass_repr

    @property
    def ok(self) -> bool:
        return True
