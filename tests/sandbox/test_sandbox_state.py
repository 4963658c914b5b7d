"""The sandbox's state machine and rate limiter as pure logic (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from alertwire import Secret
from alertwire.sandbox.faults import Faults, FaultSpecError
from alertwire.sandbox.ratelimit import SlidingWindowLimiter
from alertwire.sandbox.state import SandboxState
from alertwire.wire import IncomingBigPanda, IncomingPagerDuty
from tests.support.sandbox_http import KEY, OTHER_KEY, TOKEN


def event(
    action: str, dedup_key: str, *, key: str = KEY, summary: str = "disk full"
) -> IncomingPagerDuty:
    body: dict[str, Any] = {"routing_key": key, "event_action": action, "dedup_key": dedup_key}
    if action == "trigger":
        body["payload"] = {"summary": summary, "source": "db1", "severity": "error"}
    raw = json.dumps(body).encode()
    return IncomingPagerDuty(
        kind="alert", routing_key=Secret(key), body=body, raw=raw, wire=raw, dedup_key=dedup_key
    )


def statuses(state: SandboxState) -> list[tuple[str, str]]:
    return [(a["dedup_key"], a["status"]) for a in state.alerts()]


def test_trigger_opens_acknowledge_and_resolve_move_it() -> None:
    state = SandboxState()
    assert state.record_pagerduty(event("trigger", "k")) == "opened"
    assert statuses(state) == [("k", "triggered")]
    assert state.record_pagerduty(event("acknowledge", "k")) == "acknowledged"
    assert statuses(state) == [("k", "acknowledged")]
    assert state.record_pagerduty(event("resolve", "k")) == "resolved"
    assert statuses(state) == [("k", "resolved")]
    [alert] = state.alerts()
    assert alert["acknowledged_at"] is not None and alert["resolved_at"] is not None
    assert (alert["summary"], alert["severity"], alert["source"]) == ("disk full", "error", "db1")


def test_trigger_on_an_open_alert_adds_to_it() -> None:
    state = SandboxState()
    state.record_pagerduty(event("trigger", "k"))
    assert state.record_pagerduty(event("trigger", "k", summary="again")) == "added"
    state.record_pagerduty(event("acknowledge", "k"))
    assert state.record_pagerduty(event("trigger", "k")) == "added"
    [alert] = state.alerts()
    assert (alert["status"], alert["triggers"], alert["summary"]) == (
        "acknowledged",
        3,
        "disk full",
    )


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_actions_on_unknown_or_resolved_keys_are_dropped(action: str) -> None:
    state = SandboxState()
    assert state.record_pagerduty(event(action, "never-seen")) == "dropped"
    state.record_pagerduty(event("trigger", "k"))
    state.record_pagerduty(event("resolve", "k"))
    assert state.record_pagerduty(event(action, "k")) == "dropped"
    assert statuses(state) == [("k", "resolved")]
    assert [e["outcome"] for e in state.events()] == ["dropped", "opened", "resolved", "dropped"]


def test_trigger_after_resolve_opens_a_new_alert() -> None:
    state = SandboxState()
    state.record_pagerduty(event("trigger", "k"))
    state.record_pagerduty(event("resolve", "k"))
    assert state.record_pagerduty(event("trigger", "k")) == "opened"
    assert statuses(state) == [("k", "resolved"), ("k", "triggered")]
    assert [a["id"] for a in state.alerts()] == [1, 2]


def test_dedup_keys_are_scoped_per_routing_key() -> None:
    state = SandboxState()
    state.record_pagerduty(event("trigger", "k", key=KEY))
    assert state.record_pagerduty(event("resolve", "k", key=OTHER_KEY)) == "dropped"
    assert state.record_pagerduty(event("trigger", "k", key=OTHER_KEY)) == "opened"
    assert len(state.alerts()) == 2
    assert [a["routing_key"] for a in state.alerts(routing_key=Secret(OTHER_KEY))] == ["…QRST"]


def test_changes_and_bigpanda_are_kept_and_events_in_arrival_order() -> None:
    state = SandboxState()
    change_body = {"routing_key": KEY, "payload": {"summary": "deploy"}}
    raw = json.dumps(change_body).encode()
    state.record_pagerduty(event("trigger", "a"))
    state.record_pagerduty(
        IncomingPagerDuty(
            kind="change",
            routing_key=Secret(KEY),
            body=change_body,
            raw=raw,
            wire=raw,
            dedup_key=None,
        )
    )
    alerts = (
        {"app_key": "x", "status": "ok", "host": "h"},
        {"app_key": "x", "status": "critical", "host": "i"},
    )
    state.record_bigpanda(
        IncomingBigPanda(
            token=Secret(TOKEN),
            app_key="x",
            alerts=alerts,
            raw=b"{}",
            bodies=tuple(json.dumps(a).encode() for a in alerts),
            batch=True,
        )
    )
    state.record_pagerduty(event("resolve", "a"))
    assert [(e["seq"], e["api"]) for e in state.events()] == [
        (1, "events"),
        (2, "change"),
        (3, "bigpanda"),
        (4, "bigpanda"),
        (5, "events"),
    ]
    assert [c["body"]["payload"]["summary"] for c in state.changes()] == ["deploy"]
    assert [b["body"]["host"] for b in state.bigpanda()] == ["h", "i"]
    assert state.bigpanda(token=Secret("other-token-xyz1")) == []


def test_no_view_contains_a_full_key_or_token() -> None:
    state = SandboxState()
    state.record_pagerduty(event("trigger", "a"))
    state.record_bigpanda(
        IncomingBigPanda(
            token=Secret(TOKEN),
            app_key="x",
            alerts=({"app_key": "x", "status": "ok", "host": "h"},),
            raw=b"{}",
            bodies=(b"{}",),
        )
    )
    everything = json.dumps(
        [state.alerts(), state.events(), state.changes(), state.bigpanda()], ensure_ascii=False
    )
    assert KEY not in everything and TOKEN not in everything
    assert "…WXYZ" in everything and "…TKN9" in everything


def test_reset_forgets_everything() -> None:
    state = SandboxState()
    state.record_pagerduty(event("trigger", "a"))
    state.reset()
    assert (state.alerts(), state.events()) == ([], [])
    state.record_pagerduty(event("trigger", "a"))
    assert state.alerts()[0]["id"] == 1 and state.events()[0]["seq"] == 1


def test_sliding_window_rate_limit() -> None:
    now = [1000.0]
    limiter = SlidingWindowLimiter(3, clock=lambda: now[0])
    for at in (0, 20, 40):
        now[0] = 1000.0 + at
        assert limiter.allow("k")
    assert not limiter.allow("k")
    assert limiter.allow("other")  # per key
    now[0] = 1059.9
    assert not limiter.allow("k")  # no reset at a minute boundary
    now[0] = 1060.001
    assert limiter.allow("k")  # only the event at t=0 left the window
    assert not limiter.allow("k")
    now[0] = 1080.001
    assert limiter.allow("k")  # and now the one at t=20
    limiter.reset()
    assert limiter.allow("k")
    with pytest.raises(ValueError, match="at least 1"):
        SlidingWindowLimiter(0)


def test_faults_queue_in_order_and_spec_errors_change_nothing() -> None:
    faults = Faults()
    faults.configure(
        {"fail_next": [503, {"status": 429, "retry_after": 2}, "reset"], "reset_next": 1}
    )
    got = [faults.next_fault() for _ in range(5)]
    assert [(f.status, f.retry_after, f.reset) if f else None for f in got] == [
        (503, None, False),
        (429, 2, False),
        (None, None, True),
        (None, None, True),
        None,
    ]
    for bad, field in [
        ({"fail_next": [200]}, "fail_next[0]"),
        ({"fail_next": "503"}, "fail_next"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"fail_rate": 2}, "fail_rate"),
        ({"bogus": 1}, "bogus"),
        ([], "JSON object"),
    ]:
        with pytest.raises(FaultSpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
            faults.configure(bad)
    assert faults.next_fault() is None
    faults.configure({"fail_rate": 1, "seed": 3})
    assert faults.next_fault() is not None
    faults.clear()
    assert faults.next_fault() is None


def test_the_arrival_log_is_bounded() -> None:
    state = SandboxState(max_logged=3)
    for i in range(5):
        state.record_pagerduty(event("trigger", f"k{i}"))
    assert [e["seq"] for e in state.events()] == [3, 4, 5]
    assert len(state.alerts()) == 5
