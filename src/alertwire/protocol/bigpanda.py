"""BigPanda Alerts API, sans-IO: alert(s) -> :class:`Request`, :class:`Response` -> result.

Both clients build requests and read answers here; the field rules live in
:mod:`alertwire.models.bigpanda_rules`, shared with the wire server.

* The token travels in ``Authorization: Bearer``, never as
  ``?access_token=`` (BigPanda accepts that too, but query strings end up in
  proxy and server logs).
* A batch is ``{"app_key": ..., "alerts": [...]}`` with no ``app_key`` in the
  items, sent oldest first. Alerts without a timestamp go last, in the order
  given: BigPanda stamps them on arrival, so they are the newest.
* Any 2xx is success (201 normally, 204 for an exact duplicate); the body may
  be empty or not JSON, which is not an error: BigPanda documents no success
  body. Everything else goes through the shared status policy
  (:func:`~alertwire.protocol.http.error_for_response`), so retries match
  PagerDuty's: 429, 5xx and network errors are retried, 400 and 401 are not.
* If BigPanda ever echoes the token in an error body, it is cut out before
  the body reaches an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .. import _json
from .._errors import ValidationError
from .._secret import Secret
from ..models.bigpanda import BigPandaAlert
from ..models.results import EventResult
from ..transport import Request, Response
from .http import (
    BIGPANDA_ALERTS_PATH,
    JSON_HEADERS,
    error_for_response,
    json_body,
    resolve_base_url,
    scrubbed_text,
)

__all__ = [
    "ALERTS_PATH",
    "EU_BASE_URL",
    "REGIONS",
    "SERVICE",
    "US_BASE_URL",
    "base_url_for_region",
    "batch_items",
    "build_batch_request",
    "build_raw_request",
    "build_request",
    "headers_for",
    "oldest_first",
    "parse_response",
    "resolves",
]


def batch_items(app_key: str, alerts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A batch's alerts (``{"app_key": ..., "alerts": [...]}``) as complete single-alert
    bodies, the batch's ``app_key`` first: the one rule the wire server and the
    outbox both use to split a batch into what is stored and sent per alert."""
    return [{"app_key": app_key, **alert} for alert in alerts]


US_BASE_URL: Final = "https://api.bigpanda.io"
EU_BASE_URL: Final = "https://eu-api.bigpanda.io"
REGIONS: Final = {"us": US_BASE_URL, "eu": EU_BASE_URL}
ALERTS_PATH: Final = BIGPANDA_ALERTS_PATH
SERVICE: Final = "BigPanda"


def base_url_for_region(region: str) -> str:
    return resolve_base_url(region, None, regions=REGIONS)


def headers_for(token: Secret) -> dict[str, str]:
    """JSON headers plus the bearer token (a Request's headers are never logged)."""
    return {**JSON_HEADERS, "Authorization": "Bearer " + token.reveal()}


def _app_key_json(app_key: str) -> bytes:
    # App keys are not validated to any alphabet: encode, never splice raw.
    return _json.dumps(app_key, no_floats=True)


def build_request(base_url: str, token: Secret, app_key: str, alert: BigPandaAlert) -> Request:
    """One alert: its cached wire bytes with ``app_key`` spliced in front."""
    body = b'{"app_key":' + _app_key_json(app_key) + b"," + alert.wire_bytes[1:]
    return Request("POST", base_url + ALERTS_PATH, headers_for(token), body)


def oldest_first(alerts: Sequence[BigPandaAlert]) -> list[BigPandaAlert]:
    """Timestamped alerts by time (stable), then untimestamped ones in the order given."""
    stamped = sorted((a for a in alerts if a.timestamp is not None), key=lambda a: a.timestamp)  # type: ignore[arg-type,return-value]
    return stamped + [a for a in alerts if a.timestamp is None]


def build_batch_request(
    base_url: str, token: Secret, app_key: str, alerts: Sequence[BigPandaAlert]
) -> Request:
    """One request for many alerts, oldest first, ``app_key`` once at the top."""
    if not alerts:
        raise ValidationError("alerts", "must hold at least one alert")
    items = b",".join(a.wire_bytes for a in oldest_first(alerts))
    body = b'{"app_key":' + _app_key_json(app_key) + b',"alerts":[' + items + b"]}"
    return Request("POST", base_url + ALERTS_PATH, headers_for(token), body)


def build_raw_request(base_url: str, token: Secret, body: bytes) -> Request:
    """A request for a body that is already complete wire JSON (the relay's stored alerts)."""
    return Request("POST", base_url + ALERTS_PATH, headers_for(token), body)


def resolves(body: bytes) -> bool:
    """Whether a stored body only closes incidents: its alert, or every alert of
    its batch, has status ``"ok"``.

    A batch that mixes ``ok`` with other statuses is not: its other alerts would
    page. Called only on the relay's rare path (an event past its max age).
    """
    try:
        doc = _json.loads(body)
    except ValueError:
        return False
    if not isinstance(doc, Mapping):
        return False
    alerts = doc.get("alerts", [doc])
    return (
        isinstance(alerts, list)
        and bool(alerts)
        and all(isinstance(a, Mapping) and a.get("status") == "ok" for a in alerts)
    )


def parse_response(response: Response, *, token: Secret | None = None) -> EventResult:
    """The result of any 2xx; raises the matching :class:`~alertwire.ResponseError` otherwise.

    ``status``/``message`` are BigPanda's own when its body is a JSON object
    saying so; otherwise ``"success"`` and ``""`` (a 204 has no body at all).
    """
    if not 200 <= response.status <= 299:
        raise error_for_response(response, service=SERVICE, credential="token", secret=token)
    payload = json_body(response) if response.body else None
    status, message = "success", ""
    if isinstance(payload, Mapping):
        status = scrubbed_text(payload.get("status", status), token)
        message = scrubbed_text(payload.get("message", message), token)
    return EventResult(status=status, message=message, dedup_key=None, http_status=response.status)
