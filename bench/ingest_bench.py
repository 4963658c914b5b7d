"""Scenario: the ingest path. Events accepted per second, durable, over HTTP.

What is timed: HTTP clients POST PagerDuty events to the ingest endpoint
(:class:`alertwire.ingest.IngestServer`, the routes, validation and group
commit that ``alertwire relay --listen`` runs) and count an event when its
202 arrives, i.e. after its commit (WAL, ``synchronous=FULL``). The server
runs in its own process, without a delivering relay (delivery is the relay
scenario), so it does not share the clients' GIL; clients are aiohttp tasks,
1 or 32 in flight, on keep-alive connections.

The limit it is measured against: bare ``sqlite3`` with the store's own
pragmas and table, inserting the same bodies from the same number of
threads, each event its own ``BEGIN IMMEDIATE; INSERT; COMMIT`` (what
"answer only after a durable commit" costs without group commit), and, at 32
senders, also 32 rows per transaction (the best any group commit could do).
No HTTP, parsing or validation in the bare numbers: they are the disk's
ceiling, not a competitor.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._harness import Goal, ScenarioResult, rotated
from .outbox_bench import _percentile, filesystem_of
from .sequential import bare_body

__all__ = ["run_ingest"]

SUBJECT = "alertwire ingest"
BARE = "bare sqlite3, 1 row/commit"
BARE_GROUPED = "bare sqlite3, 32 rows/commit"
SANDBOX = "same routes, no disk (sandbox)"

_SERVER = """
import asyncio, json, signal, sys
from alertwire.ingest import IngestConfig, IngestServer
from alertwire.outbox import Outbox

async def main():
    server = IngestServer(Outbox(sys.argv[1]), IngestConfig(host="127.0.0.1", port=0))
    await server.start()
    print("URL", server.url, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop()
    print("COMMITS", server.committer.commits, server.committer.rows, flush=True)
    print("BATCHES", json.dumps(server.committer.batch_sizes), flush=True)

asyncio.run(main())
"""


class _Server:
    """The ingest server (or, with ``sandbox=True``, the same routes keeping events in memory)."""

    def __init__(self, path: Path, *, sandbox: bool = False) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = (
            [sys.executable, "-m", "alertwire.cli.main", "sandbox", "--port", "0"]
            if sandbox
            else [sys.executable, "-c", _SERVER, str(path)]
        )
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.match(r"(?:URL|alertwire sandbox listening on) (\S+)", line)
        if not match:
            self.process.kill()
            raise RuntimeError(f"the server did not start: {line!r}")
        self.url = match.group(1)

    def cpu_seconds(self) -> float | None:
        """The server process's CPU time so far (user + system, all threads), from
        ``/proc``; ``None`` where there is none. Per event, it says what a request costs
        the server whatever the machine's load (wall time includes waiting for a core)."""
        try:
            with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> dict[int, int]:
        """Stop; returns the server's commits by rows in them (none for the sandbox)."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        match = re.search(r"^BATCHES (.*)$", out, re.MULTILINE)
        return {int(k): v for k, v in json.loads(match.group(1)).items()} if match else {}


async def _post_all(url: str, bodies: Sequence[bytes], concurrency: int) -> list[float]:
    import aiohttp

    latencies: list[float] = []
    queue = list(reversed(bodies))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                async with session.post(
                    url + "/v2/enqueue",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as response:
                    await response.read()
                    if response.status != 202:
                        raise RuntimeError(f"ingest answered {response.status}")
                latencies.append((time.perf_counter() - started) * 1000.0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _bare(path: Path, bodies: Sequence[bytes], concurrency: int, per_commit: int) -> list[float]:
    """``concurrency`` threads, each committing its share ``per_commit`` rows at a time."""
    from alertwire.outbox import sqlite as store_module

    setup = sqlite3.connect(path, isolation_level=None)
    store_module.configure(setup)
    for statement in store_module._SCHEMA:
        setup.execute(statement)
    setup.close()
    latencies: list[float] = []
    lock = threading.Lock()
    shares = [bodies[i::concurrency] for i in range(concurrency)]

    def work(share: Sequence[bytes]) -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        store_module.configure(conn)
        now = time.time()
        mine: list[float] = []
        for at in range(0, len(share), per_commit):
            chunk = share[at : at + per_commit]
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO events (state, kind, route, order_key, credential, body,"
                " created_at, age_from, not_before)"
                " VALUES (0, 'pagerduty.alert', 'r', :k, 'c', :body, :now, :now, :now)",
                [{"k": f"k{at + i}", "body": b, "now": now} for i, b in enumerate(chunk)],
            )
            conn.execute("COMMIT")
            mine.extend([(time.perf_counter() - started) * 1000.0] * len(chunk))
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(s,)) for s in shares if s]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def run_ingest(
    specs: Sequence[dict[str, Any]], *, concurrency: int, rounds: int, workdir: Path
) -> ScenarioResult:
    bodies = [json.dumps(bare_body(spec)).encode() for spec in specs]
    contenders = [SUBJECT, SANDBOX, BARE] + ([BARE_GROUPED] if concurrency > 1 else [])
    result = ScenarioResult(
        key=f"ingest-c{concurrency}",
        title=f"Ingest endpoint, {concurrency} concurrent sender{'s' if concurrency > 1 else ''}",
        unit="events/s",
        subject=SUBJECT,
        contenders=contenders,
        goals=[Goal(SANDBOX, ">=", 0.8 if concurrency > 1 else 0.6)],
        notes=[
            "HTTP POST /v2/enqueue to the ingest server (own process; routes, validation,"
            " group commit; answered 202 after the commit) vs bare sqlite3 inserts from the"
            " same number of threads (no HTTP, no validation): the disk's durable ceiling.",
            "The sandbox serves the very same routes and validation but keeps events in"
            " memory: the gap to it is what durability costs, the gap from it to bare"
            " sqlite3 is HTTP and validation.",
            f"WAL, synchronous=FULL in both (one fsync per commit); database on"
            f" {filesystem_of(str(workdir))}.",
        ],
    )
    latencies: dict[str, list[float]] = {name: [] for name in contenders}
    batches: collections.Counter[int] = collections.Counter()
    server_cpu: dict[str, list[float]] = {}
    for index in range(rounds):
        values: dict[str, float] = {}
        for name in rotated(contenders, index):
            path = workdir / f"{result.key}-{index}-{len(values)}.sqlite3"
            if name in (SUBJECT, SANDBOX):
                server = _Server(path, sandbox=name == SANDBOX)
                try:
                    asyncio.run(_post_all(server.url, bodies[:concurrency], concurrency))  # warm
                    cpu_started = server.cpu_seconds()
                    started = time.perf_counter()
                    lat = asyncio.run(_post_all(server.url, bodies, concurrency))
                    elapsed = time.perf_counter() - started
                    cpu_ended = server.cpu_seconds()
                finally:
                    batches.update(server.stop())
                if cpu_started is not None and cpu_ended is not None:
                    spent = (cpu_ended - cpu_started) / len(bodies) * 1e6
                    server_cpu.setdefault(name, []).append(spent)
            else:
                per_commit = 1 if name == BARE else concurrency
                started = time.perf_counter()
                lat = _bare(path, bodies, concurrency, per_commit)
                elapsed = time.perf_counter() - started
            values[name] = len(bodies) / elapsed
            latencies[name].extend(lat)
        result.rounds.append(values)
    result.events = len(bodies)
    lines = [
        "| Contender | Latency p50 (per event) | p99 | Server CPU per event |",
        "|---|---:|---:|---:|",
    ]
    for name in contenders:
        cpu = server_cpu.get(name)
        lines.append(
            f"| {name} | {_percentile(latencies[name], 0.5):.2f} ms"
            f" | {_percentile(latencies[name], 0.99):.2f} ms"
            f" | {f'{statistics.median(cpu):.0f} µs' if cpu else '–'} |"
        )
    if batches:
        commits = sum(batches.values())
        rows = sum(size * n for size, n in batches.items())
        median = statistics.median(batches.elements())
        lines.append("")
        lines.append(
            f"Group commit: {rows / commits:.1f} events per transaction on average, median"
            f" {median:g}, largest {max(batches)} (warm-up included). Server CPU: the"
            " server process's user + system time over the timed run (ingest: the event"
            " loop and the writer thread), per event; the rest of a round trip is"
            " waiting (for the disk, the client or a core)."
        )
    result.extra = "\n".join(lines)
    return result
