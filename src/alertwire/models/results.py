"""What a successful send returns."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EventResult"]


@dataclass(frozen=True, slots=True)
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

    @property
    def ok(self) -> bool:
        return True
