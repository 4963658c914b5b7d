"""BigPanda's wire rules on raw JSON bodies: what the models and the sandbox both enforce."""

from __future__ import annotations

from typing import Any

import pytest

from alertwire.models.bigpanda_rules import (
    STATUSES,
    Problem,
    check_alert,
    check_app_key,
    check_batch,
    check_body,
    error_body,
)
from alertwire.models.pagerduty_rules import Problem as PagerDutyProblem


def alert(**fields: Any) -> dict[str, Any]:
    return {"app_key": "app", "status": "critical", "host": "web-1", **fields}


def fields_of(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def test_problem_is_the_shared_dataclass() -> None:
    assert Problem is PagerDutyProblem


@pytest.mark.parametrize("status", STATUSES)
def test_valid_alert_has_no_problems(status: str) -> None:
    assert check_alert(alert(status=status)) == []


def test_every_field_used_validly() -> None:
    body = alert(
        service="api",
        application="shop",
        device="sw-1",
        check="cpu",
        sensor="s1",
        description="x" * 2048,
        timestamp=1_700_000_000,
        incident_identifier="inc-1",
        cluster="c1",
        primary_property="service",
        secondary_property="check",
        region="eu",
        pod=7,
        owners=["a", 1, "b" * 512],
    )
    assert check_alert(body) == []


@pytest.mark.parametrize("app_key", [None, "", "   ", 5])
def test_app_key_required(app_key: object) -> None:
    body = alert()
    body["app_key"] = app_key
    problems = check_alert(body)
    assert fields_of(problems) == ["app_key"]
    assert problems[0].wire_text == "'app_key' is missing or blank"
    assert check_app_key(app_key) == problems


@pytest.mark.parametrize("status", ["OK", "Critical", "crit", "resolved", 1, None, ""])
def test_status_must_be_lower_case_wire_spelling(status: object) -> None:
    problems = check_alert(alert(status=status))
    assert fields_of(problems) == ["status"]


def test_primary_property_defaults_to_one_of_four() -> None:
    for name in ("host", "service", "application", "device"):
        body = {"app_key": "a", "status": "ok", name: "x"}
        assert check_alert(body) == [], name
    problems = check_alert({"app_key": "a", "status": "ok", "check": "cpu", "host": " "})
    assert fields_of(problems) == ["primary_property"]
    assert "host" in problems[0].rule


def test_primary_property_must_name_a_present_field() -> None:
    assert check_alert({"app_key": "a", "status": "ok", "primary_property": "pod", "pod": 3}) == []
    assert fields_of(check_alert(alert(primary_property="pod"))) == ["primary_property"]
    assert fields_of(check_alert(alert(primary_property="pod", pod=""))) == ["primary_property"]
    assert fields_of(check_alert(alert(primary_property="status"))) == ["primary_property"]
    assert fields_of(check_alert(alert(primary_property=""))) == ["primary_property"]


def test_secondary_property_must_name_a_present_field() -> None:
    assert check_alert(alert(secondary_property="check", check="cpu")) == []
    problems = check_alert(alert(secondary_property="check"))
    assert fields_of(problems) == ["secondary_property"]
    assert "'check'" in problems[0].wire_text


@pytest.mark.parametrize("timestamp", [1.5, "1700000000", -1, True, 1_700_000_000_000])
def test_timestamp_is_integer_epoch_seconds(timestamp: object) -> None:
    problems = check_alert(alert(timestamp=timestamp))
    assert fields_of(problems) == ["timestamp"]


def test_milliseconds_timestamp_gets_a_hint() -> None:
    (problem,) = check_alert(alert(timestamp=1_700_000_000_000))
    assert "milliseconds" in problem.rule


def test_description_limit() -> None:
    (problem,) = check_alert(alert(description="x" * 2049))
    assert problem.field == "description"
    assert "2048" in problem.wire_text


@pytest.mark.parametrize("name", ["host", "check", "description", "cluster", "incident_identifier"])
def test_reserved_text_fields_must_be_strings(name: str) -> None:
    body = alert(service="s")
    body[name] = 12
    assert name in fields_of(check_alert(body))


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"a": 1}, "team"),
        (1.5, "team"),
        (True, "team"),
        (None, "team"),
        ([1, {"a": 1}], "team[1]"),
        ([["x"]], "team[0]"),
        ([True], "team[0]"),
        ("x" * 513, "team"),
        (["x" * 513], "team[0]"),
        (list(range(31)), "team"),
        (2**64, "team"),
    ],
)
def test_custom_attribute_values(value: object, field: str) -> None:
    assert field in fields_of(check_alert(alert(team=value)))


def test_custom_attribute_limits_are_inclusive() -> None:
    assert check_alert(alert(team="x" * 512, ids=list(range(30)), big=2**63 - 1)) == []


def test_several_problems_reported_together() -> None:
    body = {"status": "CRIT", "timestamp": "now", "tags": {"a": 1}}
    assert set(fields_of(check_alert(body))) == {
        "app_key",
        "status",
        "primary_property",
        "timestamp",
        "tags",
    }


@pytest.mark.parametrize("body", [None, [], "alert", 3])
def test_alert_must_be_an_object(body: object) -> None:
    assert len(check_alert(body)) == 1


def test_batch_valid() -> None:
    body = {
        "app_key": "app",
        "alerts": [{"status": "ok", "host": "a"}, {"status": "warning", "service": "b"}],
    }
    assert check_batch(body) == []
    assert check_body(body) == []


def test_batch_problems_name_the_item() -> None:
    body = {
        "app_key": "",
        "alerts": [{"status": "ok", "host": "a"}, {"status": "bad"}, 7, alert()],
    }
    assert fields_of(check_batch(body)) == [
        "app_key",
        "alerts[1].status",
        "alerts[1].primary_property",
        "alerts[2]",
        "alerts[3].app_key",
    ]


@pytest.mark.parametrize("alerts", [None, [], {"status": "ok"}, "x"])
def test_batch_needs_a_list_of_alerts(alerts: object) -> None:
    body: dict[str, Any] = {"app_key": "app"}
    if alerts is not None:
        body["alerts"] = alerts
    assert fields_of(check_batch(body)) == ["alerts"]


def test_check_body_dispatches() -> None:
    assert fields_of(check_body({"app_key": "a", "alerts": []})) == ["alerts"]
    assert fields_of(check_body({"app_key": "a", "status": "ok"})) == ["primary_property"]
    assert fields_of(check_batch([])) == ["body"]


def test_error_body_shape() -> None:
    problems = check_alert({"status": "ok", "host": "h"})
    assert error_body(problems) == {
        "status": "failure",
        "message": "Alert object is invalid",
        "errors": ["'app_key' is missing or blank"],
    }
