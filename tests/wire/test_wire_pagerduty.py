"""The PagerDuty routes over real HTTP: every 400 rule, malformed input, sizes, 404/405.

Expected texts are written out literally (the confirmed ones are PagerDuty's
own, typo included): a rule whose wording drifts must fail here.
"""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from alertwire.sandbox import Sandbox
from tests.support.sandbox_http import KEY, action, post, request, trigger

UNRECOGNIZED = {
    "errors": ["JSON parse error"],
    "message": "Event object format is unrecognized",
    "status": "Unrecognized object",
}


def invalid(*errors: str) -> dict[str, Any]:
    return {"errors": list(errors), "message": "Event object is invalid", "status": "invalid event"}


def test_trigger_without_dedup_key_gets_a_generated_one(alertwire_sandbox: Sandbox) -> None:
    answer = post(alertwire_sandbox.url + "/v2/enqueue", trigger())
    assert answer.status == 202
    key = answer.json["dedup_key"]
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert answer.body == (
        b'{"status":"success","message":"Event processed","dedup_key":"' + key.encode() + b'"}'
    )
    assert answer.headers["content-type"].startswith("application/json")
    assert alertwire_sandbox.alerts()[0]["dedup_key"] == key


def test_two_keyless_triggers_open_two_alerts(alertwire_sandbox: Sandbox) -> None:
    keys = {post(alertwire_sandbox.url + "/v2/enqueue", trigger()).json["dedup_key"] for _ in "ab"}
    assert len(keys) == 2
    assert len(alertwire_sandbox.alerts()) == 2


def test_given_dedup_key_is_echoed(alertwire_sandbox: Sandbox) -> None:
    answer = post(alertwire_sandbox.url + "/v2/enqueue", trigger("db1/disk"))
    assert answer.status == 202
    assert answer.json == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "db1/disk",
    }


def test_change_event_answer(alertwire_sandbox: Sandbox) -> None:
    answer = post(
        alertwire_sandbox.url + "/v2/change/enqueue",
        {"routing_key": KEY, "payload": {"summary": "deployed v2", "source": "ci"}},
    )
    assert answer.status == 202
    assert answer.body == b'{"message":"Change event processed","status":"success"}'
    assert alertwire_sandbox.changes()[0]["body"]["payload"]["summary"] == "deployed v2"


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(body)
    for name, value in changes.items():
        if name.startswith("payload__"):
            out["payload"] = {**out["payload"], name.removeprefix("payload__"): value}
        elif value is _DROP:
            out.pop(name, None)
        else:
            out[name] = value
    return out


_DROP = object()
_NOT_ALNUM = "'routing_key' cannot contain non-alphanumeric characters."
_LENGTH = "Length of 'routing_key' is incorrect (should be 32 characters)"

ALERT_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("key missing", _with(trigger(), routing_key=_DROP), ["'routing_key' is missing or blank"]),
    ("key blank", _with(trigger(), routing_key="   "), ["'routing_key' is missing or blank"]),
    (
        "key not a string",
        _with(trigger(), routing_key=12345),
        ["'routing_key' is missing or blank"],
    ),
    ("key too short", _with(trigger(), routing_key="abc123"), [_LENGTH]),
    (
        "key not alphanumeric",
        _with(trigger(), routing_key="0123456789abcdef0123456789AB-XYZ"),
        [_NOT_ALNUM],
    ),
    ("key both", _with(trigger(), routing_key="a-b"), [_LENGTH, _NOT_ALNUM]),
    (
        "REST token pasted",
        _with(trigger(), routing_key="y_NbAkKc66ryYTWUXYEu"),
        [_LENGTH, _NOT_ALNUM],
    ),
    (
        "action missing",
        _with(trigger(), event_action=_DROP),
        ["'event_action' is missing or blank"],
    ),
    (
        "action unknown",
        _with(trigger(), event_action="escalate"),
        [
            "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')"
        ],
    ),
    (
        "ack without key",
        {"routing_key": KEY, "event_action": "acknowledge"},
        ["'dedup_key' is missing or blank"],
    ),
    ("resolve blank key", action("resolve", " "), ["'dedup_key' is missing or blank"]),
    (
        "dedup key too long",
        trigger("k" * 256),
        ["'dedup_key' is too long (maximum is 255 characters)"],
    ),
    ("payload missing", _with(trigger(), payload=_DROP), ["'payload' is missing or blank"]),
    (
        "payload not object",
        _with(trigger(), payload="disk full"),
        ["'payload' is invalid (must be an object)"],
    ),
    (
        "summary missing",
        _with(trigger(), payload__summary=None),
        ["'payload.summary' is missing or blank"],
    ),
    (
        "summary too long",
        trigger(summary="s" * 1025),
        ["'summary' is too long (maiximum is 1024 characters)"],
    ),
    (
        "source missing",
        _with(trigger(), payload__source=""),
        ["'payload.source' is missing or blank"],
    ),
    (
        "severity missing",
        _with(trigger(), payload__severity=None),
        ["'payload.severity' is missing or blank"],
    ),
    (
        "severity upper case",
        trigger(severity="CRITICAL"),
        [
            "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')"
        ],
    ),
    (
        "timestamp garbage",
        trigger(timestamp="yesterday"),
        ["'payload.timestamp' is invalid (must be a valid ISO 8601 timestamp)"],
    ),
    (
        "component number",
        trigger(component=5),
        ["'payload.component' is invalid (must be a string)"],
    ),
    (
        "class list",
        trigger(**{"class": ["x"]}),  # type: ignore[arg-type]  # the wrong type on purpose
        ["'payload.class' is invalid (must be a string)"],
    ),
    (
        "custom_details number",
        trigger(custom_details=42),
        ["'payload.custom_details' is invalid (must be an object)"],
    ),
    ("client number", _with(trigger(), client=1), ["'client' is invalid (must be a string)"]),
    (
        "links not list",
        _with(trigger(), links={"href": "x"}),
        ["'links' is invalid (must be an array)"],
    ),
    (
        "link without href",
        _with(trigger(), links=[{"text": "x"}]),
        ["'links[0].href' is missing or blank"],
    ),
    (
        "link not object",
        _with(trigger(), links=["https://x"]),
        ["'links[0]' is invalid (must be an object)"],
    ),
    ("images not list", _with(trigger(), images="x"), ["'images' is invalid (must be an array)"]),
    (
        "image over http",
        _with(trigger(), images=[{"src": "http://example.com/a.png"}]),
        ["'images[0].src' is invalid (must be an HTTPS URL)"],
    ),
    (
        "image without src",
        _with(trigger(), images=[{"alt": "x"}]),
        ["'images[0].src' is missing or blank"],
    ),
    (
        "several at once",
        {
            "routing_key": "short",
            "event_action": "trigger",
            "payload": {"summary": "", "severity": "fatal"},
        },
        [
            _LENGTH,
            "'payload.summary' is missing or blank",
            "'payload.source' is missing or blank",
            "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')",
        ],
    ),
]


@pytest.mark.parametrize(
    ("body", "errors"), [c[1:] for c in ALERT_CASES], ids=[c[0] for c in ALERT_CASES]
)
def test_alert_rules_answer_400(
    alertwire_sandbox: Sandbox, body: dict[str, Any], errors: list[str]
) -> None:
    answer = post(alertwire_sandbox.url + "/v2/enqueue", body)
    assert answer.status == 400
    assert answer.json == invalid(*errors)
    assert answer.body.startswith(b'{"errors":[')  # keys in PagerDuty's (alphabetical) order
    assert alertwire_sandbox.events() == []


CHANGE_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("key missing", {"payload": {"summary": "x"}}, ["'routing_key' is missing or blank"]),
    ("payload missing", {"routing_key": KEY}, ["'payload' is missing or blank"]),
    (
        "summary missing",
        {"routing_key": KEY, "payload": {"source": "ci"}},
        ["'payload.summary' is missing or blank"],
    ),
    (
        "summary too long",
        {"routing_key": KEY, "payload": {"summary": "s" * 1025}},
        ["'summary' is too long (maiximum is 1024 characters)"],
    ),
    (
        "source not string",
        {"routing_key": KEY, "payload": {"summary": "x", "source": 3}},
        ["'payload.source' is invalid (must be a string)"],
    ),
    (
        "bad timestamp",
        {"routing_key": KEY, "payload": {"summary": "x", "timestamp": "soon"}},
        ["'payload.timestamp' is invalid (must be a valid ISO 8601 timestamp)"],
    ),
    (
        "link without href",
        {"routing_key": KEY, "payload": {"summary": "x"}, "links": [{}]},
        ["'links[0].href' is missing or blank"],
    ),
]


@pytest.mark.parametrize(
    ("body", "errors"), [c[1:] for c in CHANGE_CASES], ids=[c[0] for c in CHANGE_CASES]
)
def test_change_rules_answer_400(
    alertwire_sandbox: Sandbox, body: dict[str, Any], errors: list[str]
) -> None:
    answer = post(alertwire_sandbox.url + "/v2/change/enqueue", body)
    assert answer.status == 400
    assert answer.json == invalid(*errors)
    assert alertwire_sandbox.changes() == []


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b'{"routing_key": "x",}', b"\xff\xfe{}", b'{"a": NaN}', b"{'a': 1}"],
    ids=["empty", "open brace", "words", "trailing comma", "bad utf-8", "NaN", "single quotes"],
)
@pytest.mark.parametrize("path", ["/v2/enqueue", "/v2/change/enqueue"])
def test_malformed_json_answers_like_pagerduty(
    alertwire_sandbox: Sandbox, path: str, raw: bytes
) -> None:
    answer = post(alertwire_sandbox.url + path, raw)
    assert answer.status == 400
    assert answer.body == (
        b'{"errors":["JSON parse error"],"message":"Event object format is unrecognized",'
        b'"status":"Unrecognized object"}'
    )


@pytest.mark.parametrize(
    "raw", [b"[]", b'"trigger"', b"42", b"null", b"true", b'[{"routing_key":1}]']
)
def test_json_that_is_not_an_object_is_unrecognized(alertwire_sandbox: Sandbox, raw: bytes) -> None:
    answer = post(alertwire_sandbox.url + "/v2/enqueue", raw)
    assert answer.status == 400
    assert answer.json == {**UNRECOGNIZED, "errors": ["Event object is not a JSON object"]}


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"d": value}
    return value


def test_deep_nesting_is_refused_and_moderate_nesting_accepted(alertwire_sandbox: Sandbox) -> None:
    url = alertwire_sandbox.url + "/v2/enqueue"
    assert post(url, trigger(custom_details=_nested(40))).status == 202
    deep = post(url, trigger(custom_details=_nested(200)))
    assert deep.status == 400
    assert deep.json == {**UNRECOGNIZED, "errors": ["Event object is nested too deeply"]}
    # Deeper than the JSON parser's own limit: still a clean 400.
    assert post(url, b"[" * 5000 + b"]" * 5000).status == 400
    assert len(alertwire_sandbox.alerts()) == 1


TOO_LARGE = invalid("Event object is too large (maximum is 524288 bytes)")


def test_event_over_512_kb_is_refused(alertwire_sandbox: Sandbox) -> None:
    url = alertwire_sandbox.url + "/v2/enqueue"
    big = post(url, trigger(custom_details={"blob": "x" * (512 * 1024)}))
    assert big.status == 400
    assert big.json == TOO_LARGE
    assert post(url, trigger(custom_details={"blob": "x" * (500 * 1024)})).status == 202
    assert len(alertwire_sandbox.alerts()) == 1


def test_chunked_body_over_the_cap_is_refused_without_a_length(alertwire_sandbox: Sandbox) -> None:
    def chunks() -> Any:
        yield b'{"routing_key":"' + KEY.encode() + b'","blob":"'
        for _ in range(10):
            yield b"x" * (64 * 1024)
        yield b'"}'

    answer = request(
        "POST",
        alertwire_sandbox.url + "/v2/enqueue",
        chunks(),
        chunked=True,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 400
    assert answer.json == TOO_LARGE


def test_declared_huge_body_is_answered_without_reading_it(alertwire_sandbox: Sandbox) -> None:
    """A 1 GB Content-Length: the server answers 400 after a few bytes instead of buffering."""
    parts = urlsplit(alertwire_sandbox.url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v2/enqueue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n" + b'{"routing_key":"' + b"x" * 1000
        )
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/v2/enqueue", "/v2/change/enqueue", "/data/v2/alerts"])
def test_wrong_method_is_405(alertwire_sandbox: Sandbox, method: str, path: str) -> None:
    answer = request(method, alertwire_sandbox.url + path, b"{}")
    assert answer.status == 405
    assert "POST" in answer.headers["allow"]


@pytest.mark.parametrize(
    "path",
    ["/v1/enqueue", "/v2/enqueue/", "/v2/change", "/generic/2010-04-15/create_event.json", "/x"],
)
def test_unknown_path_is_404(alertwire_sandbox: Sandbox, path: str) -> None:
    assert post(alertwire_sandbox.url + path, trigger()).status == 404
    assert alertwire_sandbox.events() == []


def test_content_type_is_not_required(alertwire_sandbox: Sandbox) -> None:
    answer = post(
        alertwire_sandbox.url + "/v2/enqueue", trigger(), headers={"Content-Type": "text/plain"}
    )
    assert answer.status == 202


@pytest.mark.parametrize("path", ["/v2/enqueue", "/data/v2/alerts"])
def test_broken_chunked_body_is_a_400_not_a_5xx(alertwire_sandbox: Sandbox, path: str) -> None:
    parts = urlsplit(alertwire_sandbox.url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abcdefghijkl\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
            + b'5\r\n{"a":\r\nZZ\r\nnot a chunk\r\n'
        )
        received = sock.recv(4096)
    assert re.match(rb"HTTP/1\.[01] 400 ", received), received[:100]
    assert alertwire_sandbox.events() == []


@pytest.mark.parametrize("path", ["/v2/enqueue", "/data/v2/alerts"])
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_body_that_does_not_decompress_is_a_400_not_a_5xx(
    alertwire_sandbox: Sandbox, path: str, encoding: str
) -> None:
    # aiohttp decompresses a Content-Encoding while the body is read, and reports a
    # body that is not what the header says with an error of its own (not an
    # HttpProcessingError): once answered 500.
    parts = urlsplit(alertwire_sandbox.url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abcdefghijkl\r\n"
            f"Content-Encoding: {encoding}\r\nContent-Length: 12\r\n\r\n".encode()
            + b"not {encoded"
        )
        received = sock.recv(4096)
    assert re.match(rb"HTTP/1\.[01] 400 ", received), received[:100]
    assert alertwire_sandbox.events() == []
    assert post(alertwire_sandbox.url + "/v2/enqueue", trigger()).status == 202


@pytest.mark.parametrize("path", ["/v2/enqueue", "/data/v2/alerts"])
def test_body_cut_off_midway_is_not_kept_and_the_server_carries_on(
    alertwire_sandbox: Sandbox, path: str
) -> None:
    parts = urlsplit(alertwire_sandbox.url)
    assert parts.hostname is not None and parts.port is not None
    for framing in (
        b"Content-Length: 500\r\n\r\n{",
        b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":',
    ):
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abcdefghijkl\r\n".encode()
                + framing
            )
    assert post(alertwire_sandbox.url + "/v2/enqueue", trigger()).status == 202
    assert len(alertwire_sandbox.events()) == 1
