"""Services, incidents and their log entries, kept the way PagerDuty keeps them.

This is the REST half of the sandbox's one state (:mod:`.state` holds the
lock and the alerts, and calls in here). The rules, as docs/sandbox.md
describes them:

* every routing key belongs to one *service*. A key the sandbox has not seen
  gets a service of its own on its first event (named ``Service …abcd``),
  so nothing needs configuring; :meth:`IncidentBook.add_service` names one
  in advance;
* a trigger that opens an alert also opens an *incident* on that service:
  ``incident_key`` is the dedup key, ``title`` the summary, ``urgency``
  ``high`` for ``critical``/``error`` and ``low`` for ``warning``/``info``
  (PagerDuty's "based on severity" urgency rule); numbers count up from 1;
* more triggers with the same dedup key are deduplicated into the same alert,
  as PagerDuty does: the incident keeps one alert, whose ``triggers`` count
  grows;
* acknowledge and resolve, from the Events API or the REST API, move the
  incident and its alert together; each change writes a log entry
  (``trigger_log_entry``, ``acknowledge_log_entry``, ``resolve_log_entry``,
  ``unacknowledge_log_entry``);
* a resolved incident stays resolved: a later trigger with the same key opens a
  new incident. PagerDuty's REST API can re-open a resolved incident; the
  sandbox refuses that with PagerDuty's "Incident Already Resolved".

Every service uses one escalation policy, ``Default``, whose only level has
one permanent on-call user, ``Sandbox On-Call``: a fixed, plausible answer to
"who is on call", and the assignee of every open incident.

Ids look like PagerDuty's (``P`` and six upper-case letters or digits; log
entries ``Q`` and thirteen) and are random, so tests cannot come to rely on
them. Nothing here locks: the caller holds :class:`.state.SandboxState`'s lock.
"""

from __future__ import annotations

import itertools
import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from .._secret import Secret

__all__ = [
    "ONCALL_EMAIL",
    "ONCALL_NAME",
    "URGENCY_BY_SEVERITY",
    "Agent",
    "EscalationPolicy",
    "Incident",
    "IncidentAlert",
    "IncidentBook",
    "IncidentStatus",
    "LogEntry",
    "Service",
    "User",
]

IncidentStatus = Literal["triggered", "acknowledged", "resolved"]
LogKind = Literal["trigger", "acknowledge", "unacknowledge", "resolve"]

#: The urgency an incident gets from the severity of the trigger that opened it.
URGENCY_BY_SEVERITY: Final[Mapping[str, str]] = {
    "critical": "high",
    "error": "high",
    "warning": "low",
    "info": "low",
}
ONCALL_NAME: Final = "Sandbox On-Call"
ONCALL_EMAIL: Final = "oncall@sandbox.alertwire.invalid"
DEFAULT_POLICY_NAME: Final = "Default"

_ID_ALPHABET: Final = string.ascii_uppercase + string.digits


class IncidentAlert(Protocol):
    """What an incident needs to know of its alert (the alert lives in :mod:`.state`)."""

    @property
    def rest_id(self) -> str: ...
    @property
    def dedup_key(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def resolved_at(self) -> datetime | None: ...
    @property
    def triggers(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Agent:
    """Who did something: a service (through the Events API) or a user (through REST)."""

    kind: Literal["service", "user"]
    id: str
    summary: str


@dataclass(slots=True)
class User:
    id: str
    name: str
    email: str

    @property
    def agent(self) -> Agent:
        return Agent("user", self.id, self.name)


@dataclass(slots=True)
class EscalationPolicy:
    id: str
    name: str
    oncall: User


@dataclass(slots=True)
class Service:
    id: str
    name: str
    routing_key: Secret | None
    integration_id: str
    escalation_policy: EscalationPolicy
    created_at: datetime
    last_incident_at: datetime | None = None

    @property
    def agent(self) -> Agent:
        return Agent("service", self.id, self.name)


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: str
    kind: LogKind
    created_at: datetime
    agent: Agent
    channel: str
    note: str | None = None


@dataclass(slots=True)
class Incident:
    id: str
    number: int
    title: str
    urgency: str
    incident_key: str
    service: Service
    created_at: datetime
    updated_at: datetime
    status: IncidentStatus = "triggered"
    last_status_change_at: datetime | None = None
    last_status_change_by: Agent | None = None
    resolved_at: datetime | None = None
    acknowledgements: list[tuple[datetime, Agent]] = field(default_factory=list)
    alerts: list[IncidentAlert] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"


class IncidentBook:
    """Services, users, incidents; the caller serialises access."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._issued: set[str] = set()
        self._numbers = itertools.count(1)
        self.services: list[Service] = []
        self.incidents: list[Incident] = []
        self._service_by_id: dict[str, Service] = {}
        self._service_by_key: dict[Secret, Service] = {}
        self._incident_by_id: dict[str, Incident] = {}
        self._users: dict[str, User] = {}
        oncall = self.user(ONCALL_EMAIL, name=ONCALL_NAME)
        self.policy = EscalationPolicy(self.new_id(), DEFAULT_POLICY_NAME, oncall)

    def new_id(self, prefix: str = "P", length: int = 6) -> str:
        while True:
            candidate = prefix + "".join(self._rng.choices(_ID_ALPHABET, k=length))
            if candidate not in self._issued:
                self._issued.add(candidate)
                return candidate

    # --- services and users ----------------------------------------------

    def add_service(self, name: str, routing_key: Secret | None, when: datetime) -> Service:
        if routing_key is not None and routing_key in self._service_by_key:
            raise ValueError(
                f"routing key …{routing_key.last4} already belongs to service"
                f" {self._service_by_key[routing_key].name!r}"
            )
        service = Service(
            id=self.new_id(),
            name=name,
            routing_key=routing_key,
            integration_id=self.new_id(),
            escalation_policy=self.policy,
            created_at=when,
        )
        self.services.append(service)
        self._service_by_id[service.id] = service
        if routing_key is not None:
            self._service_by_key[routing_key] = service
        return service

    def service_for_key(self, routing_key: Secret, when: datetime) -> Service:
        """The key's service, made on first use so any key works without set-up."""
        service = self._service_by_key.get(routing_key)
        if service is None:
            service = self.add_service(f"Service …{routing_key.last4}", routing_key, when)
        return service

    def service(self, service_id: str) -> Service | None:
        return self._service_by_id.get(service_id)

    def user(self, email: str, *, name: str | None = None) -> User:
        """The user with this email, made on first use (the sandbox knows anyone who asks)."""
        key = email.strip().lower()
        user = self._users.get(key)
        if user is None:
            user = User(self.new_id(), name or email.strip(), email.strip())
            self._users[key] = user
        return user

    def users(self) -> list[User]:
        return list(self._users.values())

    # --- incidents -------------------------------------------------------

    def incident(self, incident_id: str) -> Incident | None:
        return self._incident_by_id.get(incident_id)

    def open(self, service: Service, alert: IncidentAlert, when: datetime) -> Incident:
        """A new incident for an alert that just opened."""
        severity = str(alert.payload.get("severity", "error"))
        incident = Incident(
            id=self.new_id(),
            number=next(self._numbers),
            title=str(alert.payload.get("summary", "")),
            urgency=URGENCY_BY_SEVERITY.get(severity, "high"),
            incident_key=alert.dedup_key,
            service=service,
            created_at=when,
            updated_at=when,
            last_status_change_at=when,
            last_status_change_by=service.agent,
            alerts=[alert],
        )
        incident.log.append(self._entry("trigger", when, service.agent))
        self.incidents.append(incident)
        self._incident_by_id[incident.id] = incident
        service.last_incident_at = when
        return incident

    def acknowledge(self, incident: Incident, agent: Agent, when: datetime) -> None:
        self._change(incident, "acknowledged", agent, when)
        incident.acknowledgements.append((when, agent))
        incident.log.append(self._entry("acknowledge", when, agent))

    def unacknowledge(self, incident: Incident, agent: Agent, when: datetime) -> None:
        self._change(incident, "triggered", agent, when)
        incident.acknowledgements.clear()
        incident.log.append(self._entry("unacknowledge", when, agent))

    def resolve(
        self, incident: Incident, agent: Agent, when: datetime, note: str | None = None
    ) -> None:
        self._change(incident, "resolved", agent, when)
        incident.resolved_at = when
        incident.acknowledgements.clear()
        incident.log.append(self._entry("resolve", when, agent, note))

    @staticmethod
    def _change(incident: Incident, status: IncidentStatus, agent: Agent, when: datetime) -> None:
        incident.status = status
        incident.updated_at = when
        incident.last_status_change_at = when
        incident.last_status_change_by = agent

    def _entry(
        self, kind: LogKind, when: datetime, agent: Agent, note: str | None = None
    ) -> LogEntry:
        # PagerDuty's channel types: "api" for a service's event, "website" for a user.
        channel = "api" if agent.kind == "service" else "website"
        return LogEntry(self.new_id("Q", 13), kind, when, agent, channel, note)
