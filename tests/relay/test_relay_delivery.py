"""The relay against a real HTTP server on loopback: order, dead letters, outages,
two relays on one outbox, stopping, logs, metrics, and the CLI around it.

The upstream is :mod:`tests.support.relay_upstream` (records arrival order, injects
faults, watches for a key in flight twice). Waits are bounded by event
counts with a generous safety deadline; nothing asserts on time.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alertwire import AcknowledgeAlert, OutboxError, ResolveAlert, RetryPolicy, TriggerAlert
from alertwire.cli.main import main as cli_main
from alertwire.models.bigpanda import BigPandaAlert
from alertwire.outbox import Outbox
from alertwire.outbox.metrics import OutboxMetrics
from alertwire.relay import MetricsEndpoint, Relay
from tests.support.keys import BIGPANDA_TOKEN as TOKEN
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.relay_upstream import OK, Arrival, Fault, Upstream
from tests.support.waiting import wait_for

KEY2 = "Q0123456789abcdef0123456789abcde"
ACTIONS = ("trigger", "acknowledge", "resolve")
SAFETY = 30.0  # seconds: a bound on a hang, never an expectation


@pytest.fixture(autouse=True)
def plain_logging() -> Iterator[None]:
    """CLI tests leave handlers on the ``alertwire`` logger bound to their captured
    stderr; the relay's lines must reach caplog here, not a closed stream."""
    logger = logging.getLogger("alertwire")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers, logger.propagate = [], True
    yield
    logger.handlers, logger.propagate, logger.level = saved[0], saved[1], saved[2]


def relay(outbox: Outbox, upstream: Upstream, **kw: Any) -> Relay:
    kw.setdefault("rate_limit_per_minute", 0)
    kw.setdefault("poll_interval", 0.02)
    kw.setdefault("concurrency", 8)
    return Relay(outbox, pagerduty_url=upstream.url, bigpanda_url=upstream.url, **kw)


def enqueue_lifecycles(outbox: Outbox, keys: int, routing_key: str = KEY) -> None:
    events: list[Any] = []
    for i in range(keys):
        k = f"key-{i:03d}"
        events += [TriggerAlert(f"problem {i}", dedup_key=k), AcknowledgeAlert(k), ResolveAlert(k)]
    outbox.enqueue_many(events, routing_key=routing_key)


def per_key(arrivals: list[Arrival]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = defaultdict(list)
    for a in sorted(arrivals, key=lambda a: a.seq):
        assert a.key is not None and a.action is not None
        seen[a.key].append(a.action)
    return seen


def test_every_key_in_order_and_keys_concurrently(outbox: Outbox, upstream: Upstream) -> None:
    upstream.delay = 0.01
    enqueue_lifecycles(outbox, 20)
    report = relay(outbox, upstream).run(drain=True)
    assert report.delivered == 60 and report.dead == 0
    assert per_key(upstream.accepted()) == {f"key-{i:03d}": list(ACTIONS) for i in range(20)}
    assert upstream.max_inflight > 1  # different keys really went at once
    assert upstream.overlapping_keys == 0
    stats = outbox.stats()
    assert (stats.pending, stats.leased, stats.delivered) == (0, 0, 60)


def test_400_dead_letters_with_the_service_text_and_the_key_moves_on(
    outbox: Outbox, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    refusal = {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["'payload.source' is missing or blank"],
    }
    upstream.plan = lambda seq, body: (
        Fault(400, body=refusal) if body.get("event_action") == "trigger" else OK
    )
    enqueue_lifecycles(outbox, 1)
    report = relay(outbox, upstream).run(drain=True)
    assert (report.delivered, report.dead) == (2, 1)
    (dead,) = outbox.dead()
    assert dead.http_status == 400 and "'payload.source' is missing or blank" in dead.error

    path = outbox.location
    assert cli_main(["queue", "dead", "--outbox", path]) == 0
    listed = capsys.readouterr().out
    assert "'payload.source' is missing or blank" in listed and KEY not in listed
    assert cli_main(["queue", "status", "--json", "--outbox", path]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["pending"], status["delivered"], status["dead"]) == (0, 2, 1)
    # Its key's acknowledge and resolve went through after it: retried, the trigger would
    # re-open the incident, so only --superseded queues it.
    assert cli_main(["queue", "retry", "--all", "--outbox", path]) == 0
    said = capsys.readouterr()
    assert "0 dead letters queued again" in said.out
    assert f"1 superseded dead letter left dead (id {dead.id})" in said.err
    assert cli_main(["queue", "retry", "--all", "--superseded", "--outbox", path]) == 0
    assert "1 dead letter queued again" in capsys.readouterr().out

    upstream.plan = lambda seq, body: OK
    assert relay(outbox, upstream).run(drain=True).delivered == 1
    assert outbox.stats().dead == 0
    assert cli_main(["queue", "purge", "--delivered-before", "0s", "--outbox", path]) == 0
    assert "3 delivered events purged" in capsys.readouterr().out


def test_429_and_5xx_and_resets_are_retried_and_counted(outbox: Outbox, upstream: Upstream) -> None:
    faults = {1: Fault(429, retry_after=0), 2: Fault(503), 3: Fault(reset=True)}
    upstream.plan = lambda seq, body: faults.get(seq, OK)
    enqueue_lifecycles(outbox, 3)
    metrics = OutboxMetrics(outbox.store)
    report = relay(outbox, upstream, metrics=metrics, concurrency=1).run(drain=True)
    assert (report.delivered, report.retried, report.dead) == (9, 3, 0)
    assert per_key(upstream.accepted()) == {f"key-{i:03d}": list(ACTIONS) for i in range(3)}
    text = metrics.exposition().decode()
    assert 'alertwire_relay_rate_limited_total{destination="pagerduty"} 1.0' in text
    assert 'alertwire_relay_delivered_total{destination="pagerduty"} 9.0' in text
    assert 'alertwire_outbox_events{state="delivered"} 9.0' in text
    assert KEY not in text


@pytest.mark.usefixtures("real_retry_delays")
def test_outage_then_recovery_delivers_everything(outbox: Outbox, upstream: Upstream) -> None:
    port = upstream.port
    upstream.stop()  # the endpoint is down
    enqueue_lifecycles(outbox, 10)
    r = relay(
        outbox,
        upstream,
        retry=RetryPolicy(max_attempts=1_000_000, initial_backoff=0.02, max_backoff=0.05),
    )
    r.start()
    try:
        wait_for("failed attempts during the outage", lambda: r._delivery.counts["retried"] >= 20)
        assert outbox.stats().delivered == 0
        upstream.port = port
        upstream.start()  # back, on the same address
        wait_for("delivery after the outage", lambda: outbox.stats().delivered == 30)
    finally:
        report = r.stop(timeout=SAFETY)
    assert report is not None and report.dead == 0
    assert per_key(upstream.accepted()) == {f"key-{i:03d}": list(ACTIONS) for i in range(10)}


def test_two_relays_never_send_one_event_or_key_at_once(outbox: Outbox, upstream: Upstream) -> None:
    upstream.delay = 0.02  # widen the window in which an overlap would show
    enqueue_lifecycles(outbox, 15, KEY)
    enqueue_lifecycles(outbox, 15, KEY2)
    relays = [relay(outbox, upstream, concurrency=6) for _ in range(2)]
    threads = [threading.Thread(target=r.run, kwargs={"drain": True}) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SAFETY)
    assert not any(t.is_alive() for t in threads)
    reports = [r.report for r in relays]
    assert all(rep is not None for rep in reports)
    assert upstream.overlapping_events == 0 and upstream.overlapping_keys == 0
    # Each event delivered by exactly one relay: no lease expired, so no duplicate.
    assert sum(rep.delivered for rep in reports if rep) == 90 == len(upstream.accepted())
    print(f"\ntwo relays: {[rep.delivered for rep in reports if rep]} events each")


def test_stop_finishes_the_send_in_flight(outbox: Outbox, upstream: Upstream) -> None:
    upstream.delay = 0.5
    outbox.enqueue(TriggerAlert("slow", dedup_key="slow"), routing_key=KEY)
    r = relay(outbox, upstream)
    r.start()
    wait_for("the send to start", lambda: upstream.begun == 1)
    report = r.stop(timeout=SAFETY)
    assert report is not None and report.delivered == 1
    stats = outbox.stats()
    assert (stats.leased, stats.delivered) == (0, 1)


def test_a_relay_stopped_once_delivers_in_its_next_runs(outbox: Outbox, upstream: Upstream) -> None:
    """A stop request is for one run: the run after it (in a thread or in the
    foreground) delivers, and its report says so, not "drained" with events pending."""
    r = relay(outbox, upstream)
    r.start()
    r.stop(timeout=SAFETY)
    outbox.enqueue(TriggerAlert("after a restart", dedup_key="k1"), routing_key=KEY)
    report = r.run(drain=True, drain_timeout=SAFETY)
    assert (report.delivered, report.incomplete, report.left) == (1, False, 0)
    r.start()
    outbox.enqueue(TriggerAlert("in a thread again", dedup_key="k2"), routing_key=KEY)
    wait_for("the second event to arrive", lambda: len(upstream.accepted()) == 2)
    assert r.stop(timeout=SAFETY) is not None
    assert outbox.stats().delivered == 2


def test_a_relay_runs_once_at_a_time(outbox: Outbox, upstream: Upstream) -> None:
    """A second run beside the first shared its delivery loop's state and its leases."""
    r = relay(outbox, upstream)
    r.start()  # claimed in this call: no waiting for its thread to reach its loop
    with pytest.raises(RuntimeError, match="already running"):
        r.run(drain=True, drain_timeout=SAFETY)
    with pytest.raises(RuntimeError, match="already running"):
        r.start()
    outbox.enqueue(TriggerAlert("still delivered"), routing_key=KEY)
    wait_for("the event to arrive", lambda: len(upstream.accepted()) == 1)
    assert r.stop(timeout=SAFETY) is not None


def test_a_run_that_fails_as_it_starts_leaves_the_relay_runnable(
    outbox: Outbox, upstream: Upstream
) -> None:
    """Signal handlers outside the main thread fail before the first send; that run's
    claim is released, so the next run delivers instead of "already running"."""
    import asyncio

    r = relay(outbox, upstream)
    failed: list[BaseException] = []

    def outside_the_main_thread() -> None:
        try:
            asyncio.run(r.run_async(drain=True, handle_signals=True))
        except RuntimeError as exc:
            failed.append(exc)

    thread = threading.Thread(target=outside_the_main_thread)
    thread.start()
    thread.join(SAFETY)
    assert [type(exc) for exc in failed] == [RuntimeError], failed
    assert "already running" not in str(failed[0])
    outbox.enqueue(TriggerAlert("after the failed start", dedup_key="k1"), routing_key=KEY)
    assert r.run(drain=True, drain_timeout=SAFETY).delivered == 1


def test_a_listening_relay_run_again_does_not_show_its_last_endpoint(
    outbox: Outbox, upstream: Upstream
) -> None:
    """``listening`` and ``ingest`` are the current run's: after start() again they
    held the stopped endpoint (its port closed) until the new one listened."""
    r = relay(outbox, upstream, listen="127.0.0.1:0")
    r.start()
    assert r.listening.wait(SAFETY)
    first = r.ingest
    assert first is not None
    r.stop(timeout=SAFETY)
    r.start()
    try:
        assert r.ingest is not first
        assert r.listening.wait(SAFETY)
        assert r.ingest is not None and r.ingest is not first
        with urllib.request.urlopen(r.ingest.url + "/healthz", timeout=SAFETY) as answer:
            assert answer.status == 200
    finally:
        r.stop(timeout=SAFETY)


def test_a_relay_stopped_while_it_waits_for_its_store_never_listens(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop (SIGTERM) that comes while a listening relay waits for its store's first
    answer (here a lock another connection holds) ends the run without opening the
    endpoint: it opened, said "listening", and closed again at once."""
    import sqlite3

    # Longer than the relay's wait for its store (2 s), shorter than SAFETY: the relay's
    # own call gives up by itself, so stop() returns with the lock still held here.
    monkeypatch.setenv("ALERTWIRE_OUTBOX_BUSY_TIMEOUT", "5")
    with Outbox(tmp_path / "outbox.sqlite3") as box:
        box.stats()
        holder = sqlite3.connect(tmp_path / "outbox.sqlite3", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            r = relay(box, upstream, listen="127.0.0.1:0")
            r.start()
            r.stop(timeout=SAFETY)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert r.ingest is None


def test_stopping_an_idle_relay_leaves_no_request_for_its_next_run(
    outbox: Outbox, upstream: Upstream
) -> None:
    r = relay(outbox, upstream)
    assert r.stop() is None  # nothing ran, nothing to stop
    outbox.enqueue(TriggerAlert("x"), routing_key=KEY)
    assert r.run(drain=True, drain_timeout=SAFETY).delivered == 1
    r.stop()  # after a run that ended by itself
    outbox.enqueue(TriggerAlert("y"), routing_key=KEY)
    assert r.run(drain=True, drain_timeout=SAFETY).delivered == 1
    assert outbox.stats().pending == 0


def test_each_run_reports_what_it_did_not_the_runs_before(
    outbox: Outbox, upstream: Upstream
) -> None:
    """A service draining in a loop checks ``report.dead`` each time: a dead letter of
    an earlier run must not be reported again by every later one."""
    upstream.plan = lambda seq, body: Fault(400) if body.get("dedup_key") == "bad" else OK
    outbox.enqueue(TriggerAlert("refused", dedup_key="bad"), routing_key=KEY)
    r = relay(outbox, upstream)
    first = r.run(drain=True, drain_timeout=SAFETY)
    assert (first.delivered, first.dead) == (0, 1)
    outbox.enqueue(TriggerAlert("fine", dedup_key="good"), routing_key=KEY)
    second = r.run(drain=True, drain_timeout=SAFETY)
    assert (second.delivered, second.dead, second.retried) == (1, 0, 0)


def test_a_relay_thread_that_fails_says_so_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A service calls start() and may never call stop(): the failure that ends the
    thread is logged as it happens and its health check stops answering healthy."""
    (tmp_path / "a-directory").mkdir()
    r = Relay(str(tmp_path / "a-directory"), poll_interval=0.02)
    with caplog.at_level(logging.ERROR, logger="alertwire.relay"):
        r.start()
        wait_for(
            "the failure to be logged",
            lambda: [rec for rec in caplog.records if "event=relay_failed" in rec.getMessage()],
        )
    (record,) = [rec for rec in caplog.records if "event=relay_failed" in rec.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "error=OutboxError" in record.getMessage()
    assert r.health() == "the relay stopped on an error (OutboxError); see its log"
    with pytest.raises(OutboxError, match="is a directory"):
        r.stop(timeout=SAFETY)
    assert r.stop() is None  # said once: a later stop() does not raise it again


def test_bigpanda_alerts_go_with_the_bearer_token(outbox: Outbox, upstream: Upstream) -> None:
    outbox.enqueue_bigpanda_many(
        [
            BigPandaAlert("critical", host="db1", check="disk"),
            BigPandaAlert("ok", host="db1", check="disk"),
        ],
        token=TOKEN,
        app_key="app1",
    )
    report = relay(outbox, upstream).run(drain=True)
    assert report.delivered == 2
    arrivals = sorted(upstream.accepted(), key=lambda a: a.seq)
    assert [a.path for a in arrivals] == ["/data/v2/alerts"] * 2
    assert [a.body["status"] for a in arrivals] == ["critical", "ok"]
    assert arrivals[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert arrivals[0].body["app_key"] == "app1"


def test_log_lines_are_structured_and_never_carry_keys(
    outbox: Outbox, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.plan = lambda seq, body: Fault(503) if seq == 1 else OK
    outbox.enqueue(TriggerAlert("x", dedup_key="k"), routing_key=KEY)
    outbox.enqueue_bigpanda(BigPandaAlert("ok", host="h"), token=TOKEN, app_key="app1")
    with caplog.at_level(logging.INFO, logger="alertwire"):
        relay(outbox, upstream).run(drain=True)
    text = caplog.text
    assert "event=delivered" in text and "event=attempt_failed" in text
    assert KEY not in text and TOKEN not in text


def test_metrics_are_served_over_http(outbox: Outbox) -> None:
    outbox.enqueue(TriggerAlert("x"), routing_key=KEY)
    metrics = OutboxMetrics(outbox.store)
    endpoint = MetricsEndpoint(metrics)
    port = endpoint.serve("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        endpoint.close()
    assert 'alertwire_outbox_events{state="pending"} 1.0' in text
    assert "alertwire_outbox_oldest_pending_age_seconds" in text
    assert KEY not in text


def test_metrics_endpoint_closes_a_connection_whose_request_never_comes(
    outbox: Outbox, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Before, a half-sent request held its connection (and a thread) for good; then it
    # was closed, but socketserver printed a TimeoutError traceback on stderr for it.
    endpoint = MetricsEndpoint(OutboxMetrics(outbox.store), read_timeout=0.2)
    port = endpoint.serve("127.0.0.1", 0)
    try:
        with (
            caplog.at_level("WARNING", logger="alertwire.relay"),
            socket.create_connection(("127.0.0.1", port), timeout=30) as stalled,
        ):
            stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # no blank line
            assert stalled.recv(4096) == b""  # closed by the server, not by our timeout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.status == 200
    finally:
        endpoint.close()
    assert "Traceback" not in capsys.readouterr().err
    assert [r.getMessage() for r in caplog.records] == [
        "event=metrics_connection_dropped error=TimeoutError peer=127.0.0.1"
    ]


def scrape(port: int) -> int:
    """The status of one ``GET /metrics``; 0 when the connection was cut instead."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code
    except (ConnectionError, http.client.HTTPException):
        return 0


def answer_to_silence(port: int) -> bytes:
    """What the server says to a connection that sends nothing, until it closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        return received


def test_metrics_endpoint_refuses_connections_beyond_its_cap_and_recovers(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Each connection holds a thread; a flood of silent clients must not start
    threads without bound, and a scraper gets in again once they leave."""
    endpoint = MetricsEndpoint(OutboxMetrics(outbox.store), read_timeout=60, max_connections=2)
    port = endpoint.serve("127.0.0.1", 0)
    try:
        with caplog.at_level("WARNING", logger="alertwire.relay"):
            silent = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(2)]
            try:
                # Connections are accepted in order, each silent one taking a thread
                # (and a slot) as it is; so the third is refused, at once.
                assert answer_to_silence(port).startswith(b"HTTP/1.0 503 ")
                assert answer_to_silence(port).startswith(b"HTTP/1.0 503 ")
            finally:
                for sock in silent:
                    sock.close()
            wait_for("a slot free again", lambda: scrape(port) == 200)
    finally:
        endpoint.close()
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    # The first refusal is said at once; the rest within 10 s only as a count on the next line.
    assert refusals[0] == "event=metrics_connection_refused reason=too_many_connections limit=2"
    assert all(line.startswith(refusals[0] + " suppressed=") for line in refusals[1:])


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("max_connections", 0),
        ("max_connections", True),
        ("max_connections", "64"),
        ("read_timeout", 0),
        ("read_timeout", float("nan")),
        ("read_timeout", float("inf")),
        ("read_timeout", "10"),
    ],
)
def test_metrics_endpoint_settings_are_checked_by_name(
    outbox: Outbox, setting: str, value: object
) -> None:
    """A cap of 0 would answer every /healthz 503: a supervisor would restart a healthy relay."""
    from alertwire import ConfigurationError

    with pytest.raises(ConfigurationError, match=setting):
        MetricsEndpoint(OutboxMetrics(outbox.store), **{setting: value})  # type: ignore[arg-type]


def test_relay_refuses_a_lease_shorter_than_the_timeout(outbox: Outbox) -> None:
    from alertwire import ConfigurationError

    with pytest.raises(ConfigurationError, match="lease"):
        Relay(outbox, lease_seconds=5, timeout=10)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("concurrency", "16"),
        ("concurrency", 2.5),
        ("timeout", "10"),
        ("timeout", None),
        ("poll_interval", float("nan")),
        ("lease_seconds", float("nan")),
        ("max_age", -1),
        ("resolve_max_age", float("inf")),
        ("max_backoff", True),
        ("rate_limit_per_minute", "120"),
    ],
)
def test_relay_settings_are_refused_by_name(outbox: Outbox, setting: str, value: Any) -> None:
    """A string failed with a bare TypeError, a NaN lease or poll interval was taken,
    and a negative max_age was refused as 'max_elapsed', the retry policy's name."""
    from alertwire import ConfigurationError

    with pytest.raises(ConfigurationError, match=f"^{setting} must be "):
        Relay(outbox, **{setting: value})


def test_a_drain_timeout_that_is_not_a_number_is_refused_by_name(outbox: Outbox) -> None:
    from alertwire import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"^drain_timeout must be"):
        Relay(outbox).run(drain=True, drain_timeout="5")  # type: ignore[arg-type]


def test_sigterm_finishes_in_flight_then_exits_0(outbox: Outbox, upstream: Upstream) -> None:
    upstream.delay = 0.5
    outbox.enqueue(TriggerAlert("slow", dedup_key="slow"), routing_key=KEY)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alertwire.cli.main",
            "relay",
            "--outbox",
            outbox.location,
            "--pagerduty-url",
            upstream.url,
            "--rate-limit",
            "0",
            "--poll-interval",
            "0.05",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("the relay's first send", lambda: upstream.begun == 1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=SAFETY)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    stats = outbox.stats()
    assert (stats.leased, stats.delivered) == (0, 1)
    assert "event=relay_stopped delivered=1" in stderr
    assert KEY not in stderr


def test_every_queue_and_relay_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["relay"],
        ["queue"],
        ["queue", "status"],
        ["queue", "dead"],
        ["queue", "retry"],
        ["queue", "purge"],
    ):
        with pytest.raises(SystemExit) as exited:
            cli_main([*argv, "--help"])
        assert exited.value.code == 0
        assert "exit codes" in capsys.readouterr().out


def test_queue_status_plain_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_path = str(tmp_path / "o.sqlite3")
    os.environ["ALERTWIRE_OUTBOX"] = env_path
    try:
        with Outbox.open() as ob:
            ob.enqueue(TriggerAlert("x"), routing_key=KEY)
        assert cli_main(["queue", "status"]) == 0
    finally:
        del os.environ["ALERTWIRE_OUTBOX"]
    out = capsys.readouterr().out
    assert "pending:   1" in out and env_path in out


class _CrashingTransport:
    """A transport with a bug: raises something that is not a delivery answer."""

    async def send(self, request: Any, *, timeout: float) -> Any:
        raise RuntimeError("bug in a transport")

    async def aclose(self) -> None:
        return None


def test_a_crashing_send_is_logged_and_the_event_is_not_lost(
    outbox: Outbox, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    outbox.enqueue(TriggerAlert("x", dedup_key="k"), routing_key=KEY)
    broken = relay(outbox, upstream, http_client=_CrashingTransport(), lease_seconds=1.5, timeout=1)
    broken.start()
    wait_for("the crash to be logged", lambda: "event=send_crashed" in caplog.text)
    broken.stop(timeout=SAFETY)
    assert outbox.stats().leased == 1  # nothing recorded: the lease will lapse
    report = relay(outbox, upstream, lease_seconds=1.5, timeout=1).run(drain=True)
    assert report.delivered == 1 and [a.key for a in upstream.accepted()] == ["k"]
