"""The REST half of the sandbox as pure logic: incidents in the state, query parsing, the limiter.

No network: events are handed to :class:`SandboxState` directly, queries are
plain multidicts, and the limiter's clock is a variable.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from multidict import MultiDict

from alertwire import Secret
from alertwire.sandbox.incidents import URGENCY_BY_SEVERITY
from alertwire.sandbox.ratelimit import SlidingWindowLimiter
from alertwire.sandbox.rest_query import InvalidInput, incident_query, page
from alertwire.sandbox.rest_updates import bulk_changes, single_change
from alertwire.sandbox.state import (
    IncidentNotFound,
    IncidentUpdateRefused,
    SandboxState,
    StatusChange,
)
from alertwire.wire import IncomingPagerDuty
from tests.support.sandbox_http import KEY, OTHER_KEY

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def event(
    action: str, dedup_key: str, *, key: str = KEY, severity: str = "error"
) -> IncomingPagerDuty:
    body: dict[str, Any] = {"routing_key": key, "event_action": action, "dedup_key": dedup_key}
    if action == "trigger":
        body["payload"] = {"summary": f"{dedup_key} broke", "source": "db1", "severity": severity}
    raw = json.dumps(body).encode()
    return IncomingPagerDuty(
        kind="alert", routing_key=Secret(key), body=body, raw=raw, wire=raw, dedup_key=dedup_key
    )


def test_urgency_follows_severity() -> None:
    assert dict(URGENCY_BY_SEVERITY) == {
        "critical": "high",
        "error": "high",
        "warning": "low",
        "info": "low",
    }
    state = SandboxState()
    for n, severity in enumerate(("critical", "error", "warning", "info")):
        state.record_pagerduty(event("trigger", f"k{n}", severity=severity))
    assert [i["urgency"] for i in state.incidents()] == ["high", "high", "low", "low"]


def test_ids_look_like_pagerdutys_and_numbers_count_up() -> None:
    state = SandboxState()
    for n in range(30):
        state.record_pagerduty(event("trigger", f"k{n}", key=KEY if n % 2 else OTHER_KEY))
    incidents = state.incidents()
    assert [i["number"] for i in incidents] == list(range(1, 31))
    ids = [i["id"] for i in incidents] + [s["id"] for s in state.services()]
    assert all(len(i) == 7 and i[0] == "P" and i[1:].isalnum() and i.upper() == i for i in ids)
    assert len(set(ids)) == len(ids)
    assert [s["name"] for s in state.services()] == ["Service …QRST", "Service …WXYZ"]


def test_each_key_has_one_service_and_a_named_one_is_kept() -> None:
    state = SandboxState()
    named = state.add_service("Checkout API", Secret(KEY))
    state.record_pagerduty(event("trigger", "a"))
    state.record_pagerduty(event("trigger", "b"))
    assert {i["service_id"] for i in state.incidents()} == {named["id"]}
    with pytest.raises(ValueError, match="already belongs"):
        state.add_service("Again", Secret(KEY))
    assert KEY not in repr(state.services())


def test_rest_updates_are_all_or_nothing_and_reset_forgets() -> None:
    state = SandboxState()
    state.record_pagerduty(event("trigger", "a"))
    state.record_pagerduty(event("trigger", "b"))
    a, b = (i["id"] for i in state.incidents())
    with pytest.raises(IncidentNotFound) as missing:
        state.set_incident_status(
            [StatusChange(a, "acknowledged"), StatusChange("PNOSUCH", "resolved")],
            "me@x.org",
            lambda i: i.id,
        )
    assert missing.value.ids == ["PNOSUCH"]
    assert state.set_incident_status(
        [StatusChange(b, "resolved")], "me@x.org", lambda i: i.status
    ) == ["resolved"]
    with pytest.raises(IncidentUpdateRefused):
        state.set_incident_status(
            [StatusChange(a, "acknowledged"), StatusChange(b, "triggered")], None, lambda i: i.id
        )
    with pytest.raises(IncidentUpdateRefused) as twice:
        state.set_incident_status(
            [StatusChange(a, "resolved"), StatusChange(a, "acknowledged")], None, lambda i: i.id
        )
    assert twice.value.errors == [f"Incident {a}: listed more than once"]
    assert [i["status"] for i in state.incidents()] == ["triggered", "resolved"]
    assert state.record_pagerduty(event("resolve", "b")) == "dropped"
    assert state.record_pagerduty(event("trigger", "b")) == "opened"
    assert [i["number"] for i in state.incidents()] == [1, 2, 3]
    state.reset()
    assert state.incidents() == [] and state.services() == []
    state.record_pagerduty(event("trigger", "a"))
    assert state.incidents()[0]["number"] == 1


def test_a_seed_makes_ids_repeatable() -> None:
    def ids(seed: int) -> list[str]:
        state = SandboxState(seed=seed)
        state.record_pagerduty(event("trigger", "a"))
        return [state.incidents()[0]["id"], state.services()[0]["id"]]

    assert ids(7) == ids(7) != ids(8)


# --- query parsing ----------------------------------------------------------------


def query(**kw: Any) -> MultiDict[str]:
    pairs: list[tuple[str, str]] = []
    for given, value in kw.items():
        name = given.replace("_list", "[]")
        pairs += [(name, v) for v in value] if isinstance(value, list) else [(name, value)]
    return MultiDict(pairs)


def test_page_defaults_caps_and_refusals() -> None:
    assert page(query()) == page(query(limit="25", offset="0", total="false"))
    assert page(query(limit="1000")).limit == 100
    assert page(query(total="TRUE")).total is True
    for bad in (
        query(limit="0"),
        query(limit="x"),
        query(offset="-3"),
        query(offset="9950", limit="100"),
        query(total="1"),
    ):
        with pytest.raises(InvalidInput):
            page(bad)


def test_incident_query_window_and_sort() -> None:
    q = incident_query(query(), NOW)
    assert (q.since, q.until) == (NOW - timedelta(days=30), NOW)
    q = incident_query(query(date_range="all", since="2001-01-01"), NOW)
    assert (q.since, q.until) == (None, None)
    q = incident_query(query(since="2026-05-01T00:00:00+02:00", until="2026-05-02"), NOW)
    assert q.since == datetime(2026, 4, 30, 22, tzinfo=timezone.utc)
    assert q.until == datetime(2026, 5, 2, tzinfo=timezone.utc)
    q = incident_query(
        query(statuses_list=["triggered", "acknowledged"], sort_by="urgency:desc,incident_number"),
        NOW,
    )
    assert q.statuses == {"triggered", "acknowledged"}
    assert q.sort == (("urgency", True), ("incident_number", False))
    with pytest.raises(InvalidInput, match="6 months"):
        incident_query(query(since="2025-01-01", until="2026-01-01"), NOW)


def test_incident_query_reports_every_problem_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        incident_query(query(limit="x", statuses_list=["open"], since="soon", sort_by="a,b,c"), NOW)
    assert [e.split(" ")[0] for e in caught.value.errors] == [
        "limit",
        "statuses[]",
        "since",
        "sort_by",
    ]


def test_update_bodies_name_the_field_and_rule() -> None:
    change = single_change(
        {"incident": {"type": "incident_reference", "status": "resolved", "resolution": "fixed"}},
        "P1",
    )
    assert change == StatusChange("P1", "resolved", resolution="fixed")
    with pytest.raises(InvalidInput) as caught:
        bulk_changes(
            {
                "incidents": [
                    {"type": "incident", "status": "resolved"},
                    {"id": "P2", "type": "x", "urgency": "urgent"},
                ]
            }
        )
    assert caught.value.errors == [
        "incidents[0].id must be an incident id",
        "incidents[1].type must be 'incident' or 'incident_reference'",
        "incidents[1].urgency must be 'high' or 'low'",
    ]
    body: Any
    for body in ({}, {"incidents": []}, {"incidents": [{}] * 501}, []):
        with pytest.raises(InvalidInput):
            bulk_changes(body)


# --- the limiter's REST verdicts --------------------------------------------------


def test_limiter_take_reports_remaining_and_reset() -> None:
    clock = [100.0]
    limiter = SlidingWindowLimiter(2, clock=lambda: clock[0])
    first = limiter.take("t")
    assert (first.allowed, first.remaining, first.reset) == (True, 1, 60)
    clock[0] = 130.0
    second = limiter.take("t")
    assert (second.allowed, second.remaining, second.reset) == (True, 0, 30)
    clock[0] = 145.5
    refused = limiter.take("t")
    assert (refused.allowed, refused.remaining, refused.reset) == (False, 0, 15)
    assert refused.headers() == {
        "ratelimit-limit": "2",
        "ratelimit-remaining": "0",
        "ratelimit-reset": "15",
    }
    clock[0] = 160.0
    assert limiter.take("t").allowed
    assert limiter.take("other").remaining == 1
