"""Scenario: ``alertwire send --queue FILE`` storing a large JSON-lines file in the outbox.

What a user runs to queue a backlog (a replay, an export): every line is
read, parsed and validated into a model, given its dedup key and timestamp,
and stored in chunks of at most 10,000 events per transaction (one fsync each;
see ``alertwire.cli._queue_stream``). The figures are the CLI's own, as a
user sees them:

* **rate**: lines stored per second, from the start of the ``alertwire``
  process to its exit (interpreter start-up included: under a tenth of a
  second here, against tens of seconds of work);
* **peak RSS**: ``ru_maxrss`` of the CLI process alone. A small parent
  process of its own starts the CLI and reads ``RUSAGE_CHILDREN``, so no
  other child of the bench (the endpoint, a relay) is counted.

Each run writes to a fresh outbox on the same file system as the other
outbox scenarios; the input file (trigger events from the shared specs, no
dedup key: the commonest line) is written once, untimed. After each run the
outbox must hold every line, so a fast failure cannot look fast.

Size: the goal is stated for 1,000,000 lines (at least 20,000 lines/s, at
most 100 MB peak RSS), and the full run stores exactly that, twice (about a
minute per round). The size matters: the rate falls as the outbox grows, since
each stored event adds an entry to two indexes keyed by a hash (its order
key), and a chunk's entries land on pages all over those indexes, so a commit
writes more pages the bigger they are (100,000 lines ran at about twice the
rate of 1,000,000 on this machine: docs/cli.md, ``send --queue``).

Child usage (internal): ``python -m bench.send_queue_bench FILE OUTBOX``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._harness import ROUTING_KEY, Goal, ScenarioResult, make_event_specs

__all__ = ["run_send_queue"]

SUBJECT = "alertwire send --queue"
#: The goal: 100 MB (10^8 bytes) of peak RSS, in the MiB the report uses.
RSS_GOAL_MIB = 100e6 / 2**20
RATE_GOAL = 20_000.0
GOAL_LINES = 1_000_000


def write_lines(path: Path, count: int) -> int:
    """``count`` trigger lines (the shared event specs), one JSON object each; the size."""
    with path.open("w", encoding="utf-8") as out:
        for spec in make_event_specs(count):
            out.write(json.dumps({"type": "trigger", **spec}) + "\n")
    return path.stat().st_size


def _child(lines: str, outbox: str) -> dict[str, Any]:
    """Run the CLI as a user would and report its wall time, exit code and peak RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(ALERTWIRE_ROUTING_KEY=ROUTING_KEY, ALERTWIRE_OUTBOX=outbox)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "alertwire.cli.main", "send", "--queue", lines],
        capture_output=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": seconds,
        "code": done.returncode,
        "maxrss_kb": usage.ru_maxrss,  # KiB on Linux
        "cpu": usage.ru_utime + usage.ru_stime,
        "stderr": done.stderr.decode(errors="replace")[-500:],
    }


def _measured_run(lines: Path, outbox: Path) -> dict[str, Any]:
    root = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.send_queue_bench", str(lines), str(outbox)],
        capture_output=True,
        env=env,
        cwd=root,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"send --queue parent failed: {done.stderr.decode()[-500:]}")
    figures: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    if figures["code"] != 0:
        raise RuntimeError(f"send --queue exited {figures['code']}: {figures['stderr']}")
    return figures


def run_send_queue(*, lines: int, rounds: int, workdir: Path) -> list[ScenarioResult]:
    """The rate and the peak RSS of ``send --queue`` over ``lines`` lines, ``rounds`` runs."""
    from alertwire.cli._queue_stream import CHUNK_EVENTS
    from alertwire.outbox import Outbox

    from .outbox_bench import filesystem_of

    source = workdir / "send-queue.jsonl"
    size = write_lines(source, lines)
    title = f"`alertwire send --queue` of {lines:,} JSON lines"
    rate = _absolute("send-queue", title, Goal(SUBJECT, ">=", RATE_GOAL, unit="lines/s"))
    rss_goal = Goal(SUBJECT, "<=", round(RSS_GOAL_MIB, 1), unit="MiB")
    memory = _absolute("send-queue-rss", f"{title}: peak RSS", rss_goal)
    memory.per_run = f"{lines:,} lines per run"
    runs: list[dict[str, Any]] = []
    for index in range(rounds):
        outbox = workdir / f"send-queue-{index}.db"
        figures = _measured_run(source, outbox)
        with Outbox(outbox) as check:
            stored = check.stats().pending
        if stored != lines:
            raise RuntimeError(f"send --queue stored {stored} of {lines} lines")
        runs.append(figures)
        rate.rounds.append({SUBJECT: lines / figures["seconds"]})
        memory.rounds.append({SUBJECT: figures["maxrss_kb"] / 1024})
    rate.events = memory.events = lines
    rate.per_run = f"{lines:,} lines ({size / 2**20:,.1f} MiB) per run"
    rate.extra = _table(runs, lines)
    rate.notes = [
        f"A fresh `alertwire send --queue FILE` process per run, {lines:,} trigger lines"
        " without dedup key, into a fresh SQLite outbox on"
        f" {filesystem_of(str(workdir))} (WAL, synchronous=FULL; chunks of at most"
        f" {CHUNK_EVENTS:,} events per transaction; the command's own connection has a"
        " 16 MiB page cache and checkpoints every 16,000 WAL pages). Timed from the"
        " process's start to its exit.",
    ]
    if lines < GOAL_LINES:
        rate.notes.append(
            f"The goal is stated for {GOAL_LINES:,} lines; this run is smaller to stay"
            " within a minute or so per round, and the rate falls as the outbox grows"
            " (see bench/send_queue_bench.py), so at the goal's size it would be lower."
        )
    memory.notes = [
        "`ru_maxrss` of the CLI process alone (read by a parent of its own), the same"
        f" runs as the rate above. The goal, 100 MB, is {RSS_GOAL_MIB:.1f} MiB.",
    ]
    return [rate, memory]


def _absolute(key: str, title: str, goal: Goal) -> ScenarioResult:
    """A figure of the CLI alone (no other contender), in the goal's unit."""
    return ScenarioResult(
        key=key, title=title, unit=goal.unit, subject=SUBJECT, contenders=[SUBJECT], goals=[goal]
    )


def _table(runs: Sequence[dict[str, Any]], lines: int) -> str:
    out = [
        "| Run | Wall | CPU (user + system) | CPU per line | Peak RSS |",
        "|---:|---:|---:|---:|---:|",
    ]
    for number, run in enumerate(runs, 1):
        out.append(
            f"| {number} | {run['seconds']:.1f} s | {run['cpu']:.1f} s"
            f" | {run['cpu'] / lines * 1e6:.0f} µs | {run['maxrss_kb'] / 1024:.1f} MiB |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.argv[2])), flush=True)
