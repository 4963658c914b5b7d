"""alertwire for Apache Airflow: hooks and notifiers that never lose a page silently.

Moving from ``apache-airflow-providers-pagerduty`` is one import line::

    from alertwire.airflow import PagerdutyNotifier   # was airflow.providers.pagerduty...

Airflow parses DAG files all the time, so importing this package costs
nothing: the classes are loaded on first use (PEP 562), and even then
neither the transport's sockets (nor ``ssl``) nor sqlite3 is imported
until a page is sent or stored. See docs/airflow.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _lazy_exports

__all__ = [
    "BigPandaHook",
    "BigPandaNotifier",
    "PagerdutyEventsHook",
    "PagerdutyHook",
    "PagerdutyNotifier",
    "send_bigpanda_notification",
    "send_pagerduty_notification",
]

_WHERE: dict[str, str] = {
    "BigPandaHook": ".hooks",
    "PagerdutyEventsHook": ".hooks",
    "PagerdutyHook": ".hooks",
    "BigPandaNotifier": ".notifications",
    "PagerdutyNotifier": ".notifications",
    "send_bigpanda_notification": ".notifications",
    "send_pagerduty_notification": ".notifications",
}

if TYPE_CHECKING:
    from .hooks import BigPandaHook, PagerdutyEventsHook, PagerdutyHook
    from .notifications import (
        BigPandaNotifier,
        PagerdutyNotifier,
        send_bigpanda_notification,
        send_pagerduty_notification,
    )


_load, __dir__ = _lazy_exports(globals(), _WHERE)

if not TYPE_CHECKING:
    # Hidden from type checkers, which see the imports above instead.
    __getattr__ = _load
