"""The disk fills up under a running relay, then space returns: no spin, one line each way.

How the disk "fills": the relay runs as a real ``alertwire relay --listen``
subprocess with ``SIGXFSZ`` ignored; mid-drain
the test lowers its ``RLIMIT_FSIZE`` to 4 KiB with ``prlimit(2)``. From then
on the kernel refuses every write past 4 KiB in any file (EFBIG), which
SQLite reports as ``SQLITE_FULL`` or a failed write: every transaction
fails, exactly as on a full disk, while reads still work. "Space returns"
is the limit raised back to unlimited, again from outside, without the
relay's knowledge. The relay's output goes to a pipe, not a file: a log file
would be refused too (as on a real full disk, unless logs go elsewhere).

Synchronised on observable conditions: the limit drops once the upstream
has accepted some events; it is raised once ``/metrics`` shows that the
relay has failed three tries (0.5 s and 1 s of backoff apart) and
``/healthz`` says 503; the end is every event delivered.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import resource
import signal
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from alertwire import AcknowledgeAlert, ResolveAlert, TriggerAlert
from alertwire.outbox import Outbox
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.relay_upstream import Upstream
from tests.support.sandbox_http import fetch
from tests.support.waiting import wait_while_alive

KEYS = 100  # x 3 actions = 300 events
RANK = {"trigger": 0, "acknowledge": 1, "resolve": 2}
CONCURRENCY = 4
SAFETY = 60.0  # seconds: a bound on a hang, never an expectation

pytestmark = pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs prlimit(2) (Linux)")


# Ignore SIGXFSZ (inherited through exec), so a write past the limit fails with EFBIG.
_PRELUDE = (
    "import os, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
    " os.execv(sys.argv[1], sys.argv[1:])"
)


class PipedRelay:
    """``alertwire relay --listen`` whose output (stdout and stderr) is read from a pipe."""

    def __init__(self, outbox: Path, upstream: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PRELUDE,
                sys.executable,
                "-m",
                "alertwire.cli.main",
                "relay",
                "--listen",
                "127.0.0.1:0",
                "--outbox",
                str(outbox),
                "--pagerduty-url",
                upstream,
                "--rate-limit",
                "0",
                "--concurrency",
                str(CONCURRENCY),
                "--timeout",
                "2",
                "--lease",
                "60",
                "--poll-interval",
                "0.05",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace")
            if not self.url and (found := re.search(r"listening on (\S+)", line)):
                self.url = found.group(1)
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=SAFETY)
        self._reader.join(timeout=SAFETY)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=SAFETY)
        if self.process.stdout is not None:
            self.process.stdout.close()


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_full_disk_pauses_the_relay_without_spinning_and_it_resumes_when_space_returns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as outbox:
        for make in (lambda k: TriggerAlert("p", dedup_key=k), AcknowledgeAlert, ResolveAlert):
            outbox.enqueue_many([make(f"key-{i:03d}") for i in range(KEYS)], routing_key=KEY)
    total = KEYS * 3
    upstream = Upstream(delay=0.02).start()
    relay = PipedRelay(path, upstream.url)
    posts = 0
    try:
        wait_while_alive(
            "the relay to listen",
            lambda: "health:" in relay.output(),
            [relay.process],
            output=relay.output,
        )
        pid = relay.process.pid
        wait_while_alive(
            "40 deliveries",
            lambda: upstream.accepted_count() >= 40,
            [relay.process],
            output=relay.output,
        )
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        at_full = upstream.accepted_count()
        # What the relay holds leased from here on was claimed before the disk filled (a
        # claim needs a write): the sends in flight and the rows it claimed ahead.
        with Outbox(path) as outbox:
            leased_at_full = outbox.stats().leased

        def failed_tries() -> float:
            return metric(fetch(relay.url + "/metrics")[1], "alertwire_relay_outbox_failures_total")

        wait_while_alive(
            "three failed tries", lambda: failed_tries() >= 3, [relay.process], output=relay.output
        )
        health = fetch(relay.url + "/healthz")
        event = b'{"routing_key": "%s", "event_action": "trigger", "payload":' % KEY.encode()
        event += b' {"summary": "s", "source": "h", "severity": "info"}}'
        refused = fetch(relay.url + "/v2/enqueue", event)
        posts += 1
        during = upstream.accepted_count()

        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)

        def everything_arrived() -> bool:
            return len({(a.key, a.action) for a in upstream.accepted()}) == total

        wait_while_alive("every event", everything_arrived, [relay.process], output=relay.output)
        wait_while_alive(
            "the end line",
            lambda: "event=outbox_available" in relay.output(),
            [relay.process],
            output=relay.output,
        )
        wait_while_alive(
            "/healthz 200",
            lambda: fetch(relay.url + "/healthz")[0] == 200,
            [relay.process],
            output=relay.output,
        )
        code = relay.terminate()
    finally:
        relay.close()
        upstream.stop()
    output = relay.output()
    with Outbox(path) as outbox:
        stats = outbox.stats()

    assert code == 0, output[-3000:]
    assert (stats.pending, stats.leased, stats.dead, stats.delivered) == (0, 0, 0, total)
    assert health[0] == 503 and health[2]["retry-after"] == "10", health
    # The store's own words: SQLITE_FULL ("the disk ... is full") or, for a write past
    # the limit, a failed write ("disk I/O error"), whichever SQLite saw first.
    assert "disk" in health[1], health
    assert str(tmp_path) not in health[1]
    assert refused[0] == 503 and refused[2]["retry-after"] == "10", refused
    # Nothing was delivered while the outbox could not record it (claims need writes):
    # only rows claimed before, at most the claim-ahead window (3 rounds of sends) and
    # the sends in flight. Which of them go out before the relay meets the first failed
    # write depends on timing; after it, none starts (test_outbox_outage).
    assert during - at_full <= leased_at_full <= 4 * CONCURRENCY

    accepted = upstream.accepted()
    delivered = Counter((a.key, a.action) for a in accepted)
    history: dict[Any, list[int]] = defaultdict(list)
    for arrival in sorted(upstream.arrivals, key=lambda a: a.seq):
        history[arrival.key].append(RANK[str(arrival.action)])
    assert all(x <= y for ranks in history.values() for x, y in itertools.pairwise(ranks))
    duplicates = sum(n - 1 for n in delivered.values())
    assert duplicates == 0  # outcomes kept through the outage and recorded after it

    errors = [line for line in output.splitlines() if " ERROR " in line]
    # One for the outage, one per refused POST (every refusal is logged), nothing else.
    assert len(errors) <= 1 + posts, errors
    assert output.count("event=outbox_unavailable") == 1
    assert output.count("event=outbox_available") == 1
    assert "Traceback" not in output
    assert KEY not in output
    end = re.search(r"lasted=([\d.]+)s failed_tries=(\d+)", output)
    assert end is not None
    lasted, tries = float(end.group(1)), int(end.group(2))
    # Backoff, not a spin: n tries need at least 0.4 * (2**(n-1) - 1) seconds.
    assert 3 <= tries <= 2 + math.log2(1 + lasted / 0.4), (tries, lasted)
    print(
        f"\nfull disk: {total} events, writes refused after {at_full} accepted; outage"
        f" {lasted} s, {tries} failed tries, {len(errors)} ERROR lines ({posts} of them"
        f" refused POSTs); all delivered, out of order 0, duplicates {duplicates}"
    )
