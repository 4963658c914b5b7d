"""Fuzzing the sandbox's REST routes: nothing a client sends yields a 5xx, a hang or a crash.

Hypothesis sends the list routes arbitrary query strings (the real parameter
names with plausible and arbitrary values, and random names), the ``PUT``
routes arbitrary JSON and bytes, and every route random ``Authorization``
headers, to a real sandbox on a loopback port holding real incidents.
Example counts are bounded so the module stays within seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertwire.sandbox import Sandbox
from tests.support.sandbox_http import post, trigger

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
AUTH = {"Authorization": "Token token=fuzz", "From": "fuzz@example.com"}
PARAMS = [
    "statuses[]",
    "statuses",
    "service_ids[]",
    "incident_key",
    "since",
    "until",
    "date_range",
    "sort_by",
    "offset",
    "limit",
    "total",
    "query",
    "alert_key",
    "escalation_policy_ids[]",
    "user_ids[]",
    "include[]",
]
VALUES = st.sampled_from(
    [
        "triggered",
        "resolved",
        "all",
        "true",
        "false",
        "-1",
        "0",
        "100",
        "101",
        "99999999999999999999999",
        "incident_number:desc",
        "created_at:asc,urgency:desc",
        "0001-01-01",
        "9999-12-31T23:59:59Z",
        "2026-01-01T00:00:00+14:00",
        "",
    ]
) | st.text(max_size=30)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def pool() -> Iterator[urllib3.PoolManager]:
    with urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10)) as p:
        yield p


def populated(sb: Sandbox) -> list[str]:
    if not sb.incidents():
        for key in ("a", "b", "c"):
            assert post(sb.url + "/v2/enqueue", trigger(key)).status == 202
    return [i["id"] for i in sb.incidents()]


def paths(ids: list[str]) -> st.SearchStrategy[str]:
    ident = st.sampled_from([*ids, "PNOSUCH", "%00", "P.X", "x" * 300])
    return st.one_of(
        st.sampled_from(["/incidents", "/services", "/oncalls"]),
        ident.map(lambda i: f"/incidents/{quote(i, safe='%')}"),
        ident.map(lambda i: f"/incidents/{quote(i, safe='%')}/alerts"),
        ident.map(lambda i: f"/incidents/{quote(i, safe='%')}/log_entries"),
        ident.map(lambda i: f"/services/{quote(i, safe='%')}"),
    )


@given(data=st.data())
@SETTINGS
def test_list_queries_never_5xx(
    sandbox: Sandbox, pool: urllib3.PoolManager, data: st.DataObject
) -> None:
    ids = populated(sandbox)
    path = data.draw(paths(ids))
    pairs = data.draw(
        st.lists(st.tuples(st.sampled_from(PARAMS) | st.text(max_size=10), VALUES), max_size=5)
    )
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    answer = pool.request("GET", f"{sandbox.url}{path}?{query}", headers=AUTH)
    assert answer.status in (200, 400, 404), (path, query, answer.data[:300])
    body = json.loads(answer.data)
    if answer.status != 200:
        assert set(body) == {"error"} and body["error"]["message"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def update(ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from([*ids, "PNOSUCH"]) | JSON,
            "type": st.sampled_from(["incident", "incident_reference"]) | JSON,
            "status": st.sampled_from(["triggered", "acknowledged", "resolved"]) | JSON,
            "title": JSON,
            "urgency": st.sampled_from(["high", "low"]) | JSON,
            "resolution": JSON,
            "priority": JSON,
        },
    )


@given(data=st.data())
@SETTINGS
def test_updates_never_5xx(
    sandbox: Sandbox, pool: urllib3.PoolManager, data: st.DataObject
) -> None:
    ids = populated(sandbox)
    one = update(ids)
    body: Any = data.draw(
        st.one_of(
            st.fixed_dictionaries({"incident": one}),
            st.fixed_dictionaries({"incidents": st.lists(one, max_size=4)}),
            JSON,
        )
    )
    raw = data.draw(st.just(json.dumps(body).encode()) | st.binary(max_size=40))
    path = data.draw(st.sampled_from(["/incidents", *(f"/incidents/{i}" for i in ids)]))
    headers = data.draw(st.sampled_from([AUTH, {"Authorization": "Token token=fuzz"}, {}]))
    answer = pool.request("PUT", f"{sandbox.url}{path}", body=raw, headers=headers)
    assert answer.status in (200, 400, 401, 404), (path, raw[:200], answer.data[:300])
    assert "error" in json.loads(answer.data) or answer.status == 200


@given(authorization=st.text(max_size=40))
@SETTINGS
def test_any_authorization_header_is_200_401_or_400(
    sandbox: Sandbox, pool: urllib3.PoolManager, authorization: str
) -> None:
    try:
        authorization.encode("latin-1")
    except UnicodeEncodeError:
        return  # not sendable as an HTTP header
    if "\r" in authorization or "\n" in authorization:
        return
    answer = pool.request(
        "GET", f"{sandbox.url}/services", headers={"Authorization": authorization}
    )
    # 400: aiohttp's own answer to control characters in a header value.
    assert answer.status in (200, 400, 401)
