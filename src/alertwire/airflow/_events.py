"""The official provider's arguments as alertwire's validated models (no Airflow import).

Kept apart from the hooks so the mapping is tested without Airflow, and
the hooks stay Airflow glue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeVar

from .._errors import ValidationError
from ..models.bigpanda import BigPandaStatus
from ..models.levels import bigpanda_status_from_level
from ..models.pagerduty import (
    AcknowledgeAlert,
    Change,
    Image,
    Link,
    PagerDutyEvent,
    ResolveAlert,
    TriggerAlert,
)

__all__ = ["EVENT_ARGUMENTS", "bigpanda_status", "change_event_from", "pagerduty_event_from"]

logger = logging.getLogger("alertwire.airflow")

_Part = TypeVar("_Part", Image, Link)

_ACTIONS = ("trigger", "acknowledge", "resolve")

#: The official ``send_event`` arguments, in the official order: what
#: :func:`pagerduty_event_from` reads, and the notifier's template fields.
EVENT_ARGUMENTS: Final = (
    "summary",
    "severity",
    "source",
    "action",
    "dedup_key",
    "custom_details",
    "group",
    "component",
    "class_type",
    "images",
    "links",
)


def pagerduty_event_from(arguments: Mapping[str, Any]) -> PagerDutyEvent:
    """The official ``send_event`` arguments as an alertwire model (validated now).

    ``arguments`` holds every name in :data:`EVENT_ARGUMENTS`; other names
    (``self``, ``routing_key``, ...) are left alone. The hooks and the
    notifier must spell the official arguments out in their signatures
    (they are drop-in replacements), but need not spell them out again to
    pass them on: they hand over ``locals()``, and this is the one place
    that turns them into an event.
    """
    action = arguments["action"]
    dedup_key = arguments["dedup_key"]
    if action == "trigger":
        return TriggerAlert(
            arguments["summary"],
            source=arguments["source"],
            severity=arguments["severity"],
            dedup_key=dedup_key or None,
            custom_details=arguments["custom_details"],
            group=arguments["group"],
            component=arguments["component"],
            class_=arguments["class_type"],
            images=_accepted(Image, arguments["images"], "images", "the page"),
            links=_accepted(Link, arguments["links"], "links", "the page"),
        )
    if action not in _ACTIONS:
        raise ValidationError("action", f"must be one of {', '.join(_ACTIONS)}; got {action!r:.40}")
    if not dedup_key:
        raise ValidationError("dedup_key", f"is required for action={action}")
    return AcknowledgeAlert(dedup_key) if action == "acknowledge" else ResolveAlert(dedup_key)


def change_event_from(arguments: Mapping[str, Any]) -> Change:
    """``create_change_event``'s arguments as a :class:`~alertwire.Change`, links as for a page."""
    return Change(
        arguments["summary"],
        source=arguments["source"],
        custom_details=arguments["custom_details"],
        timestamp=arguments["timestamp"],
        links=_accepted(Link, arguments["links"], "links", "the change event"),
    )


def _accepted(cls: type[_Part], values: object, name: str, what: str) -> list[_Part] | None:
    """The images (or links) the model accepts; each one it refuses is left out, at WARNING.

    Why not refuse the page, as the models do: the official provider sent
    whatever it was given, so a DAG moved over may well pass an ``http://``
    Grafana image, and PagerDuty's https rule must not cost it its page.
    An image is decoration; the page is the point. The rule itself stays
    in the models (:meth:`Image.coerce` says what is wrong, and the warning
    quotes it); the URL is never logged, as one may carry a key.
    """
    if values is None:
        return None
    if isinstance(values, (str, Mapping)) or not isinstance(values, Iterable):
        logger.warning("%s left out of %s (%s: must be a sequence of %s)", name, what, name, name)
        return None
    kept: list[_Part] = []
    for index, value in enumerate(values):
        try:
            kept.append(cls.coerce(value))
        except ValidationError as exc:
            logger.warning("%s[%d] left out of %s (%s)", name, index, what, exc)
    return kept


def bigpanda_status(value: str | BigPandaStatus) -> BigPandaStatus:
    """A BigPanda status, or a level (``crit``, ``warn``, ``info``, ``ok``) mapped to one.

    BigPanda's own spellings first (``critical``, ``warning``, ``ok``,
    ``acknowledged``, ``unknown``); anything else goes through
    :func:`~alertwire.bigpanda_status_from_level`, which maps an unknown
    level to ``critical``: a typo should page, not vanish.
    """
    try:
        return BigPandaStatus.parse(value)
    except ValidationError:
        return BigPandaStatus(bigpanda_status_from_level(str(value)))
