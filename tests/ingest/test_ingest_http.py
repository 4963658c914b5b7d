"""The ingest endpoint over real HTTP: what is stored, forwarded, refused and reported.

The relay runs in-process (``Relay(..., listen=...)`` in a background thread)
on a free loopback port, in front of the sandbox or a recording upstream;
clients are plain urllib3 requests. Where a failure must be injected from
outside (a full disk), the relay runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings

from alertwire import ConfigurationError, OutboxError, TriggerAlert
from alertwire.ingest import Allowlist, GroupCommitter, IngestConfig, IngestServer, load_allowlist
from alertwire.models.bigpanda import BigPandaAlert
from alertwire.outbox import Enqueued, Outbox
from alertwire.outbox.machine import Machine, NewEvent
from alertwire.protocol.pagerduty import with_dedup_key
from alertwire.relay import Relay
from alertwire.sandbox import Sandbox
from tests.sandbox.test_sandbox_fuzz import bodies, headers, methods, paths
from tests.support.ingest_process import RelayProcess
from tests.support.relay_upstream import Upstream
from tests.support.sandbox_http import KEY, OTHER_KEY, TOKEN, Answer, action, post, request, trigger
from tests.support.waiting import async_wait_for, wait_for

WIRE = ("/v2/enqueue", "/v2/change/enqueue", "/data/v2/alerts")


def stored(path: Path) -> int:
    with Outbox(path) as ob:
        s = ob.stats()
        return s.pending + s.leased + s.delivered + s.dead


class Running:
    def __init__(self, relay: Relay, outbox: Path) -> None:
        self.relay = relay
        self.outbox = outbox
        assert relay.ingest is not None
        self.url: str = relay.ingest.url
        self.server: IngestServer = relay.ingest

    def wait_delivered(self, count: int) -> None:
        def delivered() -> bool:
            with Outbox(self.outbox) as ob:
                return ob.stats().delivered >= count

        wait_for(f"{count} events delivered", delivered)


@pytest.fixture
def start_relay(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Relay] = []

    def start(upstream_url: str, *, outbox: Path | None = None, **config: Any) -> Running:
        path = outbox or tmp_path / "outbox.sqlite3"
        relay = Relay(
            Outbox(path),
            pagerduty_url=upstream_url,
            bigpanda_url=upstream_url,
            rate_limit_per_minute=0,
            poll_interval=0.05,
            listen=IngestConfig(**{"host": "127.0.0.1", "port": 0, **config}),
        )
        relay.start()
        started.append(relay)
        assert relay.listening.wait(30)
        return Running(relay, path)

    yield start
    for relay in started:
        relay.stop(timeout=30)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


# ---------------------------------------------------------------- what is forwarded


def test_forwarded_bytes_are_the_clients_plus_the_assigned_dedup_key(
    start_relay: Callable[..., Running], upstream: Upstream
) -> None:
    relay = start_relay(upstream.url)
    # Odd spacing, key order and escapes, no timestamp: all must survive untouched.
    keyless = (
        '{ "payload" : {"severity":"info","source":"h\\u00e9","summary":"caf\u00e9 \u2603",'
        '"custom_details":{"n":1.50,"z":[true,null]}},\n "event_action":"trigger",'
        f'"routing_key":"{KEY}", "client":"tool"}}'
    ).encode()
    keyed = json.dumps(trigger("k-1")).encode()
    change = json.dumps(
        {"routing_key": KEY, "payload": {"summary": "deployed", "source": "ci"}}
    ).encode()
    answers = [
        post(relay.url + "/v2/enqueue", keyless),
        post(relay.url + "/v2/enqueue", keyed),
        post(relay.url + "/v2/change/enqueue", change),
    ]
    assert [a.status for a in answers] == [202, 202, 202]
    assigned = answers[0].json["dedup_key"]
    assert answers[0].json == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": assigned,
    }
    assert answers[1].json["dedup_key"] == "k-1"
    assert answers[2].json == {"message": "Change event processed", "status": "success"}
    relay.wait_delivered(3)
    raw: dict[str, list[bytes]] = {a.path: [] for a in upstream.accepted()}
    for arrival in upstream.accepted():
        raw[arrival.path].append(arrival.raw)
    # Two dedup keys: the relay keeps order per key, not across keys (they go out concurrently).
    assert sorted(raw["/v2/enqueue"]) == sorted(
        [b'{"dedup_key":"' + assigned.encode() + b'",' + keyless[1:], keyed]
    )
    assert raw["/v2/change/enqueue"] == [change]


def test_bigpanda_single_and_batch_are_answered_201_after_commit_and_delivered(
    start_relay: Callable[..., Running], upstream: Upstream
) -> None:
    relay = start_relay(upstream.url)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    single = {"app_key": "app", "status": "critical", "host": "db1", "check": "disk"}
    batch = {
        "app_key": "app",
        "alerts": [
            {"status": "warning", "host": "db2", "check": "cpu"},
            {"status": "ok", "host": "db2", "check": "cpu"},
        ],
    }
    assert post(relay.url + "/data/v2/alerts", single, headers=auth).status == 201
    answer = post(relay.url + "/data/v2/alerts", batch, headers=auth)
    assert (answer.status, answer.json) == (201, {"status": "created"})
    assert stored(relay.outbox) == 3  # a batch is one row per alert, in order
    relay.wait_delivered(3)
    arrivals = upstream.accepted()
    assert all(a.headers["Authorization"] == f"Bearer {TOKEN}" for a in arrivals)
    # Different alerts (host + check) deliver concurrently; one alert's updates in order.
    assert [a.body["status"] for a in arrivals if a.body["host"] == "db2"] == ["warning", "ok"]
    [db1] = [a for a in arrivals if a.body["host"] == "db1"]
    assert db1.raw == json.dumps(single).encode()


# ---------------------------------------------------------------- bad input

BAD_REQUESTS: list[tuple[str, str, bytes | dict[str, Any] | None, dict[str, str]]] = [
    ("GET", "/v2/enqueue", None, {}),
    ("PUT", "/data/v2/alerts", b"{}", {}),
    ("POST", "/v2/enqueue/", b"{}", {}),
    ("POST", "/nope", json.dumps(trigger()).encode(), {}),
    ("POST", "/v2/enqueue", b"{not json", {}),
    ("POST", "/v2/enqueue", b"[1, 2]", {}),
    ("POST", "/v2/enqueue", b"", {}),
    ("POST", "/v2/enqueue", b'{"a":' * 100 + b"1" + b"}" * 100, {}),
    ("POST", "/v2/enqueue", trigger(custom_details={"x": "y" * 600_000}), {}),
    ("POST", "/v2/enqueue", trigger(key="short"), {}),
    ("POST", "/v2/enqueue", {"routing_key": KEY, "event_action": "trigger"}, {}),
    ("POST", "/v2/enqueue", {"routing_key": KEY, "event_action": "resolve"}, {}),
    ("POST", "/v2/enqueue", trigger(severity="CRITICAL", summary="s" * 1025), {}),
    ("POST", "/v2/change/enqueue", {"routing_key": KEY, "payload": {}}, {}),
    ("POST", "/data/v2/alerts", {"app_key": "a", "status": "ok", "host": "h"}, {}),
    (
        "POST",
        "/data/v2/alerts",
        {"app_key": "a", "status": "bad"},
        {"Authorization": f"Bearer {TOKEN}"},
    ),
    ("POST", "/data/v2/alerts", b"{", {"Authorization": f"Bearer {TOKEN}"}),
]


def test_bad_input_is_answered_as_by_the_sandbox_and_never_stored(
    start_relay: Callable[..., Running], sandbox: Sandbox
) -> None:
    relay = start_relay(sandbox.url)
    for method, path, body, extra in BAD_REQUESTS:
        ours = request(method, relay.url + path, body, headers=extra)
        theirs = request(method, sandbox.url + path, body, headers=extra)
        assert 400 <= ours.status < 500, (method, path, ours)
        assert (ours.status, ours.body) == (theirs.status, theirs.body), (method, path)
    assert stored(relay.outbox) == 0
    assert sandbox.events() == [] and sandbox.bigpanda() == []


def test_refusals_are_logged_at_warning_once_per_interval_without_a_credential(
    start_relay: Callable[..., Running], sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # A tool whose every event is refused once showed only in a counter.
    caplog.set_level(logging.WARNING, logger="alertwire.ingest")
    relay = start_relay(sandbox.url)
    # The second refusal is held back however slowly this machine runs the two posts.
    relay.server._refusals_logged.interval = 3600.0
    bad_severity = trigger("r-1", severity="loud")
    assert post(relay.url + "/v2/enqueue", bad_severity).status == 400
    assert post(relay.url + "/v2/enqueue", bad_severity).status == 400  # held back
    answer = post(relay.url + "/data/v2/alerts", b"{", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status == 400
    assert request("GET", relay.url + "/v2/change/enqueue").status == 405
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "event=ingest_refused" in r.msg]
    assert [level for level, _ in lines] == [logging.WARNING] * 3, lines
    first, second, third = (text for _, text in lines)
    assert "reason=invalid destination=pagerduty status=400 peer=127.0.0.1" in first
    assert "error=\"'payload.severity' is invalid (must be one of" in first
    assert "reason=invalid destination=bigpanda status=400" in second
    assert "error='JSON parse error'" in second
    assert "reason=method destination=pagerduty status=405" in third
    assert not any(KEY in text or TOKEN in text for _, text in lines)
    assert stored(relay.outbox) == 0


@pytest.mark.parametrize("destination", ["pagerduty", "bigpanda"])
def test_an_event_the_relay_would_deliver_to_itself_is_dead_lettered_not_looped(
    start_relay: Callable[..., Running], sandbox: Sandbox, destination: str
) -> None:
    # Its upstream URL being its own --listen address (a shared ALERTWIRE_PAGERDUTY_URL
    # pointing producers at the relay), the relay stored and "delivered" each event to
    # itself over and over (1,139 times in 3 s), and none reached the service.
    relay = start_relay(sandbox.url)
    with Outbox(relay.outbox) as producer:
        if destination == "pagerduty":
            producer.enqueue(
                TriggerAlert("looped", dedup_key="loop-1"), routing_key=KEY, base_url=relay.url
            )
        else:
            producer.enqueue_bigpanda(
                BigPandaAlert("critical", host="h1"),
                token=TOKEN,
                app_key="app",
                base_url=relay.url,
            )

        def buried() -> bool:
            return producer.stats().dead == 1

        wait_for("the looped event to be dead-lettered", buried)
        stats = producer.stats()
        [dead] = producer.dead()
    assert (stats.pending, stats.leased, stats.delivered) == (0, 0, 0)  # stored once, never sent
    assert dead.http_status == 400 and "deliver the event to itself" in dead.error
    assert sandbox.events() == [] and sandbox.bigpanda() == []
    metrics = request("GET", relay.url + "/metrics").body.decode()
    assert f'alertwire_outbox_refused_total{{destination="{destination}",reason="loop"}} 1.0' in (
        metrics
    )


def _counts(paths: list[Path]) -> tuple[int, int, int]:
    """(pending + leased, delivered, dead) over several outboxes."""
    totals = [0, 0, 0]
    for path in paths:
        with Outbox(path) as ob:
            s = ob.stats()
            totals[0] += s.pending + s.leased
            totals[1] += s.delivered
            totals[2] += s.dead
    return totals[0], totals[1], totals[2]


def _ring(
    start_relay: Callable[..., Running], sandbox: Sandbox, tmp: Path, size: int
) -> list[Path]:
    """``size`` relays, each delivering to the next and the last to the first: started as a
    chain ending at the sandbox, then the last is restarted on its port pointed at the first."""
    paths = [tmp / f"relay-{i}.sqlite3" for i in range(size)]
    running = [start_relay(sandbox.url, outbox=paths[-1])]
    for path in reversed(paths[:-1]):
        running.insert(0, start_relay(running[0].url, outbox=path))
    last = running[-1]
    assert last.relay.ingest is not None
    port = last.relay.ingest.port
    last.relay.stop(timeout=30)
    start_relay(running[0].url, outbox=paths[-1], port=port)
    return paths


@pytest.mark.parametrize("size", [2, 3])
def test_relays_pointed_at_each_other_dead_letter_the_event_instead_of_passing_it_round(
    start_relay: Callable[..., Running], sandbox: Sandbox, tmp_path: Path, size: int
) -> None:
    # Each pointed at the next one's --listen address (an environment file shared by
    # the wrong hosts), relays passed every event round for ever, each hop a 202.
    paths = _ring(start_relay, sandbox, tmp_path, size)
    with Outbox(paths[0]) as producer:
        producer.enqueue(TriggerAlert("round and round", dedup_key="ring-1"), routing_key=KEY)

    def buried() -> bool:
        pending, _, dead = _counts(paths)
        return dead == 1 and pending == 0

    wait_for("the ringing event to be dead-lettered", buried)
    (dead,) = [d for path in paths for d in Outbox(path).dead()]
    assert dead.http_status == 400 and "in a ring" in dead.error and dead.dedup_key == "ring-1"
    assert sandbox.events() == []


def test_a_relay_in_front_of_another_is_not_taken_for_a_ring(
    start_relay: Callable[..., Running], sandbox: Sandbox, tmp_path: Path
) -> None:
    central = start_relay(sandbox.url, outbox=tmp_path / "central.sqlite3")
    edge = start_relay(central.url, outbox=tmp_path / "edge.sqlite3")
    with Outbox(edge.outbox) as producer:
        for n in range(3):
            producer.enqueue(TriggerAlert(f"via two relays {n}"), routing_key=KEY)
    central.wait_delivered(3)
    assert _counts([edge.outbox, central.outbox]) == (0, 6, 0)
    assert len(sandbox.events()) == 3
    # The edge learned the central relay's mark from its answers; the central one, whose
    # upstream is the service, learned that nothing lies behind it.
    edge_guard, central_guard = (r.relay.destinations.loop_guard for r in (edge, central))
    assert edge_guard is not None and central_guard is not None
    assert edge_guard.downstream("pagerduty") == {central_guard.mark}
    assert central_guard.downstream("pagerduty") == frozenset()


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(method=methods, path=paths, body=bodies, headers=headers)
def test_fuzz_no_5xx_and_nothing_stored_unless_accepted(
    fuzz_relay: tuple[Running, Sandbox],
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    relay, sandbox = fuzz_relay
    before = stored(relay.outbox)
    ours = request(method, relay.url + path, body or None, headers=headers)
    assert ours.status < 500, (method, path, body[:200], ours.status, ours.body[:300])
    if ours.status not in (201, 202):
        assert stored(relay.outbox) == before, (method, path, body[:200], ours.status)
    if method == "POST" and path in WIRE:
        theirs = request(method, sandbox.url + path, body or None, headers=headers)
        assert ours.status == theirs.status, (path, body[:200], ours.body, theirs.body)
        if ours.status >= 400:
            assert ours.body == theirs.body


@pytest.fixture(scope="module")
def fuzz_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Sandbox]]:
    outbox = tmp_path_factory.mktemp("fuzz") / "outbox.sqlite3"
    with Sandbox() as reference, Sandbox() as upstream_sb:
        relay = Relay(
            Outbox(outbox),
            pagerduty_url=upstream_sb.url,
            bigpanda_url=upstream_sb.url,
            rate_limit_per_minute=0,
            listen=IngestConfig(host="127.0.0.1", port=0),
        )
        relay.start()
        try:
            assert relay.listening.wait(30)
            yield Running(relay, outbox), reference
        finally:
            relay.stop(timeout=30)


# ---------------------------------------------------------------- allow-lists


def test_allowlists_answer_403_store_nothing_and_name_no_key(
    start_relay: Callable[..., Running], sandbox: Sandbox, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# production services\n\n  {KEY}  \n")
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{TOKEN}\n")
    relay = start_relay(
        sandbox.url,
        allow_routing_keys=load_allowlist(keys, routing_keys=True),
        allow_bigpanda_tokens=load_allowlist(tokens, routing_keys=False),
    )
    refused = post(relay.url + "/v2/enqueue", trigger(key=OTHER_KEY))
    assert refused.status == 403
    assert refused.json["status"] == "forbidden"
    assert OTHER_KEY not in refused.body.decode() and KEY not in refused.body.decode()
    other_token = "bp-someone-else-token-000"
    refused = post(
        relay.url + "/data/v2/alerts",
        {"app_key": "a", "status": "ok", "host": "h"},
        headers={"Authorization": f"Bearer {other_token}"},
    )
    assert refused.status == 403 and other_token not in refused.body.decode()
    assert stored(relay.outbox) == 0
    assert post(relay.url + "/v2/enqueue", trigger()).status == 202
    assert (
        post(
            relay.url + "/data/v2/alerts",
            {"app_key": "a", "status": "ok", "host": "h"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).status
        == 201
    )
    assert stored(relay.outbox) == 2
    metrics = request("GET", relay.url + "/metrics").body.decode()
    assert (
        'alertwire_outbox_refused_total{destination="pagerduty",reason="forbidden"} 1.0' in metrics
    )
    assert (
        'alertwire_outbox_refused_total{destination="bigpanda",reason="forbidden"} 1.0' in metrics
    )


def test_allowlist_files_written_with_a_byte_order_mark_allow_their_first_line(
    start_relay: Callable[..., Running], sandbox: Sandbox, tmp_path: Path
) -> None:
    """Windows editors start the file with a byte order mark: it became part of the
    first token, whose alerts were then answered 403 (a routing key: a refused file)."""
    keys = tmp_path / "keys.txt"
    keys.write_bytes(b"\xef\xbb\xbf" + f"{KEY}\r\n".encode())
    tokens = tmp_path / "tokens.txt"
    tokens.write_bytes(b"\xef\xbb\xbf" + f"{TOKEN}\r\n".encode())
    relay = start_relay(
        sandbox.url,
        allow_routing_keys=load_allowlist(keys, routing_keys=True),
        allow_bigpanda_tokens=load_allowlist(tokens, routing_keys=False),
    )
    assert post(relay.url + "/v2/enqueue", trigger()).status == 202
    answer = post(
        relay.url + "/data/v2/alerts",
        {"app_key": "a", "status": "ok", "host": "h"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status == 201
    assert stored(relay.outbox) == 2


def test_allowlist_files_are_checked_without_echoing_their_lines(tmp_path: Path) -> None:
    bad = tmp_path / "keys.txt"
    bad.write_text(f"{KEY}\nnot-a-key-SECRETISH\n")
    with pytest.raises(ConfigurationError, match="line 2") as caught:
        load_allowlist(bad, routing_keys=True)
    assert "SECRETISH" not in str(caught.value)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigurationError, match="holds no routing keys"):
        load_allowlist(empty, routing_keys=True)
    allow = Allowlist.of([KEY], what="routing keys")
    assert KEY not in repr(allow) and len(allow) == 1


# ---------------------------------------------------------------- metrics and health


def test_metrics_count_everything_and_name_no_credential(
    start_relay: Callable[..., Running], sandbox: Sandbox
) -> None:
    sandbox.fail_next(429, retry_after=0)
    relay = start_relay(sandbox.url)
    assert post(relay.url + "/v2/enqueue", trigger("m-1")).status == 202
    assert post(relay.url + "/v2/enqueue", action("resolve", "m-1")).status == 202
    assert post(relay.url + "/v2/enqueue", b"{").status == 400
    assert request("GET", relay.url + "/v2/enqueue").status == 405
    relay.wait_delivered(2)
    # The store says delivered once the outcomes' commit is done; the relay counts them
    # when that commit's answer is back on its event loop, a moment later.
    delivered = 'alertwire_relay_delivered_total{destination="pagerduty"} 2.0'
    wait_for(
        "the relay's counter at 2 deliveries",
        lambda: delivered in request("GET", relay.url + "/metrics").body.decode(),
    )
    answer = request("GET", relay.url + "/metrics")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.body.decode()
    for line in (
        'alertwire_outbox_accepted_total{destination="pagerduty"} 2.0',
        'alertwire_outbox_refused_total{destination="pagerduty",reason="invalid"} 1.0',
        'alertwire_outbox_refused_total{destination="pagerduty",reason="method"} 1.0',
        'alertwire_relay_delivered_total{destination="pagerduty"} 2.0',
        'alertwire_relay_rate_limited_total{destination="pagerduty"} 1.0',
        'alertwire_outbox_events{state="pending"} 0.0',
        'alertwire_outbox_events{state="delivered"} 2.0',
        "alertwire_outbox_oldest_pending_age_seconds 0.0",
    ):
        assert line in text, line
    assert KEY not in text and KEY[-8:] not in text and "m-1" not in text


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr (e2fsprogs)")
def test_read_only_outbox_is_503_with_retry_after_and_healthz_503(
    start_relay: Callable[..., Running], sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "ro" / "outbox.sqlite3"
    relay = start_relay(sandbox.url, outbox=path)
    ok = request("GET", relay.url + "/healthz")
    assert (ok.status, ok.json) == (200, {"status": "ok"})
    assert post(relay.url + "/v2/enqueue", trigger("before")).status == 202
    relay.wait_delivered(1)  # (an outcome that cannot be recorded is re-sent after the lease)
    # The -shm file is memory-mapped: making it immutable would crash SQLite (SIGBUS).
    frozen = [path, Path(f"{path}-wal"), path.parent]
    try:
        for p in frozen:
            subprocess.run(["chattr", "+i", str(p)], check=True)
        health = request("GET", relay.url + "/healthz")
        assert health.status == 503, health
        assert health.headers["retry-after"] == "10"
        assert "cannot store events" in health.json["reason"]
        refused = post(relay.url + "/v2/enqueue", trigger("during"))
        assert refused.status == 503, refused
        assert refused.headers["retry-after"] == "10"
        assert "NOT accepted" in refused.json["message"]
        assert KEY not in refused.body.decode() and str(path) not in refused.body.decode()
    finally:
        for p in reversed(frozen):
            subprocess.run(["chattr", "-i", str(p)], check=False)
    # The fault is gone: the next event is stored, and that commit clears the health check.
    assert post(relay.url + "/v2/enqueue", trigger("after")).status == 202
    assert request("GET", relay.url + "/healthz").status == 200
    relay.wait_delivered(2)
    assert [e["dedup_key"] for e in sandbox.events()] == ["before", "after"]


def test_full_disk_is_503_and_only_answered_events_are_stored(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    relay = RelayProcess(
        tmp_path, outbox=outbox, pagerduty_url=sandbox.url, file_size_limit=400_000
    )
    sandbox.faults(latency_ms=5000)  # nothing is delivered (and purged) meanwhile
    relay.start()
    try:
        statuses: list[int] = []
        last: Answer | None = None
        for n in range(40):
            last = post(
                relay.url + "/v2/enqueue", trigger(f"big-{n}", custom_details={"x": "y" * 60_000})
            )
            statuses.append(last.status)
            if last.status != 202:
                break
        assert last is not None and last.status == 503, statuses
        assert statuses.count(202) >= 1
        # SQLite says SQLITE_FULL or SQLITE_IOERR_WRITE, depending on where the write stopped.
        assert "full" in last.json["message"], last.json
        assert last.headers["retry-after"] == "10"
        health = request("GET", relay.url + "/healthz")
        assert health.status == 503 and "full" in health.json["reason"], health.json
        assert stored(outbox) == statuses.count(202)
    finally:
        relay.kill()
    assert KEY not in relay.output()


# ---------------------------------------------------------------- listening rules


def test_non_loopback_needs_tls(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a loopback address"):
        IngestConfig(host="0.0.0.0").check()
    with pytest.raises(ConfigurationError, match="not a loopback address"):
        Relay(Outbox(tmp_path / "o.sqlite3"), listen="192.0.2.1:8765")
    # allowed: keys are encrypted (and no allow-list, knowingly: tests/ingest/test_ingest_limits.py)
    IngestConfig(host="0.0.0.0", tls=True, allow_any_client=True).check()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alertwire.cli.main",
            "relay",
            "--listen",
            "0.0.0.0:0",
            "--outbox",
            str(tmp_path / "o.sqlite3"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result
    assert "not a loopback address" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- group commit and stop


class _GatedPut:
    """``Outbox.put`` stand-in that blocks until released, recording each batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []
        self.fail: Exception | None = None

    def __call__(self, rows: Sequence[NewEvent]) -> list[Enqueued]:
        self.entered.set()
        self.release.wait(30)
        self.batches.append(len(rows))
        if self.fail is not None:
            raise self.fail
        return [Enqueued(len(self.batches) * 1000 + i, None) for i in range(len(rows))]


def _row() -> NewEvent:
    return Outbox.prepare_pagerduty_raw(json.dumps(trigger("g")).encode())


async def test_submissions_waiting_during_a_commit_share_the_next_one() -> None:
    put = _GatedPut()
    committer = GroupCommitter(put)
    committer.start()
    first = asyncio.create_task(committer.submit([_row()]))
    await asyncio.get_running_loop().run_in_executor(None, put.entered.wait, 30)
    rest = [asyncio.create_task(committer.submit([_row(), _row()])) for _ in range(10)]
    await async_wait_for("the ten submissions queued", lambda: committer.waiting_rows == 20)
    put.release.set()
    results = await asyncio.gather(first, *rest)
    assert put.batches == [1, 20]  # one commit for the ten that waited
    assert committer.commits == 2 and committer.rows == 21
    assert [len(r) for r in results] == [1] + [2] * 10
    assert len({e.id for r in results for e in r}) == 21
    await committer.close()


async def test_a_failed_commit_fails_every_submitter_of_its_batch() -> None:
    put = _GatedPut()
    put.fail = OutboxError("disk full; NOT queued")
    put.release.set()
    committer = GroupCommitter(put)
    committer.start()
    outcomes = await asyncio.gather(
        *(committer.submit([_row()]) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, OutboxError) for o in outcomes)
    assert committer.commits == 0
    await committer.close()


class _GatedStore:
    """A real SQLite store whose enqueue waits for the test: a request held in flight."""

    def __init__(self, path: Path) -> None:
        from alertwire.outbox.sqlite import SQLiteStore

        self._store = SQLiteStore(path)
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def enqueue_many(self, events: Sequence[NewEvent], *, now: float) -> list[int]:
        self.entered.set()
        self.release.wait(30)
        return self._store.enqueue_many(events, now=now)

    def enqueue_many_now(self, events: Sequence[NewEvent], *, now: float) -> list[int] | None:
        """As while another connection holds the lock: the event goes to the writer
        thread (an idle server would otherwise commit it on the loop, not held)."""
        return None


async def test_stop_refuses_new_connections_and_answers_the_one_in_flight(tmp_path: Path) -> None:
    store = _GatedStore(tmp_path / "outbox.sqlite3")
    server = IngestServer(store, IngestConfig(host="127.0.0.1", port=0))
    await server.start()
    url = server.url
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        in_flight = asyncio.create_task(session.post(url + "/v2/enqueue", json=trigger("f-1")))
        assert await loop.run_in_executor(None, store.entered.wait, 30)
        stopping = asyncio.create_task(server.stop())

        async def refused() -> bool:
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            except (ConnectionRefusedError, ConnectionResetError):
                return True
            writer.close()
            return False

        # The listening socket closes first, while the request in flight is held.
        await async_wait_for("new connections refused while stopping", refused)
        assert not stopping.done()
        store.release.set()
        response = await in_flight
        assert response.status == 202
        assert (await response.json())["dedup_key"] == "f-1"
        await stopping
    with Outbox(tmp_path / "outbox.sqlite3") as ob:
        assert ob.stats().pending == 1


def test_sigterm_finishes_the_delivery_in_flight_and_exits_0(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    relay = RelayProcess(tmp_path, outbox=outbox, pagerduty_url=sandbox.url)
    relay.start()
    try:
        sandbox.faults(latency_ms=1000)
        assert post(relay.url + "/v2/enqueue", trigger("t-1")).status == 202

        def in_flight() -> bool:
            with Outbox(outbox) as ob:
                return ob.stats().leased == 1

        wait_for("the event leased for delivery", in_flight)
        assert relay.terminate() == 0
    finally:
        relay.close()
    assert [e["dedup_key"] for e in sandbox.events()] == ["t-1"]
    with Outbox(outbox) as ob:
        assert ob.stats().delivered == 1
    assert "event=ingest_stopped" in relay.output()


def test_an_address_in_use_or_tls_without_listen_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, message in (
            (["--listen", f"127.0.0.1:{port}"], "address already in use"),
            (["--tls"], "only make sense with --listen"),
            (["--listen", "127.0.0.1:0", "--drain"], "exclude each other"),
            (["--listen", "nonsense"], "HOST:PORT"),
        ):
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "alertwire.cli.main",
                    "relay",
                    "--outbox",
                    str(tmp_path / "o.sqlite3"),
                    *args,
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 2, (args, result)
            assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_an_outbox_locked_by_another_process_does_not_hold_back_listening(
    tmp_path: Path, upstream: Upstream
) -> None:
    """Before it listens, the relay meets its outbox once, so that a setting the outbox
    can never take ends it before it says it listens. A lock another process holds
    is not that: the relay listens after a short wait, not after its busy timeout
    (here 120 s, four times the start-up bound), and delivers once the lock is gone."""
    import sqlite3

    outbox = tmp_path / "outbox.sqlite3"
    with Outbox(outbox) as box:
        box.enqueue(TriggerAlert("queued before", dedup_key="locked-1"), routing_key=KEY)
    holder = sqlite3.connect(outbox, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    relay = RelayProcess(
        tmp_path,
        outbox=outbox,
        pagerduty_url=upstream.url,
        env={"ALERTWIRE_OUTBOX_BUSY_TIMEOUT": "120"},
    )
    try:
        relay.start()  # the "listening" line, within STARTUP_TIMEOUT
        holder.execute("ROLLBACK")
        wait_for("the queued event delivered", lambda: len(upstream.accepted()) == 1)
        assert relay.terminate() == 0, relay.output()
    finally:
        holder.close()
        relay.close()


async def test_healthz_before_any_event_creates_the_outbox_and_is_200(tmp_path: Path) -> None:
    """A /healthz that comes first (a supervisor checking right after start) must not
    report "the file cannot be opened" for an outbox nobody has created yet."""
    path = tmp_path / "new" / "outbox.sqlite3"
    server = IngestServer(Outbox(path), IngestConfig(host="127.0.0.1", port=0))
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.url + "/healthz") as response,
        ):
            assert (response.status, await response.json()) == (200, {"status": "ok"})
    finally:
        await server.stop()
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


async def test_healthz_waits_out_a_short_lock_and_names_a_long_one(tmp_path: Path) -> None:
    """A lock another producer holds for a moment is no outage; one held past the
    busy timeout is a 503 that says so (not "cannot be opened").

    The holder creates the file (rollback mode) and holds its write lock, so the
    probe's first open meets the WAL switch, a wait SQLite's busy handler skips."""
    import sqlite3

    from alertwire.outbox.sqlite import SQLiteStore

    path = tmp_path / "outbox.sqlite3"
    store = SQLiteStore(path, busy_timeout=0.3)
    server = IngestServer(Outbox(store=store), IngestConfig(host="127.0.0.1", port=0))
    await server.start()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    loop = asyncio.get_running_loop()
    try:
        async with aiohttp.ClientSession() as session:
            holder.execute("BEGIN IMMEDIATE")
            async with session.get(server.url + "/healthz") as response:
                body = await response.json()
                assert response.status == 503, body
                assert response.headers["Retry-After"] == "10"
                assert "locked past the busy timeout" in body["reason"], body
                assert str(path) not in body["reason"]
            # Held briefly: released once the probe is seen waiting (its debug line).
            waiting = asyncio.Event()

            class Seen(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    if "event=outbox_busy" in record.getMessage():
                        loop.call_soon_threadsafe(waiting.set)

            seen = Seen()
            log = logging.getLogger("alertwire.outbox")
            log.addHandler(seen)
            old_level = log.level
            log.setLevel(logging.DEBUG)
            try:
                probe = asyncio.ensure_future(session.get(server.url + "/healthz"))
                await asyncio.wait_for(waiting.wait(), 30)
                holder.execute("ROLLBACK")
                async with await probe as response:
                    assert (response.status, await response.json()) == (200, {"status": "ok"})
            finally:
                log.removeHandler(seen)
                log.setLevel(old_level)
            # An event meeting a lock held too long: 503 + Retry-After, not stored.
            holder.execute("BEGIN IMMEDIATE")
            async with session.post(server.url + "/v2/enqueue", json=trigger("locked")) as refused:
                answer = await refused.json()
                assert refused.status == 503, answer
                assert refused.headers["Retry-After"] == "10"
                assert "locked past the busy timeout" in answer["message"], answer
                assert "NOT accepted" in answer["message"] and KEY not in str(answer)
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
        await server.stop()
    assert stored(path) == 0  # the refused event was not kept


async def test_each_request_is_parsed_once_and_stored_as_the_routes_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The routes read, validate and key an event once; the outbox stores those parts
    without parsing the body again (one reading, so no two readings can disagree).
    What is stored is what the raw entry point would store for the same bytes."""
    from alertwire import _json

    parses: list[int] = []
    real_loads = _json.loads

    def counting_loads(data: bytes | str) -> Any:
        parses.append(1)
        return real_loads(data)

    path = tmp_path / "outbox.sqlite3"
    server = IngestServer(Outbox(path), IngestConfig(host="127.0.0.1", port=0))
    await server.start()
    keyless = json.dumps(trigger()).encode()
    keyed = json.dumps(trigger("k-1")).encode()
    change = json.dumps({"routing_key": KEY, "payload": {"summary": "d", "source": "ci"}})
    batch = {"app_key": "app", "alerts": [{"status": "ok", "host": "h", "check": "c"}]}
    try:
        async with aiohttp.ClientSession() as session:
            monkeypatch.setattr(_json, "loads", counting_loads)
            answers = []
            for url, data, headers in (
                ("/v2/enqueue", keyless, {}),
                ("/v2/enqueue", keyed, {}),
                ("/v2/change/enqueue", change.encode(), {}),
                (
                    "/data/v2/alerts",
                    json.dumps(batch).encode(),
                    {"Authorization": f"Bearer {TOKEN}"},
                ),
            ):
                async with session.post(server.url + url, data=data, headers=headers) as r:
                    answers.append((r.status, await r.read()))
            monkeypatch.undo()
    finally:
        await server.stop()
    assert [status for status, _ in answers] == [202, 202, 202, 201]
    assert len(parses) == 4  # one per request
    assigned = json.loads(answers[0][1])["dedup_key"]
    with Outbox(path) as ob:
        claimed, _ = Machine(ob.store, rate_limit_per_minute=0).claim(10)
    got = {row.body: row for row in claimed}
    bp_bytes = json.dumps(batch).encode()
    expected = [
        Outbox.prepare_pagerduty_raw(with_dedup_key(keyless, json.loads(keyless), assigned)),
        Outbox.prepare_pagerduty_raw(keyed),
        Outbox.prepare_pagerduty_raw(change.encode(), change=True),
        *Outbox.prepare_bigpanda_raw(bp_bytes, token=TOKEN),
    ]
    assert sorted(got) == sorted(e.body for e in expected)
    for want in expected:
        row = got[want.body]
        assert (row.kind, row.route, row.credential, row.dedup_key, row.base_url) == (
            want.kind,
            want.route,
            want.credential,
            want.dedup_key,
            want.base_url,
        )
        if want.kind != "pagerduty.change":  # a change is its own, random, order key
            assert row.order_key == want.order_key


async def test_an_idle_server_commits_on_its_loop_but_never_waits_there_for_a_lock(
    tmp_path: Path,
) -> None:
    """A lone request is committed on the event loop (no thread hand-over); while
    another process holds the write lock it goes to the writer thread instead,
    which waits for the lock, and the loop keeps serving meanwhile."""
    import sqlite3

    path = tmp_path / "outbox.sqlite3"
    server = IngestServer(Outbox(path), IngestConfig(host="127.0.0.1", port=0))
    await server.start()
    committer = server.committer
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(server.url + "/v2/enqueue", json=trigger("idle")) as first:
                assert first.status == 202
            assert (committer.commits, committer.commits_here) == (1, 1)
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                held = asyncio.create_task(
                    session.post(server.url + "/v2/enqueue", json=trigger("held"))
                )
                await async_wait_for(
                    "the writer waiting for the lock", lambda: committer.writer_busy
                )
                async with (
                    aiohttp.ClientSession() as other,  # the loop is not blocked
                    other.get(server.url + "/nowhere") as missing,
                ):
                    assert missing.status == 404
                assert not held.done()
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            async with await held as second:
                assert second.status == 202
                assert (await second.json())["dedup_key"] == "held"
            assert (committer.commits, committer.commits_here) == (2, 1)
    finally:
        await server.stop()
    with Outbox(path) as ob:
        assert ob.stats().pending == 2
