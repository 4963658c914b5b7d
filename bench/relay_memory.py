"""Scenario 6: peak RSS of a relay process with a large backlog (100,000 pending events).

The parent fills an outbox (events over 100 routing keys, untimed), then
starts a *fresh* process that imports alertwire, opens the outbox and runs
a :class:`~alertwire.relay.Relay` against the local endpoint for a
fixed time budget (or until drained). The child reports its RSS before the
relay starts (interpreter, libraries, open database) and its peak RSS
(``ru_maxrss``) at the end, so the figure is the relay's whole process, not
the bench's.

The budget bounds the run: at 100,000 pending the point is memory under a
big backlog, not draining it; the number delivered in the budget is
reported too.

The peak is the child's own ``VmHWM`` (``/proc/self/status``), not
``ru_maxrss``: on Linux a process started with ``subprocess`` (vfork, then
exec) inherits its parent's high-water mark in ``ru_maxrss``, so the child
reported the bench parent's peak (it holds the 100,000 events it just
queued: about 113 MiB) instead of the relay's (about 42 MiB).

Child usage (internal): ``python -m bench.relay_memory DB URL BUDGET``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._harness import Goal, ScenarioResult, make_event_specs
from .outbox_bench import RELAY_KEYS, _fill, routing_keys

__all__ = ["run_memory"]

SUBJECT = "alertwire relay"


def _rss_kb() -> int:
    """Current RSS from /proc (ru_maxrss only gives the peak)."""
    try:
        with open("/proc/self/statm", encoding="utf-8") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        return 0


def _peak_kb() -> int:
    """This process's own peak RSS since it started (``VmHWM``), in KiB.

    ``ru_maxrss`` is not used: it carries the parent's high-water mark over
    the exec that started this process (see the module docstring). It is the
    fallback only where ``/proc`` is missing.
    """
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _child(db: str, url: str, budget: float) -> dict[str, Any]:
    from alertwire.outbox import Outbox
    from alertwire.relay import Relay

    outbox = Outbox(db)
    pending = outbox.store.stats().pending
    relay = Relay(outbox, rate_limit_per_minute=0, pagerduty_url=url)
    before = _rss_kb()
    started = time.perf_counter()
    relay.start(drain=True)
    left = pending
    while time.perf_counter() - started < budget:
        time.sleep(0.25)
        left = outbox.store.stats().pending
        if left == 0:
            break
    report = relay.stop(timeout=60)
    elapsed = time.perf_counter() - started
    peak = _peak_kb()
    outbox.close()
    return {
        "pending": pending,
        "before_kb": before,
        "peak_kb": peak,
        "delivered": report.delivered if report is not None else 0,
        "seconds": elapsed,
        "left": left,
    }


def run_memory(
    base_url: str,
    *,
    pending: int,
    budget: float,
    workdir: Path,
) -> ScenarioResult:
    from alertwire.outbox import Outbox

    result = ScenarioResult(
        key="memory",
        title=f"Relay memory with {pending:,} pending events",
        unit="MiB",
        subject=SUBJECT,
        contenders=[SUBJECT],
        goals=[Goal(SUBJECT, "<=", 64, unit="MiB")],
    )
    db = workdir / "memory.db"
    with Outbox(db) as outbox:
        _fill(outbox, make_event_specs(pending), routing_keys(RELAY_KEYS), per_tx=500)
    root = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.relay_memory", str(db), base_url, str(budget)],
        capture_output=True,
        env=env,
        cwd=root,
        check=False,
        timeout=budget + 180,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"relay memory child failed: {done.stderr.decode(errors='replace')[-500:]}"
        )
    figures = json.loads(done.stdout.decode().strip().splitlines()[-1])
    result.rounds.append({SUBJECT: figures["peak_kb"] / 1024})
    result.events = figures["pending"]
    rate = figures["delivered"] / figures["seconds"] if figures["seconds"] else 0.0
    result.extra = "\n".join(
        [
            "| Pending at start | RSS before the relay starts | Peak RSS | Delivered in run | Run time |",
            "|---:|---:|---:|---:|---:|",
            f"| {figures['pending']:,} | {figures['before_kb'] / 1024:.1f} MiB"
            f" | {figures['peak_kb'] / 1024:.1f} MiB | {figures['delivered']:,}"
            f" ({rate:,.0f}/s) | {figures['seconds']:.1f} s |",
        ]
    )
    result.notes = [
        f"A fresh process runs `Relay(...).start(drain=True)` for at most {budget:g} s"
        " (pacing off) and reports its own peak RSS (`VmHWM`): interpreter, libraries,"
        " database pages and the relay's own state together. The budget bounds the run:"
        " the figure is memory under a large backlog, not time to drain it.",
    ]
    return result


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.argv[2], float(sys.argv[3]))), flush=True)
