"""What Airflow's provider discovery reads: the ``apache_airflow_provider`` entry point.

Airflow imports this module while it discovers providers, possibly while one
of our hook or notifier modules is itself half imported (a DAG file importing
``alertwire.airflow`` triggers discovery). So this module imports nothing:
not Airflow, not the rest of alertwire. The connection forms are described
declaratively here (Airflow 3.2+ reads ``ui-field-behaviour`` and
``conn-fields`` from this dict), so the UI never has to import a hook.

Connection types are our own names (``alertwire_pagerduty_events``,
``alertwire_pagerduty``, ``alertwire_bigpanda``), not the official
provider's ``pagerduty_events`` / ``pagerduty``: Airflow keeps the first
provider that registers a type and warns about the second, so sharing names
would make which hook the UI offers depend on discovery order while both
packages are installed, which is exactly the state of a migration. The hooks
read any connection whatever its type, so existing ``pagerduty_events_default``
and ``pagerduty_default`` connections keep working unchanged (docs/airflow.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["get_provider_info"]

_HOOKS = "alertwire.airflow.hooks"
_NOTIFICATIONS = "alertwire.airflow.notifications"


def _text_field(label: str, description: str) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"]}}


_OUTBOX = _text_field(
    "Outbox",
    "SQLite path or postgresql:// URL: notifiers store the page there and return at once;"
    " `alertwire relay` delivers it",
)
_REGION = _text_field("Region", "us (default) or eu")


def _connection_type(
    conn_type: str, hook: str, name: str, *, relabeling: dict[str, str], **fields: dict[str, Any]
) -> dict[str, Any]:
    """One connection form: the hook that serves it, the fields it shows and their labels.

    Host, port and schema are never used; the login only where ``relabeling``
    gives it a meaning (BigPanda's app key).
    """
    unused = (
        ["host", "port", "schema"] if "login" in relabeling else ["host", "port", "login", "schema"]
    )
    return {
        "connection-type": conn_type,
        "hook-class-name": f"{_HOOKS}.{hook}",
        "hook-name": name,
        "ui-field-behaviour": {"hidden-fields": unused, "relabeling": relabeling},
        "conn-fields": fields,
    }


def get_provider_info() -> dict[str, Any]:
    """The provider description, validated by Airflow against ``provider_info.schema.json``."""
    return {
        "package-name": "alertwire",
        "name": "alertwire",
        "description": "PagerDuty and BigPanda hooks and notifiers whose pages survive outages"
        " (bounded retries, an optional durable outbox).",
        "integrations": [
            {
                "integration-name": "alertwire PagerDuty",
                "external-doc-url": "https://developer.pagerduty.com/docs/events-api-v2-overview",
                "tags": ["service"],
            },
            {
                "integration-name": "alertwire BigPanda",
                "external-doc-url": "https://docs.bigpanda.io/reference/alerts",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {"integration-name": "alertwire PagerDuty", "python-modules": [_HOOKS]},
        ],
        "connection-types": [
            _connection_type(
                "alertwire_pagerduty_events",
                "PagerdutyEventsHook",
                "PagerDuty Events (alertwire)",
                relabeling={"password": "Integration key"},
                region=_REGION,
                base_url=_text_field("Events API URL", "instead of the region's"),
                outbox=_OUTBOX,
            ),
            _connection_type(
                "alertwire_pagerduty",
                "PagerdutyHook",
                "PagerDuty REST API (alertwire)",
                relabeling={"password": "REST API token"},
                routing_key=_text_field("Routing key", "integration key for create_event"),
                region=_REGION,
                base_url=_text_field("REST API URL", "instead of the region's"),
                events_base_url=_text_field("Events API URL", "instead of the region's"),
            ),
            _connection_type(
                "alertwire_bigpanda",
                "BigPandaHook",
                "BigPanda (alertwire)",
                relabeling={"login": "App key", "password": "Bearer token"},
                region=_REGION,
                base_url=_text_field("Alerts API URL", "instead of the region's"),
                outbox=_OUTBOX,
            ),
        ],
        "notifications": [
            f"{_NOTIFICATIONS}.PagerdutyNotifier",
            f"{_NOTIFICATIONS}.BigPandaNotifier",
        ],
    }
