"""The crash test: SIGKILL the relay again and again mid-drain; nothing lost, nothing out of order.

Hundreds of events (trigger, acknowledge, resolve for each of many dedup keys,
over two routing keys) are queued; the upstream injects 5xx, 429 and
connection resets by a seeded plan. ``alertwire relay --drain`` runs as a
subprocess and is SIGKILLed each time the upstream has accepted another
``KILL_EVERY`` events (bounded by event counts, not by sleeps), then started
again; the last run drains the outbox and exits 0.

Asserted at the receiving end: every event accepted at least once (none
lost), and for each key the arrivals never go backwards (trigger before
acknowledge before resolve, duplicates only adjacent). Duplicates are
counted and printed: they are the price of at-least-once delivery, one per
event whose 202 was received by a relay killed before it recorded it.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from alertwire import AcknowledgeAlert, ResolveAlert, TriggerAlert
from alertwire.outbox import Outbox
from tests.support.relay_upstream import RANK, Upstream, random_faults

pytestmark = pytest.mark.slow

KEYS = 100  # x 3 events = 300
ROUTING_KEYS = ("R0123456789abcdef0123456789abcde", "Q0123456789abcdef0123456789abcde")
KILLS = 6
KILL_EVERY = 35
SAFETY = 45.0  # a bound on a hang, never an expectation


def start_relay(outbox: str, url: str, log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alertwire.cli.main",
            "relay",
            "--drain",
            "--quiet",
            "--outbox",
            outbox,
            "--pagerduty-url",
            url,
            "--rate-limit",
            "0",
            "--concurrency",
            "8",
            "--max-backoff",
            "0.05",
            "--timeout",
            "1",
            "--lease",
            "1.5",
            "--poll-interval",
            "0.05",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def test_sigkill_mid_drain_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite3")
    with Outbox(path) as outbox:
        for n, routing_key in enumerate(ROUTING_KEYS):
            events: list[Any] = []
            for i in range(n, KEYS, len(ROUTING_KEYS)):
                k = f"key-{i:03d}"
                events += [TriggerAlert(f"p{i}", dedup_key=k), AcknowledgeAlert(k), ResolveAlert(k)]
            outbox.enqueue_many(events, routing_key=routing_key)
    total = KEYS * 3
    upstream = Upstream(random_faults(seed=6), delay=0.003).start()
    kills = 0
    log_path = tmp_path / "relay.log"
    log = log_path.open("ab")
    try:
        while kills < KILLS:
            target = upstream.accepted_count() + KILL_EVERY
            proc = start_relay(path, upstream.url, log)
            deadline = time.monotonic() + SAFETY
            while upstream.accepted_count() < target and proc.poll() is None:
                assert time.monotonic() < deadline, "relay made no progress"
                time.sleep(0.005)
            assert proc.poll() is None, "the relay finished before it could be killed"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        proc = start_relay(path, upstream.url, log)
        proc.wait(timeout=SAFETY)
        assert proc.returncode == 0, log_path.read_text()
    finally:
        log.close()
        upstream.stop()

    accepted = upstream.accepted()
    arrivals = sorted(upstream.arrivals, key=lambda a: a.seq)
    delivered = Counter((a.key, a.action) for a in accepted)
    expected = {(f"key-{i:03d}", action) for i in range(KEYS) for action in RANK}
    assert set(delivered) == expected, "an event was lost"

    # Order: per key, no arrival (accepted or failed) ever goes back to an earlier action.
    history: dict[str, list[int]] = defaultdict(list)
    for a in arrivals:
        history[str(a.key)].append(RANK[str(a.action)])
    out_of_order = sum(
        1 for ranks in history.values() for x, y in itertools.pairwise(ranks) if y < x
    )
    assert out_of_order == 0
    assert upstream.overlapping_keys == 0

    with Outbox(path) as outbox:
        stats = outbox.stats()
    assert (stats.pending, stats.leased, stats.dead, stats.delivered) == (0, 0, 0, total)

    duplicates = sum(n - 1 for n in delivered.values())
    faults = Counter("reset" if a.status is None else a.status for a in arrivals if a.status != 202)
    print(
        f"\ncrash test: {total} events over {KEYS} keys, {kills} SIGKILLs,"
        f" {len(arrivals)} requests ({dict(faults)} injected),"
        f" {len(accepted)} accepted, lost 0, out of order 0, duplicates {duplicates}"
    )
