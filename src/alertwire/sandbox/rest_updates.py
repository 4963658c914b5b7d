"""Bodies of ``PUT /incidents/{id}`` and bulk ``PUT /incidents``, checked before anything changes.

PagerDuty's request schema: ``{"incident": {"type": "incident_reference",
"status": "acknowledged"}}`` for one incident, ``{"incidents": [{"id": ...,
"type": "incident_reference", "status": "resolved"}, ...]}`` for many. The
sandbox models ``status``, ``title``, ``urgency`` and ``resolution`` (the
note of the resolve log entry). Any other field PagerDuty accepts
(``priority``, ``escalation_level``, ``assignments``...) is refused with a
400 naming it, rather than ignored: a test that sets a priority should not
pass against a sandbox that dropped it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from ..protocol.rest import BULK_UPDATE_MAX
from .incidents import IncidentStatus
from .rest_query import InvalidInput
from .state import StatusChange

__all__ = ["MAX_BULK", "TooManyIncidents", "bulk_changes", "single_change"]

#: Bulk updates above this many incidents are refused with 413, as PagerDuty does.
MAX_BULK: Final = BULK_UPDATE_MAX
_MODELLED: Final = frozenset({"id", "type", "status", "title", "urgency", "resolution"})
_STATUSES: Final = ("triggered", "acknowledged", "resolved")


class TooManyIncidents(InvalidInput):
    """A bulk update of more incidents than PagerDuty takes at once: 413, not 400."""


def _change(raw: object, where: str, incident_id: str | None) -> StatusChange:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where} must be an object")
    errors: list[str] = []
    unknown = sorted(str(k) for k in raw if k not in _MODELLED)
    errors += [f"{where}.{name[:40]} is not modelled by the sandbox" for name in unknown]
    if raw.get("type") not in ("incident", "incident_reference"):
        errors.append(f"{where}.type must be 'incident' or 'incident_reference'")
    if incident_id is None:
        given = raw.get("id")
        if not isinstance(given, str) or not given:
            errors.append(f"{where}.id must be an incident id")
        else:
            incident_id = given
    status = raw.get("status")
    if status is not None and status not in _STATUSES:
        errors.append(f"{where}.status must be one of triggered, acknowledged, resolved")
    title = raw.get("title")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        errors.append(f"{where}.title must be a non-blank string")
    urgency = raw.get("urgency")
    if urgency is not None and urgency not in ("high", "low"):
        errors.append(f"{where}.urgency must be 'high' or 'low'")
    resolution = raw.get("resolution")
    if resolution is not None and not isinstance(resolution, str):
        errors.append(f"{where}.resolution must be a string")
    if errors:
        raise InvalidInput(*errors)
    assert incident_id is not None
    return StatusChange(
        incident_id=incident_id,
        status=cast("IncidentStatus | None", status),
        title=title,
        urgency=urgency,
        resolution=resolution,
    )


def single_change(body: Any, incident_id: str) -> StatusChange:
    if not isinstance(body, Mapping) or "incident" not in body:
        raise InvalidInput("the body must be an object with an 'incident' object")
    return _change(body["incident"], "incident", incident_id)


def bulk_changes(body: Any) -> list[StatusChange]:
    if not isinstance(body, Mapping) or not isinstance(body.get("incidents"), list):
        raise InvalidInput("the body must be an object with an 'incidents' list")
    items = body["incidents"]
    if not items:
        raise InvalidInput(f"incidents must list between 1 and {MAX_BULK} incidents")
    if len(items) > MAX_BULK:
        raise TooManyIncidents(f"at most {MAX_BULK} incidents may be updated at a time")
    changes: list[StatusChange] = []
    errors: list[str] = []
    for index, item in enumerate(items):
        try:
            changes.append(_change(item, f"incidents[{index}]", None))
        except InvalidInput as exc:
            errors += exc.errors
    if errors:
        raise InvalidInput(*errors)
    return changes
