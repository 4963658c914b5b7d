"""Several relays, one PostgreSQL outbox, hosts dying: nothing lost, nothing out of order.

Three ``alertwire relay`` processes share one PostgreSQL outbox (the URL
carries no password: it comes from ``PGPASSFILE``, as in production).
Several hundred events (trigger, acknowledge, resolve for each of many dedup
keys over three routing keys) are queued, part before the relays start and
part while they run, each action of a key in its own producer transaction.
The upstream injects 5xx, 429 and connection resets by a seeded plan. Each
time it has accepted a (random) number more events, a random relay is
SIGKILLed and started again: bounded by event counts, never by sleeps.

Asserted at the receiving end (:mod:`tests.support.relay_upstream` records every
request's start and end per (routing key, dedup key)):

* none lost: every event accepted at least once, and the outbox ends with
  everything delivered, nothing pending, leased or dead;
* in order: per key, no request (accepted or not) ever goes back to an
  earlier action;
* never two relays on one key: no two requests of one key overlapped.

Duplicates (a 202 received by a relay killed before it recorded it, sent
again by whichever relay rescued the lease) are counted and printed.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from alertwire import AcknowledgeAlert, ResolveAlert, TriggerAlert
from alertwire.outbox import Outbox
from tests.support.outbox_backends import drop_schema, fresh_pg_target
from tests.support.relay_upstream import RANK, Upstream, random_faults
from tests.support.services import PostgresCluster
from tests.support.waiting import wait_while_alive

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RELAYS = 3
KEYS = 120  # x 3 events = 360
ROUTING_KEYS = (
    "R0123456789abcdef0123456789abcde",
    "Q0123456789abcdef0123456789abcde",
    "P0123456789abcdef0123456789abcde",
)
KILLS = 8
SAFETY = 60.0  # a bound on a hang, never an expectation


def start_relay(
    url: str, upstream: str, env: dict[str, str], log: IO[bytes]
) -> subprocess.Popen[bytes]:
    # --timeout 2 < --lease 3: a live relay gives up on a send long before its lease ends.
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alertwire.cli.main",
            "relay",
            "--outbox",
            url,
            "--pagerduty-url",
            upstream,
            "--rate-limit",
            "0",
            "--concurrency",
            "8",
            "--max-backoff",
            "0.05",
            "--timeout",
            "2",
            "--lease",
            "3",
            "--poll-interval",
            "0.05",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def lifecycle_batches(keys: range) -> list[list[tuple[str, Any]]]:
    """Three producer transactions per routing key: all triggers, then acks, then resolves."""
    batches: list[list[tuple[str, Any]]] = []
    for make in (
        lambda k, i: TriggerAlert(f"problem {i}", dedup_key=k),
        lambda k, i: AcknowledgeAlert(k),
        lambda k, i: ResolveAlert(k),
    ):
        for n, routing_key in enumerate(ROUTING_KEYS):
            batch = [
                (routing_key, make(f"key-{i:03d}", i)) for i in keys if i % len(ROUTING_KEYS) == n
            ]
            if batch:
                batches.append(batch)
    return batches


def enqueue(outbox: Outbox, batch: list[tuple[str, Any]]) -> None:
    outbox.enqueue_many([event for _, event in batch], routing_key=batch[0][0])


def accepted_at_least(upstream: Upstream, count: int) -> Callable[[], bool]:
    return lambda: upstream.accepted_count() >= count


def test_three_relays_sigkilled_at_random_lose_nothing_and_never_share_a_key(
    postgres_cluster: PostgresCluster, pg_passfile: Path, tmp_path: Path
) -> None:
    rng = random.Random(10)
    url, schema = fresh_pg_target(postgres_cluster)
    env = {**os.environ, "PGPASSFILE": str(pg_passfile)}
    os.environ["PGPASSFILE"] = str(pg_passfile)  # this process enqueues too
    upstream = Upstream(random_faults(seed=10), delay=0.003).start()
    batches = lifecycle_batches(range(KEYS))
    total = KEYS * 3
    logs = [(tmp_path / f"relay-{i}.log").open("ab") for i in range(RELAYS)]
    procs: list[subprocess.Popen[bytes]] = []
    kills = 0
    outbox = Outbox.open(url)
    try:
        first, rest = batches[: len(batches) // 2], batches[len(batches) // 2 :]
        for batch in first:
            enqueue(outbox, batch)
        procs = [start_relay(url, upstream.url, env, logs[i]) for i in range(RELAYS)]
        while kills < KILLS:
            target = upstream.accepted_count() + rng.randint(15, 40)
            wait_while_alive(
                "deliveries", accepted_at_least(upstream, target), procs, timeout=SAFETY
            )
            victim = rng.randrange(RELAYS)
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            kills += 1
            procs[victim] = start_relay(url, upstream.url, env, logs[victim])
            if rest:  # producers keep going while relays die
                enqueue(outbox, rest.pop(0))
        for batch in rest:
            enqueue(outbox, batch)

        def done() -> bool:
            stats = outbox.stats()
            return stats.delivered + stats.dead == total and stats.pending + stats.leased == 0

        wait_while_alive("the outbox to drain", done, procs, timeout=SAFETY)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=SAFETY) == 0
        stats = outbox.stats()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
        outbox.close()
        upstream.stop()
        os.environ.pop("PGPASSFILE", None)
        drop_schema(postgres_cluster, schema)

    assert (stats.pending, stats.leased, stats.dead, stats.delivered) == (0, 0, 0, total)
    accepted = upstream.accepted()
    arrivals = sorted(upstream.arrivals, key=lambda a: a.seq)
    delivered = Counter((a.body.get("routing_key"), a.key, a.action) for a in accepted)
    expected = {
        (ROUTING_KEYS[i % len(ROUTING_KEYS)], f"key-{i:03d}", action)
        for i in range(KEYS)
        for action in RANK
    }
    assert set(delivered) == expected, "an event was lost"

    history: dict[tuple[Any, Any], list[int]] = defaultdict(list)
    for a in arrivals:
        history[(a.body.get("routing_key"), a.key)].append(RANK[str(a.action)])
    out_of_order = sum(
        1 for ranks in history.values() for x, y in itertools.pairwise(ranks) if y < x
    )
    assert out_of_order == 0
    assert upstream.overlapping_keys == 0, "two requests of one key were in flight at once"

    duplicates = sum(n - 1 for n in delivered.values())
    faults = Counter("reset" if a.status is None else a.status for a in arrivals if a.status != 202)
    per_relay = [
        (tmp_path / f"relay-{i}.log").read_text(errors="replace").count("event=delivered ")
        for i in range(RELAYS)
    ]
    print(
        f"\nmulti-relay crash test: {RELAYS} relays on PostgreSQL, {total} events over"
        f" {KEYS} keys, {kills} SIGKILLs, {len(arrivals)} requests ({dict(faults)} injected),"
        f" {len(accepted)} accepted; lost 0, out of order 0, overlapping keys 0,"
        f" duplicates {duplicates}; delivered per relay slot {per_relay}"
    )
