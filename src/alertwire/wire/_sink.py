"""What the wire routes hand over, and what a sink may answer instead of accepting.

The routes (:mod:`alertwire.wire._routes`) read, parse and validate; a *sink*
decides what happens to a valid event: the sandbox keeps it in memory, the
relay's ingest commits it to the outbox. A sink either returns (the event is
accepted: the routes answer 202/201) or raises a :class:`SinkRefused`, whose
status the routes answer with. Nothing else about HTTP leaks into a sink.

The routes hand a sink everything it keeps, read once: the routing key or
token (as :class:`~alertwire.Secret`), the dedup key, the parsed fields and
the exact bytes to store. A sink never parses the body again (the outbox
stores these parts through :meth:`~alertwire.outbox.Outbox.prepare_incoming_pagerduty`
and :meth:`~alertwire.outbox.Outbox.prepare_incoming_bigpanda`), so there are
no two readings of one event that could disagree.

Why the routes, not the sink, assign a missing dedup key: the key must be the
one answered to the client *and* the one delivered later, so it is fixed
before the sink sees the event, and :attr:`IncomingPagerDuty.wire` already
carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from .._secret import Secret

__all__ = [
    "IncomingBigPanda",
    "IncomingPagerDuty",
    "Sink",
    "SinkForbidden",
    "SinkRateLimited",
    "SinkRefused",
    "SinkUnavailable",
]

PagerDutyKind = Literal["alert", "change"]


@dataclass(frozen=True, slots=True)
class IncomingPagerDuty:
    """A valid PagerDuty event as received.

    ``body`` is the parsed JSON (an alert's ``dedup_key`` filled in when the
    client sent none); ``raw`` is the client's bytes, untouched; ``wire`` is
    what to forward: ``raw`` itself, or ``raw`` with the assigned
    ``"dedup_key"`` spliced in, so no field is dropped or rewritten.
    ``dedup_key`` is ``None`` for change events.
    """

    kind: PagerDutyKind
    routing_key: Secret
    body: Mapping[str, Any] = field(repr=False)
    raw: bytes = field(repr=False)
    wire: bytes = field(repr=False)
    dedup_key: str | None
    dedup_key_assigned: bool = False


@dataclass(frozen=True, slots=True)
class IncomingBigPanda:
    """A valid BigPanda request: one alert or a batch.

    ``alerts`` holds every alert as a complete single-alert body (a batch's
    ``app_key`` copied into each item), in the order sent; ``bodies`` holds
    the bytes to store for each of them, in the same order (a single alert:
    ``raw`` itself; a batch item: its complete body serialised); ``raw`` is
    the client's bytes as received; ``batch`` says which form it came in.
    """

    token: Secret
    app_key: str
    alerts: tuple[Mapping[str, Any], ...] = field(repr=False)
    raw: bytes = field(repr=False)
    bodies: tuple[bytes, ...] = field(repr=False)
    batch: bool = False

    def __post_init__(self) -> None:
        if len(self.bodies) != len(self.alerts):  # a programming error, never client input
            raise ValueError("IncomingBigPanda needs one body per alert")


class SinkRefused(Exception):  # a refusal, not an error in the server
    """The sink will not take the event; the routes answer ``status`` with ``message``.

    ``retry_after`` (seconds) becomes a ``Retry-After`` header when set.
    Messages must never contain a key or token: they go to the client verbatim.
    """

    status: int = 503
    label: str = "refused"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.message = message
        self.retry_after = retry_after
        super().__init__(message)


class SinkUnavailable(SinkRefused):
    """503: the event could not be kept (outbox not writable...); the client should retry."""

    status = 503
    label = "unavailable"


class SinkRateLimited(SinkRefused):
    """429: too many events for this key."""

    status = 429
    label = "throttled"


class SinkForbidden(SinkRefused):
    """403: this key or token is not allowed here (an ingest allow-list)."""

    status = 403
    label = "forbidden"


@runtime_checkable
class Sink(Protocol):
    """Where accepted events go. Both methods return only once the event is kept."""

    async def accept_pagerduty(self, event: IncomingPagerDuty) -> None: ...

    async def accept_bigpanda(self, request: IncomingBigPanda) -> None: ...
