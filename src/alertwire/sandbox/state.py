"""The sandbox's memory: alerts and incidents as PagerDuty keeps them, plus everything accepted.

The alert rules (docs/sandbox.md, "Alert state"):

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

Every alert belongs to an incident on its routing key's service
(:mod:`.incidents`): opening an alert opens the incident, acknowledge and
resolve move both, whether they come from the Events API or from the REST
API (:meth:`SandboxState.set_incident_status`).

Change events and BigPanda alerts are kept as received, and every accepted
request is recorded in arrival order (the last :data:`MAX_LOGGED` of them). Routing keys and tokens are held as
:class:`~alertwire.Secret` and leave this module only as ``…abcd``: the
inspection API and the dashboard can never show a full key. Filtering by key
compares :class:`~alertwire.Secret` values.

One lock guards everything, alerts and incidents alike: the server writes from
its event loop thread and the Python API (``Sandbox.alerts()``) reads from the
test's thread. The REST routes read through :meth:`SandboxState.read`, which
hands them the :class:`~.incidents.IncidentBook` under that lock.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Literal, TypeVar

from .._secret import Secret
from ..wire import IncomingBigPanda, IncomingPagerDuty
from .incidents import Agent, Incident, IncidentBook, IncidentStatus, Service

__all__ = [
    "AlertStatus",
    "IncidentNotFound",
    "IncidentUpdateRefused",
    "Outcome",
    "SandboxState",
    "StatusChange",
]

T = TypeVar("T")

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


class IncidentNotFound(LookupError):
    """No incident has this id (answered 404)."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(", ".join(ids))
        self.ids = ids


class IncidentUpdateRefused(ValueError):
    """The update makes no sense for the incident as it is (answered 400)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One incident update asked for through the REST API (already shape-checked)."""

    incident_id: str
    status: IncidentStatus | None = None
    title: str | None = None
    urgency: str | None = None
    resolution: str | None = None


@dataclass(slots=True)
class _Alert:
    id: int
    rest_id: str
    routing_key: Secret
    dedup_key: str
    status: AlertStatus
    payload: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    triggers: int = 1
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    incident: Incident | None = field(default=None, repr=False)

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": self.id,
            "alert_id": self.rest_id,
            "incident_id": None if self.incident is None else self.incident.id,
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

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = _now,
        max_logged: int = MAX_LOGGED,
        seed: int | None = None,
    ) -> None:
        self._now = now
        self._max_logged = max_logged
        self._seed = seed
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget everything (the pytest fixture calls this before each test)."""
        with self._lock:
            self._alerts: list[_Alert] = []
            self._alert_of: dict[str, _Alert] = {}  # incident id -> its alert
            self._open: dict[tuple[Secret, str], _Alert] = {}
            self._log: deque[_Record] = deque(maxlen=self._max_logged)
            self._seq = itertools.count(1)
            self._alert_ids = itertools.count(1)
            self._book = IncidentBook(rng=random.Random(self._seed))

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
                rest_id=self._book.new_id(),
                routing_key=event.routing_key,
                dedup_key=event.dedup_key,
                status="triggered",
                payload=payload if isinstance(payload, Mapping) else {},
                created_at=when,
                updated_at=when,
            )
            service = self._book.service_for_key(event.routing_key, when)
            alert.incident = self._book.open(service, alert, when)
            self._alert_of[alert.incident.id] = alert
            self._alerts.append(alert)
            self._open[slot] = alert
            return "opened"
        if current is None:
            return "dropped"
        incident = current.incident
        assert incident is not None
        agent = incident.service.agent
        if action == "acknowledge":
            self._acknowledge(current, agent, when)
            return "acknowledged"
        self._resolve(current, agent, when)
        return "resolved"

    # Alert and incident move together; these are the only places either changes.

    def _acknowledge(self, alert: _Alert, agent: Agent, when: datetime) -> None:
        alert.updated_at = when
        alert.status = "acknowledged"
        if alert.acknowledged_at is None:
            alert.acknowledged_at = when
        if alert.incident is not None:
            self._book.acknowledge(alert.incident, agent, when)

    def _unacknowledge(self, alert: _Alert, agent: Agent, when: datetime) -> None:
        alert.updated_at = when
        alert.status = "triggered"
        alert.acknowledged_at = None
        if alert.incident is not None:
            self._book.unacknowledge(alert.incident, agent, when)

    def _resolve(
        self, alert: _Alert, agent: Agent, when: datetime, note: str | None = None
    ) -> None:
        alert.updated_at = when
        alert.status = "resolved"
        alert.resolved_at = when
        self._open.pop((alert.routing_key, alert.dedup_key), None)
        if alert.incident is not None:
            self._book.resolve(alert.incident, agent, when, note)

    # --- REST writes ------------------------------------------------------

    def set_incident_status(
        self,
        changes: list[StatusChange],
        agent_email: str | None,
        render: Callable[[Incident], T],
    ) -> list[T]:
        """Apply REST updates all or nothing; returns the incidents ``render``-ed, in request order.

        Rendering happens under the same lock, so the answer shows exactly the
        state this update left (no reset or other write can come between).

        Every change is checked before any is applied, so a bulk update with
        one unknown id or one refused transition changes nothing.
        ``agent_email`` is the ``From`` user; ``None`` means the token's own
        user (an OAuth token), shown as the on-call user.
        """
        with self._lock:
            book = self._book
            found = [(c, book.incident(c.incident_id)) for c in changes]
            missing = [c.incident_id for c, incident in found if incident is None]
            if missing:
                raise IncidentNotFound(missing)
            errors: list[str] = []
            seen: set[str] = set()
            for change, incident in found:
                if change.incident_id in seen:
                    # Checked once, applied twice, a repeat could act on what the first resolved.
                    errors.append(f"Incident {change.incident_id}: listed more than once")
                seen.add(change.incident_id)
                if incident is not None and incident.status == "resolved":
                    errors.append(f"Incident {change.incident_id}: Incident Already Resolved")
            if errors:
                raise IncidentUpdateRefused(errors)
            when = self._now()
            user = book.policy.oncall if agent_email is None else book.user(agent_email)
            done: list[Incident] = []
            for change, incident in found:
                assert incident is not None
                self._apply_rest_change(incident, change, user.agent, when)
                done.append(incident)
            return [render(incident) for incident in done]

    def _apply_rest_change(
        self, incident: Incident, change: StatusChange, agent: Agent, when: datetime
    ) -> None:
        if change.title is not None:
            incident.title = change.title
            incident.updated_at = when
        if change.urgency is not None:
            incident.urgency = change.urgency
            incident.updated_at = when
        alert = self._alert_of[incident.id]  # every sandbox incident has exactly one alert
        if change.status == "acknowledged":
            self._acknowledge(alert, agent, when)
        elif change.status == "triggered" and incident.status == "acknowledged":
            self._unacknowledge(alert, agent, when)
        elif change.status == "resolved":
            self._resolve(alert, agent, when, change.resolution)

    def add_service(self, name: str, routing_key: Secret | None) -> dict[str, Any]:
        """Name the service of a routing key before its first event (see :mod:`.incidents`)."""
        with self._lock:
            service = self._book.add_service(name, routing_key, self._now())
            return _service_view(service)

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

    def alerts(
        self, *, routing_key: Secret | None = None, last: int | None = None
    ) -> list[dict[str, Any]]:
        """One entry per alert, oldest first (a re-opened key appears twice); with ``last``,
        only the newest that many."""
        with self._lock:
            chosen = _newest(
                self._alerts, lambda a: routing_key is None or a.routing_key == routing_key, last
            )
            return [a.view() for a in chosen]

    def incidents(
        self, *, routing_key: Secret | None = None, last: int | None = None
    ) -> list[dict[str, Any]]:
        """One entry per incident, oldest first: the Python API's plain view; with ``last``,
        only the newest that many."""
        with self._lock:
            chosen = _newest(
                self._book.incidents,
                lambda i: routing_key is None or i.service.routing_key == routing_key,
                last,
            )
            return [_incident_view(i) for i in chosen]

    def summary(self) -> dict[str, Any]:
        """How many of each there are, counted without building a view of any.

        What the dashboard shows in its counters. It once fetched every event
        (up to 100,000, bodies included) each second only to count them, and
        every alert and incident to count and list them: with 20,000 alerts,
        47 MB a refresh, built on the sandbox's event loop (0.8 s of every
        second), which delayed the answers of the very clients under test.
        """
        with self._lock:
            statuses = Counter(a.status for a in self._alerts)
            apis = Counter(r.api for r in self._log)
            return {
                "alerts": {
                    s: statuses.get(s, 0) for s in ("triggered", "acknowledged", "resolved")
                },
                "incidents": len(self._book.incidents),
                "changes": apis.get("change", 0),
                "bigpanda": apis.get("bigpanda", 0),
                "events": len(self._log),
            }

    def services(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_service_view(s) for s in self._book.services]

    def read(self, reader: Callable[[IncidentBook], T]) -> T:
        """Run ``reader`` on the incident book under the state's lock (the REST routes' view)."""
        with self._lock:
            return reader(self._book)

    def events(
        self, *, routing_key: Secret | None = None, last: int | None = None
    ) -> list[dict[str, Any]]:
        """Every accepted request (PagerDuty alerts and changes, BigPanda alerts), in arrival order."""
        return self._records(None, routing_key, last)

    def changes(
        self, *, routing_key: Secret | None = None, last: int | None = None
    ) -> list[dict[str, Any]]:
        return self._records("change", routing_key, last)

    def bigpanda(
        self, *, token: Secret | None = None, last: int | None = None
    ) -> list[dict[str, Any]]:
        return self._records("bigpanda", token, last)

    def _records(
        self, api: str | None, key: Secret | None, last: int | None
    ) -> list[dict[str, Any]]:
        with self._lock:
            chosen = _newest(
                self._log,
                lambda r: (api is None or r.api == api) and (key is None or r.key == key),
                last,
            )
            return [dict(r.view) for r in chosen]


def _newest(items: Sequence[T], keep: Callable[[T], bool], last: int | None) -> list[T]:
    """The items ``keep`` accepts, oldest first; with ``last``, only the newest that many
    (found from the end, so a short listing of a long history costs what it shows)."""
    if last is None:
        return [item for item in items if keep(item)]
    chosen = list(itertools.islice((item for item in reversed(items) if keep(item)), last))
    chosen.reverse()
    return chosen


def _service_view(service: Service) -> dict[str, Any]:
    key = service.routing_key
    return {
        "id": service.id,
        "name": service.name,
        "routing_key": None if key is None else f"…{key.last4}",
        "escalation_policy": service.escalation_policy.name,
        "created_at": _iso(service.created_at),
    }


def _incident_view(incident: Incident) -> dict[str, Any]:
    key = incident.service.routing_key
    return {
        "id": incident.id,
        "number": incident.number,
        "title": incident.title,
        "status": incident.status,
        "urgency": incident.urgency,
        "incident_key": incident.incident_key,
        "service_id": incident.service.id,
        "service": incident.service.name,
        "routing_key": None if key is None else f"…{key.last4}",
        "alerts": len(incident.alerts),
        "triggers": sum(a.triggers for a in incident.alerts),
        "log_entries": [e.kind for e in incident.log],
        "created_at": _iso(incident.created_at),
        "updated_at": _iso(incident.updated_at),
        "resolved_at": _iso(incident.resolved_at),
    }
