"""A tiny HTTP helper for the wire/sandbox tests: real sockets, no retries, raw answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import urllib3

if TYPE_CHECKING:
    from alertwire.transport import Request

KEY = "0123456789abcdef0123456789ABWXYZ"
OTHER_KEY = "ffffffffffffffffffffffffffffQRST"
TOKEN = "bp-token-1234567890secret-TKN9"

_pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10))


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    body: bytes | dict[str, Any] | list[Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    pool: urllib3.PoolManager | None = None,
    **kw: Any,
) -> Answer:
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    r = (pool or _pool).request(method, url, body=data, headers=headers, retries=False, **kw)
    return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, r.data)


def fetch(url: str, data: bytes | None = None) -> tuple[int, str, dict[str, str]]:
    """GET ``url``, or POST ``data`` as JSON: (status, text, lower-cased headers), for tests
    that unpack an answer; a long timeout, since the server may be riding out an outage."""
    answer = request(
        "POST" if data else "GET",
        url,
        data,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    return answer.status, answer.body.decode(), answer.headers


def post(url: str, body: bytes | dict[str, Any] | list[Any], **kw: Any) -> Answer:
    return request("POST", url, body, **kw)


def trigger(dedup_key: str | None = None, *, key: str = KEY, **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {"summary": "disk full", "source": "db1", "severity": "critical", **payload},
    }
    if dedup_key is not None:
        body["dedup_key"] = dedup_key
    return body


def enqueue_request(url: str, body: dict[str, Any] | None = None) -> Request:
    """A transport-level ``POST {url}/v2/enqueue`` of ``body`` (a trigger by default):
    what the transport tests send through each transport."""
    from alertwire.transport import Request

    data = json.dumps(body if body is not None else trigger("transport")).encode()
    return Request("POST", url + "/v2/enqueue", {"Content-Type": "application/json"}, data)


def action(event_action: str, dedup_key: str, *, key: str = KEY) -> dict[str, Any]:
    return {"routing_key": key, "event_action": event_action, "dedup_key": dedup_key}
