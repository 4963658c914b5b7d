"""PagerDuty's JSON for the sandbox's services, incidents, alerts, log entries and on-calls.

The shapes follow PagerDuty's published OpenAPI schema (the tests validate
every answer against its response schemas): every object carries ``id``,
``type``, ``summary``, ``self`` and ``html_url``; references to other
objects are ``{"id", "type": "<kind>_reference", "summary", "self",
"html_url"}``. ``self`` is the sandbox's own URL for the object, so a client
that follows it (the official client's ``rput(incident, ...)`` does) stays
on the sandbox; ``html_url`` is the object's page under the dashboard,
``/dashboard/<plural>/<id>`` (an alert's: its incident's page,
``#alert-<id>``), which every object has (:mod:`._object_pages`). Objects the
sandbox does not serve over REST (users, escalation policies) still get a
``self`` under the sandbox's URL, which answers 404.

Times are UTC with a ``Z``, to the second, as PagerDuty writes them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from .incidents import (
    Agent,
    EscalationPolicy,
    Incident,
    IncidentAlert,
    LogEntry,
    Service,
    User,
)

__all__ = ["Links", "alert_json", "incident_json", "log_entry_json", "oncall_json", "service_json"]

_PLURAL: Final = {
    "incident": "incidents",
    "service": "services",
    "user": "users",
    "escalation_policy": "escalation_policies",
    "log_entry": "log_entries",
}
_LOG_SUMMARY: Final = {
    "trigger": "Triggered through the API",
    "acknowledge": "Acknowledged",
    "unacknowledge": "Unacknowledged",
    "resolve": "Resolved",
}


def when(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Links:
    """Where the sandbox is, as the client reached it (``http(s)://host:port``)."""

    base_url: str

    def api(self, kind: str, object_id: str) -> str:
        return f"{self.base_url}/{_PLURAL[kind]}/{object_id}"

    def html(self, kind: str, object_id: str) -> str:
        """The object's page (:mod:`._object_pages`), not an anchor on the dashboard:
        that lists only the newest incidents, and no services, users or policies."""
        return f"{self.base_url}/dashboard/{_PLURAL[kind]}/{object_id}"

    def reference(self, kind: str, object_id: str, summary: str) -> dict[str, Any]:
        return {
            "id": object_id,
            "type": f"{kind}_reference",
            "summary": summary,
            "self": self.api(kind, object_id),
            "html_url": self.html(kind, object_id),
        }

    def agent(self, agent: Agent) -> dict[str, Any]:
        return self.reference(agent.kind, agent.id, agent.summary)

    def service_ref(self, service: Service) -> dict[str, Any]:
        return self.reference("service", service.id, service.name)

    def policy_ref(self, policy: EscalationPolicy) -> dict[str, Any]:
        return self.reference("escalation_policy", policy.id, policy.name)

    def user_ref(self, user: User) -> dict[str, Any]:
        return self.reference("user", user.id, user.name)

    def incident_ref(self, incident: Incident) -> dict[str, Any]:
        return self.reference("incident", incident.id, _incident_summary(incident))


def _incident_summary(incident: Incident) -> str:
    return f"[#{incident.number}] {incident.title}"


def _alert_status(alert: IncidentAlert) -> str:
    # PagerDuty's alerts are triggered or resolved; acknowledging is the incident's.
    return "resolved" if alert.status == "resolved" else "triggered"


def service_json(service: Service, links: Links, open_statuses: Collection[str]) -> dict[str, Any]:
    """``open_statuses``: statuses of the service's open incidents (they set its ``status``)."""
    status = (
        "critical"
        if "triggered" in open_statuses
        else "warning"
        if "acknowledged" in open_statuses
        else "active"
    )
    value: dict[str, Any] = {
        "id": service.id,
        "type": "service",
        "summary": service.name,
        "self": links.api("service", service.id),
        "html_url": links.html("service", service.id),
        "name": service.name,
        "description": "Made by the alertwire sandbox",
        "auto_resolve_timeout": None,
        "acknowledgement_timeout": None,
        "created_at": when(service.created_at),
        "status": status,
        "escalation_policy": links.policy_ref(service.escalation_policy),
        "teams": [],
        "integrations": [
            {
                "id": service.integration_id,
                "type": "generic_events_api_inbound_integration_reference",
                "summary": "Events API v2",
                "self": f"{links.api('service', service.id)}/integrations/{service.integration_id}",
                "html_url": links.html("service", service.id),
            }
        ],
        "alert_creation": "create_alerts_and_incidents",
        "incident_urgency_rule": {"type": "constant", "urgency": "severity_based"},
    }
    if service.last_incident_at is not None:
        value["last_incident_timestamp"] = when(service.last_incident_at)
    return value


def incident_json(incident: Incident, links: Links) -> dict[str, Any]:
    alerts = incident.alerts
    resolved = sum(1 for a in alerts if a.status == "resolved")
    first_trigger = incident.log[0]
    oncall = incident.service.escalation_policy.oncall
    return {
        "id": incident.id,
        "type": "incident",
        "summary": _incident_summary(incident),
        "self": links.api("incident", incident.id),
        "html_url": links.html("incident", incident.id),
        "incident_number": incident.number,
        "title": incident.title,
        "created_at": when(incident.created_at),
        "updated_at": when(incident.updated_at),
        "status": incident.status,
        "incident_key": incident.incident_key,
        "service": links.service_ref(incident.service),
        "assignments": []
        if incident.status == "resolved"
        else [{"at": when(incident.created_at), "assignee": links.user_ref(oncall)}],
        "assigned_via": "escalation_policy",
        "last_status_change_at": when(incident.last_status_change_at),
        "last_status_change_by": None
        if incident.last_status_change_by is None
        else links.agent(incident.last_status_change_by),
        "resolved_at": when(incident.resolved_at),
        "first_trigger_log_entry": _log_ref(first_trigger, incident, links),
        "alert_counts": {
            "all": len(alerts),
            "triggered": len(alerts) - resolved,
            "resolved": resolved,
        },
        "is_mergeable": True,
        "incident_type": {"name": "incident_default"},
        "escalation_policy": links.policy_ref(incident.service.escalation_policy),
        "teams": [],
        "pending_actions": [],
        "acknowledgements": [
            {"at": when(at), "acknowledger": links.agent(agent)}
            for at, agent in incident.acknowledgements
        ],
        "alert_grouping": None,
        "priority": None,
        "resolve_reason": None,
        "incidents_responders": [],
        "responder_requests": [],
        "urgency": incident.urgency,
    }


def alert_json(alert: IncidentAlert, incident: Incident, links: Links) -> dict[str, Any]:
    payload = alert.payload
    details = payload.get("custom_details")
    body_details: dict[str, Any] = {
        k: payload[k] for k in ("source", "component", "group", "class") if k in payload
    }
    if isinstance(details, dict):
        body_details.update(details)
    elif details is not None:
        body_details["custom_details"] = details
    service = incident.service
    self_url = f"{links.api('incident', incident.id)}/alerts/{alert.rest_id}"
    return {
        "id": alert.rest_id,
        "type": "alert",
        "summary": str(payload.get("summary", "")),
        "self": self_url,
        "html_url": f"{links.html('incident', incident.id)}#alert-{alert.rest_id}",
        "created_at": when(alert.created_at),
        "status": _alert_status(alert),
        "alert_key": alert.dedup_key,
        "service": links.service_ref(service),
        "first_trigger_log_entry": _log_ref(incident.log[0], incident, links),
        "incident": links.incident_ref(incident),
        "suppressed": False,
        "severity": str(payload.get("severity", "error")),
        "integration": {
            "id": service.integration_id,
            "type": "generic_events_api_inbound_integration_reference",
            "summary": "Events API v2",
            "self": f"{links.api('service', service.id)}/integrations/{service.integration_id}",
            "html_url": links.html("service", service.id),
        },
        "body": {"type": "alert_body", "contexts": [], "details": body_details},
    }


def _log_ref(entry: LogEntry, incident: Incident, links: Links) -> dict[str, Any]:
    return {
        "id": entry.id,
        "type": f"{entry.kind}_log_entry_reference",
        "summary": _LOG_SUMMARY[entry.kind],
        "self": f"{links.api('log_entry', entry.id)}?incident_id={incident.id}",
        "html_url": links.html("incident", incident.id),
    }


def log_entry_json(entry: LogEntry, incident: Incident, links: Links) -> dict[str, Any]:
    value: dict[str, Any] = {
        **_log_ref(entry, incident, links),
        "type": f"{entry.kind}_log_entry",
        "created_at": when(entry.created_at),
        "agent": links.agent(entry.agent),
        "channel": {"type": entry.channel},
        "service": links.service_ref(incident.service),
        "incident": links.incident_ref(incident),
        "teams": [],
        "contexts": [],
        "event_details": {"description": incident.title} if entry.kind == "trigger" else {},
    }
    if entry.note is not None:
        value["note"] = entry.note
    if entry.kind == "acknowledge":
        value["acknowledgement_timeout"] = None
    return value


def oncall_json(policy: EscalationPolicy, links: Links) -> dict[str, Any]:
    """The policy's permanent level-1 on-call (``start``/``end`` null: never goes off call)."""
    return {
        "escalation_policy": links.policy_ref(policy),
        "escalation_level": 1,
        "schedule": None,
        "user": links.user_ref(policy.oncall),
        "start": None,
        "end": None,
    }
