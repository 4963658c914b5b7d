"""Every answer the wire server gives, byte for byte, in one place.

PagerDuty's bodies are those docs/protocol.md quotes, keys in the order the real
service sends them (202: status, message, dedup_key; 400: errors, message,
status, alphabetical as in captures since 2023). BigPanda's bodies are
unconfirmed: 400 uses :func:`alertwire.models.bigpanda_rules.error_body`,
success is ``201 {"status":"created"}`` (BigPanda answers 201 in practice;
alertwire's own reader accepts any 2xx, with or without a body).

Refusals that are not about the event (429, 403, 503) use PagerDuty's 400
shape with their own ``status`` word on the PagerDuty routes, BigPanda's
error shape on BigPanda's, and a ``Retry-After`` header when the refusal has
a hint: a client reads them as it reads that service's own errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from aiohttp import web

from .. import _json
from ..models import bigpanda_rules
from ..models.pagerduty_rules import NESTED_TOO_DEEP_TEXT, Problem

__all__ = [
    "bigpanda_accepted",
    "bigpanda_invalid",
    "bigpanda_refusal",
    "bigpanda_unauthorized",
    "bigpanda_unrecognized",
    "change_accepted",
    "event_accepted",
    "invalid_event",
    "refusal",
    "unrecognized_object",
]

JSON: Final = "application/json"
PARSE_ERROR: Final = "JSON parse error"
NOT_AN_OBJECT: Final = "Event object is not a JSON object"
NESTED_TOO_DEEP: Final = NESTED_TOO_DEEP_TEXT


def _json_response(
    status: int, body: Any, *, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=_json.dumps(body, no_floats=True), content_type=JSON, headers=headers
    )


def event_accepted(dedup_key: str) -> web.Response:
    return _json_response(
        202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
    )


def change_accepted() -> web.Response:
    return _json_response(202, {"message": "Change event processed", "status": "success"})


def invalid_event(problems: Sequence[Problem]) -> web.Response:
    return _json_response(
        400,
        {
            "errors": [p.wire_text for p in problems],
            "message": "Event object is invalid",
            "status": "invalid event",
        },
    )


def unrecognized_object(error: str = PARSE_ERROR) -> web.Response:
    return _json_response(
        400,
        {
            "errors": [error],
            "message": "Event object format is unrecognized",
            "status": "Unrecognized object",
        },
    )


def retry_after_value(seconds: float) -> str:
    """``Retry-After`` is whole seconds; round up so a client never comes back too early."""
    return str(max(math.ceil(seconds), 0))


def refusal(status: int, label: str, message: str, retry_after: float | None) -> web.Response:
    headers = {"Retry-After": retry_after_value(retry_after)} if retry_after is not None else None
    return _json_response(
        status, {"errors": [message], "message": message, "status": label}, headers=headers
    )


def bigpanda_accepted() -> web.Response:
    return _json_response(201, {"status": "created"})


def bigpanda_invalid(problems: Sequence[Problem]) -> web.Response:
    return _json_response(400, bigpanda_rules.error_body(list(problems)))


def bigpanda_unrecognized(error: str = PARSE_ERROR) -> web.Response:
    return _json_response(
        400,
        {"status": "failure", "message": "Alert object format is unrecognized", "errors": [error]},
    )


def bigpanda_unauthorized(reason: str) -> web.Response:
    return _json_response(
        401,
        {"status": "failure", "message": "Unauthorized", "errors": [reason]},
        headers={"WWW-Authenticate": 'Bearer realm="bigpanda"'},
    )


def bigpanda_refusal(
    status: int, label: str, message: str, retry_after: float | None
) -> web.Response:
    """A refusal that is not about the alert (403, 429, 503) in BigPanda's error shape;
    ``label`` (``throttled``...) is for PagerDuty's shape only, BigPanda says ``failure``."""
    headers = {"Retry-After": retry_after_value(retry_after)} if retry_after is not None else None
    return _json_response(
        status, {"status": "failure", "message": message, "errors": [message]}, headers=headers
    )
