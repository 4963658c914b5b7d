"""The sans-IO BigPanda protocol: requests built, answers read, no network."""

from __future__ import annotations

import json

import pytest

from alertwire import BadRequest, BigPandaAlert, RateLimited, Secret, ServerError, Unauthorized
from alertwire.protocol import bigpanda as protocol
from alertwire.transport import Response

TOKEN = Secret("org-token-abcdef123456")


def test_single_request() -> None:
    a = BigPandaAlert("ok", host="h", tags={"k": "v"})
    request = protocol.build_request(protocol.US_BASE_URL, TOKEN, 'we"ird\\key', a)
    assert request.method == "POST"
    assert request.url == "https://api.bigpanda.io/data/v2/alerts"
    assert "access_token" not in request.url
    assert request.headers["Authorization"] == "Bearer org-token-abcdef123456"
    assert json.loads(request.body) == {
        "app_key": 'we"ird\\key',
        "status": "ok",
        "host": "h",
        "k": "v",
    }
    assert "org-token" not in repr(request)


def test_batch_request_and_order() -> None:
    alerts = [
        BigPandaAlert("ok", host="b", timestamp=20),
        BigPandaAlert("ok", host="none"),
        BigPandaAlert("ok", host="a", timestamp=10),
    ]
    request = protocol.build_batch_request(protocol.EU_BASE_URL, TOKEN, "app", alerts)
    assert request.url == "https://eu-api.bigpanda.io/data/v2/alerts"
    body = json.loads(request.body)
    assert body["app_key"] == "app"
    assert [i["host"] for i in body["alerts"]] == ["a", "b", "none"]
    assert protocol.oldest_first(alerts) == [alerts[2], alerts[0], alerts[1]]


@pytest.mark.parametrize(
    ("status", "body", "expected_status", "message"),
    [
        (201, b'{"status":"created","message":"ok!"}', "created", "ok!"),
        (201, b"", "success", ""),
        (204, b"", "success", ""),
        (202, b"<html>queued</html>", "success", ""),
        (200, b"[1,2]", "success", ""),
    ],
)
def test_any_2xx_is_success(status: int, body: bytes, expected_status: str, message: str) -> None:
    result = protocol.parse_response(Response(status, {}, body))
    assert (result.status, result.message, result.http_status) == (expected_status, message, status)
    assert result.dedup_key is None


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (400, BadRequest, False),
        (401, Unauthorized, False),
        (403, Unauthorized, False),
        (429, RateLimited, True),
        (500, ServerError, True),
        (503, ServerError, True),
    ],
)
def test_errors_follow_the_shared_policy(
    status: int, error: type[Exception], retryable: bool
) -> None:
    with pytest.raises(error) as info:
        protocol.parse_response(Response(status, {}, b"nope"), token=TOKEN)
    assert info.value.retryable is retryable  # type: ignore[attr-defined]


def test_echoed_token_is_cut_from_errors() -> None:
    body = b"bad token org-token-abcdef123456"
    with pytest.raises(Unauthorized) as info:
        protocol.parse_response(Response(401, {}, body), token=TOKEN)
    assert "org-token-abcdef123456" not in str(info.value)
    assert "org-token-abcdef123456" not in info.value.body
    assert "BigPanda rejected the token" in str(info.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"app_key":"a","status":"ok","host":"h"}', True),
        (b'{"app_key":"a","alerts":[{"status":"ok"},{"status":"ok"}]}', True),
        # A batch that also pages is not a resolve: its other alert would page late.
        (b'{"app_key":"a","alerts":[{"status":"ok"},{"status":"critical"}]}', False),
        (b'{"app_key":"a","alerts":[]}', False),
        (b'{"app_key":"a","status":"critical"}', False),
        (b"[1]", False),
        (b"{", False),
    ],
)
def test_resolves_only_when_every_alert_is_ok(body: bytes, expected: bool) -> None:
    assert protocol.resolves(body) is expected
