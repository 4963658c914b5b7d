"""Drop-in replacements for the official PagerDuty provider's hooks, and a BigPanda hook.

Names, arguments and return values are those of
``apache-airflow-providers-pagerduty``, today's and its earlier releases'
(``create_event`` returning the response, ``get_session``), so moving over
is one import line (docs/airflow.md). What differs is what happens to the
page: alertwire's validated models and bounded retries, an optional
durable outbox, and never a silent loss.

Two families of methods, on purpose:

* ``create_event``, ``create_change_event`` and ``test_connection`` talk to
  the service now and return its answer (the response dict, or ``(ok,
  message)``): a caller that asks for the answer must get a real one.
* ``send_event`` (and the notifiers) honour the outbox: with one configured
  the page is stored and its dedup key, assigned at enqueue, is returned at
  once; ``alertwire relay`` delivers it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .. import _config
from .._errors import AlertwireError, ConfigurationError
from .._retry import RetryPolicy
from .._secret import Secret
from ..models.bigpanda import BigPandaAlert, BigPandaStatus
from ..models.bigpanda_rules import require_app_key, require_token
from ..models.pagerduty import PagerDutyEvent, ResolveAlert
from ..models.pagerduty_rules import require_routing_key
from ..models.results import EventResult
from . import _deliver
from ._compat import BaseHook, connection_fields
from ._events import bigpanda_status, change_event_from, pagerduty_event_from
from ._settings import (
    BIGPANDA_EXTRAS,
    EVENTS_EXTRAS,
    REST_EXTRAS,
    ConnectionFields,
    Destination,
    read_extras,
    region_of,
    resolve_outbox,
)

if TYPE_CHECKING:
    from alertwire.rest import PagerDutyAPI

__all__ = ["BigPandaHook", "PagerdutyEventsHook", "PagerdutyHook"]

_Credential = TypeVar("_Credential", Secret, str)


def _response(result: EventResult) -> dict[str, Any]:
    """An accepted event as the Events API's JSON answer (what the official hooks returned)."""
    answer: dict[str, Any] = {"status": result.status, "message": result.message}
    if result.dedup_key is not None:
        answer["dedup_key"] = result.dedup_key
    return answer


def _key(value: str | Secret | None) -> Secret | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return Secret(value.strip() if isinstance(value, str) else value)


def _read_connection(
    given: str | Secret | None, conn_id: str | None, known_extras: frozenset[str]
) -> tuple[ConnectionFields | None, dict[str, str], Secret | None]:
    """The connection's fields and known extras, and the key: ``given``, else its password.

    A key passed in makes the connection optional (a missing one is then
    not an error); without one, an undefined connection raises Airflow's
    ``AirflowNotFoundException``, as the official hooks did.
    """
    key = _key(given)
    fields = connection_fields(conn_id, required=key is None)
    extras = read_extras(fields, known_extras)
    return fields, extras, key or _key(fields.password if fields else None)


def _required(
    value: _Credential | None, what: str, argument: str, field: str, conn_id: str | None
) -> _Credential:
    """``value``, or the error for a credential found neither in the arguments nor in the connection."""
    if value is None:
        raise ConfigurationError(
            f"no {what}: pass {argument}= or set {field} of connection {conn_id!r}"
        )
    return value


def _sending_destination(
    key: Secret,
    extras: Mapping[str, str],
    conn_id: str | None,
    *,
    url_variable: str,
    outbox: str | os.PathLike[str] | None,
    retry: RetryPolicy | None,
    app_key: str | None = None,
) -> Destination:
    """Where a hook that honours the outbox delivers: one rule for PagerDuty's and BigPanda's.

    The region and URL come from the connection, else the environment
    (``url_variable``, ``ALERTWIRE_REGION``); the outbox from the argument,
    the connection or ``ALERTWIRE_OUTBOX``.
    """
    return Destination(
        key=key,
        region=region_of(extras, conn_id),
        base_url=extras.get("base_url") or _config.optional_env(url_variable),
        outbox=resolve_outbox(outbox, extras),
        retry=retry,
        app_key=app_key,
    )


def _create_event(dest: Destination, event: PagerDutyEvent) -> dict[str, Any]:
    """Send now, whatever the outbox setting, and return the service's answer."""
    what = f"PagerDuty {event.event_action or 'change event'}"
    return _response(_deliver.send_now(what, lambda: _deliver.send_pagerduty(event, dest)))


class PagerdutyEventsHook(BaseHook):
    """PagerDuty Events API v2: the official hook's interface, alertwire's delivery.

    The integration key comes from ``integration_key=`` or, when that is not
    given, from the connection's password. With ``integration_key=`` a
    missing connection is fine (nothing else is read from it); without it,
    Airflow's ``AirflowNotFoundException`` says the connection is undefined.
    ``retry`` bounds the direct sends (default: :class:`~alertwire.RetryPolicy`).
    """

    conn_name_attr: ClassVar[str] = "pagerduty_events_conn_id"
    default_conn_name: ClassVar[str] = "pagerduty_events_default"
    conn_type: ClassVar[str] = "alertwire_pagerduty_events"
    hook_name: ClassVar[str] = "PagerDuty Events (alertwire)"

    def __init__(
        self,
        integration_key: str | None = None,
        pagerduty_events_conn_id: str | None = "pagerduty_events_default",
        *,
        outbox: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.pagerduty_events_conn_id = pagerduty_events_conn_id
        _, extras, key = _read_connection(integration_key, pagerduty_events_conn_id, EVENTS_EXTRAS)
        key = _required(
            key,
            "PagerDuty integration key",
            "integration_key",
            "the password",
            pagerduty_events_conn_id,
        )
        self.destination = _sending_destination(
            require_routing_key(key),
            extras,
            pagerduty_events_conn_id,
            url_variable=_config.ENV_PAGERDUTY_URL,
            outbox=outbox,
            retry=retry,
        )

    @property
    def integration_key(self) -> Secret:
        return self.destination.key

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.destination!r})"

    def send_event(
        self,
        summary: str,
        severity: str,
        source: str = "airflow",
        action: str = "trigger",
        dedup_key: str | None = None,
        custom_details: Any | None = None,
        group: str | None = None,
        component: str | None = None,
        class_type: str | None = None,
        images: list[Any] | None = None,
        links: list[Any] | None = None,
    ) -> str:
        """Deliver (or, with an outbox, store) the event; return its dedup key.

        A trigger without ``dedup_key`` gets one before it leaves (assigned at
        enqueue when queued), so the key returned is always the alert's.
        Raises, after an ERROR log line, when the event can be neither
        delivered nor stored.
        """
        arguments = locals()  # the official arguments, passed on by name
        what = (
            f"PagerDuty {action} {summary!r:.80}" if action == "trigger" else f"PagerDuty {action}"
        )
        event = _deliver.send_now(what, lambda: pagerduty_event_from(arguments))
        outcome = _deliver.deliver_pagerduty(what, event, self.destination)
        return outcome.dedup_key or dedup_key or ""

    def create_event(
        self,
        summary: str,
        severity: str,
        source: str = "airflow",
        action: str = "trigger",
        dedup_key: str | None = None,
        custom_details: Any | None = None,
        group: str | None = None,
        component: str | None = None,
        class_type: str | None = None,
        images: list[Any] | None = None,
        links: list[Any] | None = None,
    ) -> dict[str, Any]:
        """Send the event now (never via the outbox) and return PagerDuty's answer as a dict.

        ``{"status": "success", "message": "Event processed", "dedup_key": ...}``,
        as the provider's earlier releases returned.
        """
        return _create_event(self.destination, pagerduty_event_from(locals()))

    def create_change_event(
        self,
        summary: str,
        source: str = "airflow",
        custom_details: Any | None = None,
        timestamp: datetime | None = None,
        links: list[Any] | None = None,
    ) -> dict[str, Any]:
        """Send a change event now and return PagerDuty's answer as a dict."""
        return _create_event(self.destination, change_event_from(locals()))

    def test_connection(self) -> tuple[bool, str]:
        """Resolve a dedup key that matches no alert (a no-op for PagerDuty), as the official hook does."""
        try:
            direct_once = replace(self.destination, outbox=None, retry=RetryPolicy.never())
            _deliver.send_pagerduty(ResolveAlert("alertwire-connection-test"), direct_once)
        except AlertwireError as exc:
            return False, f"connection test failed: {type(exc).__name__}: {exc}"
        return True, "connection tested successfully"


class PagerdutyHook(BaseHook):
    """PagerDuty's REST API (``get_session()`` / ``client()``) and the older ``create_event``.

    The REST token comes from ``token=`` or the connection's password; the
    routing key for ``create_event`` from its argument or the connection's
    extra ``routing_key``. ``PagerdutyHook(token=...)`` works without any
    connection; without ``token=`` the connection must exist (Airflow's
    ``AirflowNotFoundException`` otherwise, as before), but a missing token or
    routing key is only an error when a method needs it, so a connection
    that holds just a routing key serves ``create_event``.
    """

    conn_name_attr: ClassVar[str] = "pagerduty_conn_id"
    default_conn_name: ClassVar[str] = "pagerduty_default"
    conn_type: ClassVar[str] = "alertwire_pagerduty"
    hook_name: ClassVar[str] = "PagerDuty REST API (alertwire)"

    def __init__(
        self,
        token: str | None = "",
        pagerduty_conn_id: str | None = "pagerduty_default",
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.pagerduty_conn_id = pagerduty_conn_id
        _, extras, self._token = _read_connection(token, pagerduty_conn_id, REST_EXTRAS)
        self.routing_key = _key(extras.get("routing_key"))
        self.region = region_of(extras, pagerduty_conn_id)
        self.base_url = extras.get("base_url")
        self._events_base_url = extras.get("events_base_url") or _config.optional_env(
            _config.ENV_PAGERDUTY_URL
        )
        self._retry = retry

    @property
    def token(self) -> Secret:
        return _required(
            self._token, "PagerDuty REST API token", "token", "the password", self.pagerduty_conn_id
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pagerduty_conn_id={self.pagerduty_conn_id!r})"

    def get_session(self) -> PagerDutyAPI:
        """A new :class:`alertwire.rest.PagerDutyAPI` session built with the token (and the
        hook's ``retry``, which bounds its requests as it bounds ``create_event``)."""
        from alertwire.rest import PagerDutyAPI

        return PagerDutyAPI(
            self.token, region=self.region, base_url=self.base_url, retry=self._retry
        )

    def client(self) -> PagerDutyAPI:
        """Today's name for :meth:`get_session`."""
        return self.get_session()

    def create_event(
        self,
        summary: str,
        severity: str,
        source: str = "airflow",
        action: str = "trigger",
        routing_key: str | None = None,
        dedup_key: str | None = None,
        custom_details: Any | None = None,
        group: str | None = None,
        component: str | None = None,
        class_type: str | None = None,
        images: list[Any] | None = None,
        links: list[Any] | None = None,
    ) -> dict[str, Any]:
        """Send an Events API event now; the routing key defaults to the connection's extra."""
        arguments = locals()  # the official arguments, passed on by name
        key = _required(
            _key(routing_key) or self.routing_key,
            "routing key",
            "routing_key",
            "extra 'routing_key'",
            self.pagerduty_conn_id,
        )
        dest = Destination(
            key=require_routing_key(key),
            region=self.region,
            base_url=self._events_base_url,
            outbox=None,
            retry=self._retry,
        )
        return _create_event(dest, pagerduty_event_from(arguments))


class BigPandaHook(BaseHook):
    """BigPanda's Alerts API: bearer token in the password, app key in the login."""

    conn_name_attr: ClassVar[str] = "bigpanda_conn_id"
    default_conn_name: ClassVar[str] = "bigpanda_default"
    conn_type: ClassVar[str] = "alertwire_bigpanda"
    hook_name: ClassVar[str] = "BigPanda (alertwire)"

    def __init__(
        self,
        token: str | None = None,
        app_key: str | None = None,
        bigpanda_conn_id: str | None = "bigpanda_default",
        *,
        outbox: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.bigpanda_conn_id = bigpanda_conn_id
        fields, extras, key = _read_connection(token, bigpanda_conn_id, BIGPANDA_EXTRAS)
        key = _required(key, "BigPanda token", "token", "the password", bigpanda_conn_id)
        app = (app_key or (fields.login if fields else None) or "").strip()
        app = _required(app or None, "BigPanda app key", "app_key", "the login", bigpanda_conn_id)
        self.destination = _sending_destination(
            require_token(key),
            extras,
            bigpanda_conn_id,
            url_variable=_config.ENV_BIGPANDA_URL,
            outbox=outbox,
            retry=retry,
            app_key=require_app_key(app),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.destination!r})"

    def send_alert(
        self,
        status: str | BigPandaStatus = "critical",
        *,
        host: str | None = "airflow",
        check: str | None = None,
        description: str | None = None,
        tags: dict[str, Any] | None = None,
        **fields: Any,
    ) -> _deliver.PageOutcome:
        """Deliver (or, with an outbox, store) one alert; raises after an ERROR line if neither."""
        what = f"BigPanda alert {host!r:.60}/{check!r:.60}"
        alert = _deliver.send_now(
            what,
            lambda: BigPandaAlert(
                bigpanda_status(status),
                host=host,
                check=check,
                description=description,
                tags=tags,
                **fields,
            ),
        )
        return _deliver.deliver_bigpanda(what, alert, self.destination)
