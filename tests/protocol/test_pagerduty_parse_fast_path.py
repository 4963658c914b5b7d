"""parse_response's fast path for PagerDuty's canonical 202 gives what the general path gives.

The fast path (see :func:`alertwire.protocol.pagerduty.parse_response`) reads
the dedup key out of the canonical answer's bytes without a JSON parse. Each
case here states the answer a JSON reading gives, so a fast path that read a
key wrongly, or took a body it must leave to the general path, fails.
"""

from __future__ import annotations

import json

import pytest

from alertwire import EventResult, Secret, UnexpectedResponse
from alertwire.protocol import pagerduty as protocol
from alertwire.transport import Response

HEAD = b'{"status":"success","message":"Event processed","dedup_key":"'
KEY = Secret("R0123456789abcdef0123456789abcde")

BODIES = [
    HEAD + b'0123456789abcdef0123456789abcdef"}',  # PagerDuty's own
    HEAD + b'abc"}',
    HEAD + b'"}',  # empty key
    HEAD + b'a b"}',  # not alphanumeric: general path
    HEAD + b'a\\"b"}',  # an escaped quote inside the key
    HEAD + b'ab\\u0041"}',  # a unicode escape
    HEAD + "é".encode() + b'"}',
    HEAD + b'abc"} ',  # trailing space
    HEAD + b'abc","extra":1}',  # another member after the key
    b'{"status":"success","message":"Event processed"}',  # no key: the sent one
    b'{"message":"Event processed","status":"success","dedup_key":"abc"}',  # other order
]


def expected(body: bytes, kind: protocol.Kind) -> EventResult:
    payload = json.loads(body)
    key = payload.get("dedup_key")
    return EventResult(
        status=str(payload.get("status", "success")),
        message=str(payload.get("message", "")),
        dedup_key=None if kind == "change" else key if isinstance(key, str) else "sent",
        http_status=202,
    )


@pytest.mark.parametrize("kind", ["alert", "change"])
@pytest.mark.parametrize("body", BODIES)
def test_202_result_is_the_json_reading(body: bytes, kind: protocol.Kind) -> None:
    result = protocol.parse_response(
        Response(202, {}, body), kind=kind, sent_dedup_key="sent", routing_key=KEY
    )
    assert result == expected(body, kind)


@pytest.mark.parametrize(
    "body",
    [HEAD + b'abc"}"}', HEAD + b'ab"c"}', HEAD + b"abc"],
    ids=["trailing-junk", "bare-quote", "unterminated"],
)
def test_202_that_only_looks_canonical_is_not_json(body: bytes) -> None:
    with pytest.raises(UnexpectedResponse, match="without the JSON body"):
        protocol.parse_response(Response(202, {}, body), kind="alert", routing_key=KEY)


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_other_2xx_with_canonical_body_read_the_same(status: int) -> None:
    body = HEAD + b'abc"}'
    result = protocol.parse_response(Response(status, {}, body), kind="alert")
    assert result == EventResult("success", "Event processed", "abc", status)
