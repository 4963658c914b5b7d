"""Stress: a relay with its ingest endpoint and many producers of every kind on ONE outbox.

What users do at once, in each round: library producers in processes of
their own and in threads of this one, ``alertwire send --queue -`` processes,
and HTTP clients of the relay's ingest endpoint, all writing while the relay
claims and records deliveries to the sandbox. The first and last rounds use
a NEW outbox file (producers and the relay create it together, released at
the same instant by one barrier); the middle round reuses the first round's
file, which already holds delivered rows.

Promise checked: **0 refusals** (no producer is ever told "not stored": no
OutboxError, no CLI exit code other than 0, no HTTP answer other than 202)
and every accepted event arrives at the sandbox in order per dedup key
(trigger, acknowledge, resolve; a repeat is allowed only right after
itself: at-least-once). Bounded by event counts: each producer owns its
keys and sends each key's three events in order; the test waits (bounded
by a guard, never by a sleep it relies on) until the sandbox has them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import urllib3

from alertwire import AcknowledgeAlert, OutboxError, ResolveAlert, TriggerAlert
from alertwire.outbox import Outbox
from alertwire.sandbox import Sandbox
from tests.support.ingest_process import RelayProcess
from tests.support.waiting import wait_while_alive

pytestmark = pytest.mark.slow

KEY = "0123456789abcdef0123456789STRESS"
STEPS = ("trigger", "acknowledge", "resolve")
#: (producer kind, how many, keys each): x 3 events per key.
PRODUCERS = {"process": 8, "cli": 2, "thread": 6, "ingest": 6}
KEYS_EACH = {"process": 5, "cli": 8, "thread": 5, "ingest": 5}
ROUNDS = ("new", "existing", "new", "existing")
GUARD = 60.0  # seconds: a bound on a hang, never an expectation

_PROCESS_PRODUCER = textwrap.dedent(
    """
    import os, sys
    from alertwire import AcknowledgeAlert, OutboxError, ResolveAlert, TriggerAlert
    path, go, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    keys = sys.argv[4:]
    from alertwire.outbox import Outbox
    print("ready", flush=True)
    os.read(go, 1)
    try:
        with Outbox(path) as ob:
            for k in keys:
                ob.enqueue(TriggerAlert(f"{k} down", dedup_key=k, source="stress"), routing_key=key)
                ob.enqueue(AcknowledgeAlert(k), routing_key=key)
                ob.enqueue(ResolveAlert(k), routing_key=key)
    except OutboxError as exc:
        print(f"REFUSED {exc.retryable} {exc}", flush=True)
        sys.exit(1)
    print("ok", flush=True)
    """
)


def lines_for(keys: list[str]) -> bytes:
    out = []
    for k in keys:
        out.append({"type": "trigger", "summary": f"{k} down", "dedup_key": k, "source": "stress"})
        out.append({"type": "acknowledge", "dedup_key": k})
        out.append({"type": "resolve", "dedup_key": k})
    return b"".join(json.dumps(x).encode() + b"\n" for x in out)


def wire(key: str, step: str) -> bytes:
    body: dict[str, Any] = {"routing_key": KEY, "event_action": step, "dedup_key": key}
    if step == "trigger":
        body["payload"] = {"summary": f"{key} down", "source": "stress", "severity": "error"}
    return json.dumps(body).encode()


class Refusals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[str] = []

    def add(self, text: str) -> None:
        with self.lock:
            self.items.append(text)


def run_round(
    tag: str, outbox: Path, sandbox: Sandbox, workdir: Path, refusals: Refusals
) -> list[str]:
    """One round; returns every dedup key it sent (each with its three events)."""
    keys: dict[str, list[list[str]]] = {
        kind: [[f"{tag}-{kind}{p}-{k}" for k in range(KEYS_EACH[kind])] for p in range(count)]
        for kind, count in PRODUCERS.items()
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(ALERTWIRE_ROUTING_KEY=KEY, ALERTWIRE_OUTBOX=str(outbox))
    go_read, go_write = os.pipe()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_PRODUCER, str(outbox), str(go_read), KEY, *ks],
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=(go_read,),
            env=env,
        )
        for ks in keys["process"]
    ]
    for proc in processes:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go = threading.Event()
    shared = Outbox(outbox)  # one library object shared by the producer threads

    def library_thread(ks: list[str]) -> None:
        go.wait(GUARD)
        try:
            for k in ks:
                shared.enqueue(
                    TriggerAlert(f"{k} down", dedup_key=k, source="stress"), routing_key=KEY
                )
                shared.enqueue(AcknowledgeAlert(k), routing_key=KEY)
                shared.enqueue(ResolveAlert(k), routing_key=KEY)
        except OutboxError as exc:
            refusals.add(f"thread: {exc}")

    relay = RelayProcess(
        workdir, outbox=outbox, pagerduty_url=sandbox.url, extra=["--concurrency", "16"]
    )
    threads = [threading.Thread(target=library_thread, args=(ks,)) for ks in keys["thread"]]
    for thread in threads:
        thread.start()
    # The barrier: every producer and the relay start on the outbox together.
    os.write(go_write, b"x" * len(processes))
    go.set()
    clis = [
        subprocess.Popen(
            [sys.executable, "-m", "alertwire.cli.main", "send", "--queue", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in keys["cli"]
    ]
    relay.start()
    try:
        ingest_threads = [
            threading.Thread(target=ingest_sender, args=(relay.url, ks, refusals))
            for ks in keys["ingest"]
        ]
        for thread in ingest_threads:
            thread.start()
        for cli, ks in zip(clis, keys["cli"], strict=True):
            _out, err = cli.communicate(lines_for(ks), timeout=GUARD)
            if cli.returncode != 0:
                refusals.add(f"cli exit {cli.returncode}: {err.decode()[-300:]}")
        for proc in processes:
            out_text, _ = proc.communicate(timeout=GUARD)
            if proc.returncode != 0:
                refusals.add(f"process: {out_text.strip()[-300:]}")
        for thread in threads + ingest_threads:
            thread.join(GUARD)
            assert not thread.is_alive(), "a producer hung"
        every = [k for kind in keys.values() for ks in kind for k in ks]
        assert relay.process is not None
        wait_while_alive(
            f"round {tag}: everything delivered",
            lambda: delivered_count(sandbox, tag) >= 3 * len(every),
            [relay.process],
            output=relay.output,
            timeout=GUARD,
        )
        assert relay.terminate() == 0, relay.output()[-2000:]
    finally:
        relay.close()
        shared.close()
        os.close(go_read)
        os.close(go_write)
    return every


def ingest_sender(url: str, keys: list[str], refusals: Refusals) -> None:
    pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=30))
    try:
        for k in keys:
            for step in STEPS:
                r = pool.request("POST", url + "/v2/enqueue", body=wire(k, step))
                if r.status != 202:
                    refusals.add(f"ingest {r.status}: {r.data[:200]!r}")
    finally:
        pool.clear()


def delivered_count(sandbox: Sandbox, tag: str) -> int:
    return sum(1 for e in sandbox.events() if str(e.get("dedup_key", "")).startswith(f"{tag}-"))


def test_producers_of_every_kind_and_a_relay_on_one_outbox_refuse_nothing_and_keep_order(
    tmp_path: Path,
) -> None:
    refusals = Refusals()
    sent: list[str] = []
    with Sandbox() as sandbox:
        path = tmp_path / "round-0" / "outbox.sqlite3"
        for n, kind in enumerate(ROUNDS):
            if kind == "new":
                path = tmp_path / f"round-{n}" / "outbox.sqlite3"
                assert not path.exists()
            else:
                assert path.exists()
            workdir = tmp_path / f"logs-{n}"
            workdir.mkdir()
            sent += run_round(f"r{n}", path, sandbox, workdir, refusals)
        events = sandbox.events()
    assert refusals.items == [], refusals.items[:5]

    arrived: dict[str, list[str]] = {}
    for e in events:
        arrived.setdefault(str(e["dedup_key"]), []).append(str(e["event_action"]))
    duplicates = 0
    for key in sent:
        got = arrived.get(key, [])
        collapsed = [x for i, x in enumerate(got) if i == 0 or got[i - 1] != x]
        assert collapsed == list(STEPS), (key, got)
        duplicates += len(got) - len(collapsed)
    for n, kind in enumerate(ROUNDS):
        if kind == "new":
            with Outbox.open(tmp_path / f"round-{n}" / "outbox.sqlite3", create=False) as ob:
                stats = ob.stats()
            assert (stats.pending, stats.leased, stats.dead) == (0, 0, 0)
    print(
        f"\nstress: {len(ROUNDS)} rounds, {len(sent) * 3} events from"
        f" {sum(PRODUCERS.values())} producers a round"
        f" ({', '.join(f'{n} {k}' for k, n in PRODUCERS.items())}) and a relay on one outbox;"
        f" refused 0, lost 0, out of order 0, duplicates {duplicates}"
    )
