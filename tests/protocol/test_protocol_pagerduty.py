"""The sans-IO PagerDuty core, with no network: request building and status classification."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

import alertwire
from alertwire import (
    AcknowledgeAlert,
    BadRequest,
    Change,
    DeliveryError,
    NetworkError,
    RateLimited,
    ResolveAlert,
    Secret,
    ServerError,
    TriggerAlert,
    Unauthorized,
    UnexpectedResponse,
)
from alertwire.models.pagerduty_rules import check_alert_event, check_change_event
from alertwire.protocol import pagerduty as protocol
from alertwire.protocol.http import check_base_url, error_for_response, parse_retry_after
from alertwire.transport import Response
from tests.support.keys import MIXED_CASE_ROUTING_KEY as KEY

BASE = "https://events.pagerduty.com"


def response(
    status: int, body: bytes | str | Mapping[str, object] = b"", **headers: str
) -> Response:
    if isinstance(body, Mapping):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    return Response(status, {k.lower().replace("_", "-"): v for k, v in headers.items()}, body)


# --- request building -------------------------------------------------------------------


def test_keyless_trigger_gets_generated_key_spliced_into_valid_json() -> None:
    request, dedup_key = protocol.build_request(BASE, Secret(KEY), TriggerAlert("disk full"))
    assert request.method == "POST"
    assert request.url == BASE + "/v2/enqueue"
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert body["routing_key"] == KEY
    assert dedup_key is not None
    assert body["dedup_key"] == dedup_key
    assert len(dedup_key) == 32
    assert dedup_key.isascii() and dedup_key.isalnum()
    assert body["event_action"] == "trigger"
    assert body["payload"]["summary"] == "disk full"
    assert check_alert_event(body) == []


def test_each_keyless_trigger_gets_a_fresh_key() -> None:
    event = TriggerAlert("x")
    keys = {protocol.build_request(BASE, Secret(KEY), event)[1] for _ in range(20)}
    assert len(keys) == 20


def test_generated_keys_are_uuid4_hex_and_distinct_across_draws() -> None:
    # More keys than one draw of randomness holds, so a refill is crossed.
    keys = [protocol.new_dedup_key() for _ in range(3 * 256 + 7)]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert uuid.UUID(hex=key).version == 4
        assert uuid.UUID(hex=key).variant == uuid.RFC_4122
        assert key == key.lower() and len(key) == 32


def test_each_generated_key_is_uuid4_of_its_own_16_random_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Exactly uuid.uuid4's bits: every random bit kept but the version's and the variant's."""
    # 256 keys' worth, every byte value at every position of a key
    randomness = b"".join(bytes((k + 17 * j) % 256 for j in range(16)) for k in range(256))
    monkeypatch.setattr(os, "urandom", lambda size: randomness[:size])
    keys = protocol._draw_keys()
    assert keys == [
        uuid.UUID(bytes=randomness[at : at + 16], version=4).hex
        for at in range(0, len(randomness), 16)
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork only")
def test_a_forked_child_does_not_repeat_its_parents_keys() -> None:
    protocol.new_dedup_key()  # keys are drawn ahead now, in the parent
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next keys, to the parent
        os.close(read_end)
        os.write(write_end, "".join(protocol.new_dedup_key() for _ in range(10)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    assert os.waitpid(pid, 0)[1] == 0
    child = {text[at : at + 32] for at in range(0, len(text), 32)}
    parent = {protocol.new_dedup_key() for _ in range(10)}
    assert len(child) == 10
    assert not child & parent


def test_trigger_with_key_keeps_it_and_is_not_given_a_second_one() -> None:
    event = TriggerAlert("x", dedup_key='my key/with "quotes"')
    request, dedup_key = protocol.build_request(BASE, Secret(KEY), event)
    assert dedup_key == 'my key/with "quotes"'
    assert request.body.count(b'"dedup_key"') == 1
    assert json.loads(request.body)["dedup_key"] == 'my key/with "quotes"'


@pytest.mark.parametrize("cls", [AcknowledgeAlert, ResolveAlert])
def test_ack_and_resolve_requests(cls: type[AcknowledgeAlert]) -> None:
    request, dedup_key = protocol.build_request(BASE, Secret(KEY), cls("k1"))
    body = json.loads(request.body)
    assert dedup_key == "k1"
    assert body == {"routing_key": KEY, "event_action": cls.event_action, "dedup_key": "k1"}
    assert check_alert_event(body) == []


def test_change_request_goes_to_change_path_without_dedup_key() -> None:
    request, dedup_key = protocol.build_request(BASE, Secret(KEY), Change("deployed v2"))
    body = json.loads(request.body)
    assert request.url == BASE + "/v2/change/enqueue"
    assert dedup_key is None
    assert "dedup_key" not in body and "event_action" not in body
    assert body["routing_key"] == KEY
    assert check_change_event(body) == []


STAMP = "2026-11-23T23:45:01.123+00:00"


def test_a_stamped_body_is_the_models_bytes_with_the_members_spliced_in() -> None:
    """The enqueue timestamp and the routing and dedup keys go in one splice; every
    byte of the model's own body stays in place, in order."""
    trigger = TriggerAlert("x", source="h", custom_details={"n": 1})
    body, dedup_key = protocol.build_body(Secret(KEY), trigger, timestamp=STAMP)
    head = b'{"event_action":"trigger","payload":{'
    assert body == (
        f'{{"routing_key":"{KEY}","dedup_key":"{dedup_key}",'.encode()
        + head[1:]
        + f'"timestamp":"{STAMP}",'.encode()
        + trigger.wire_bytes[len(head) :]
    )
    change = Change("deployed")
    body, dedup_key = protocol.build_body(Secret(KEY), change, timestamp=STAMP)
    assert dedup_key is None
    assert body == (
        f'{{"routing_key":"{KEY}","payload":{{"timestamp":"{STAMP}",'.encode()
        + change.wire_bytes[len(b'{"payload":{') :]
    )


def test_a_body_in_another_layout_is_stamped_by_serialising_it_again() -> None:
    event = TriggerAlert("x", source="h", dedup_key="k")
    spaced = b'{"dedup_key": "k", "payload": {"summary": "x"}, "event_action": "trigger"}'
    object.__setattr__(event, "_wire", spaced)
    body, dedup_key = protocol.build_body(Secret(KEY), event, timestamp=STAMP)
    assert dedup_key == "k"
    assert body.startswith(f'{{"routing_key":"{KEY}",'.encode())
    assert json.loads(body) == {
        "routing_key": KEY,
        "dedup_key": "k",
        "payload": {"summary": "x", "timestamp": STAMP},
        "event_action": "trigger",
    }


def test_a_new_trigger_body_is_what_the_general_splice_gives() -> None:
    """new_trigger_body (the outbox's way for a keyless, unstamped trigger) gives the
    bytes build_body gives (pinned above), in the model's own layout and in any other."""
    key_member = protocol.routing_key_member(Secret(KEY))
    stamp = protocol.timestamp_member(STAMP)
    for trigger in (TriggerAlert("x", source="h", custom_details={"n": 1}), TriggerAlert("x")):
        body, dedup_key = protocol.build_body(Secret(KEY), trigger, timestamp=STAMP)
        assert dedup_key is not None
        assert protocol.new_trigger_body(trigger.wire_bytes, key_member, dedup_key, stamp) == body
    dedup_key = "0123456789abcdef0123456789abcdef"
    spaced = b'{"payload": {"summary": "x"}, "event_action": "trigger"}'
    body = protocol.new_trigger_body(spaced, key_member, dedup_key, stamp)
    assert body.startswith(f'{{"routing_key":"{KEY}","dedup_key":"{dedup_key}",'.encode())
    assert json.loads(body) == {
        "routing_key": KEY,
        "dedup_key": dedup_key,
        "payload": {"summary": "x", "timestamp": STAMP},
        "event_action": "trigger",
    }


def test_request_repr_hides_the_body() -> None:
    request, _ = protocol.build_request(BASE, Secret(KEY), TriggerAlert("x"))
    assert KEY not in repr(request)


def test_regions() -> None:
    assert protocol.base_url_for_region("us") == "https://events.pagerduty.com"
    assert protocol.base_url_for_region("eu") == "https://events.eu.pagerduty.com"
    with pytest.raises(alertwire.ConfigurationError, match="region"):
        protocol.base_url_for_region("apac")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:9", "https://example.com/x/"],
)
def test_base_url_accepted(url: str) -> None:
    assert check_base_url(url, setting="base_url") == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://events.pagerduty.com", "clear text"),
        ("http://127.0.0.1.nip.io", "clear text"),
        ("http://10.0.0.1", "clear text"),
        ("ftp://127.0.0.1", "http"),
        ("https://user:pw@example.com", "credentials"),
        ("https://example.com/?a=b", "query"),
        ("example.com", "http"),
        ("http://127.0.0.1:187914", "not a valid URL: Port out of range"),
        ("https://example.com:abc", "not a valid URL: the port is not a number$"),
        # The userinfo ends at the "/": urllib takes the password for the port, and
        # quoted it ("... as 's3cret'").
        ("https://user:s3cret/x@example.com", "not a valid URL: the port is not a number$"),
        ("http://[::1", "not a valid URL: Invalid IPv6 URL"),
        ("http://127.0.0.1:0", "not a valid URL: port 0"),
        # Once quoted whole ("got 'ftp://user:pw@host'"), before the credentials check.
        ("ftp://user:s3cret@example.com", "must not contain credentials$"),
        ("gopher://s3cret.example.com", "got scheme 'gopher'$"),
        ("R0123456789s3cretABCDEF01234567", "got no scheme and no host$"),
        # A full endpoint URL, as Alertmanager's url: and the services' pages give it:
        # the path was added again (404, exit 3; every queued event dead-lettered).
        ("https://events.pagerduty.com/v2/enqueue", "without /v2/enqueue"),
        ("http://127.0.0.1:8765/v2/enqueue/", "without /v2/enqueue"),
        ("https://proxy.example/pd/v2/change/enqueue", "without /v2/change/enqueue"),
        ("https://api.bigpanda.io/data/v2/alerts", "without /data/v2/alerts"),
    ],
)
def test_base_url_refused(url: str, match: str) -> None:
    with pytest.raises(alertwire.ConfigurationError, match=match) as info:
        check_base_url(url, setting="base_url")
    assert "s3cret" not in str(info.value)


# --- response classification -----------------------------------------------------------


def test_202_alert() -> None:
    body = {"status": "success", "message": "Event processed", "dedup_key": "abc"}
    result = protocol.parse_response(response(202, body), kind="alert", sent_dedup_key="abc")
    assert result == alertwire.EventResult("success", "Event processed", "abc", 202)


def test_202_alert_without_dedup_key_in_body_falls_back_to_sent_key() -> None:
    body = {"status": "success", "message": "Event processed"}
    result = protocol.parse_response(response(202, body), kind="alert", sent_dedup_key="k")
    assert result.dedup_key == "k"


def test_202_change_has_no_dedup_key() -> None:
    body = {"message": "Change event processed", "status": "success"}
    result = protocol.parse_response(response(202, body), kind="change")
    assert result.dedup_key is None
    assert result.message == "Change event processed"


def test_2xx_whose_status_is_not_success_is_success_with_one_warning_per_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The HTTP status is PagerDuty's word: a retry after its 202 would page twice."""
    protocol.forget_odd_statuses()
    odd = {"status": "queued", "message": "Event processed", "dedup_key": "abc"}
    with caplog.at_level(logging.WARNING, logger="alertwire"):
        first = protocol.parse_response(response(202, odd), kind="alert")
        again = protocol.parse_response(response(202, odd), kind="alert")
        missing = protocol.parse_response(response(202, {"dedup_key": "d"}), kind="alert")
    assert first == again == alertwire.EventResult("queued", "Event processed", "abc", 202)
    assert missing.status == "success"  # what it always said: a result is a success
    assert [r.getMessage() for r in caplog.records] == [
        "PagerDuty answered HTTP 202 with status 'queued', not 'success'; counted as"
        " delivered, since the HTTP status says so (said once per status)",
        "PagerDuty answered HTTP 202 with status (none), not 'success'; counted as"
        " delivered, since the HTTP status says so (said once per status)",
    ]


@pytest.mark.parametrize("body", [b"OK", b"", b"<html>proxy</html>", b"[1,2]"])
def test_2xx_with_non_json_object_body_is_unexpected(body: bytes) -> None:
    with pytest.raises(UnexpectedResponse) as info:
        protocol.parse_response(response(202, body), kind="alert")
    assert info.value.http_status == 202
    assert info.value.body == body.decode()
    assert not info.value.retryable


def test_400_with_pagerduty_errors_list() -> None:
    errors = [
        "Length of 'routing_key' is incorrect (should be 32 characters)",
        "'payload.source' is missing or blank",
    ]
    raw = {"errors": errors, "message": "Event object is invalid", "status": "invalid event"}
    with pytest.raises(BadRequest) as info:
        protocol.parse_response(response(400, raw), kind="alert")
    exc = info.value
    assert exc.errors == tuple(errors)
    assert exc.http_status == 400
    assert not exc.retryable
    assert json.loads(exc.body) == raw
    for text in errors:
        assert text in str(exc)
    assert "Event object is invalid" in str(exc)


def test_400_malformed_json_answer() -> None:
    raw = {
        "errors": ["JSON parse error"],
        "message": "Event object format is unrecognized",
        "status": "Unrecognized object",
    }
    with pytest.raises(BadRequest) as info:
        protocol.parse_response(response(400, raw), kind="alert")
    assert info.value.errors == ("JSON parse error",)
    assert "JSON parse error" in str(info.value)


def test_400_with_plain_text_body() -> None:
    with pytest.raises(BadRequest) as info:
        protocol.parse_response(response(400, "Invalid routing key"), kind="alert")
    exc = info.value
    assert exc.errors == ()
    assert exc.body == "Invalid routing key"
    assert "Invalid routing key" in str(exc)
    assert exc.http_status == 400
    assert not exc.retryable


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_unauthorized(status: int) -> None:
    with pytest.raises(Unauthorized) as info:
        protocol.parse_response(response(status, "Forbidden"), kind="alert")
    assert info.value.http_status == status
    assert not info.value.retryable
    assert "Forbidden" in str(info.value)


def test_429_without_retry_after() -> None:
    with pytest.raises(RateLimited) as info:
        protocol.parse_response(response(429, "Request Limit Exceeded"), kind="alert")
    exc = info.value
    assert exc.retry_after is None
    assert exc.retryable
    assert exc.http_status == 429
    assert "Request Limit Exceeded" in str(exc)


def test_429_with_retry_after_seconds() -> None:
    with pytest.raises(RateLimited) as info:
        protocol.parse_response(response(429, "", Retry_After="7"), kind="alert")
    assert info.value.retry_after == 7.0
    assert "7 s" in str(info.value)


def test_429_with_retry_after_http_date() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=120)
    header = format_datetime(when, usegmt=True)
    with pytest.raises(RateLimited) as info:
        protocol.parse_response(response(429, "", Retry_After=header), kind="alert")
    assert info.value.retry_after is not None
    # The header has whole seconds, so the wait is within a second or two of 120.
    assert 115 <= info.value.retry_after <= 121


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("30", 30.0),
        (" 2.5 ", 2.5),
        ("-4", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", None),
        ("1e999", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: go now
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_date_relative_to_now() -> None:
    now = time.time()
    header = format_datetime(datetime.fromtimestamp(now + 60, timezone.utc), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(60, abs=1)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_server_error(status: int) -> None:
    with pytest.raises(ServerError) as info:
        protocol.parse_response(response(status, "<html>Bad Gateway</html>"), kind="alert")
    assert info.value.retryable
    assert info.value.http_status == status
    assert "Bad Gateway" in str(info.value)


def test_408_is_a_retryable_timeout_not_a_refusal() -> None:
    """A proxy's request timeout: nothing processed, so sent again, never dead-lettered."""
    with pytest.raises(ServerError) as info:
        protocol.parse_response(response(408, "<html>Request Timeout</html>"), kind="alert")
    assert info.value.retryable and info.value.http_status == 408
    assert "stopped waiting for the request (HTTP 408)" in str(info.value)


@pytest.mark.parametrize("status", [100, 301, 302, 304, 307, 404, 405, 409, 413, 418, 600])
def test_other_statuses_unexpected(status: int) -> None:
    with pytest.raises(UnexpectedResponse) as info:
        protocol.parse_response(response(status, "nope"), kind="alert")
    assert info.value.http_status == status
    assert not info.value.retryable
    assert f"HTTP {status}" in str(info.value)


def test_error_body_quoted_in_excerpt_but_kept_whole() -> None:
    long = "x" * 5000
    exc = error_for_response(response(503, long), service="PagerDuty")
    assert exc.body == long
    assert len(str(exc)) < 700
    assert str(exc).endswith("…")


def test_empty_body_named_in_message() -> None:
    exc = error_for_response(response(503, b""), service="PagerDuty")
    assert "(empty body)" in str(exc)


def test_non_utf8_error_body_does_not_crash() -> None:
    exc = error_for_response(response(400, b"\xff\xfe bad"), service="PagerDuty")
    assert isinstance(exc, BadRequest)
    assert "bad" in str(exc)


# --- the error tree ---------------------------------------------------------------------


def test_error_tree() -> None:
    assert issubclass(alertwire.ValidationError, alertwire.AlertwireError)
    assert issubclass(alertwire.ValidationError, ValueError)
    for cls in (NetworkError, BadRequest, RateLimited, ServerError, UnexpectedResponse):
        assert issubclass(cls, DeliveryError)
        assert issubclass(cls, alertwire.AlertwireError)
    assert not issubclass(NetworkError, alertwire.ResponseError)
    assert NetworkError("x").retryable
    assert NetworkError("x").http_status is None
    assert RateLimited("x").retryable and ServerError("x").retryable
    assert not BadRequest("x").retryable and not UnexpectedResponse("x").retryable


KEY_ECHO = "Q" * 28 + "echo"


@pytest.mark.parametrize("status", [400, 401, 429, 503, 302, 202])
def test_parse_response_cuts_the_routing_key_out_of_any_error(status: int) -> None:
    """A gateway quoting our request must not put the key into an error (or a dead letter)."""
    from alertwire import ResponseError, Secret

    body = '{"errors":["bad routing_key ' + KEY_ECHO + '"]}' if status != 202 else "ok " + KEY_ECHO
    answer = Response(status, {}, body.encode())
    with pytest.raises(ResponseError) as caught:
        protocol.parse_response(answer, kind="alert", routing_key=Secret(KEY_ECHO))
    error = caught.value
    texts = [str(error), repr(error), error.body, *getattr(error, "errors", ())]
    assert all(KEY_ECHO not in t for t in texts)
    assert "…echo" in error.body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"event_action":"resolve","dedup_key":"k","routing_key":"r"}', True),
        (b'{ "event_action" : "resolve", "dedup_key": "k" }', True),  # a sender's spacing
        (b'{"event_action":"trigger","payload":{"summary":"resolve"}}', False),
        (b'{"event_action":"acknowledge","dedup_key":"k"}', False),
        (b"not json", False),
        (b'["event_action", "resolve"]', False),
    ],
)
def test_resolves_reads_the_action_not_the_bytes(body: bytes, expected: bool) -> None:
    assert protocol.resolves(body) is expected
