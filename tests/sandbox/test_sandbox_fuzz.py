"""Schema-driven fuzzing of the sandbox's HTTP endpoints: nothing a client sends yields a 5xx.

Hypothesis generates requests against the real server on a loopback port:
event-shaped bodies (every documented field, with plausible and arbitrary
values), arbitrary JSON, arbitrary bytes, any method, known and random paths,
and random ``Authorization`` / ``Content-Type`` headers. Example counts are
bounded so the whole module stays within a few seconds.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st

from alertwire.sandbox import Sandbox
from tests.support.sandbox_http import KEY, TOKEN

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

WIRE_PATHS = ["/v2/enqueue", "/v2/change/enqueue", "/data/v2/alerts"]
READ_PATHS = [
    "/",
    "/sandbox/alerts",
    "/sandbox/events",
    "/sandbox/changes",
    "/sandbox/bigpanda",
    "/sandbox/faults",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


def maybe(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return plausible | json_values


payload = st.fixed_dictionaries(
    {},
    optional={
        "summary": maybe(
            st.sampled_from(["disk full", "s" * 1024, "s" * 1025]) | st.text(max_size=30)
        ),
        "source": maybe(st.sampled_from(["db1", "web.example.com", " "])),
        "severity": maybe(
            st.sampled_from(["critical", "error", "warning", "info", "CRITICAL", "fatal"])
        ),
        "timestamp": maybe(
            st.sampled_from(["2015-07-17T08:42:58.315+0000", "2024-02-30T00:00:00Z", "now"])
        ),
        "component": json_values,
        "group": json_values,
        "class": json_values,
        "custom_details": json_values,
    },
)
links = st.lists(
    st.fixed_dictionaries({}, optional={"href": maybe(st.just("https://x")), "text": json_values}),
    max_size=3,
)
images = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "src": maybe(st.sampled_from(["https://x/a.png", "http://x/a.png"])),
            "href": json_values,
            "alt": json_values,
        },
    ),
    max_size=3,
)
wild_events = st.fixed_dictionaries(
    {},
    optional={
        "routing_key": maybe(st.sampled_from([KEY, KEY[:20], KEY + "x", "R" + KEY[1:], "-" * 32])),
        "event_action": maybe(st.sampled_from(["trigger", "acknowledge", "resolve", "Trigger"])),
        "dedup_key": maybe(st.sampled_from(["k", "k" * 255, "k" * 256]) | st.text(max_size=30)),
        "payload": maybe(payload),
        "links": maybe(links),
        "images": maybe(images),
        "client": json_values,
        "client_url": json_values,
    },
)
non_blank = st.text(min_size=1, max_size=30).filter(lambda t: bool(t.strip()))
good_payload = st.fixed_dictionaries(
    {
        "summary": non_blank,
        "source": st.sampled_from(["db1", "web.example.com"]),
        "severity": st.sampled_from(["critical", "error", "warning", "info"]),
    },
    optional={
        "timestamp": st.sampled_from(
            ["2015-07-17T08:42:58.315+0000", "2026-01-02T03:04:05Z", "2026-01-02 03:04"]
        ),
        "component": st.text(max_size=10),
        "class": st.text(max_size=10),
        "custom_details": st.dictionaries(st.text(max_size=8), json_values, max_size=4)
        | st.text(max_size=10),
    },
)
good_trigger = st.fixed_dictionaries(
    {"routing_key": st.just(KEY), "event_action": st.just("trigger"), "payload": good_payload},
    optional={
        "dedup_key": non_blank,
        "links": st.lists(
            st.fixed_dictionaries(
                {"href": st.just("https://x")}, optional={"text": st.text(max_size=10)}
            ),
            max_size=2,
        ),
        "images": st.lists(
            st.fixed_dictionaries(
                {"src": st.just("https://x/a.png")}, optional={"alt": st.text(max_size=10)}
            ),
            max_size=2,
        ),
        "client": st.text(max_size=10),
    },
)
good_action = st.fixed_dictionaries(
    {
        "routing_key": st.just(KEY),
        "event_action": st.sampled_from(["acknowledge", "resolve"]),
        "dedup_key": st.sampled_from(["k1", "k2", "x" * 255]),
    }
)
# A valid event with one top-level field replaced by anything at all.
mutated = st.tuples(
    good_trigger,
    st.sampled_from(
        [
            "routing_key",
            "event_action",
            "dedup_key",
            "payload",
            "links",
            "images",
            "client",
            "client_url",
        ]
    ),
    json_values,
).map(lambda t: {**t[0], t[1]: t[2]})
pagerduty_events = st.one_of(good_trigger, good_action, mutated, wild_events)
bigpanda_alert = st.fixed_dictionaries(
    {},
    optional={
        "app_key": maybe(st.just("app")),
        "status": maybe(
            st.sampled_from(["ok", "critical", "warning", "acknowledged", "unknown", "OK"])
        ),
        "host": maybe(st.just("h")),
        "service": json_values,
        "check": json_values,
        "description": maybe(st.sampled_from(["d" * 2048, "d" * 2049]) | st.text(max_size=30)),
        "timestamp": maybe(st.integers(min_value=-1, max_value=10**14)),
        "primary_property": maybe(st.sampled_from(["host", "status", "missing"])),
        "secondary_property": json_values,
        "tag": json_values,
    },
)
bigpanda_bodies = bigpanda_alert | st.fixed_dictionaries(
    {"app_key": maybe(st.just("app")), "alerts": maybe(st.lists(bigpanda_alert, max_size=3))}
)

bodies = st.one_of(
    pagerduty_events.map(lambda v: json.dumps(v).encode()),
    bigpanda_bodies.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=400),
    st.just(b""),
)
header_text = st.text(alphabet=string.printable.strip("\r\n\t\x0b\x0c"), max_size=60)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.sampled_from([f"Bearer {TOKEN}", "Bearer ", "Basic x"]) | header_text,
        "Content-Type": st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"]
        )
        | header_text,
        "X-Routing-Key": header_text,
    },
)
random_paths = st.text(max_size=30).map(lambda t: "/" + quote(t, safe="/"))
paths = st.sampled_from(WIRE_PATHS + READ_PATHS) | random_paths
methods = st.sampled_from(
    ["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def pool() -> Iterator[urllib3.PoolManager]:
    with urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10)) as manager:
        yield manager


@SETTINGS
@given(method=methods, path=paths, body=bodies, headers=headers)
def test_no_request_yields_a_5xx(
    sandbox: Sandbox,
    pool: urllib3.PoolManager,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    response = pool.request(
        method, sandbox.url + path, body=body or None, headers=headers, retries=False
    )
    assert response.status < 500, (method, path, body[:200], response.status, response.data[:300])
    if method == "POST" and path in WIRE_PATHS:
        assert response.status in (201, 202, 400, 401), response.data[:300]
        answer = json.loads(response.data)
        if response.status in (400, 401):
            assert isinstance(answer["errors"], list) and all(
                isinstance(e, str) for e in answer["errors"]
            )
            assert answer["errors"], answer


@SETTINGS
@given(event=pagerduty_events, path=st.sampled_from(WIRE_PATHS[:2]))
def test_every_event_is_answered_202_or_400_with_errors(
    sandbox: Sandbox, pool: urllib3.PoolManager, event: dict[str, Any], path: str
) -> None:
    response = pool.request(
        "POST", sandbox.url + path, body=json.dumps(event).encode(), retries=False
    )
    assert response.status in (202, 400), response.data[:300]
    label(f"HTTP {response.status}")  # --hypothesis-show-statistics: both outcomes are reached
    answer = json.loads(response.data)
    if response.status == 400:
        assert list(answer) == ["errors", "message", "status"]
        assert answer["errors"]
    elif path == "/v2/enqueue":
        assert answer["dedup_key"]


@settings(max_examples=100, deadline=None, database=None)
@given(
    spec=json_values
    | st.fixed_dictionaries(
        {},
        optional={
            "fail_next": json_values,
            "latency_ms": json_values,
            "reset_next": json_values,
            "fail_rate": json_values,
            "rate_limit": json_values,
        },
    )
)
def test_fault_endpoint_answers_200_or_400(
    sandbox: Sandbox, pool: urllib3.PoolManager, spec: Any
) -> None:
    try:
        response = pool.request(
            "POST", sandbox.url + "/sandbox/faults", body=json.dumps(spec).encode(), retries=False
        )
        assert response.status in (200, 400), response.data[:300]
    finally:
        sandbox.reset()
