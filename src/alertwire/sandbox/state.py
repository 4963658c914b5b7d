"""The sandbox's memory: alerts as PagerDuty keeps them, plus everything accepted.

The alert rules (protocols.md, "Dedup"):

* a trigger opens an alert for (routing key, dedup key) when none is open;
  a trigger for an open alert (triggered or acknowledged) adds to it;
* acknowledge moves an open alert to ``acknowledged``; resolve moves it to
  ``resolved``, which closes it;
* acknowledge or resolve of an unknown or resolved key is accepted (202) and
  dropped;
* a trigger after resolve opens a *new* alert: the resolved one stays in the
  list, so a test can see that a stale trigger re-opened an incident.

Keys are scoped per routing key. Decisions where PagerDuty is silent: a
trigger on an acknowledged alert adds to it and leaves it acknowledged
(PagerDuty deduplicates it into the open incident); an alert keeps the
summary, severity and source of the trigger that opened it, and counts the
triggers added to it.

Change events and BigPanda alerts are kept as received, and every accepted
request is recorded in arrival order (the last :data:`MAX_LOGGED` of them). Routing keys and tokens are held as
:class:`~alertwire.Secret` and leave this module only as ``…abcd``: the
inspection API and the dashboard can never show a full key. Filtering by key
compares :class:`~alertwire.Secret` values.

One lock guards everything: the server writes from its event loop thread and
the Python API (``Sandbox.alerts()``) reads from the test's thread.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Literal

from .._secret import Secret
from ..wire import IncomingBigPanda, IncomingPagerDuty

__all__ = ["AlertStatus", "Outcome", "SandboxState"]

AlertStatus = Literal["triggered", "acknowledged", "resolved"]
#: What one accepted PagerDuty alert event did to the state.
Outcome = Literal["opened", "added", "acknowledged", "resolved", "dropped", "recorded"]

_PAYLOAD_FIELDS: Final = ("summary", "severity", "source", "component", "group", "class")
#: The arrival log keeps this many requests (oldest dropped first), so a sandbox left
#: running under load does not grow without bound; ``seq`` keeps counting.
MAX_LOGGED: Final = 100_000


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _redacted_body(body: Mapping[str, Any]) -> dict[str, Any]:
    shown = dict(body)
    if "routing_key" in shown:
        shown["routing_key"] = f"…{Secret(str(shown['routing_key'])).last4}"
    return shown


@dataclass(slots=True)
class _Alert:
    id: int
    routing_key: Secret
    dedup_key: str
    status: AlertStatus
    payload: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    triggers: int = 1
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": self.id,
            "routing_key": f"…{self.routing_key.last4}",
            "dedup_key": self.dedup_key,
            "status": self.status,
        }
        for name in _PAYLOAD_FIELDS:
            view[name] = self.payload.get(name)
        view["custom_details"] = self.payload.get("custom_details")
        view["triggers"] = self.triggers
        view["created_at"] = _iso(self.created_at)
        view["updated_at"] = _iso(self.updated_at)
        view["acknowledged_at"] = _iso(self.acknowledged_at)
        view["resolved_at"] = _iso(self.resolved_at)
        return view


@dataclass(frozen=True, slots=True)
class _Record:
    """One accepted request, as the inspection API shows it."""

    seq: int
    api: Literal["events", "change", "bigpanda"]
    received_at: datetime
    key: Secret
    view: dict[str, Any] = field(repr=False)


class SandboxState:
    """Alerts, change events, BigPanda alerts and the arrival log. Thread-safe."""

    def __init__(self, *, now: Callable[[], datetime] = _now, max_logged: int = MAX_LOGGED) -> None:
        self._now = now
        self._max_logged = max_logged
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget everything (the pytest fixture calls this before each test)."""
        with self._lock:
            self._alerts: list[_Alert] = []
            self._open: dict[tuple[Secret, str], _Alert] = {}
            self._log: deque[_Record] = deque(maxlen=self._max_logged)
            self._seq = itertools.count(1)
            self._alert_ids = itertools.count(1)

    # --- writes (from the server) ---------------------------------------

    def record_pagerduty(self, event: IncomingPagerDuty) -> Outcome:
        """Apply one accepted PagerDuty event; returns what it did."""
        with self._lock:
            when = self._now()
            outcome: Outcome = "recorded"
            if event.kind == "alert":
                outcome = self._apply_alert(event, when)
            api: Literal["events", "change"] = "events" if event.kind == "alert" else "change"
            seq = next(self._seq)
            view = {
                "seq": seq,
                "api": api,
                "received_at": _iso(when),
                "routing_key": f"…{event.routing_key.last4}",
                "event_action": event.body.get("event_action"),
                "dedup_key": event.dedup_key,
                "outcome": outcome,
                "body": _redacted_body(event.body),
            }
            self._log.append(_Record(seq, api, when, event.routing_key, view))
            return outcome

    def _apply_alert(self, event: IncomingPagerDuty, when: datetime) -> Outcome:
        assert event.dedup_key is not None
        slot = (event.routing_key, event.dedup_key)
        current = self._open.get(slot)
        action = event.body.get("event_action")
        if action == "trigger":
            if current is not None:
                current.triggers += 1
                current.updated_at = when
                return "added"
            payload = event.body.get("payload")
            alert = _Alert(
                id=next(self._alert_ids),
                routing_key=event.routing_key,
                dedup_key=event.dedup_key,
                status="triggered",
                payload=payload if isinstance(payload, Mapping) else {},
                created_at=when,
                updated_at=when,
            )
            self._alerts.append(alert)
            self._open[slot] = alert
            return "opened"
        if current is None:
            return "dropped"
        current.updated_at = when
        if action == "acknowledge":
            current.status = "acknowledged"
            if current.acknowledged_at is None:
                current.acknowledged_at = when
            return "acknowledged"
        current.status = "resolved"
        current.resolved_at = when
        del self._open[slot]
        return "resolved"

    def record_bigpanda(self, request: IncomingBigPanda) -> None:
        with self._lock:
            when = self._now()
            for alert in request.alerts:
                seq = next(self._seq)
                view = {
                    "seq": seq,
                    "api": "bigpanda",
                    "received_at": _iso(when),
                    "token": f"…{request.token.last4}",
                    "batch": request.batch,
                    "body": dict(alert),
                }
                self._log.append(_Record(seq, "bigpanda", when, request.token, view))

    # --- reads (inspection API, Python API, dashboard) -------------------

    def alerts(self, *, routing_key: Secret | None = None) -> list[dict[str, Any]]:
        """One entry per alert, oldest first (a re-opened key appears twice)."""
        with self._lock:
            return [
                a.view()
                for a in self._alerts
                if routing_key is None or a.routing_key == routing_key
            ]

    def events(self, *, routing_key: Secret | None = None) -> list[dict[str, Any]]:
        """Every accepted request (PagerDuty alerts and changes, BigPanda alerts), in arrival order."""
        return self._records(None, routing_key)

    def changes(self, *, routing_key: Secret | None = None) -> list[dict[str, Any]]:
        return self._records("change", routing_key)

    def bigpanda(self, *, token: Secret | None = None) -> list[dict[str, Any]]:
        return self._records("bigpanda", token)

    def _records(self, api: str | None, key: Secret | None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(r.view)
                for r in self._log
                if (api is None or r.api == api) and (key is None or r.key == key)
            ]
