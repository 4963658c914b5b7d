"""The page each ``html_url`` in the sandbox's REST answers leads to: one per object.

Why pages of their own rather than anchors on the dashboard: the dashboard
lists only the newest :data:`~._dashboard.SHOWN` incidents and no services,
users or escalation policies, so ``/#service-P123ABC`` (and an older
incident's anchor) led nowhere. Each object now has
``/dashboard/<plural>/<id>``, rendered on the server (no script: a link
opened from a client's output shows the object at once), from the same JSON
the REST API answers for it, so the page and the API cannot disagree. An
alert's ``html_url`` is its incident's page with ``#alert-<id>``: the page
shows each of the incident's alerts under that anchor.

Every value is escaped (summaries are whatever a client sent). No token is
asked for, as the dashboard asks none: these objects hold no routing key or
token (a service is named by its key's last four characters only).
"""

from __future__ import annotations

import html
import json
from typing import Any, Final

from .incidents import EscalationPolicy, IncidentBook, User
from .rest_views import Links, alert_json, incident_json, service_json

__all__ = ["PAGE_KINDS", "object_page"]

#: The ``<plural>`` of ``/dashboard/<plural>/<id>`` (the REST API's collection names),
#: each with what a "not found" page calls one.
PAGE_KINDS: Final = {
    "incidents": "incident",
    "services": "service",
    "escalation_policies": "escalation policy",
    "users": "user",
}

#: No script and nothing from elsewhere: the page is the server's HTML only.
PAGE_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'"

_STYLE: Final = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330}"
    "pre{background:#f6f7f9;border:1px solid #e4e7ec;border-radius:8px;padding:12px;"
    "overflow:auto;font-size:12px}"
)


def object_page(book: IncidentBook, plural: str, object_id: str, links: Links) -> str | None:
    """The HTML page of one object, or ``None`` if the sandbox has no such object."""
    found = _object(book, plural, object_id, links)
    if found is None:
        return None
    value, sections = found
    kind = value["type"]
    title = f"{kind.replace('_', ' ')} {object_id}: {value['summary']}"
    parts = [
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        f"<title>{_text(title)} - alertwire sandbox</title>",
        f"<style>{_STYLE}</style>\n</head>\n<body>",
        '<p><a href="/">alertwire sandbox dashboard</a></p>',
        f'<main id="{_text(kind)}-{_text(object_id)}">',
        f"<h1>{_text(title)}</h1>",
        f"<pre>{_json_text(value)}</pre>",
    ]
    for anchor, heading, body in sections:
        parts += [
            f'<section id="{_text(anchor)}">',
            f"<h2>{_text(heading)}</h2>",
            f"<pre>{_json_text(body)}</pre>",
            "</section>",
        ]
    parts.append("</main>\n</body>\n</html>\n")
    return "\n".join(parts)


Sections = list[tuple[str, str, dict[str, Any]]]


def _object(
    book: IncidentBook, plural: str, object_id: str, links: Links
) -> tuple[dict[str, Any], Sections] | None:
    if plural == "incidents":
        incident = book.incident(object_id)
        if incident is None:
            return None
        alerts = [
            (f"alert-{a.rest_id}", f"alert {a.rest_id}", alert_json(a, incident, links))
            for a in incident.alerts
        ]
        return incident_json(incident, links), alerts
    if plural == "services":
        service = book.service(object_id)
        if service is None:
            return None
        open_statuses = {i.status for i in book.incidents if i.service is service and i.is_open}
        return service_json(service, links, open_statuses), []
    if plural == "escalation_policies":
        policies = {book.policy.id: book.policy}
        policies.update((s.escalation_policy.id, s.escalation_policy) for s in book.services)
        policy = policies.get(object_id)
        return None if policy is None else (_policy_json(book, policy, links), [])
    if plural == "users":
        user = next((u for u in book.users() if u.id == object_id), None)
        return None if user is None else (_user_json(user, links), [])
    return None


def _policy_json(book: IncidentBook, policy: EscalationPolicy, links: Links) -> dict[str, Any]:
    """What the sandbox knows of a policy: its name, its one on-call user, its services."""
    return {
        **links.policy_ref(policy),
        "type": "escalation_policy",
        "name": policy.name,
        "on_call": links.user_ref(policy.oncall),
        "services": [links.service_ref(s) for s in book.services if s.escalation_policy is policy],
    }


def _user_json(user: User, links: Links) -> dict[str, Any]:
    """A user the sandbox made for a ``From`` address (or its on-call user)."""
    return {**links.user_ref(user), "type": "user", "name": user.name, "email": user.email}


def _text(value: str) -> str:
    return html.escape(value, quote=True)


def _json_text(value: dict[str, Any]) -> str:
    return _text(json.dumps(value, indent=2, ensure_ascii=False))
