"""PagerDuty's wire rules on raw dicts (what the sandbox and relay ingest check), exact texts."""

from __future__ import annotations

from typing import Any

import pytest

from alertwire.models.pagerduty_rules import (
    Problem,
    check_alert_event,
    check_change_event,
    check_event_size,
    check_routing_key,
)
from tests.support.keys import MIXED_CASE_ROUTING_KEY as KEY


def trigger(**payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"routing_key": KEY, "event_action": "trigger"}
    body["payload"] = {"summary": "s", "source": "h", "severity": "error", **payload}
    return body


def texts(problems: list[Problem]) -> list[str]:
    return [p.wire_text for p in problems]


def test_valid_events_have_no_problems() -> None:
    assert check_alert_event(trigger()) == []
    assert check_alert_event(trigger(timestamp="2015-07-17T08:42:58.315+0000")) == []
    for action in ("acknowledge", "resolve"):
        body = {"routing_key": KEY, "event_action": action, "dedup_key": "k"}
        assert check_alert_event(body) == []
    assert check_change_event({"routing_key": KEY, "payload": {"summary": "deploy"}}) == []


# --- confirmed texts, verbatim ----------------------------------------------------------


def test_routing_key_length_text() -> None:
    assert texts(check_routing_key("abc123")) == [
        "Length of 'routing_key' is incorrect (should be 32 characters)"
    ]


def test_routing_key_non_alphanumeric_text_with_trailing_period() -> None:
    assert texts(check_routing_key("R0uT1nGkEy0123456789abcdefABCDE-")) == [
        "'routing_key' cannot contain non-alphanumeric characters."
    ]


def test_routing_key_both_problems_together() -> None:
    assert texts(check_routing_key("bad key!")) == [
        "Length of 'routing_key' is incorrect (should be 32 characters)",
        "'routing_key' cannot contain non-alphanumeric characters.",
    ]


def test_routing_key_non_ascii_letters_refused() -> None:
    # str.isalnum() alone would accept these.
    assert texts(check_routing_key("é" * 32)) == [
        "'routing_key' cannot contain non-alphanumeric characters."
    ]


@pytest.mark.parametrize("key", [None, "", "   ", 42])
def test_routing_key_missing(key: object) -> None:
    assert texts(check_routing_key(key)) == ["'routing_key' is missing or blank"]


def test_rest_token_length_hint_only_in_our_rule() -> None:
    (problem,) = check_routing_key("a" * 20)
    assert "REST API token" in problem.rule
    assert problem.wire_text == "Length of 'routing_key' is incorrect (should be 32 characters)"
    (problem,) = check_routing_key("a" * 31)
    assert "REST" not in problem.rule


@pytest.mark.parametrize("field", ["source", "severity"])
@pytest.mark.parametrize("value", [None, "", "  "])
def test_source_and_severity_missing_or_blank(field: str, value: object) -> None:
    body = trigger()
    if value is None:
        del body["payload"][field]
    else:
        body["payload"][field] = value
    assert texts(check_alert_event(body)) == [f"'payload.{field}' is missing or blank"]


@pytest.mark.parametrize("severity", ["CRITICAL", "crit", "Error", "fatal"])
def test_severity_invalid_text_and_case_sensitive(severity: str) -> None:
    assert texts(check_alert_event(trigger(severity=severity))) == [
        "'payload.severity' is invalid (must be one of the following: "
        "'critical', 'warning', 'error' or 'info')"
    ]


def test_summary_too_long_text_with_typo() -> None:
    assert check_alert_event(trigger(summary="x" * 1024)) == []
    (problem,) = check_alert_event(trigger(summary="x" * 1025))
    assert problem.wire_text == "'summary' is too long (maiximum is 1024 characters)"
    assert problem.field == "payload.summary"
    (problem,) = check_change_event({"routing_key": KEY, "payload": {"summary": "x" * 1025}})
    assert problem.wire_text == "'summary' is too long (maiximum is 1024 characters)"


def test_never_the_retired_v1_texts() -> None:
    body = {"routing_key": "short", "event_action": "trigger", "payload": {}}
    everything = " ".join(texts(check_alert_event(body)))
    assert "Description is missing" not in everything
    assert "Service key" not in everything


# --- several problems together ----------------------------------------------------------


def test_several_problems_reported_together_in_order() -> None:
    body = {
        "routing_key": "y_NbAkKc66ryYTWUXYEu",
        "event_action": "trigger",
        "payload": {"summary": "x" * 2000, "severity": "CRITICAL"},
    }
    assert texts(check_alert_event(body)) == [
        "Length of 'routing_key' is incorrect (should be 32 characters)",
        "'routing_key' cannot contain non-alphanumeric characters.",
        "'summary' is too long (maiximum is 1024 characters)",
        "'payload.source' is missing or blank",
        "'payload.severity' is invalid (must be one of the following: "
        "'critical', 'warning', 'error' or 'info')",
    ]


# --- our wording for the unconfirmed rules ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_action": "explode"}, "event_action"),
        ({"event_action": None}, "event_action"),
        ({"event_action": "resolve"}, "dedup_key"),
        ({"event_action": "acknowledge", "dedup_key": " "}, "dedup_key"),
        ({"event_action": "resolve", "dedup_key": "k" * 256}, "dedup_key"),
        ({"event_action": "trigger"}, "payload"),
        ({"event_action": "trigger", "payload": "x"}, "payload"),
        ({"event_action": "resolve", "dedup_key": "k", "client": 5}, "client"),
    ],
)
def test_unconfirmed_rules_name_the_field(body: dict[str, Any], field: str) -> None:
    problems = check_alert_event({"routing_key": KEY, **body})
    assert [p.field for p in problems] == [field]
    (problem,) = problems
    assert problem.wire_text.startswith(f"'{field}' is ")
    assert problem.rule


def test_dedup_key_optional_on_trigger_but_bounded() -> None:
    assert check_alert_event({**trigger(), "dedup_key": "k" * 255}) == []
    (problem,) = check_alert_event({**trigger(), "dedup_key": "k" * 256})
    assert problem.wire_text == "'dedup_key' is too long (maximum is 255 characters)"


@pytest.mark.parametrize(
    ("timestamp", "ok"),
    [
        ("2015-07-17T08:42:58.315+0000", True),
        ("2015-07-17T08:42:58Z", True),
        ("2015-07-17T08:42:58.315+00:00", True),
        ("17/07/2015", False),
        (1437121378, False),
    ],
)
def test_timestamp(timestamp: object, ok: bool) -> None:
    problems = check_alert_event(trigger(timestamp=timestamp))
    if ok:
        assert problems == []
    else:
        assert texts(problems) == [
            "'payload.timestamp' is invalid (must be a valid ISO 8601 timestamp)"
        ]


def test_images_and_links() -> None:
    body = {
        **trigger(),
        "images": [
            {"src": "http://x/a.png"},
            {"alt": "no src"},
            "str",
            {"src": "https://x", "alt": 1},
        ],
        "links": [{"text": "no href"}, {"href": "https://x", "text": 2}, 3],
    }
    assert sorted(p.field for p in check_alert_event(body)) == sorted(
        [
            "images[0].src",
            "images[1].src",
            "images[2]",
            "images[3].alt",
            "links[0].href",
            "links[1].text",
            "links[2]",
        ]
    )
    assert "'images[0].src' is invalid (must be an HTTPS URL)" in texts(check_alert_event(body))
    bad_shape = {**trigger(), "images": {"src": "https://x"}, "links": "https://x"}
    assert texts(check_alert_event(bad_shape)) == [
        "'links' is invalid (must be an array)",
        "'images' is invalid (must be an array)",
    ]


def test_optional_payload_strings_and_custom_details() -> None:
    body = trigger(component=1, group=[], **{"class": {}}, custom_details=[1, 2])
    assert [p.field for p in check_alert_event(body)] == [
        "payload.component",
        "payload.group",
        "payload.class",
        "payload.custom_details",
    ]
    assert check_alert_event(trigger(custom_details="text")) == []
    assert check_alert_event(trigger(custom_details={"a": [1]})) == []


def test_change_event_rules() -> None:
    assert texts(check_change_event({"routing_key": KEY})) == ["'payload' is missing or blank"]
    body = {
        "routing_key": "x",
        "payload": {"summary": " ", "source": "", "timestamp": "no", "custom_details": 5},
        "links": [{}],
    }
    assert [p.field for p in check_change_event(body)] == [
        "routing_key",
        "links[0].href",
        "payload.summary",
        "payload.source",
        "payload.timestamp",
        "payload.custom_details",
    ]


def test_check_key_false_skips_only_the_key() -> None:
    body = trigger()
    del body["routing_key"]
    assert check_alert_event(body, check_key=False) == []
    assert texts(check_alert_event(body)) == ["'routing_key' is missing or blank"]


def test_event_size() -> None:
    assert check_event_size(512 * 1024) == []
    (problem,) = check_event_size(512 * 1024 + 1)
    assert problem.field == "event"
    assert "512" in problem.rule
