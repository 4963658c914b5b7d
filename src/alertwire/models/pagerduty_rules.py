"""PagerDuty's validation rules, written once, checked against wire-format JSON.

Both sides use these functions:

* the models call them on the body they are about to send, so that a bad
  event fails at construction with a :class:`~alertwire.ValidationError`
  naming the field, before anything touches the network;
* the wire server (sandbox and relay ingest) calls them on what a client
  actually sent, never trusting the client, and answers 400 with
  PagerDuty's ``errors`` list built from :attr:`Problem.wire_text`.

Each :class:`Problem` carries the dotted field name, our plain rule (for
``ValidationError``) and the exact text PagerDuty puts in its ``errors`` list.
Texts docs/protocol.md quotes from captures are copied verbatim, typo included
(``maiximum``); the others are our wording in the same style, because no
capture of PagerDuty's exists.

Decisions where PagerDuty's behaviour is unconfirmed (the strict choice, so
that the sandbox fails a test rather than production):

* an image ``src`` that is not ``https://`` is refused (the docs say it must be HTTPS);
* ``custom_details`` must be a JSON object or a string;
* ``component``, ``group``, ``class``, ``client``, ``client_url`` and link/image
  texts must be strings when present;
* a change event's ``payload.source`` is optional, but a blank one is refused
  (as for alerts: a blank source is always a mistake).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from .._errors import ValidationError
from .._secret import Secret, credential
from ._time import is_iso8601
from .limits import (
    DEDUP_KEY_MAX,
    EVENT_MAX_BYTES,
    MAX_NESTING_DEPTH,
    REST_TOKEN_LENGTH,
    ROUTING_KEY_LENGTH,
    SUMMARY_MAX,
)
from .nesting import nested_deeper_than

__all__ = [
    "EVENT_ACTIONS",
    "SEVERITIES",
    "Problem",
    "check_alert_event",
    "check_change_event",
    "check_event_nesting",
    "check_event_size",
    "check_routing_key",
    "raise_for",
    "require_routing_key",
]

EVENT_ACTIONS: Final = ("trigger", "acknowledge", "resolve")
SEVERITIES: Final = ("critical", "error", "warning", "info")


class Problem(NamedTuple):
    """One broken rule: ``field`` (dotted wire name), ``rule`` (ours), ``wire_text`` (PagerDuty's).

    A ``NamedTuple``, not a frozen dataclass: making one of those costs a one-event
    ``alertwire trigger`` about half a millisecond of start-up (docs/cli.md, "Start-up cost").
    """

    field: str
    rule: str
    wire_text: str


def _missing(field: str, label: str | None = None) -> Problem:
    return Problem(
        field, "is required and must not be blank", f"'{label or field}' is missing or blank"
    )


def _not_string(field: str) -> Problem:
    return Problem(field, "must be a string", f"'{field}' is invalid (must be a string)")


def _blank(value: object) -> bool:
    return not isinstance(value, str) or not value.strip()


def check_routing_key(key: object) -> list[Problem]:
    """The integration key: 32 alphanumeric characters, PagerDuty's two confirmed texts."""
    if _blank(key):
        return [_missing("routing_key")]
    assert isinstance(key, str)
    problems = []
    if len(key) != ROUTING_KEY_LENGTH:
        hint = ""
        if abs(len(key) - REST_TOKEN_LENGTH) <= 2:
            hint = (
                f"; this one has {len(key)}, like a REST API token: use the service's"
                " Events API v2 integration key instead"
            )
        problems.append(
            Problem(
                "routing_key",
                f"must be the {ROUTING_KEY_LENGTH}-character integration key{hint}",
                f"Length of 'routing_key' is incorrect (should be {ROUTING_KEY_LENGTH} characters)",
            )
        )
    if not key.isascii() or not key.isalnum():
        problems.append(
            Problem(
                "routing_key",
                "must contain only letters and digits",
                "'routing_key' cannot contain non-alphanumeric characters.",
            )
        )
    return problems


def _check_timestamp(value: object, field: str) -> list[Problem]:
    if value is None or is_iso8601(value):
        return []
    return [
        Problem(
            field,
            "must be an ISO 8601 date-time such as 2015-07-17T08:42:58.315+0000",
            f"'{field}' is invalid (must be a valid ISO 8601 timestamp)",
        )
    ]


def _check_text(value: object, field: str, limit: int, too_long: str) -> list[Problem]:
    """A required string of at most ``limit`` characters; ``too_long`` is PagerDuty's wording."""
    if _blank(value):
        return [_missing(field)]
    assert isinstance(value, str)
    if len(value) > limit:
        return [Problem(field, f"must be at most {limit} characters", too_long)]
    return []


def _check_choice(
    value: object, field: str, choices: tuple[str, ...], unknown_text: str
) -> list[Problem]:
    """A required word from ``choices``; ``unknown_text`` is PagerDuty's wording for any other."""
    if _blank(value):
        return [_missing(field)]
    if value not in choices:
        return [Problem(field, f"must be one of {', '.join(choices)}", unknown_text)]
    return []


_UNKNOWN_ACTION: Final = (
    "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or"
    " 'resolve')"
)
_UNKNOWN_SEVERITY: Final = (
    "'payload.severity' is invalid (must be one of the following: "
    "'critical', 'warning', 'error' or 'info')"
)
#: PagerDuty's texts for a too-long summary and dedup key, formatted once, not at every check.
_SUMMARY_TOO_LONG: Final = f"'summary' is too long (maiximum is {SUMMARY_MAX} characters)"  # sic
_DEDUP_KEY_TOO_LONG: Final = f"'dedup_key' is too long (maximum is {DEDUP_KEY_MAX} characters)"


def _check_summary(payload: Mapping[str, Any]) -> list[Problem]:
    return _check_text(payload.get("summary"), "payload.summary", SUMMARY_MAX, _SUMMARY_TOO_LONG)


def _check_custom_details(payload: Mapping[str, Any]) -> list[Problem]:
    details = payload.get("custom_details")
    # ``__class__ is dict`` first: the common case skips the slower ABC check.
    if details is None or details.__class__ is dict or isinstance(details, (str, Mapping)):
        return []
    return [
        Problem(
            "payload.custom_details",
            "must be a JSON object (or a string)",
            "'payload.custom_details' is invalid (must be an object)",
        )
    ]


def _check_optional_strings(
    container: Mapping[str, Any], names: Sequence[str], prefix: str
) -> list[Problem]:
    problems = []
    for name in names:
        value = container.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(_not_string(f"{prefix}{name}"))
    return problems


def _check_objects(
    value: object, name: str, check: Callable[[Mapping[str, Any], str], list[Problem]]
) -> list[Problem]:
    """``links`` or ``images``: absent, or a list of objects, each checked by ``check``.

    ``check`` gets the object and its field path (``links[0]``), so every
    problem names the element it is about.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        return [
            Problem(name, f"must be a list of {name}", f"'{name}' is invalid (must be an array)")
        ]
    problems: list[Problem] = []
    for i, item in enumerate(value):
        field = f"{name}[{i}]"
        if isinstance(item, Mapping):
            problems += check(item, field)
        else:
            problems.append(
                Problem(field, "must be an object", f"'{field}' is invalid (must be an object)")
            )
    return problems


def _check_link(link: Mapping[str, Any], field: str) -> list[Problem]:
    problems = [_missing(f"{field}.href")] if _blank(link.get("href")) else []
    return problems + _check_optional_strings(link, ("text",), f"{field}.")


def _check_image(image: Mapping[str, Any], field: str) -> list[Problem]:
    problems: list[Problem] = []
    src = image.get("src")
    if _blank(src):
        problems.append(_missing(f"{field}.src"))
    elif not str(src).lower().startswith("https://"):
        problems.append(
            Problem(
                f"{field}.src",
                "must be an https:// URL",
                f"'{field}.src' is invalid (must be an HTTPS URL)",
            )
        )
    return problems + _check_optional_strings(image, ("href", "alt"), f"{field}.")


def _check_dedup_key(body: Mapping[str, Any], *, required: bool) -> list[Problem]:
    key = body.get("dedup_key")
    if key is None and not required:
        return []
    return _check_text(key, "dedup_key", DEDUP_KEY_MAX, _DEDUP_KEY_TOO_LONG)


def _check_payload_object(
    body: Mapping[str, Any],
) -> tuple[Mapping[str, Any] | None, list[Problem]]:
    payload = body.get("payload")
    if payload is None:
        return None, [_missing("payload")]
    if payload.__class__ is not dict and not isinstance(payload, Mapping):
        return None, [
            Problem("payload", "must be an object", "'payload' is invalid (must be an object)")
        ]
    return payload, []


def check_alert_event(body: Mapping[str, Any], *, check_key: bool = True) -> list[Problem]:
    """Every rule an alert event (trigger/acknowledge/resolve) breaks; empty when valid.

    ``check_key=False`` skips the routing key (the models validate a body
    before the client adds its key).

    Every model construction runs this (``send --queue`` once per line), so a
    check is called only where its field could break it: a present value for
    the optional fields, anything but one of the accepted words (a ``str``) for
    the choices (an accepted word is never blank). The checks and their order, and so the
    problems and their order, are the same as calling each one always.
    """
    problems = check_routing_key(body.get("routing_key")) if check_key else []
    action = body.get("event_action")
    if action.__class__ is not str or action not in EVENT_ACTIONS:
        problems += _check_choice(action, "event_action", EVENT_ACTIONS, _UNKNOWN_ACTION)
    if body.get("dedup_key") is not None or action in ("acknowledge", "resolve"):
        problems += _check_dedup_key(body, required=True)
    problems += _check_optional_strings(body, ("client", "client_url"), "")
    links = body.get("links")
    if links is not None:
        problems += _check_objects(links, "links", _check_link)
    images = body.get("images")
    if images is not None:
        problems += _check_objects(images, "images", _check_image)
    if action != "trigger":
        return problems
    payload, payload_problems = _check_payload_object(body)
    if payload_problems:
        problems += payload_problems
    if payload is None:
        return problems
    problems += _check_summary(payload)
    if _blank(payload.get("source")):
        problems.append(_missing("payload.source"))
    severity = payload.get("severity")
    if severity.__class__ is not str or severity not in SEVERITIES:
        problems += _check_choice(severity, "payload.severity", SEVERITIES, _UNKNOWN_SEVERITY)
    timestamp = payload.get("timestamp")
    if timestamp is not None:
        problems += _check_timestamp(timestamp, "payload.timestamp")
    problems += _check_optional_strings(payload, ("component", "group", "class"), "payload.")
    if payload.get("custom_details") is not None:
        problems += _check_custom_details(payload)
    return problems


def check_change_event(body: Mapping[str, Any], *, check_key: bool = True) -> list[Problem]:
    """Every rule a change event breaks; empty when valid."""
    problems = check_routing_key(body.get("routing_key")) if check_key else []
    problems += _check_objects(body.get("links"), "links", _check_link)
    payload, payload_problems = _check_payload_object(body)
    problems += payload_problems
    if payload is None:
        return problems
    problems += _check_summary(payload)
    source = payload.get("source")
    if isinstance(source, str) and not source.strip():
        # Optional for change events, but a blank one is a mistake, as for alerts.
        problems.append(_missing("payload.source"))
    else:
        problems += _check_optional_strings(payload, ("source",), "payload.")
    problems += _check_timestamp(payload.get("timestamp"), "payload.timestamp")
    problems += _check_custom_details(payload)
    return problems


def check_event_size(size: int) -> list[Problem]:
    """A whole serialised event over 512 KB is refused."""
    if size <= EVENT_MAX_BYTES:
        return []
    return [
        Problem(
            "event",
            f"must serialise to at most {EVENT_MAX_BYTES} bytes (512 KB); it has {size}",
            f"Event object is too large (maximum is {EVENT_MAX_BYTES} bytes)",
        )
    ]


#: The one field of a PagerDuty event that can nest: it sits at level 3 of the event.
_DETAILS_LEVEL: Final = 3
#: What the wire answers a body nested too deeply (it is refused as unparseable).
NESTED_TOO_DEEP_TEXT: Final = "Event object is nested too deeply"


def nesting_problem() -> Problem:
    """``payload.custom_details`` nests too deeply: the event exceeds the nesting limit."""
    inside = MAX_NESTING_DEPTH - _DETAILS_LEVEL + 1
    return Problem(
        "payload.custom_details",
        f"must nest at most {inside} levels of objects and arrays, itself included"
        f" (the whole event may nest {MAX_NESTING_DEPTH}, counted from its top level)",
        NESTED_TOO_DEEP_TEXT,
    )


def check_event_nesting(data: bytes) -> list[Problem]:
    """A serialised event nested deeper than the wire accepts (only custom_details can nest)."""
    return [nesting_problem()] if nested_deeper_than(data, MAX_NESTING_DEPTH) else []


def raise_for(problems: Sequence[Problem], rename: Callable[[str], str] = str) -> None:
    """Raise one :class:`~alertwire.ValidationError` holding every problem (none: return).

    ``rename`` maps a wire field to the name the caller wrote (``payload.class``
    → ``class_``), so errors name the argument, not the JSON path.
    """
    if problems:
        pairs = [(rename(p.field), p.rule) for p in problems]
        raise ValidationError(pairs[0][0], pairs[0][1], problems=pairs)


def require_routing_key(value: str | Secret) -> Secret:
    """The key as a :class:`~alertwire.Secret`, or a ValidationError naming ``routing_key``."""
    key = credential(value, "routing_key")
    raise_for(check_routing_key(key.reveal()))
    return key
