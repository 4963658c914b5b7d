"""BigPanda's alert rules, written once, checked against wire-format JSON.

Both sides use these functions, as for PagerDuty
(:mod:`alertwire.models.pagerduty_rules`, whose :class:`Problem` this module
shares):

* :class:`~alertwire.BigPandaAlert` calls :func:`check_alert` on the body it
  is about to send, so a bad alert fails at construction with a
  :class:`~alertwire.ValidationError` naming the field;
* the wire server (sandbox, relay ingest) calls :func:`check_body` (or
  :func:`check_alert` / :func:`check_batch`) on what a client actually sent
  and answers 400 with :func:`error_body`.

The API is stable; the server side depends on it:

* ``check_alert(body, *, in_batch=False) -> list[Problem]``: one alert. With
  ``in_batch=True`` the body is an item of a batch: ``app_key`` is then not
  required but refused (the batch carries the one ``app_key``).
* ``check_batch(body) -> list[Problem]``: ``{"app_key": ..., "alerts": [...]}``;
  item problems are named ``alerts[i].field``.
* ``check_app_key(app_key) -> list[Problem]``: the key alone (the clients
  check it at construction).
* ``check_body(body)``: either of the two, by the presence of ``"alerts"``.
* ``error_body(problems) -> dict``: the JSON the sandbox answers 400 with.

BigPanda's error body format is unconfirmed (no capture exists), so the
sandbox answers with the shape alertwire's own response reader already
understands (:func:`alertwire.protocol.http.error_for_response` quotes
``message`` and the ``errors`` list)::

    {"status": "failure", "message": "Alert object is invalid",
     "errors": ["'status' is invalid (must be one of ...)", ...]}

``wire_text`` is our wording, in PagerDuty's confirmed style
(``'field' is missing or blank``, ``'field' is invalid (...)``).

Decisions where BigPanda's behaviour is unconfirmed (the strict choice, so a
test against the sandbox fails rather than production):

* ``status`` must be lower case on the wire (the docs spell it so);
* ``timestamp`` must be a non-negative integer; a value past the year 3000 is
  refused as "milliseconds, not seconds", the usual mix-up;
* reserved text fields (``host``, ``check``, ``description``, ...) must be
  strings; custom attributes must be strings, integers (not booleans, not
  floats) or arrays of those, integers within 64 bits;
* ``primary_property`` / ``secondary_property`` must name a field that is
  present with a non-blank string or an integer value, and never ``app_key``,
  ``status``, ``timestamp`` or the two property fields themselves;
* tag limits apply to custom attributes: a string (or each array item) at most
  512 characters, an array at most 30 items;
* a batch item carrying its own ``app_key`` is refused, and a batch must hold
  at least one alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .._errors import ValidationError
from .._numbers import is_whole
from .._secret import Secret, credential
from .limits import BIGPANDA_DESCRIPTION_MAX, BIGPANDA_TAG_VALUE_MAX, BIGPANDA_TAG_VALUES_MAX
from .pagerduty_rules import Problem, raise_for

__all__ = [
    "DEFAULT_PRIMARY_PROPERTIES",
    "DEFAULT_SECONDARY_PROPERTIES",
    "RESERVED_FIELDS",
    "STATUSES",
    "TEXT_FIELDS",
    "TIMESTAMP_CEILING",
    "Problem",
    "check_alert",
    "check_app_key",
    "check_batch",
    "check_body",
    "error_body",
]

STATUSES: Final = ("ok", "critical", "warning", "acknowledged", "unknown")
DEFAULT_PRIMARY_PROPERTIES: Final = ("host", "service", "application", "device")
DEFAULT_SECONDARY_PROPERTIES: Final = ("check", "sensor")
#: Fields BigPanda gives a meaning; must be strings when present.
TEXT_FIELDS: Final = (
    *DEFAULT_PRIMARY_PROPERTIES,
    *DEFAULT_SECONDARY_PROPERTIES,
    "description",
    "incident_identifier",
    "cluster",
    "primary_property",
    "secondary_property",
)
#: Every name that is not a custom attribute (``alerts`` is the batch's list).
RESERVED_FIELDS: Final = frozenset({"app_key", "status", "timestamp", "alerts", *TEXT_FIELDS})
#: Fields a primary/secondary property may not name: they identify nothing.
_NOT_A_PROPERTY: Final = frozenset(
    {"app_key", "status", "timestamp", "alerts", "primary_property", "secondary_property"}
)
#: 3000-01-01T00:00:00Z: an epoch "seconds" value beyond this is milliseconds.
TIMESTAMP_CEILING: Final = 32_503_680_000
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def _blank(value: object) -> bool:
    return not isinstance(value, str) or not value.strip()


def _missing(field: str) -> Problem:
    return Problem(field, "is required and must not be blank", f"'{field}' is missing or blank")


def _invalid(field: str, rule: str, why: str) -> Problem:
    return Problem(field, rule, f"'{field}' is invalid ({why})")


def check_app_key(app_key: object) -> list[Problem]:
    """The integration's app key: a non-blank string (BigPanda documents no format)."""
    return [_missing("app_key")] if _blank(app_key) else []


def _check_app_key(body: Mapping[str, Any], prefix: str, *, in_batch: bool) -> list[Problem]:
    if in_batch:
        if "app_key" in body:
            return [
                _invalid(
                    f"{prefix}app_key",
                    "must not be set on a batch item (the batch carries the app_key)",
                    "not allowed in a batch item",
                )
            ]
        return []
    return check_app_key(body.get("app_key"))


def _check_status(body: Mapping[str, Any], prefix: str) -> list[Problem]:
    status = body.get("status")
    if _blank(status):
        return [_missing(f"{prefix}status")]
    if status not in STATUSES:
        return [
            _invalid(
                f"{prefix}status",
                f"must be one of {', '.join(STATUSES)} (lower case)",
                "must be one of the following: 'ok', 'critical', 'warning', 'acknowledged' or 'unknown'",
            )
        ]
    return []


def _check_text_fields(body: Mapping[str, Any], prefix: str) -> list[Problem]:
    problems = []
    for name in TEXT_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(
                _invalid(
                    f"{prefix}{name}",
                    f"must be a string, not {_json_type(value)}",
                    "must be a string",
                )
            )
    description = body.get("description")
    if isinstance(description, str) and len(description) > BIGPANDA_DESCRIPTION_MAX:
        problems.append(
            Problem(
                f"{prefix}description",
                f"must be at most {BIGPANDA_DESCRIPTION_MAX} characters",
                f"'{prefix}description' is too long (maximum is {BIGPANDA_DESCRIPTION_MAX} characters)",
            )
        )
    return problems


def _usable_property_value(value: object) -> bool:
    return (isinstance(value, str) and bool(value.strip())) or is_whole(value)


def _check_named_property(body: Mapping[str, Any], prefix: str, setting: str) -> list[Problem]:
    """``primary_property``/``secondary_property``: must name a present, usable field."""
    name = body.get(setting)
    field = f"{prefix}{setting}"
    if not isinstance(name, str):
        return []  # absent, or already reported as "must be a string"
    if not name.strip():
        return [_missing(field)]
    if name in _NOT_A_PROPERTY:
        return [_invalid(field, f"cannot name {name!r:.40}", f"cannot name the '{name}' field")]
    if not _usable_property_value(body.get(name)):
        return [
            _invalid(
                field,
                f"names {name!r:.60}, which must be present with a non-blank value",
                f"names '{name}', which is missing or blank",
            )
        ]
    return []


def _check_primary(body: Mapping[str, Any], prefix: str) -> list[Problem]:
    if body.get("primary_property") is not None:
        return _check_named_property(body, prefix, "primary_property")
    if any(not _blank(body.get(name)) for name in DEFAULT_PRIMARY_PROPERTIES):
        return []
    return [
        Problem(
            f"{prefix}primary_property",
            "is required: set one of host, service, application, device"
            " (or primary_property naming a present field)",
            f"'{prefix}primary_property' is missing or blank (set one of the following:"
            " 'host', 'service', 'application' or 'device')",
        )
    ]


def _check_timestamp(body: Mapping[str, Any], prefix: str) -> list[Problem]:
    value = body.get("timestamp")
    if value is None:
        return []
    field = f"{prefix}timestamp"
    if not is_whole(value, minimum=0):
        return [
            _invalid(
                field,
                "must be a non-negative integer of Unix epoch seconds",
                "must be an integer of Unix epoch seconds",
            )
        ]
    if value >= TIMESTAMP_CEILING:
        return [
            _invalid(
                field,
                "must be Unix epoch seconds; this looks like milliseconds",
                "must be Unix epoch seconds, not milliseconds",
            )
        ]
    return []


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, float):
        return "number with a fraction"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _check_scalar_tag(value: object, field: str, *, item: bool) -> list[Problem]:
    what = "array items" if item else "custom attributes"
    if isinstance(value, str):
        if len(value) > BIGPANDA_TAG_VALUE_MAX:
            return [
                Problem(
                    field,
                    f"must be at most {BIGPANDA_TAG_VALUE_MAX} characters",
                    f"'{field}' is too long (maximum is {BIGPANDA_TAG_VALUE_MAX} characters)",
                )
            ]
        return []
    if is_whole(value):
        if not _INT64_MIN <= value <= _INT64_MAX:
            return [_invalid(field, "must fit in 64 bits", "integer out of range")]
        return []
    allowed = "a string or an integer" if item else "a string, an integer or an array of those"
    return [
        _invalid(
            field,
            f"must be {allowed}, not {_json_type(value)} ({what} cannot nest)"
            if isinstance(value, (Mapping, list))
            else f"must be {allowed}, not {_json_type(value)}",
            f"must be {allowed}",
        )
    ]


def _check_custom_attributes(body: Mapping[str, Any], prefix: str) -> list[Problem]:
    problems: list[Problem] = []
    for name, value in body.items():
        if name in RESERVED_FIELDS:
            continue
        if not isinstance(name, str) or not name.strip():
            problems.append(
                Problem(
                    f"{prefix}{name!s}",
                    "attribute names must be non-blank strings",
                    "custom attribute names must not be blank",
                )
            )
            continue
        field = f"{prefix}{name}"
        if isinstance(value, list):
            if len(value) > BIGPANDA_TAG_VALUES_MAX:
                problems.append(
                    Problem(
                        field,
                        f"must hold at most {BIGPANDA_TAG_VALUES_MAX} values, not {len(value)}",
                        f"'{field}' has too many values (maximum is {BIGPANDA_TAG_VALUES_MAX})",
                    )
                )
            for i, item in enumerate(value):
                problems += _check_scalar_tag(item, f"{field}[{i}]", item=True)
        else:
            problems += _check_scalar_tag(value, field, item=False)
    return problems


def _not_object(field: str) -> Problem:
    return _invalid(field, "must be a JSON object", "must be an object")


def _check_alert(body: object, prefix: str, *, in_batch: bool) -> list[Problem]:
    if not isinstance(body, Mapping):
        return [_not_object(prefix.rstrip(".") or "alert")]
    problems = _check_app_key(body, prefix, in_batch=in_batch)
    problems += _check_status(body, prefix)
    problems += _check_text_fields(body, prefix)
    problems += _check_primary(body, prefix)
    problems += _check_named_property(body, prefix, "secondary_property")
    problems += _check_timestamp(body, prefix)
    problems += _check_custom_attributes(body, prefix)
    return problems


def check_alert(body: object, *, in_batch: bool = False) -> list[Problem]:
    """Every rule one alert body breaks; empty when valid.

    ``in_batch=True``: the body is a batch item (or the model's own body, to
    which the client adds ``app_key`` later): ``app_key`` must be absent.
    """
    return _check_alert(body, "", in_batch=in_batch)


def check_batch(body: object) -> list[Problem]:
    """Every rule a batch ``{"app_key": ..., "alerts": [...]}`` breaks; empty when valid."""
    if not isinstance(body, Mapping):
        return [_not_object("body")]
    problems = _check_app_key(body, "", in_batch=False)
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        if alerts is None:
            return [*problems, _missing("alerts")]
        return [*problems, _invalid("alerts", "must be a list of alerts", "must be an array")]
    if not alerts:
        return [*problems, _invalid("alerts", "must hold at least one alert", "must not be empty")]
    for i, item in enumerate(alerts):
        problems += _check_alert(item, f"alerts[{i}].", in_batch=True)
    return problems


def check_body(body: object) -> list[Problem]:
    """What the wire server calls: a batch when the object has ``alerts``, else one alert."""
    if isinstance(body, Mapping) and "alerts" in body:
        return check_batch(body)
    return check_alert(body)


def error_body(problems: list[Problem]) -> dict[str, Any]:
    """The 400 body the sandbox answers with (format documented above; BigPanda's is unconfirmed)."""
    return {
        "status": "failure",
        "message": "Alert object is invalid",
        "errors": [p.wire_text for p in problems],
    }


def require_app_key(value: object) -> str:
    """The app key, or a ValidationError naming ``app_key``."""
    raise_for(check_app_key(value))
    assert isinstance(value, str)
    return value


def require_token(value: str | Secret) -> Secret:
    """The org token: non-blank, and only characters an HTTP header can carry.

    Errors never quote it: a rejected token is still a token.
    """
    token = credential(value, "token")
    raw = token.reveal()
    if not raw.strip():
        raise ValidationError("token", "is required and must not be blank")
    if not raw.isascii() or not raw.isprintable() or any(c.isspace() for c in raw):
        raise ValidationError(
            "token", "must be printable ASCII without spaces (it goes in a Bearer header)"
        )
    return token
