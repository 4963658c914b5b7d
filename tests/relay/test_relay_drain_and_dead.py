"""No dead letter goes unheard, and ``relay --drain`` always ends.

Real ``alertwire relay`` subprocesses against a loopback upstream
(:mod:`tests.support.relay_upstream`) or a closed loopback port (an upstream that is
down); real SQLite outboxes. The relay's stderr is read line by line, and
every wait is on an observable condition (a log line, a count) bounded by
``SAFETY``, never on a sleep.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from alertwire import AcknowledgeAlert, ResolveAlert, TriggerAlert
from alertwire.outbox import Outbox
from alertwire.outbox.metrics import OutboxMetrics
from alertwire.relay import Relay
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.relay_upstream import OK, Fault, Upstream
from tests.support.waiting import wait_for

SAFETY = 30.0  # seconds: a bound on a hang, never an expectation


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    ob = Outbox(tmp_path / "outbox.sqlite3")
    yield ob
    ob.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: an upstream that is down (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def relay_argv(outbox: Outbox, url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "alertwire.cli.main",
        "relay",
        "--outbox",
        outbox.location,
        "--pagerduty-url",
        url,
        "--rate-limit",
        "0",
        "--poll-interval",
        "0.05",
        *extra,
    ]


def run_relay(outbox: Outbox, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        relay_argv(outbox, url, *extra),
        capture_output=True,
        text=True,
        timeout=SAFETY * 2,
        check=False,
    )
    assert KEY not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " WARNING " in line]


# ---------------------------------------------------------------- the drain bound


def test_drain_with_the_upstream_down_stops_at_its_bound_and_exits_6(
    outbox: Outbox, closed_port: int
) -> None:
    outbox.enqueue_many(
        [TriggerAlert("disk full", dedup_key="k1"), TriggerAlert("cpu", dedup_key="k2")],
        routing_key=KEY,
    )
    done = run_relay(outbox, f"http://127.0.0.1:{closed_port}", "--drain", "--drain-timeout", "1")
    assert done.returncode == 6, done.stderr
    (line,) = [w for w in warnings_of(done.stderr) if "event=drain_incomplete" in w]
    assert "left=2 " in line and "drain_timeout=1 " in line
    stats = outbox.stats()
    assert (stats.pending, stats.leased, stats.dead) == (2, 0, 0)  # all left queued


def test_drain_bound_warning_is_printed_with_quiet(outbox: Outbox, closed_port: int) -> None:
    outbox.enqueue(TriggerAlert("x"), routing_key=KEY)
    done = run_relay(
        outbox, f"http://127.0.0.1:{closed_port}", "--drain", "--drain-timeout", "0.5", "--quiet"
    )
    assert done.returncode == 6
    assert [w for w in warnings_of(done.stderr) if "event=drain_incomplete left=1" in w]
    assert "event=relay_started" not in done.stderr  # --quiet still holds for INFO


def test_library_drain_reports_whether_it_finished(outbox: Outbox, closed_port: int) -> None:
    outbox.enqueue_many([TriggerAlert("a"), TriggerAlert("b")], routing_key=KEY)
    url = f"http://127.0.0.1:{closed_port}"
    report = Relay(outbox, pagerduty_url=url, poll_interval=0.02).run(drain=True, drain_timeout=0.3)
    assert report.incomplete and report.left == 2 and report.dead == 0
    assert outbox.stats().pending == 2


def test_library_drain_that_finishes_is_complete(outbox: Outbox, upstream: Upstream) -> None:
    outbox.enqueue(TriggerAlert("a"), routing_key=KEY)
    report = Relay(outbox, pagerduty_url=upstream.url, rate_limit_per_minute=0).run(
        drain=True, drain_timeout=0
    )
    assert (report.delivered, report.incomplete, report.left) == (1, False, 0)


def test_a_negative_drain_timeout_is_refused_naming_the_option(outbox: Outbox) -> None:
    done = run_relay(outbox, "http://127.0.0.1:9", "--drain", "--drain-timeout", "-1")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "argument --drain-timeout: must be" in line


# ---------------------------------------------------------------- dead letters


def test_a_drain_that_dead_letters_exits_7_with_a_warning_even_quiet(
    outbox: Outbox, upstream: Upstream
) -> None:
    refusal = {"status": "invalid event", "message": "Event object is invalid", "errors": ["no"]}
    upstream.plan = lambda seq, body: (
        Fault(400, body=refusal) if body.get("event_action") == "trigger" else OK
    )
    outbox.enqueue_many(
        [TriggerAlert("bad", dedup_key="k"), AcknowledgeAlert("k")], routing_key=KEY
    )
    done = run_relay(outbox, upstream.url, "--drain", "--quiet")
    assert done.returncode == 7, done.stderr
    (line,) = [w for w in warnings_of(done.stderr) if "event=dead " in w]
    (dead,) = outbox.dead()
    assert f"id={dead.id} kind=pagerduty.alert route=" in line
    assert "reason=rejected tries=1 status=400" in line and "Event object is invalid" in line
    assert outbox.stats().delivered == 1


def test_dead_letters_win_over_the_drain_bound(
    outbox: Outbox, upstream: Upstream, closed_port: int
) -> None:
    """One key refused (400), another's destination down: 7, not 6."""
    upstream.plan = lambda seq, body: Fault(400)
    outbox.enqueue(TriggerAlert("refused"), routing_key=KEY)
    outbox.enqueue(
        TriggerAlert("stuck"), routing_key=KEY, base_url=f"http://127.0.0.1:{closed_port}"
    )
    # The bound is what ends this drain (the stuck event never goes), so the test lasts
    # as long as it; 5 s rather than 1 s because the refused event must be answered
    # before it, and a relay process starting on a loaded machine once took over 1 s.
    done = run_relay(outbox, upstream.url, "--drain", "--drain-timeout", "5", "--quiet")
    assert done.returncode == 7, done.stderr
    assert [w for w in warnings_of(done.stderr) if "event=drain_incomplete left=1" in w]
    assert [w for w in warnings_of(done.stderr) if "event=dead " in w]


def test_max_age_expiry_before_any_try_is_said_and_counted_as_such(
    outbox: Outbox, upstream: Upstream
) -> None:
    outbox.enqueue(TriggerAlert("old news"), routing_key=KEY)
    done = run_relay(outbox, upstream.url, "--drain", "--quiet", "--max-age", "0.001")
    assert done.returncode == 7, done.stderr
    (line,) = [w for w in warnings_of(done.stderr) if "event=dead " in w]
    assert "reason=max_age tries=0 " in line and "expired before delivery" in line
    assert upstream.begun == 0
    (dead,) = outbox.dead()
    assert dead.attempts == 0 and "expired before delivery" in dead.error
    listed = subprocess.run(
        [sys.executable, "-m", "alertwire.cli.main", "queue", "dead", "--outbox", outbox.location],
        capture_output=True,
        text=True,
        timeout=SAFETY,
        check=True,
    ).stdout
    assert "\ttries=0\t" in listed and "expired before delivery" in listed


def test_an_old_resolve_is_still_delivered_where_an_old_trigger_expires(
    outbox: Outbox, upstream: Upstream
) -> None:
    outbox.enqueue(TriggerAlert("old news", dedup_key="page-1"), routing_key=KEY)
    outbox.enqueue(ResolveAlert("page-2"), routing_key=KEY)
    done = run_relay(outbox, upstream.url, "--drain", "--quiet", "--max-age", "0.001")
    assert done.returncode == 7, done.stderr
    (line,) = [w for w in warnings_of(done.stderr) if "event=dead " in w]
    assert "reason=max_age tries=0 " in line
    assert [(a.action, a.key) for a in upstream.accepted()] == [("resolve", "page-2")]
    assert [d.dedup_key for d in outbox.dead()] == ["page-1"]


def test_dead_letters_in_bulk_are_summarised_not_one_line_each(
    outbox: Outbox, upstream: Upstream
) -> None:
    count = 200
    outbox.enqueue_many([TriggerAlert(f"e{i}") for i in range(count)], routing_key=KEY)
    done = run_relay(outbox, upstream.url, "--drain", "--quiet", "--max-age", "0.001")
    assert done.returncode == 7
    lines = [w for w in warnings_of(done.stderr) if "event=dead" in w]
    assert 1 <= len(lines) <= 5, lines
    counts = [re.search(r" count=(\d+) ", w) for w in lines]
    assert sum(int(m.group(1)) if m else 1 for m in counts) == count
    assert "reasons=max_age:" in lines[0] and "first_ids=1,2,3," in lines[0]
    assert "expired_before_delivery=" in lines[0]
    assert outbox.stats().dead == count


def test_dead_letters_are_counted_in_metrics_by_reason(outbox: Outbox, upstream: Upstream) -> None:
    upstream.plan = lambda seq, body: Fault(400)
    outbox.enqueue(TriggerAlert("refused"), routing_key=KEY)
    metrics = OutboxMetrics(outbox.store)
    relay = Relay(outbox, pagerduty_url=upstream.url, rate_limit_per_minute=0, metrics=metrics)
    assert relay.run(drain=True).dead == 1
    outbox.enqueue(TriggerAlert("too old"), routing_key=KEY)
    wait_for("the event to age", lambda: (outbox.stats().oldest_pending_age() or 0) > 0.01)
    relay = Relay(outbox, pagerduty_url=upstream.url, max_age=0.001, metrics=metrics)
    assert relay.run(drain=True).dead == 1
    text = metrics.exposition().decode()
    assert 'alertwire_relay_dead_total{destination="pagerduty",reason="rejected"} 1.0' in text
    assert 'alertwire_relay_dead_total{destination="pagerduty",reason="max_age"} 1.0' in text
    assert KEY not in text


# ---------------------------------------------------------------- stopping


class Lines:
    """A subprocess's stderr, line by line, read in a thread (a blocking read never hangs
    the test; :meth:`wait_for` is bounded)."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + SAFETY
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in {self.seen}") from None
            if line is None:
                raise AssertionError(f"stream ended without {text!r}: {self.seen}")
            self.seen.append(line)
            if text in line:
                return line

    def rest(self) -> str:
        self._thread.join(SAFETY)
        while True:
            line = self._queue.get_nowait()
            if line is None:
                return "".join(self.seen)
            self.seen.append(line)


def test_a_second_sigterm_stops_at_once(outbox: Outbox, upstream: Upstream) -> None:
    upstream.delay = SAFETY * 2  # the send in flight would outlast the test's patience
    outbox.enqueue(TriggerAlert("slow", dedup_key="slow"), routing_key=KEY)
    proc = subprocess.Popen(
        relay_argv(outbox, upstream.url, "--timeout", str(SAFETY * 3), "--lease", "1000"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(proc.stderr)  # type: ignore[arg-type]
        wait_for("the relay's send", lambda: upstream.begun == 1)
        proc.send_signal(signal.SIGTERM)
        first = lines.wait_for("event=stopping")
        assert "in_flight=1" in first and "a second SIGTERM or Ctrl-C stops at once" in first
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=SAFETY) == 0
        stderr = lines.rest()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]
    (line,) = [w for w in warnings_of(stderr) if "event=stopped_at_once" in w]
    assert "abandoned=1" in line
    assert outbox.stats().leased == 1  # left to its lease: sent again later, never lost
    assert KEY not in stderr


def test_a_running_relay_counts_dead_letters_in_its_served_metrics(
    outbox: Outbox, upstream: Upstream
) -> None:
    upstream.plan = lambda seq, body: Fault(400)
    outbox.enqueue(TriggerAlert("refused"), routing_key=KEY)
    proc = subprocess.Popen(
        relay_argv(outbox, upstream.url, "--metrics-listen", "127.0.0.1:0"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(proc.stderr)  # type: ignore[arg-type]
        listening = lines.wait_for("event=metrics_listening")
        address = listening.split("address=", 1)[1].strip()
        lines.wait_for("event=dead ")
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=SAFETY) as answer:
            text = answer.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=SAFETY) == 0
        stderr = lines.rest()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]
    assert 'alertwire_relay_dead_total{destination="pagerduty",reason="rejected"} 1.0' in text
    assert 'alertwire_outbox_events{state="dead"} 1.0' in text
    assert KEY not in text + stderr


# ---------------------------------------------------------------- metrics port


def test_metrics_listen_on_a_busy_port_is_one_line_and_exit_2(outbox: Outbox) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_relay(
            outbox, "http://127.0.0.1:9", "--drain", "--metrics-listen", f"127.0.0.1:{port}"
        )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"alertwire: error: --metrics-listen 127.0.0.1:{port}: cannot listen")


# ---------------------------------------------------------------- queue commands


def queue_cmd(outbox: Outbox, *argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "alertwire.cli.main", "queue", *argv, "--outbox", outbox.location],
        capture_output=True,
        text=True,
        timeout=SAFETY,
        check=False,
    )
    assert "Traceback" not in done.stderr and KEY not in done.stdout + done.stderr
    return done


def dead_letter(outbox: Outbox, upstream: Upstream) -> int:
    upstream.plan = lambda seq, body: Fault(400)
    outbox.enqueue(TriggerAlert("refused"), routing_key=KEY)
    Relay(outbox, pagerduty_url=upstream.url, rate_limit_per_minute=0).run(drain=True)
    (dead,) = outbox.dead()
    return dead.id


def test_queue_status_fail_on_dead(outbox: Outbox, upstream: Upstream) -> None:
    outbox.enqueue(TriggerAlert("waiting"), routing_key=KEY)
    healthy = queue_cmd(outbox, "status", "--fail-on-dead", "--json")
    assert healthy.returncode == 0
    assert json.loads(healthy.stdout)["has_dead_letters"] is False
    upstream.plan = lambda seq, body: Fault(400)
    Relay(outbox, pagerduty_url=upstream.url, rate_limit_per_minute=0).run(drain=True)
    plain = queue_cmd(outbox, "status")
    assert plain.returncode == 0  # without the option, status is only a report
    failing = queue_cmd(outbox, "status", "--fail-on-dead", "--json")
    assert failing.returncode == 7
    data = json.loads(failing.stdout)
    assert data["has_dead_letters"] is True and data["dead"] == 1
    assert "1 dead letter in the outbox" in failing.stderr


def test_queue_retry_of_an_unknown_id_is_exit_2_and_retries_nothing(
    outbox: Outbox, upstream: Upstream
) -> None:
    known = dead_letter(outbox, upstream)
    done = queue_cmd(outbox, "retry", str(known), "999")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "no dead letter with id 999" in line and "nothing was queued again" in line
    assert outbox.stats().dead == 1
    again = queue_cmd(outbox, "retry", str(known))
    assert again.returncode == 0 and "1 dead letter queued again" in again.stdout


def test_queue_retry_leaves_a_superseded_dead_letter_dead_unless_asked_for(
    outbox: Outbox, upstream: Upstream
) -> None:
    """A trigger that died while its resolve went through must not re-open the incident."""
    upstream.plan = lambda seq, body: (
        Fault(400) if body.get("event_action") == "trigger" and body.get("dedup_key") == "k" else OK
    )
    outbox.enqueue_many([TriggerAlert("down", dedup_key="k"), ResolveAlert("k")], routing_key=KEY)
    outbox.enqueue(TriggerAlert("other", dedup_key="other-key"), routing_key=KEY)
    Relay(outbox, pagerduty_url=upstream.url, rate_limit_per_minute=0).run(drain=True)
    stale = next(d.id for d in outbox.dead())
    listed = [json.loads(line) for line in queue_cmd(outbox, "dead", "--json").stdout.splitlines()]
    assert [(d["id"], d["superseded"]) for d in listed] == [(stale, True)]
    assert "\tsuperseded: " in queue_cmd(outbox, "dead").stdout

    named = queue_cmd(outbox, "retry", str(stale))
    assert named.returncode == 2
    (line,) = named.stderr.strip().splitlines()
    assert f"dead letter {stale} is superseded" in line and "--superseded" in line
    every = queue_cmd(outbox, "retry", "--all")
    assert every.returncode == 0 and "0 dead letters queued again" in every.stdout
    assert f"1 superseded dead letter left dead (id {stale})" in every.stderr
    assert outbox.stats().dead == 1

    forced = queue_cmd(outbox, "retry", "--superseded", str(stale))
    assert forced.returncode == 0 and "1 dead letter queued again" in forced.stdout
    assert (outbox.stats().dead, outbox.stats().pending) == (0, 1)


def test_queue_purge_gives_the_space_back(outbox: Outbox, upstream: Upstream) -> None:
    outbox.enqueue_many([TriggerAlert("x" * 1000) for _ in range(2000)], routing_key=KEY)
    Relay(outbox, pagerduty_url=upstream.url, rate_limit_per_minute=0, concurrency=32).run(
        drain=True
    )
    outbox.close()  # checkpoints: the file holds everything before the purge
    path = Path(outbox.location)
    before = path.stat().st_size
    done = queue_cmd(outbox, "purge", "--delivered-before", "0s")
    assert done.returncode == 0 and "2000 delivered events purged" in done.stdout
    wal = path.with_name(path.name + "-wal")
    after = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    assert after < before / 10, (before, after)
