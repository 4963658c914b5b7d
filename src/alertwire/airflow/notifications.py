"""Notifiers for ``on_failure_callback`` and friends: PagerDuty (drop-in) and BigPanda.

:class:`PagerdutyNotifier` takes the official notifier's arguments and has
its template fields, plus ``outbox=`` and ``retry=``. Where the official one
logged a failed page and carried on, these raise after an ERROR line, so
Airflow records the callback as failed (docs/airflow.md says what each
deployment guarantees).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from .._retry import RetryPolicy
from ._compat import BaseNotifier
from ._deliver import describe
from ._events import EVENT_ARGUMENTS
from .hooks import BigPandaHook, PagerdutyEventsHook

__all__ = [
    "BigPandaNotifier",
    "PagerdutyNotifier",
    "send_bigpanda_notification",
    "send_pagerduty_notification",
]

logger = logging.getLogger("alertwire.airflow")


_Hook = TypeVar("_Hook")


def _hook_or_error(what: str, make: Callable[[], _Hook]) -> _Hook:
    """The notifier's hook; one that cannot even read its connection says so as loudly as a failed send."""
    try:
        return make()
    except Exception as exc:
        logger.error("%s was NOT delivered and NOT stored: %s", what, describe(exc))
        raise


class PagerdutyNotifier(BaseNotifier):
    """Page PagerDuty (Events API v2) from an Airflow callback.

    Every argument but the connection, ``integration_key``, ``outbox`` and
    ``retry`` is a Jinja template rendered with the callback's context, e.g.
    ``dedup_key="{{ dag.dag_id }}-{{ ti.task_id }}"`` so repeated failures
    of one task add to one alert instead of opening new incidents.

    ``outbox`` (or the connection's extra ``outbox``, or ``ALERTWIRE_OUTBOX``)
    stores the page durably and returns at once; without one the page is
    sent now with ``retry``'s bounds (default :class:`~alertwire.RetryPolicy`).
    """

    template_fields = (*EVENT_ARGUMENTS, "pagerduty_events_conn_id")

    def __init__(
        self,
        *,
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
        pagerduty_events_conn_id: str | None = "pagerduty_events_default",
        integration_key: str | None = None,
        outbox: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.summary = summary
        self.severity = severity
        self.source = source
        self.action = action
        self.dedup_key = dedup_key
        self.custom_details = custom_details
        self.group = group
        self.component = component
        self.class_type = class_type
        self.images = images
        self.links = links
        self.pagerduty_events_conn_id = pagerduty_events_conn_id
        self.integration_key = integration_key
        self.outbox = outbox
        self.retry = retry

    @property
    def hook(self) -> PagerdutyEventsHook:
        """A hook for the (rendered) connection id; made per page, as connections may change."""
        return PagerdutyEventsHook(
            integration_key=self.integration_key,
            pagerduty_events_conn_id=self.pagerduty_events_conn_id,
            outbox=self.outbox,
            retry=self.retry,
        )

    def notify(self, context: Any) -> None:
        """Deliver or store the page; raise (after an ERROR line) if neither is possible."""
        hook = _hook_or_error("PagerDuty page", lambda: self.hook)
        hook.send_event(**{name: getattr(self, name) for name in EVENT_ARGUMENTS})


#: The official provider's function-style name for the same notifier.
send_pagerduty_notification = PagerdutyNotifier


class BigPandaNotifier(BaseNotifier):
    """Send a BigPanda alert from an Airflow callback.

    ``status`` is a BigPanda status (``critical``, ``warning``, ``ok``, ...)
    or a level (``crit``, ``warn``, ``info``, ``ok``), mapped as
    :func:`~alertwire.bigpanda_status_from_level` does; an unknown value
    pages as ``critical``. ``host``, ``check``, ``description``, ``tags`` and
    ``status`` are templates. Delivery is :class:`PagerdutyNotifier`'s:
    ``outbox`` or direct with bounded retries, never silent.
    """

    template_fields = ("status", "host", "check", "description", "tags", "bigpanda_conn_id")

    def __init__(
        self,
        *,
        status: str = "critical",
        host: str = "airflow",
        check: str | None = None,
        description: str | None = None,
        tags: dict[str, Any] | None = None,
        bigpanda_conn_id: str | None = "bigpanda_default",
        token: str | None = None,
        app_key: str | None = None,
        outbox: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.status = status
        self.host = host
        self.check = check
        self.description = description
        self.tags = tags
        self.bigpanda_conn_id = bigpanda_conn_id
        self.token = token
        self.app_key = app_key
        self.outbox = outbox
        self.retry = retry

    @property
    def hook(self) -> BigPandaHook:
        return BigPandaHook(
            token=self.token,
            app_key=self.app_key,
            bigpanda_conn_id=self.bigpanda_conn_id,
            outbox=self.outbox,
            retry=self.retry,
        )

    def notify(self, context: Any) -> None:
        """Deliver or store the alert; raise (after an ERROR line) if neither is possible."""
        hook = _hook_or_error("BigPanda alert", lambda: self.hook)
        hook.send_alert(
            self.status,
            host=self.host,
            check=self.check,
            description=self.description,
            tags=self.tags,
        )


send_bigpanda_notification = BigPandaNotifier
