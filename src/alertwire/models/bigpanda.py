"""BigPanda alerts as immutable, validated values.

As with the PagerDuty models, construction is the validation boundary: the
rules live in :mod:`alertwire.models.bigpanda_rules` (shared with the wire
server); this module only turns Python input into the wire body they check
(status spellings, datetimes, the ``tags`` mapping) and caches its bytes.

Decisions:

* ``tags`` are BigPanda's custom attributes. On the wire they are top-level
  fields beside ``host`` and ``status``, so a tag named like a reserved field
  (``status``, ``host``, ``app_key``, ...) would silently overwrite it: it is
  refused. List values are kept as arrays (BigPanda joins them with ``|``).
  Booleans and floats are refused rather than guessed at: BigPanda documents
  strings, integers and arrays only.
* ``timestamp`` is sent as whole epoch seconds (fractions are dropped, as
  BigPanda's field holds seconds); a naive datetime is local time.
* A description over 2048 characters is shortened (ending in "…", with a
  logged warning) rather than refused: an alert that arrives beats one that
  does not.
* ``app_key`` is not part of the alert: the client adds it, once per request
  (a batch carries it once for all its items).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from .. import _json, _log
from .._errors import ValidationError
from .._numbers import is_real
from ._read_only import ReadOnlyDict
from ._spelling import Spellings
from ._time import to_aware
from .bigpanda_rules import RESERVED_FIELDS, TIMESTAMP_CEILING, Problem, check_alert
from .limits import BIGPANDA_APP_KEY_ROOM, BIGPANDA_DESCRIPTION_MAX, ELLIPSIS
from .pagerduty_rules import check_event_size, raise_for

__all__ = ["BigPandaAlert", "BigPandaStatus", "TagValue"]


#: A custom attribute's value as the model holds it (lists become tuples: immutable).
TagValue: TypeAlias = "str | int | tuple[str | int, ...]"


class BigPandaStatus(str, enum.Enum):
    """BigPanda's alert statuses; values are the (lower-case) wire spellings."""

    OK = "ok"
    CRITICAL = "critical"
    WARNING = "warning"
    ACKNOWLEDGED = "acknowledged"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: object, *, field_name: str = "status") -> BigPandaStatus:
        """Case-insensitive; also the level spellings ``crit``, ``warn`` and ``ack``."""
        return _STATUS_SPELLINGS.parse(value, field_name)


_STATUS_SPELLINGS = Spellings(
    BigPandaStatus,
    crit=BigPandaStatus.CRITICAL,
    warn=BigPandaStatus.WARNING,
    ack=BigPandaStatus.ACKNOWLEDGED,
)

#: Model attributes in wire order (``status`` first, custom attributes last).
_TEXT_ARGS = (
    "host",
    "service",
    "application",
    "device",
    "check",
    "sensor",
    "description",
    "primary_property",
    "secondary_property",
    "incident_identifier",
    "cluster",
)


#: ``{"app_key":"<key>",`` spliced in front of the alert's own ``{`` (see protocol.bigpanda).
_APP_KEY_OVERHEAD = len('{"app_key":"",') - 1 + BIGPANDA_APP_KEY_ROOM


def _python_name(wire_field: str) -> str:
    """Errors name the argument the caller wrote: a custom attribute is ``tags.<name>``."""
    head = wire_field.split("[", 1)[0]
    return wire_field if head in RESERVED_FIELDS else f"tags.{wire_field}"


def _raise_problems(problems: Sequence[Problem]) -> None:
    raise_for(problems, _python_name)


def _text(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValidationError(name, f"must be a string, not {type(value).__name__}")


def _description(value: object) -> str | None:
    text = _text(value, "description")
    if text is not None and len(text) > BIGPANDA_DESCRIPTION_MAX:
        _log.warning(
            "description of %d characters shortened to %d (BigPanda refuses longer ones)",
            len(text),
            BIGPANDA_DESCRIPTION_MAX,
        )
        text = text[: BIGPANDA_DESCRIPTION_MAX - len(ELLIPSIS)] + ELLIPSIS
    return text


def _timestamp(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        try:
            seconds = math.floor(to_aware(value).timestamp())
        except (OverflowError, ValueError, OSError):  # year 1 or 9999 in local time
            seconds = -1
        if not 0 <= seconds < TIMESTAMP_CEILING:
            raise ValidationError("timestamp", "must be a date between 1970 and 3000")
        return seconds
    if is_real(value) and math.isfinite(value):
        return math.floor(value)
    raise ValidationError(
        "timestamp", "must be an aware datetime or Unix epoch seconds (int or float)"
    )


def _tag_value(name: str, value: object) -> TagValue:
    """Lists/tuples become tuples; everything else is left for the rules to judge."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return value  # type: ignore[return-value]
    raise ValidationError(f"tags.{name}", "must be a string, an integer or a list of those")


def _tags(value: object) -> Mapping[str, TagValue]:
    if value is None:
        return ReadOnlyDict({})
    if not isinstance(value, Mapping):
        raise ValidationError("tags", f"must be a mapping, not {type(value).__name__}")
    tags: dict[str, TagValue] = {}
    for name, tag in value.items():
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("tags", f"names must be non-blank strings, got {name!r:.40}")
        if name in RESERVED_FIELDS:
            raise ValidationError(
                f"tags.{name}",
                "clashes with BigPanda's reserved field of that name; pass it as its own"
                " argument or rename the tag",
            )
        tags[name] = _tag_value(name, tag)
    return ReadOnlyDict(tags)


@dataclass(frozen=True, slots=True, init=False)
class BigPandaAlert:
    """One BigPanda alert: a status for the entity named by its primary property.

    A primary property is required: ``primary_property`` naming a present
    field, else the first of ``host``, ``service``, ``application``,
    ``device`` that is set.
    """

    status: BigPandaStatus
    host: str | None
    service: str | None
    application: str | None
    device: str | None
    check: str | None
    sensor: str | None
    description: str | None
    timestamp: int | None
    primary_property: str | None
    secondary_property: str | None
    incident_identifier: str | None
    cluster: str | None
    tags: Mapping[str, TagValue] = field(hash=False)
    _wire: bytes = field(repr=False, compare=False, init=False)

    def __init__(
        self,
        status: BigPandaStatus | str,
        *,
        host: str | None = None,
        service: str | None = None,
        application: str | None = None,
        device: str | None = None,
        check: str | None = None,
        sensor: str | None = None,
        description: str | None = None,
        timestamp: datetime | float | None = None,
        primary_property: str | None = None,
        secondary_property: str | None = None,
        incident_identifier: str | None = None,
        cluster: str | None = None,
        tags: Mapping[str, str | int | Sequence[str | int]] | None = None,
    ) -> None:
        texts = {
            "host": host,
            "service": service,
            "application": application,
            "device": device,
            "check": check,
            "sensor": sensor,
            "primary_property": primary_property,
            "secondary_property": secondary_property,
            "incident_identifier": incident_identifier,
            "cluster": cluster,
        }
        object.__setattr__(self, "status", BigPandaStatus.parse(status))
        for name, value in texts.items():
            object.__setattr__(self, name, _text(value, name))
        object.__setattr__(self, "description", _description(description))
        object.__setattr__(self, "timestamp", _timestamp(timestamp))
        object.__setattr__(self, "tags", _tags(tags))
        wire = self._build_wire()
        _raise_problems(check_alert(wire, in_batch=True))
        try:
            data = _json.dumps(wire, no_floats=True)  # the rules refuse floats
        except TypeError as exc:  # e.g. a lone surrogate in a string
            raise ValidationError("alert", f"must be JSON-serialisable ({exc})") from None
        # The wire's size cap, with room for the app_key the client adds (the rules
        # keep an alert flat, so the nesting cap cannot be reached).
        too_large = check_event_size(len(data) + _APP_KEY_OVERHEAD)
        if too_large:
            raise ValidationError(
                "alert",
                f"{too_large[0].rule}, counting room for a {BIGPANDA_APP_KEY_ROOM}-character app_key",
            )
        object.__setattr__(self, "_wire", data)

    def _build_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"status": self.status.value}
        for name in _TEXT_ARGS:
            value = getattr(self, name)
            if value is not None:
                wire[name] = value
        if self.timestamp is not None:
            wire["timestamp"] = self.timestamp
        for name, value in self.tags.items():
            wire[name] = list(value) if isinstance(value, tuple) else value
        return wire

    @property
    def wire_bytes(self) -> bytes:
        """The alert's JSON without ``app_key`` (cached; the client adds the key)."""
        return self._wire

    def wire_body(self) -> dict[str, Any]:
        """The alert's JSON as a fresh dict, without ``app_key``."""
        return dict(_json.loads(self._wire))
