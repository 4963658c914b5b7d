"""Crash test: hundreds of events sent concurrently while the relay is SIGKILLed repeatedly.

Senders behave like real tools: each owns some dedup keys and sends each
key's events in order (the next only after the previous was answered), and
retries whatever got no answer (a reset, a refused connection, a 503). The
relay subprocess is killed with SIGKILL each time the number of answered
events crosses a threshold, and restarted on the same port at once: the
kills are paced by event counts, never by sleeps.

Promise checked: every event answered 202 reaches the upstream (the
sandbox), in order per dedup key. Duplicates are allowed (at least once)
and counted: a retried request whose first try was stored but not answered,
and a send whose outcome died with the relay. The numbers are printed
(``pytest -s``) and quoted in docs/ingest.md.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import urllib3

from alertwire.outbox import Outbox
from alertwire.sandbox import Sandbox
from tests.support.ingest_process import RelayProcess
from tests.support.services import free_port
from tests.support.waiting import wait_for

KEY = "0123456789abcdef0123456789CRSHZZ"
KEYS = 80
SENDERS = 16
#: Each key's life, sent in this order by its one sender.
STEPS = ("trigger", "acknowledge", "resolve", "trigger", "resolve")
KILL_EVERY = 45
DEADLINE = 120.0


def event(dedup_key: str, step: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": KEY,
        "event_action": STEPS[step],
        "dedup_key": dedup_key,
    }
    if STEPS[step] == "trigger":
        body["payload"] = {
            "summary": f"{dedup_key} step {step}",
            "source": "crash",
            "severity": "error",
        }
    return body


class Senders:
    def __init__(self, url_of: Any) -> None:
        self.url_of = url_of
        self.lock = threading.Lock()
        self.answered = 0
        self.retries = 0
        self.accepted: list[tuple[str, int]] = []
        self.errors: list[str] = []

    def run(self, keys: list[str]) -> None:
        pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=5))
        for step in range(len(STEPS)):
            for key in keys:
                self._send(pool, key, step)
        pool.clear()

    def _send(self, pool: urllib3.PoolManager, key: str, step: int) -> None:
        import json

        body = json.dumps(event(key, step)).encode()
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                r = pool.request("POST", self.url_of() + "/v2/enqueue", body=body, retries=False)
            except urllib3.exceptions.HTTPError:
                with self.lock:
                    self.retries += 1
                time.sleep(0.02)
                continue
            if r.status == 202:
                with self.lock:
                    self.answered += 1
                    self.accepted.append((key, step))
                return
            if r.status == 503:
                with self.lock:
                    self.retries += 1
                time.sleep(0.02)
                continue
            with self.lock:
                self.errors.append(f"{key} step {step}: {r.status} {r.data[:200]!r}")
            return
        with self.lock:
            self.errors.append(f"{key} step {step}: never answered")


def test_every_answered_event_is_delivered_in_order_through_repeated_sigkills(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    with Sandbox() as sandbox:
        sandbox.faults(latency_ms=10)  # deliveries are in flight when the kill comes
        relay = RelayProcess(
            tmp_path,
            outbox=outbox,
            pagerduty_url=sandbox.url,
            port=free_port(),
            extra=["--concurrency", "32"],
        )
        relay.start()
        senders = Senders(lambda: relay.url)
        keys = [f"crash-{i:03d}" for i in range(KEYS)]
        threads = [
            threading.Thread(target=senders.run, args=(keys[i::SENDERS],), daemon=True)
            for i in range(SENDERS)
        ]
        total = KEYS * len(STEPS)
        kills = 0
        try:
            for thread in threads:
                thread.start()
            next_kill = KILL_EVERY
            deadline = time.monotonic() + DEADLINE
            while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
                if senders.answered >= next_kill and next_kill < total:
                    relay.kill()
                    kills += 1
                    relay.start()
                    next_kill += KILL_EVERY
                time.sleep(0.005)
            for thread in threads:
                thread.join(timeout=5)
            assert not senders.errors, senders.errors[:5]
            assert senders.answered == total

            def drained() -> bool:
                with Outbox(outbox) as ob:
                    s = ob.stats()
                return s.pending == 0 and s.leased == 0

            wait_for("the relay to deliver everything", drained, timeout=DEADLINE)
            assert relay.terminate() == 0
        finally:
            relay.close()
        events = sandbox.events()
        with Outbox(outbox) as ob:
            stats = ob.stats()

    assert stats.dead == 0
    # Per key: what arrived, each event once or repeated back to back, in the order sent.
    arrived: dict[str, list[tuple[str, str | None]]] = {}
    for e in events:
        summary = (e["body"].get("payload") or {}).get("summary")
        arrived.setdefault(e["dedup_key"], []).append((e["event_action"], summary))
    duplicates = 0
    for key in keys:
        expected = [
            (STEPS[s], f"{key} step {s}" if STEPS[s] == "trigger" else None)
            for s in range(len(STEPS))
        ]
        got = arrived.get(key, [])
        collapsed = [x for i, x in enumerate(got) if i == 0 or got[i - 1] != x]
        assert collapsed == expected, (key, got)
        duplicates += len(got) - len(collapsed)
    stored_rows = stats.delivered
    client_duplicates = stored_rows - total
    relay_duplicates = len(events) - stored_rows
    counts = Counter(e["event_action"] for e in events)
    print(
        f"\ningest crash test: {total} events over {KEYS} dedup keys from {SENDERS} senders;"
        f" relay SIGKILLed {kills} times; senders retried {senders.retries} requests;"
        f" answered 202: {senders.answered}; stored: {stored_rows}"
        f" ({client_duplicates} stored twice: answer lost with the relay, client retried);"
        f" delivered upstream: {len(events)} ({duplicates} duplicates in all,"
        f" {relay_duplicates} re-sent after a kill); lost: 0; out of order: 0;"
        f" by action: {dict(counts)}"
    )
    assert kills >= 5
    assert len(events) - duplicates == total
