"""The sandbox over real HTTP: inspection API, faults, rate limit, TLS, loopback, our own clients."""

from __future__ import annotations

import json
import ssl
from typing import Any

import pytest
import urllib3

import alertwire
from alertwire import ConfigurationError, NetworkError, RateLimited, RetryPolicy, ServerError
from alertwire.sandbox import Sandbox
from tests.support.sandbox_http import KEY, OTHER_KEY, TOKEN, action, post, request, trigger


def get(sb: Sandbox, path: str, **kw: object) -> Any:
    answer = request("GET", sb.url + path, **kw)  # type: ignore[arg-type]
    assert answer.status == 200
    return answer.json


def test_inspection_api_shows_state_without_full_keys(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    url = sb.url
    post(url + "/v2/enqueue", trigger("k1"))
    post(url + "/v2/enqueue", action("acknowledge", "k1"))
    post(url + "/v2/enqueue", trigger("k2", key=OTHER_KEY))
    post(url + "/v2/change/enqueue", {"routing_key": KEY, "payload": {"summary": "deploy"}})
    post(
        url + "/data/v2/alerts",
        {"app_key": "a", "status": "ok", "host": "h"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    alerts = get(sb, "/sandbox/alerts")
    assert isinstance(alerts, list)
    assert [(a["dedup_key"], a["status"], a["routing_key"]) for a in alerts] == [
        ("k1", "acknowledged", "…WXYZ"),
        ("k2", "triggered", "…QRST"),
    ]
    assert alerts[0]["summary"] == "disk full" and alerts[0]["severity"] == "critical"
    assert alerts == sb.alerts()
    assert [e["api"] for e in get(sb, "/sandbox/events")] == [
        "events",
        "events",
        "events",
        "change",
        "bigpanda",
    ]
    assert len(get(sb, "/sandbox/changes")) == 1
    assert len(get(sb, "/sandbox/bigpanda")) == 1
    # Filtering: by header (preferred) or query parameter; the key itself never comes back.
    by_header = get(sb, "/sandbox/alerts", headers={"X-Routing-Key": OTHER_KEY})
    by_query = get(sb, f"/sandbox/alerts?routing_key={OTHER_KEY}")
    assert by_header == by_query == [alerts[1]]
    assert get(sb, "/sandbox/events", headers={"X-Routing-Key": OTHER_KEY}) == sb.events(OTHER_KEY)
    assert get(sb, "/sandbox/bigpanda", headers={"X-BigPanda-Token": "nope-nope-nope"}) == []
    everything = b"".join(
        request("GET", url + p).body
        for p in (
            "/sandbox/alerts",
            "/sandbox/events",
            "/sandbox/changes",
            "/sandbox/bigpanda",
            "/",
        )
    ).decode()
    for secret in (KEY, OTHER_KEY, TOKEN):
        assert secret not in everything


def test_reset_over_http(alertwire_sandbox: Sandbox) -> None:
    post(alertwire_sandbox.url + "/v2/enqueue", trigger())
    alertwire_sandbox.fail_next(503)
    assert post(alertwire_sandbox.url + "/sandbox/reset", b"").json == {"status": "reset"}
    assert alertwire_sandbox.alerts() == [] and alertwire_sandbox.events() == []
    assert post(alertwire_sandbox.url + "/v2/enqueue", trigger()).status == 202  # fault gone too


def test_fail_next_over_http_in_order_then_success(alertwire_sandbox: Sandbox) -> None:
    url = alertwire_sandbox.url
    spec = {"fail_next": [503, {"status": 429, "retry_after": 7}, 500]}
    assert post(url + "/sandbox/faults", spec).status == 200
    answers = [post(url + "/v2/enqueue", trigger("k")) for _ in range(4)]
    assert [a.status for a in answers] == [503, 429, 500, 202]
    assert answers[1].headers["retry-after"] == "7"
    assert "retry-after" not in answers[0].headers
    assert answers[0].json["errors"] == ["Injected fault (sandbox)"]
    assert [e["dedup_key"] for e in alertwire_sandbox.events()] == [
        "k"
    ]  # failed requests are not kept


def test_faults_spare_the_inspection_api(alertwire_sandbox: Sandbox) -> None:
    alertwire_sandbox.fail_next(503)
    assert request("GET", alertwire_sandbox.url + "/sandbox/alerts").status == 200
    assert post(alertwire_sandbox.url + "/v2/enqueue", trigger()).status == 503


def test_reset_closes_the_connection_without_an_answer(alertwire_sandbox: Sandbox) -> None:
    alertwire_sandbox.faults(reset_next=1)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        post(alertwire_sandbox.url + "/v2/enqueue", trigger())
    assert post(alertwire_sandbox.url + "/v2/enqueue", trigger()).status == 202


def test_fail_rate_and_latency(alertwire_sandbox: Sandbox) -> None:
    url = alertwire_sandbox.url
    assert (
        post(
            url + "/sandbox/faults",
            {"fail_rate": 1, "fail_rate_status": 502, "seed": 1, "latency_ms": 5},
        ).json["latency_ms"]
        == 5
    )
    assert {post(url + "/v2/enqueue", trigger()).status for _ in range(5)} == {502}
    post(url + "/sandbox/faults", {"fail_rate": 0})
    assert post(url + "/v2/enqueue", trigger()).status == 202


@pytest.mark.parametrize(
    "spec",
    [
        b"{",
        b"[]",
        b'{"fail_next":[200]}',
        b'{"latency_ms":"slow"}',
        b'{"nope":1}',
        b'{"rate_limit":0}',
    ],
)
def test_bad_fault_spec_is_400(alertwire_sandbox: Sandbox, spec: bytes) -> None:
    answer = post(alertwire_sandbox.url + "/sandbox/faults", spec)
    assert answer.status == 400
    assert answer.json["status"] == "invalid"


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        # Answered 200 and did nothing: every fault stayed in place.
        ({"clear": "yes"}, "clear must be true or false"),
        ({"clear": 1}, "clear must be true or false"),
        # Answered 200 and struck without the Retry-After the test meant to send.
        (
            {"fail_next": [{"status": 429, "retryAfter": 30}]},
            "fail_next[0] has unknown key(s) retryAfter (known: status, retry_after)",
        ),
        (
            {"rest_fail_next": [{"status": 429, "retry-after": 30}]},
            "rest_fail_next[0] has unknown key(s) retry-after (known: status, retry_after)",
        ),
    ],
)
def test_a_fault_setting_that_would_be_ignored_is_400_and_changes_nothing(
    alertwire_sandbox: Sandbox, spec: dict[str, Any], error: str
) -> None:
    url = alertwire_sandbox.url
    alertwire_sandbox.fail_next(503)
    answer = post(url + "/sandbox/faults", spec)
    assert answer.status == 400
    assert answer.json == {"status": "invalid", "errors": [error]}
    assert request("GET", url + "/sandbox/faults").json["fail_next"] == [
        {"status": 503, "retry_after": None}
    ]
    assert post(url + "/sandbox/faults", {"clear": True}).json["fail_next"] == []


def test_summary_counts_and_last_keeps_the_newest(alertwire_sandbox: Sandbox) -> None:
    """What the dashboard reads: counters without the histories, and the newest rows."""
    sb = alertwire_sandbox
    url = sb.url
    for n in range(5):
        post(url + "/v2/enqueue", trigger(f"k{n}", summary=f"alert {n}"))
    post(url + "/v2/enqueue", action("acknowledge", "k1"))
    post(url + "/v2/enqueue", action("resolve", "k2"))
    post(url + "/v2/change/enqueue", {"routing_key": KEY, "payload": {"summary": "deploy"}})
    assert get(sb, "/sandbox/summary") == {
        "alerts": {"triggered": 3, "acknowledged": 1, "resolved": 1},
        "incidents": 5,
        "changes": 1,
        "bigpanda": 0,
        "events": 8,
    }
    newest = get(sb, "/sandbox/alerts?last=2")
    assert [a["dedup_key"] for a in newest] == ["k3", "k4"]  # still oldest first
    assert [i["incident_key"] for i in get(sb, "/sandbox/incidents?last=1")] == ["k4"]
    assert [e["event_action"] for e in get(sb, "/sandbox/events?last=3")] == [
        "acknowledge",
        "resolve",
        None,
    ]
    assert get(sb, "/sandbox/events?last=0") == []
    assert len(get(sb, "/sandbox/alerts?last=99")) == 5
    assert get(sb, "/sandbox/changes?last=1")[0]["body"]["payload"]["summary"] == "deploy"
    assert get(sb, "/sandbox/bigpanda?last=1") == []
    for bad in ("-1", "x", "1.5", "9" * 5000):
        answer = request("GET", f"{url}/sandbox/alerts?last={bad}")
        assert answer.status == 400
        assert answer.json["errors"][0].startswith("last must be a whole number (0 or more)")


def test_rate_limit_per_routing_key() -> None:
    with Sandbox(rate_limit=3) as sb:
        url = sb.url + "/v2/enqueue"
        assert [post(url, trigger()).status for _ in range(4)] == [202, 202, 202, 429]
        limited = post(url, trigger())
        assert limited.status == 429
        assert limited.json["message"] == "Request Limit Exceeded"
        assert post(url, trigger(key=OTHER_KEY)).status == 202
        assert post(url, {"routing_key": "bad"}).status == 400  # validation comes first
        assert len(sb.alerts()) == 4
        sb.reset()  # restores the start-up limit with an empty window
        assert [post(url, trigger()).status for _ in range(4)] == [202, 202, 202, 429]


def test_rate_limit_can_be_switched_on_at_run_time(alertwire_sandbox: Sandbox) -> None:
    alertwire_sandbox.faults(rate_limit=1)
    url = alertwire_sandbox.url + "/v2/change/enqueue"
    body = {"routing_key": KEY, "payload": {"summary": "x"}}
    assert [post(url, body).status for _ in range(2)] == [202, 429]


def test_our_client_sees_429_as_rate_limited_and_retries_503(alertwire_sandbox: Sandbox) -> None:
    with alertwire.PagerDuty(
        KEY, base_url=alertwire_sandbox.url, retry=RetryPolicy(max_attempts=3)
    ) as pd:
        alertwire_sandbox.fail_next(503, 503)
        assert pd.trigger("x", source="h", dedup_key="k").dedup_key == "k"
        alertwire_sandbox.fail_next(429, 429, 429, retry_after=1)
        with pytest.raises(RateLimited) as caught:
            pd.trigger("x", source="h")
        assert caught.value.retry_after == 1
        alertwire_sandbox.fail_next(500, 500, 500)
        with pytest.raises(ServerError):
            pd.resolve("k")
        alertwire_sandbox.faults(reset_next=3)
        with pytest.raises(NetworkError):
            pd.resolve("k")
        assert [a["status"] for a in alertwire_sandbox.alerts()] == ["triggered"]


def test_our_clients_walk_the_lifecycle(alertwire_sandbox: Sandbox) -> None:
    sb = alertwire_sandbox
    with alertwire.PagerDuty(KEY, base_url=sb.url) as pd:
        key = pd.trigger("CPU 99%", source="web1", severity="critical").dedup_key
        assert key is not None
        pd.trigger("CPU 99% again", source="web1", dedup_key=key)
        pd.acknowledge(key)
        pd.resolve(key)
        pd.resolve(key)  # dropped, still accepted
        pd.trigger("CPU 99% once more", source="web1", dedup_key=key)
        pd.change("Deployed", source="ci")
    assert [(a["dedup_key"], a["status"], a["triggers"]) for a in sb.alerts()] == [
        (key, "resolved", 2),
        (key, "triggered", 1),
    ]
    assert [e["outcome"] for e in sb.events()] == [
        "opened",
        "added",
        "acknowledged",
        "resolved",
        "dropped",
        "opened",
        "recorded",
    ]
    with alertwire.BigPanda(TOKEN, "app-1", base_url=sb.url) as bp:
        bp.alert("critical", host="db1", check="disk")
    [kept] = sb.bigpanda(TOKEN)
    assert kept["body"]["app_key"] == "app-1" and kept["body"]["host"] == "db1"


async def test_async_client_against_the_sandbox(alertwire_sandbox: Sandbox) -> None:
    async with alertwire.AsyncPagerDuty(KEY, base_url=alertwire_sandbox.url) as pd:
        result = await pd.trigger("async", source="h", dedup_key="a1")
        await pd.resolve("a1")
    assert result.dedup_key == "a1"
    assert [a["status"] for a in alertwire_sandbox.alerts()] == ["resolved"]


def test_tls_sandbox_serves_https_with_its_own_ca(alertwire_sandbox_tls: Sandbox) -> None:
    sb = alertwire_sandbox_tls
    assert sb.url.startswith("https://127.0.0.1:")
    assert sb.ca_file is not None
    with open(sb.ca_file) as f:
        assert f.read().startswith("-----BEGIN CERTIFICATE-----")
    trusted = urllib3.PoolManager(ca_certs=sb.ca_file)
    assert post(sb.url + "/v2/enqueue", trigger("t"), pool=trusted).status == 202
    with pytest.raises(urllib3.exceptions.SSLError):
        post(
            sb.url + "/v2/enqueue",
            trigger(),
            pool=urllib3.PoolManager(ca_certs=ssl.get_default_verify_paths().cafile),
        )
    with alertwire.PagerDuty(KEY, base_url=sb.url, verify=sb.ca_file) as pd:
        pd.resolve("t")
    assert [a["status"] for a in sb.alerts()] == ["resolved"]


def test_tls_ca_file_is_removed_when_the_sandbox_stops(tmp_path: object) -> None:
    with Sandbox(tls=True) as sb:
        path = sb.ca_file
        assert path is not None
        with open(path) as f:
            assert "CERTIFICATE" in f.read()
    import os

    assert not os.path.exists(path)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_non_loopback_host_is_refused_without_the_flag(host: str) -> None:
    with pytest.raises(ConfigurationError, match="not a loopback address"):
        Sandbox(host=host)


def test_loopback_names_are_accepted() -> None:
    from alertwire.sandbox.server import check_host

    for host in ("127.0.0.1", "localhost", "::1", "127.1.2.3"):
        check_host(host, allow_non_loopback=False)
    check_host("0.0.0.0", allow_non_loopback=True)


def test_repr_and_json_safety(alertwire_sandbox: Sandbox) -> None:
    assert alertwire_sandbox.url in repr(alertwire_sandbox)
    post(alertwire_sandbox.url + "/v2/enqueue", trigger(custom_details={"a": [1, 2.5, None, True]}))
    assert (
        json.loads(json.dumps(alertwire_sandbox.events()))[0]["body"]["payload"]["custom_details"][
            "a"
        ][1]
        == 2.5
    )


def test_a_ca_file_without_tls_is_refused_not_ignored(tmp_path: Any) -> None:
    # Over plain http no CA is written: a caller waiting for the file got nothing.
    with pytest.raises(ConfigurationError, match="ca_file goes with tls=True"):
        Sandbox(ca_file=tmp_path / "ca.pem")
    assert not (tmp_path / "ca.pem").exists()
