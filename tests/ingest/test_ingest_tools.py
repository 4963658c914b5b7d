"""Real tools pointed at ``alertwire relay --listen``: Alertmanager, PagerDuty's client, curl.

Each test runs the relay as a subprocess in front of the sandbox (the
"PagerDuty" upstream), kills it with SIGKILL in the middle, restarts it on
the same port, and checks what reached the sandbox: per dedup key, the
actions in the order the tool sent them, and the final alert state.

A killed relay's claims are held until its lease (3 s here) lapses; the
restarted relay then sends them again, so an event can arrive twice: that is
the at-least-once promise, and the order check collapses repeats of the same
action (a repeated trigger of an open key is a no-op at PagerDuty).
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pagerduty
import pytest
import trustme
import urllib3

from alertwire.outbox import Outbox
from alertwire.sandbox import Sandbox
from tests.support.ingest_process import RelayProcess
from tests.support.services import RunningAlertmanager, free_port
from tests.support.waiting import wait_for

KEY = "0123456789abcdef0123456789ABWXYZ"
TOKEN = "bp-token-ingest-secret-0000ZZZ9"

_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10))


def stored(outbox: Path) -> int:
    with Outbox(outbox) as ob:
        s = ob.stats()
        return s.pending + s.leased + s.delivered + s.dead


def actions_by_key(sb: Sandbox) -> dict[str, list[str]]:
    """Per dedup key, the actions that reached the sandbox, repeats collapsed."""
    seen: dict[str, list[str]] = {}
    for event in sb.events():
        if event.get("dedup_key") is None:  # a change event
            continue
        actions = seen.setdefault(event["dedup_key"], [])
        if not actions or actions[-1] != event["event_action"]:
            actions.append(event["event_action"])
    return seen


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[RelayProcess]]:
    made: list[RelayProcess] = []
    yield made
    for relay in made:
        relay.close()
    for relay in made:
        if relay.runs:
            assert KEY not in relay.output() and TOKEN not in relay.output()


# ---------------------------------------------------------------- Alertmanager


def am_config(relay_port: int) -> str:
    return f"""
global:
  resolve_timeout: 1m
route:
  receiver: relay
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: relay
    pagerduty_configs:
      - routing_key: {KEY}
        url: http://127.0.0.1:{relay_port}/v2/enqueue
        send_resolved: true
        severity: warning
"""


def failed_pagerduty_requests(am: RunningAlertmanager) -> float:
    """Alertmanager's own count of PagerDuty requests that failed (its /metrics)."""
    text = _http.request("GET", f"{am.base_url}/metrics").data.decode()
    pattern = r'^alertmanager_notification_requests_failed_total\{integration="pagerduty"\} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    assert match, "Alertmanager's /metrics has no failed-request counter for PagerDuty"
    return float(match.group(1))


def post_alerts(am: RunningAlertmanager, names: list[str], *, resolved: bool) -> None:
    now = datetime.now(timezone.utc)
    alerts = []
    for name in names:
        alert: dict[str, Any] = {
            "labels": {"alertname": name, "instance": "db1"},
            "annotations": {"summary": f"{name} on db1"},
            "startsAt": (now - timedelta(minutes=1)).isoformat(),
        }
        if resolved:
            alert["endsAt"] = now.isoformat()
        alerts.append(alert)
    r = _http.request(
        "POST",
        f"{am.base_url}/api/v2/alerts",
        body=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 200, r.data


def test_alertmanager_through_a_killed_and_restarted_relay(
    tmp_path: Path,
    sandbox: Sandbox,
    relays: list[RelayProcess],
    run_alertmanager: Callable[[str], RunningAlertmanager],
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    relay = RelayProcess(tmp_path, outbox=outbox, pagerduty_url=sandbox.url, port=free_port())
    relays.append(relay)
    relay.start()
    am = run_alertmanager(am_config(relay.port))
    names = ["DiskFull", "HighLatency", "NodeDown"]

    # 1. Fire. The sandbox is slow, so the relay is killed with the triggers
    #    stored (answered 202) but not all delivered.
    sandbox.faults(latency_ms=800)
    post_alerts(am, names, resolved=False)
    wait_for("three triggers stored", lambda: stored(outbox) >= 3)
    relay.kill()
    sandbox.faults(latency_ms=0)
    relay.start()
    wait_for("three alerts triggered", lambda: len(sandbox.alerts()) == 3)

    # 2. Resolve while the relay is down: Alertmanager's sends fail and it retries.
    relay.kill()
    failed = failed_pagerduty_requests(am)
    post_alerts(am, names, resolved=True)
    wait_for(
        "Alertmanager to meet the closed port at least once",
        lambda: failed_pagerduty_requests(am) > failed,
    )
    relay.start()
    wait_for(
        "three alerts resolved",
        lambda: [a["status"] for a in sandbox.alerts()] == ["resolved"] * 3,
    )

    by_key = actions_by_key(sandbox)
    assert len(by_key) == 3
    assert all(actions == ["trigger", "resolve"] for actions in by_key.values()), by_key
    for event in sandbox.events():
        assert event["body"].get("client") == "Alertmanager"
    assert relay.terminate() == 0
    assert "event=relay_stopped" in relay.output()


# ---------------------------------------------------------------- PagerDuty's client


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A CA and a 127.0.0.1 certificate (``--tls-cert/--tls-key``), kept across restarts."""
    where = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(where / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(where / "cert.pem"))
    ca.cert_pem.write_to_path(str(where / "ca.pem"))
    return str(where / "cert.pem"), str(where / "key.pem"), str(where / "ca.pem")


def test_official_client_over_tls_through_a_killed_relay(
    tmp_path: Path,
    sandbox: Sandbox,
    relays: list[RelayProcess],
    server_cert: tuple[str, str, str],
) -> None:
    cert, key, ca = server_cert
    outbox = tmp_path / "outbox.sqlite3"
    relay = RelayProcess(
        tmp_path,
        outbox=outbox,
        pagerduty_url=sandbox.url,
        extra=["--tls-cert", cert, "--tls-key", key],
    )
    relays.append(relay)
    relay.start()
    assert relay.url.startswith("https://")
    client = pagerduty.EventsApiV2Client(
        KEY, base_url=relay.url, verify=ssl.create_default_context(cafile=ca)
    )
    try:
        sandbox.faults(latency_ms=800)
        dedup_key = client.trigger("Disk full on db1", "db1.example.com", severity="error")
        assert re.fullmatch(r"[0-9a-f]{32}", dedup_key)
        relay.kill()  # the trigger is on disk, maybe in flight
        sandbox.faults(latency_ms=0)
        relay.start()
        assert client.acknowledge(dedup_key) == dedup_key
        assert client.resolve(dedup_key) == dedup_key
        client.submit(
            "Deployed api v2", source="ci", timestamp=datetime.now(timezone.utc).isoformat()
        )
    finally:
        client.close()
    wait_for("the alert resolved", lambda: [a["status"] for a in sandbox.alerts()] == ["resolved"])
    wait_for("the change recorded", lambda: len(sandbox.changes()) == 1)
    assert actions_by_key(sandbox) == {dedup_key: ["trigger", "acknowledge", "resolve"]}
    assert sandbox.changes()[0]["body"]["payload"]["summary"] == "Deployed api v2"
    assert relay.terminate() == 0


# ---------------------------------------------------------------- curl


def curl(*args: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body, _, code = result.stdout.rpartition("\n")
    return int(code), json.loads(body) if body.strip() else {}


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (scripts/test.sh installs it)")
def test_curl_over_throwaway_tls_through_a_killed_relay(
    tmp_path: Path, sandbox: Sandbox, relays: list[RelayProcess]
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    ca_file = tmp_path / "relay-ca.pem"
    relay = RelayProcess(
        tmp_path,
        outbox=outbox,
        pagerduty_url=sandbox.url,
        bigpanda_url=sandbox.url,
        extra=["--tls", "--tls-ca-file", str(ca_file)],
    )
    relays.append(relay)
    relay.start()
    assert relay.ca_file == str(ca_file)

    def post(path: str, body: dict[str, Any], *headers: str) -> tuple[int, dict[str, Any]]:
        return curl(
            "--cacert",
            str(ca_file),
            "-H",
            "Content-Type: application/json",
            *[h for header in headers for h in ("-H", header)],
            "--data-binary",
            json.dumps(body),
            f"{relay.url}{path}",
        )

    sandbox.faults(latency_ms=800)
    code, answer = post(
        "/v2/enqueue",
        {
            "routing_key": KEY,
            "event_action": "trigger",
            "payload": {"summary": "backup failed", "source": "nas1", "severity": "critical"},
        },
    )
    assert (code, answer["status"]) == (202, "success")
    dedup_key = answer["dedup_key"]
    code, answer = post(
        "/data/v2/alerts",
        {"app_key": "app1", "status": "critical", "host": "nas1", "check": "backup"},
        f"Authorization: Bearer {TOKEN}",
    )
    assert (code, answer) == (201, {"status": "created"})
    relay.kill()
    sandbox.faults(latency_ms=0)
    relay.start()  # a new throwaway CA, written to the same file
    code, answer = post(
        "/v2/enqueue", {"routing_key": KEY, "event_action": "resolve", "dedup_key": dedup_key}
    )
    assert (code, answer["dedup_key"]) == (202, dedup_key)
    code, answer = post("/v2/enqueue", {"routing_key": KEY, "event_action": "nope"})
    assert code == 400 and answer["status"] == "invalid event"

    wait_for("resolved", lambda: [a["status"] for a in sandbox.alerts()] == ["resolved"])
    wait_for("the BigPanda alert", lambda: len(sandbox.bigpanda()) >= 1)
    assert actions_by_key(sandbox) == {dedup_key: ["trigger", "resolve"]}
    assert sandbox.bigpanda(token=TOKEN)[0]["body"]["host"] == "nas1"
    assert relay.terminate() == 0
