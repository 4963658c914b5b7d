"""The sandbox's REST API over real loopback HTTP: incidents and the Events API on one state.

Events go in through ``/v2/enqueue``; incidents are read and changed through
the REST routes; ``Sandbox.incidents()``/``alerts()`` show the state both
left. Filters, pagination, auth, errors and fault injection each have a test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alertwire import ConfigurationError
from alertwire.sandbox import Sandbox
from tests.support.sandbox_http import KEY, OTHER_KEY, Answer, action, post, request, trigger

TOKEN = "u+sandbox-rest-token-7Q2X"
HEADERS = {"Authorization": f"Token token={TOKEN}", "From": "responder@example.com"}


def send(sb: Sandbox, body: dict[str, Any]) -> None:
    answer = post(sb.url + "/v2/enqueue", body)
    assert answer.status == 202, answer.body


def rest(
    sb: Sandbox,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    return request(method, sb.url + path, body, headers=HEADERS if headers is None else headers)


def put_status(sb: Sandbox, incident_id: str, status: str, **headers: str) -> Answer:
    return rest(
        sb,
        "PUT",
        f"/incidents/{incident_id}",
        {"incident": {"type": "incident_reference", "status": status}},
        headers={**HEADERS, **headers},
    )


def by_key(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {i["incident_key"]: i for i in sb.incidents() if i["status"] != "resolved"}


# --- the state machine ---------------------------------------------------------


def test_trigger_opens_an_incident_and_events_acknowledge_and_resolve_it(
    alertwire_sandbox: Sandbox,
) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("disk", summary="Disk full on db1", severity="critical"))
    send(sb, trigger("disk"))
    [incident] = sb.incidents()
    assert incident["number"] == 1
    assert (incident["title"], incident["status"], incident["urgency"]) == (
        "Disk full on db1",
        "triggered",
        "high",
    )
    assert (incident["alerts"], incident["triggers"], incident["routing_key"]) == (1, 2, "…WXYZ")
    [alert] = sb.alerts()
    assert alert["incident_id"] == incident["id"]

    send(sb, action("acknowledge", "disk"))
    got = rest(sb, "GET", f"/incidents/{incident['id']}").json["incident"]
    assert got["status"] == "acknowledged"
    assert [a["acknowledger"]["type"] for a in got["acknowledgements"]] == ["service_reference"]
    send(sb, action("resolve", "disk"))
    got = rest(sb, "GET", f"/incidents/{incident['id']}").json["incident"]
    assert (got["status"], got["alert_counts"]) == (
        "resolved",
        {"all": 1, "triggered": 0, "resolved": 1},
    )
    assert got["assignments"] == [] and got["resolved_at"] is not None
    assert [a["status"] for a in sb.alerts()] == ["resolved"]
    entries = rest(sb, "GET", f"/incidents/{incident['id']}/log_entries").json["log_entries"]
    assert [e["type"] for e in entries] == [
        "trigger_log_entry",
        "acknowledge_log_entry",
        "resolve_log_entry",
    ]
    assert {e["agent"]["type"] for e in entries} == {"service_reference"}


def test_rest_acknowledge_and_resolve_move_the_alert_too(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("disk", severity="warning"))
    [incident] = sb.incidents()
    assert incident["urgency"] == "low"
    answer = put_status(sb, incident["id"], "acknowledged")
    assert answer.status == 200
    body = answer.json["incident"]
    assert body["status"] == "acknowledged"
    [ack] = body["acknowledgements"]
    assert (ack["acknowledger"]["type"], ack["acknowledger"]["summary"]) == (
        "user_reference",
        "responder@example.com",
    )
    assert [a["status"] for a in sb.alerts()] == ["acknowledged"]
    # The REST alert view keeps PagerDuty's alert statuses (triggered/resolved only).
    [alert] = rest(sb, "GET", f"/incidents/{incident['id']}/alerts").json["alerts"]
    assert (alert["status"], alert["alert_key"]) == ("triggered", "disk")

    assert put_status(sb, incident["id"], "resolved").status == 200
    assert [a["status"] for a in sb.alerts()] == ["resolved"]
    # The Events API sees the key closed: an acknowledge is now dropped.
    send(sb, action("acknowledge", "disk"))
    assert sb.events()[-1]["outcome"] == "dropped"
    assert sb.incidents()[0]["status"] == "resolved"
    assert sb.incidents()[0]["log_entries"] == ["trigger", "acknowledge", "resolve"]


def test_unacknowledge_through_rest(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("disk"))
    [incident] = sb.incidents()
    put_status(sb, incident["id"], "acknowledged")
    answer = put_status(sb, incident["id"], "triggered")
    assert answer.status == 200
    assert answer.json["incident"]["status"] == "triggered"
    assert answer.json["incident"]["acknowledgements"] == []
    assert [a["status"] for a in sb.alerts()] == ["triggered"]


def test_trigger_after_resolve_opens_a_new_incident(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("disk"))
    first = sb.incidents()[0]
    put_status(sb, first["id"], "resolved")
    send(sb, trigger("disk", summary="disk full again"))
    incidents = sb.incidents()
    assert [(i["number"], i["status"], i["title"]) for i in incidents] == [
        (1, "resolved", "disk full"),
        (2, "triggered", "disk full again"),
    ]
    assert incidents[0]["id"] != incidents[1]["id"]
    listed = rest(sb, "GET", "/incidents?incident_key=disk").json["incidents"]
    assert [i["incident_number"] for i in listed] == [1, 2]


def test_a_resolved_incident_is_not_reopened(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("disk"))
    [incident] = sb.incidents()
    put_status(sb, incident["id"], "resolved")
    for status in ("acknowledged", "triggered", "resolved"):
        answer = put_status(sb, incident["id"], status)
        assert answer.status == 400
        assert answer.json["error"]["code"] == 2001
        assert answer.json["error"]["errors"] == [
            f"Incident {incident['id']}: Incident Already Resolved"
        ]
    assert sb.incidents()[0]["log_entries"] == ["trigger", "resolve"]


def test_a_bulk_put_of_more_than_250_incidents_is_413_as_pagerduty_answers(
    alertwire_sandbox: Sandbox,
) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("a"))
    (incident_id,) = (i["id"] for i in by_key(sb).values())
    item = {"id": incident_id, "type": "incident_reference", "status": "acknowledged"}
    answer = rest(sb, "PUT", "/incidents", {"incidents": [item] * 251})
    assert answer.status == 413
    assert answer.json["error"]["errors"] == ["at most 250 incidents may be updated at a time"]
    assert {i["status"] for i in sb.incidents()} == {"triggered"}
    # 250 is within the bound: refused for what they say (the same incident again), not 413.
    at_bound = rest(sb, "PUT", "/incidents", {"incidents": [item] * 250})
    assert at_bound.status == 400 and "listed more than once" in at_bound.json["error"]["errors"][0]


def test_bulk_put_is_all_or_nothing(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    for key in ("a", "b", "c"):
        send(sb, trigger(key))
    ids = {k: i["id"] for k, i in by_key(sb).items()}

    def bulk(*items: tuple[str, str]) -> Answer:
        return rest(
            sb,
            "PUT",
            "/incidents",
            {"incidents": [{"id": i, "type": "incident_reference", "status": s} for i, s in items]},
        )

    answer = bulk((ids["a"], "acknowledged"), ("PNOSUCH", "resolved"))
    assert answer.status == 404
    assert answer.json["error"] == {
        "message": "Not Found",
        "code": 2100,
        "errors": ["Incident PNOSUCH not found"],
    }
    assert {i["status"] for i in sb.incidents()} == {"triggered"}

    answer = bulk((ids["a"], "acknowledged"), (ids["b"], "resolved"))
    assert answer.status == 200
    assert [(i["id"], i["status"]) for i in answer.json["incidents"]] == [
        (ids["a"], "acknowledged"),
        (ids["b"], "resolved"),
    ]
    assert (answer.json["more"], answer.json["offset"]) == (False, 0)
    assert {a["dedup_key"]: a["status"] for a in sb.alerts()} == {
        "a": "acknowledged",
        "b": "resolved",
        "c": "triggered",
    }

    bad = rest(sb, "PUT", "/incidents", {"incidents": [{"id": ids["c"], "status": "resolved"}]})
    assert bad.status == 400
    assert bad.json["error"]["errors"] == [
        "incidents[0].type must be 'incident' or 'incident_reference'"
    ]


def test_put_sets_title_and_urgency_and_refuses_what_it_does_not_model(
    alertwire_sandbox: Sandbox,
) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("disk"))
    [incident] = sb.incidents()
    path = f"/incidents/{incident['id']}"
    answer = rest(
        sb,
        "PUT",
        path,
        {"incident": {"type": "incident", "title": "Disk 99%", "urgency": "low"}},
    )
    assert answer.status == 200
    assert (answer.json["incident"]["title"], answer.json["incident"]["urgency"]) == (
        "Disk 99%",
        "low",
    )
    answer = rest(
        sb,
        "PUT",
        path,
        {"incident": {"type": "incident", "priority": {"id": "P1"}, "status": "closed"}},
    )
    assert answer.status == 400
    assert answer.json["error"]["errors"] == [
        "incident.priority is not modelled by the sandbox",
        "incident.status must be one of triggered, acknowledged, resolved",
    ]
    for body in (b"{not json", b"[]", json.dumps({"incident": "ack"}).encode()):
        answer = request("PUT", sb.url + path, body, headers=HEADERS)
        assert answer.status == 400, body
        assert answer.json["error"]["message"] == "Invalid Input Provided"
    assert sb.incidents()[0]["status"] == "triggered"


def test_put_needs_from_with_an_account_token_not_with_oauth(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("disk"))
    [incident] = sb.incidents()
    body = {"incident": {"type": "incident_reference", "status": "acknowledged"}}
    answer = rest(
        sb, "PUT", f"/incidents/{incident['id']}", body, {"Authorization": f"Token token={TOKEN}"}
    )
    assert answer.status == 400
    assert answer.json == {
        "error": {
            "message": 'You must specify a user\'s email address in the "From" header to perform this action',
            "code": 2016,
        }
    }
    assert sb.incidents()[0]["status"] == "triggered"
    answer = rest(
        sb, "PUT", f"/incidents/{incident['id']}", body, {"Authorization": "Bearer oauth-abc"}
    )
    assert answer.status == 200
    [ack] = answer.json["incident"]["acknowledgements"]
    assert ack["acknowledger"]["summary"] == "Sandbox On-Call"


# --- lists: filters, sorting, pagination -------------------------------------


def test_list_filters_by_status_service_and_key(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("a"))
    send(sb, trigger("b"))
    send(sb, trigger("c", key=OTHER_KEY))
    send(sb, action("acknowledge", "b"))
    services = {s["routing_key"]: s["id"] for s in sb.services()}

    def keys(query: str) -> list[str]:
        answer = rest(sb, "GET", "/incidents" + query)
        assert answer.status == 200, answer.body
        return [i["incident_key"] for i in answer.json["incidents"]]

    assert keys("") == ["a", "b", "c"]
    assert keys("?statuses[]=triggered") == ["a", "c"]
    assert keys("?statuses[]=triggered&statuses[]=acknowledged") == ["a", "b", "c"]
    assert keys("?statuses[]=resolved") == []
    assert keys(f"?service_ids[]={services['…QRST']}") == ["c"]
    assert keys(f"?service_ids[]={services['…WXYZ']}&statuses[]=acknowledged") == ["b"]
    assert keys("?incident_key=b") == ["b"]
    assert keys("?sort_by=incident_number:desc") == ["c", "b", "a"]
    assert keys("?sort_by=created_at:desc,incident_number:asc") == ["c", "b", "a"]
    assert keys("?since=2000-01-01T00:00:00Z&until=2000-02-01T00:00:00Z") == []
    assert keys("?date_range=all&since=2000-01-01T00:00:00Z&until=2000-02-01T00:00:00Z") == [
        "a",
        "b",
        "c",
    ]
    assert keys("?until=2000-02-01") == []
    assert keys("?until=0001-01-02") == []  # the default 30-day window cannot start before year 1


def test_pagination_offset_limit_more_total(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    for n in range(7):
        send(sb, trigger(f"k{n}"))
    first = rest(sb, "GET", "/incidents?limit=3").json
    assert [i["incident_number"] for i in first["incidents"]] == [1, 2, 3]
    assert (first["limit"], first["offset"], first["more"], first["total"]) == (3, 0, True, None)
    last = rest(sb, "GET", "/incidents?limit=3&offset=6&total=true").json
    assert [i["incident_number"] for i in last["incidents"]] == [7]
    assert (last["more"], last["total"]) == (False, 7)
    assert rest(sb, "GET", "/incidents?limit=500").json["limit"] == 100
    assert rest(sb, "GET", "/incidents").json["limit"] == 25


def test_services_find_by_name_and_get(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    checkout = sb.add_service("Checkout API", KEY)
    send(sb, trigger("a"))
    send(sb, trigger("b", key=OTHER_KEY))
    found = rest(sb, "GET", "/services?query=checkout").json["services"]
    assert [s["id"] for s in found] == [checkout["id"]]
    assert found[0]["status"] == "critical"
    assert found[0]["self"] == f"{sb.url}/services/{checkout['id']}"
    names = [s["name"] for s in rest(sb, "GET", "/services").json["services"]]
    assert names == ["Checkout API", "Service …QRST"]
    one = rest(sb, "GET", f"/services/{checkout['id']}")
    assert one.status == 200 and one.json["service"]["name"] == "Checkout API"
    missing = rest(sb, "GET", "/services/PNOSUCH")
    assert (missing.status, missing.json["error"]["code"]) == (404, 2100)


def test_oncalls_name_the_fixed_oncall_of_the_default_policy(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("a"))
    [oncall] = rest(sb, "GET", "/oncalls").json["oncalls"]
    assert oncall["escalation_level"] == 1
    assert oncall["user"]["summary"] == "Sandbox On-Call"
    assert oncall["escalation_policy"]["summary"] == "Default"
    service = rest(sb, "GET", "/services").json["services"][0]
    assert service["escalation_policy"]["id"] == oncall["escalation_policy"]["id"]
    [incident] = rest(sb, "GET", "/incidents").json["incidents"]
    assert incident["assignments"][0]["assignee"]["id"] == oncall["user"]["id"]
    other = rest(sb, "GET", "/oncalls?escalation_policy_ids[]=PNOSUCH").json["oncalls"]
    assert other == []


# --- errors, auth, faults --------------------------------------------------------


def test_list_filters_by_urgency(alertwire_sandbox: Sandbox) -> None:
    """``urgencies[]`` (PagerDuty's filter) was ignored: a test asking for the high-urgency
    incidents got the low ones too, and passed or failed for the wrong reason."""
    sb = alertwire_sandbox
    send(sb, trigger("page-me", severity="critical"))  # critical, error: high
    send(sb, trigger("fyi", severity="warning"))  # warning, info: low

    def keys(query: str) -> list[str]:
        answer = rest(sb, "GET", "/incidents" + query)
        assert answer.status == 200, answer.body
        return [i["incident_key"] for i in answer.json["incidents"]]

    assert keys("?urgencies[]=high") == ["page-me"]
    assert keys("?urgencies[]=low") == ["fyi"]
    assert keys("?urgencies[]=high&urgencies[]=low") == ["page-me", "fyi"]
    assert keys("?urgencies=low&statuses[]=triggered") == ["fyi"]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("statuses[]=open", "statuses[] 'open' is invalid"),
        ("urgencies[]=medium", "urgencies[] 'medium' is invalid: use high or low"),
        ("limit=-1", "limit must be a non-negative integer"),
        ("offset=x", "offset must be a non-negative integer"),
        ("total=maybe", "total must be true or false"),
        ("sort_by=title", "sort_by 'title' is invalid"),
        ("since=yesterday", "since must be an ISO 8601 date-time"),
        ("date_range=week", "date_range must be 'all'"),
        ("since=2026-01-01T00:00:00Z&until=2025-01-01T00:00:00Z", "since must not be after until"),
    ],
)
def test_bad_list_parameters_get_pagerdutys_400(
    alertwire_sandbox: Sandbox, query: str, error: str
) -> None:
    answer = rest(alertwire_sandbox, "GET", "/incidents?" + query)
    assert answer.status == 400
    assert answer.json["error"]["message"] == "Invalid Input Provided"
    assert answer.json["error"]["code"] == 2001
    assert any(e.startswith(error) for e in answer.json["error"]["errors"]), answer.json


def test_unknown_incident_is_pagerdutys_404(alertwire_sandbox: Sandbox) -> None:
    for path in (
        "/incidents/PNOSUCH",
        "/incidents/PNOSUCH/alerts",
        "/incidents/PNOSUCH/log_entries",
    ):
        answer = rest(alertwire_sandbox, "GET", path)
        assert answer.status == 404
        assert answer.json == {
            "error": {
                "message": "Not Found",
                "code": 2100,
                "errors": ["Incident PNOSUCH not found"],
            }
        }
    assert put_status(alertwire_sandbox, "PNOSUCH", "resolved").status == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Token", "Token token=", "Token nope", "Basic dXNlcjpwYXNz", "Bearer "],
)
def test_requests_without_a_token_get_401(
    alertwire_sandbox: Sandbox, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in ("/incidents", "/services", "/oncalls"):
        answer = rest(alertwire_sandbox, "GET", path, headers=headers)
        assert answer.status == 401
        assert answer.json == {"error": {"message": "Authentication failed", "code": 2006}}


def test_accept_header_is_not_checked(alertwire_sandbox: Sandbox) -> None:
    for accept in (
        "application/vnd.pagerduty+json;version=2",
        "application/json",
        "*/*",
        "text/html",
    ):
        answer = rest(alertwire_sandbox, "GET", "/incidents", headers={**HEADERS, "Accept": accept})
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("application/json")


def test_a_fixed_api_token_is_the_only_one_accepted() -> None:
    with Sandbox(api_token=TOKEN) as sb:
        assert rest(sb, "GET", "/incidents").status == 200
        assert (
            rest(sb, "GET", "/incidents", headers={"Authorization": f"Bearer {TOKEN}"}).status
            == 200
        )
        wrong = rest(sb, "GET", "/incidents", headers={"Authorization": "Token token=other"})
        assert wrong.status == 401
        assert TOKEN not in repr(sb) and TOKEN not in wrong.body.decode()


def test_injected_429_carries_ratelimit_headers_then_clears(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    sb.fail_next_rest(429, retry_after=7)
    sb.fail_next_rest(503)
    send(sb, trigger("a"))  # the Events API is not affected by REST faults
    limited = rest(sb, "GET", "/incidents")
    assert limited.status == 429
    assert limited.json == {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
    assert limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-reset"] == "7"
    assert int(limited.headers["ratelimit-limit"]) > 0
    unavailable = rest(sb, "GET", "/incidents")
    assert unavailable.status == 503
    assert "error" in unavailable.json
    ok = rest(sb, "GET", "/incidents")
    assert ok.status == 200 and len(ok.json["incidents"]) == 1


def test_rest_rate_limit_counts_per_token_with_headers(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    assert sb.faults(rest_rate_limit=2)["rest_rate_limit"] == 2
    first = rest(sb, "GET", "/services")
    assert (
        first.status,
        first.headers["ratelimit-limit"],
        first.headers["ratelimit-remaining"],
    ) == (
        200,
        "2",
        "1",
    )
    assert rest(sb, "GET", "/services").headers["ratelimit-remaining"] == "0"
    limited = rest(sb, "GET", "/services")
    assert limited.status == 429
    assert limited.json["error"]["code"] == 2020
    assert 1 <= int(limited.headers["ratelimit-reset"]) <= 60
    other = rest(sb, "GET", "/services", headers={"Authorization": "Token token=another-token"})
    assert other.status == 200
    # The Events API has its own limit (none here).
    send(sb, trigger("a"))


def test_rest_faults_are_set_over_http_and_checked(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    answer = post(
        sb.url + "/sandbox/faults", {"rest_fail_next": [{"status": 429, "retry_after": 2}]}
    )
    assert answer.status == 200
    assert answer.json["rest_fail_next"] == [{"status": 429, "retry_after": 2}]
    assert rest(sb, "GET", "/oncalls").status == 429
    spec: Any
    for spec, field in [
        ({"rest_fail_next": [200]}, "rest_fail_next[0]"),
        ({"rest_rate_limit": 0}, "rest_rate_limit"),
        ({"rest_fail_next": "429"}, "rest_fail_next"),
    ]:
        refused = post(sb.url + "/sandbox/faults", spec)
        assert refused.status == 400
        assert refused.json["errors"][0].startswith(field)


def test_tokens_and_keys_never_appear_in_answers(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("a"))
    everything = (
        "".join(
            rest(sb, "GET", path).body.decode() for path in ("/incidents", "/services", "/oncalls")
        )
        + json.dumps(sb.incidents(), ensure_ascii=False)
        + json.dumps(sb.services(), ensure_ascii=False)
    )
    incident_id = sb.incidents()[0]["id"]
    everything += rest(sb, "GET", f"/incidents/{incident_id}/alerts").body.decode()
    everything += rest(sb, "GET", f"/incidents/{incident_id}/log_entries").body.decode()
    assert KEY not in everything and TOKEN not in everything
    assert "…WXYZ" in everything


def test_the_rest_example_in_docs_sandbox_md_runs(tmp_path: Any) -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    [example] = [b for b in blocks if "/incidents?incident_key=" in b]
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_token": "  "}, "api_token must not be blank"),
        ({"rest_rate_limit": 0}, "rest_rate_limit must be at least 1"),
        # Whole numbers, as the control endpoint has them: True was a limit of 1,
        # a "60" a bare TypeError.
        ({"rest_rate_limit": True}, "rest_rate_limit must be at least 1"),
        ({"rate_limit": "60"}, "rate_limit must be at least 1 event per minute"),
        ({"rate_limit": 1.5}, "rate_limit must be at least 1 event per minute"),
        ({"port": True}, "port must be a whole number between 0 and 65535"),
        ({"port": "0"}, "port must be a whole number between 0 and 65535"),
    ],
)
def test_bad_rest_settings_are_refused_by_name(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Sandbox(**kwargs)
