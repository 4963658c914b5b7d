"""The BigPanda route over real HTTP: Bearer token, single and batch, 400 from the shared rules."""

from __future__ import annotations

from typing import Any

import pytest

from alertwire.sandbox import Sandbox
from tests.support.sandbox_http import TOKEN, post

ALERT = {
    "app_key": "app-123",
    "status": "critical",
    "host": "db1",
    "check": "disk",
    "description": "full",
}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer    "},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
    ids=["none", "empty", "bearer-empty", "bearer-spaces", "basic", "no-scheme"],
)
def test_missing_or_empty_token_is_401(alertwire_sandbox: Sandbox, headers: dict[str, str]) -> None:
    answer = post(alertwire_sandbox.url + "/data/v2/alerts", ALERT, headers=headers)
    assert answer.status == 401
    assert answer.json["status"] == "failure"
    assert "Bearer" in answer.json["errors"][0]
    assert alertwire_sandbox.bigpanda() == []


def test_token_in_the_query_string_is_refused(alertwire_sandbox: Sandbox) -> None:
    answer = post(alertwire_sandbox.url + f"/data/v2/alerts?access_token={TOKEN}", ALERT)
    assert answer.status == 401
    assert TOKEN not in answer.body.decode()


def test_single_alert_is_accepted_and_kept(alertwire_sandbox: Sandbox) -> None:
    answer = post(
        alertwire_sandbox.url + "/data/v2/alerts",
        ALERT,
        headers={"Authorization": f"bearer {TOKEN}"},
    )
    assert answer.status == 201
    assert answer.json == {"status": "created"}
    [kept] = alertwire_sandbox.bigpanda()
    assert kept["body"] == ALERT
    assert kept["token"] == "…TKN9"
    assert kept["batch"] is False
    assert alertwire_sandbox.bigpanda(token=TOKEN) == [kept]
    assert alertwire_sandbox.bigpanda(token="another-token-000") == []


def test_batch_is_accepted_item_by_item_with_the_app_key(alertwire_sandbox: Sandbox) -> None:
    batch = {
        "app_key": "app-9",
        "alerts": [
            {"status": "warning", "host": "a", "timestamp": 1700000000},
            {"status": "ok", "service": "b"},
        ],
    }
    answer = post(alertwire_sandbox.url + "/data/v2/alerts", batch, headers=AUTH)
    assert answer.status == 201
    kept = alertwire_sandbox.bigpanda()
    assert [k["body"] for k in kept] == [
        {"app_key": "app-9", "status": "warning", "host": "a", "timestamp": 1700000000},
        {"app_key": "app-9", "status": "ok", "service": "b"},
    ]
    assert all(k["batch"] for k in kept)


CASES: list[tuple[str, Any, str]] = [
    ("no app_key", {"status": "critical", "host": "h"}, "'app_key' is missing or blank"),
    ("no status", {"app_key": "a", "host": "h"}, "'status' is missing or blank"),
    (
        "upper-case status",
        {"app_key": "a", "status": "CRITICAL", "host": "h"},
        "'status' is invalid",
    ),
    (
        "no primary property",
        {"app_key": "a", "status": "ok"},
        "'primary_property' is missing or blank",
    ),
    ("milliseconds", {**ALERT, "timestamp": 1700000000000}, "'timestamp' is invalid"),
    ("nested tag", {**ALERT, "team": {"name": "x"}}, "'team' is invalid"),
    ("empty batch", {"app_key": "a", "alerts": []}, "'alerts' is invalid"),
    ("item with app_key", {"app_key": "a", "alerts": [ALERT]}, "'alerts[0].app_key' is invalid"),
]


@pytest.mark.parametrize(("body", "error"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_alerts_answer_400_with_the_shared_rules(
    alertwire_sandbox: Sandbox, body: Any, error: str
) -> None:
    answer = post(alertwire_sandbox.url + "/data/v2/alerts", body, headers=AUTH)
    assert answer.status == 400
    assert answer.json["status"] == "failure"
    assert answer.json["message"] == "Alert object is invalid"
    assert any(e.startswith(error) for e in answer.json["errors"]), answer.json
    assert alertwire_sandbox.bigpanda() == []


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,2", b"\xff"])
def test_malformed_json_is_400(alertwire_sandbox: Sandbox, raw: bytes) -> None:
    answer = post(alertwire_sandbox.url + "/data/v2/alerts", raw, headers=AUTH)
    assert answer.status == 400
    assert answer.json == {
        "status": "failure",
        "message": "Alert object format is unrecognized",
        "errors": ["JSON parse error"],
    }


def test_oversized_request_is_400(alertwire_sandbox: Sandbox) -> None:
    answer = post(
        alertwire_sandbox.url + "/data/v2/alerts",
        {**ALERT, "blob": "x" * (600 * 1024)},
        headers=AUTH,
    )
    assert answer.status == 400
    assert answer.json["errors"] == ["Event object is too large (maximum is 524288 bytes)"]
