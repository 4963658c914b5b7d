"""Scenarios 4 and 5: the durable outbox (enqueue) and the relay (outbox -> endpoint).

4. Enqueue, single and batched: ``Outbox.enqueue`` (one event, one
   transaction, one fsync) and ``Outbox.enqueue_many`` (100 events, one
   transaction), each against a bare ``sqlite3`` loop that inserts the same
   JSON bodies into the same table with the same pragmas (WAL,
   ``synchronous=FULL``, ``busy_timeout``; taken from the store module so they
   cannot drift) inside ``BEGIN IMMEDIATE`` / ``COMMIT``. The bare loop is the
   limit: it does no validation, no dedup-key assignment, no timestamping.
   alertwire's timed work includes building the :class:`~alertwire.TriggerAlert`.
   Latency is per call (p50/p99); throughput is events per second.

   What the two sides share and where they differ, so the ratio reads right:

   * The bare loop builds the outbox's own schema (``_SCHEMA``: indexes *and*
     the trigger that keeps each key's head flag), so every row it inserts
     pays for that index and trigger work exactly as the outbox's rows do.
     Making them cheaper speeds both sides alike, which lowers the ratio
     while it is below 1 (schema version 3 did, one index fewer: bare
     sqlite3 22.1 -> 16.4 us of CPU per event, alertwire 39.0 -> 34.2). Both
     sides' inserts are counted by the same trigger; since version 3 state
     moves are counted by the store's statements, which enqueue does not run.
   * Its rows are smaller work for SQLite than the outbox's: its order keys
     are short and nearly sequential (``k<n>``) and it stores no dedup key,
     where the outbox's order keys are 40-hex-digit digests that land all
     over the two indexes keyed by them (measured: about 40% more SQLite CPU
     per row for the same statements). That is left as it is, so the
     baseline is not made slower to flatter the ratio.
   * The batched bare loop is ``executemany`` (one statement per row); the
     store sends one multi-row ``INSERT`` per 128 rows, which a bare loop
     could do too (about 25% less SQLite CPU with these triggers). The
     baseline stays the plain ``executemany`` a first attempt would write.
5. Relay: events spread over 100 routing keys are enqueued (untimed), then
   ``Relay(..., rate_limit_per_minute=0).run(drain=True)`` is timed until the
   outbox is empty. For context, the same events sent straight from memory
   with ``AsyncPagerDuty.send_many`` at the relay's concurrency: the price of
   durability and per-key order.

Databases live in a fresh temporary directory (the system's; the filesystem
type is reported, since fsync cost is the disk's).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._harness import ROUTING_KEY, Goal, ScenarioResult, rotated
from .sequential import bare_body

__all__ = ["filesystem_of", "routing_keys", "run_enqueue", "run_relay"]

SUBJECT = "alertwire"
BARE = "bare sqlite3"
BATCH = 100
RELAY_KEYS = 100


def routing_keys(count: int) -> list[str]:
    """``count`` distinct well-formed routing keys (32 alphanumerics)."""
    return [f"R{i:031d}" for i in range(count)]


def filesystem_of(path: str) -> str:
    """The mount's filesystem type (``ext4``, ``tmpfs``...), from /proc/mounts."""
    best, kind = "", "unknown"
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) > 2 and real.startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class _BareSQLite:
    """The same table, pragmas and transaction shape as the store, and nothing else."""

    def __init__(self, path: Path) -> None:
        from alertwire.outbox import sqlite as store_module

        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        store_module.configure(self._conn)
        for statement in store_module._SCHEMA:
            self._conn.execute(statement)

    def insert(self, specs: Sequence[dict[str, Any]]) -> None:
        import orjson

        now = time.time()
        rows = [
            {
                "kind": "pagerduty.alert",
                "route": "r",
                "order_key": f"k{spec['custom_details']['n']}",
                "credential": ROUTING_KEY,
                "body": orjson.dumps(bare_body(spec)),
                "now": now,
            }
            for spec in specs
        ]
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO events (state, kind, route, order_key, credential, body,"
                " created_at, age_from, not_before)"
                " VALUES (0, :kind, :route, :order_key, :credential, :body, :now, :now, :now)",
                rows,
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class _AlertwireOutbox:
    def __init__(self, path: Path) -> None:
        from alertwire.outbox import Outbox

        self._outbox = Outbox(path)

    def insert(self, specs: Sequence[dict[str, Any]]) -> None:
        from alertwire import TriggerAlert

        if len(specs) == 1:
            self._outbox.enqueue(TriggerAlert(**specs[0]), routing_key=ROUTING_KEY)
        else:
            self._outbox.enqueue_many(
                [TriggerAlert(**spec) for spec in specs], routing_key=ROUTING_KEY
            )

    def close(self) -> None:
        self._outbox.close()


def run_enqueue(
    specs: Sequence[dict[str, Any]],
    *,
    batch: int,
    rounds: int,
    workdir: Path,
) -> ScenarioResult:
    """Enqueue ``specs`` ``batch`` at a time (1: one transaction per event)."""
    single = batch == 1
    result = ScenarioResult(
        key="enqueue-single" if single else "enqueue-batched",
        title="Outbox enqueue, one event per transaction"
        if single
        else f"Outbox enqueue, {batch} events per transaction",
        unit="events/s",
        subject=SUBJECT,
        contenders=[SUBJECT, BARE],
        goals=[] if single else [Goal(BARE, ">=", 0.8)],
        notes=[
            "`Outbox.enqueue` per event vs bare sqlite3 `BEGIN IMMEDIATE; INSERT; COMMIT`"
            if single
            else f"`Outbox.enqueue_many` with {batch} events vs bare sqlite3 `executemany`"
            f" of {batch} rows in one transaction",
            "Same pragmas as the store (WAL, synchronous=FULL: one fsync per commit),"
            f" database on {filesystem_of(str(workdir))}.",
        ],
    )
    factories: dict[str, Callable[[Path], Any]] = {SUBJECT: _AlertwireOutbox, BARE: _BareSQLite}
    latencies: dict[str, list[float]] = {SUBJECT: [], BARE: []}
    chunks = [specs[i : i + batch] for i in range(0, len(specs), batch)]
    for index in range(rounds):
        values: dict[str, float] = {}
        for name in rotated(list(factories), index):
            target = factories[name](workdir / f"{result.key}-{name.replace(' ', '_')}-{index}.db")
            try:
                target.insert(chunks[0])  # warm: file created, statements prepared
                started = time.perf_counter()
                for chunk in chunks:
                    before = time.perf_counter()
                    target.insert(chunk)
                    latencies[name].append((time.perf_counter() - before) * 1000.0)
                values[name] = len(specs) / (time.perf_counter() - started)
            finally:
                target.close()
        result.rounds.append(values)
    result.events = len(specs)
    per = "per event" if single else f"per {batch}-event batch"
    lines = [
        f"| Contender | Latency p50 ({per}) | p99 |",
        "|---|---:|---:|",
    ]
    for name in result.contenders:
        lines.append(
            f"| {name} | {_percentile(latencies[name], 0.5):.2f} ms"
            f" | {_percentile(latencies[name], 0.99):.2f} ms |"
        )
    result.extra = "\n".join(lines)
    return result


def _fill(
    outbox: Any, specs: Sequence[dict[str, Any]], keys: Sequence[str], *, per_tx: int = 50
) -> None:
    """Spread ``specs`` round-robin over ``keys``, ``per_tx`` events per transaction."""
    from alertwire import TriggerAlert

    step = len(keys) * per_tx
    for start in range(0, len(specs), step):
        chunk = specs[start : start + step]
        for offset, key in enumerate(keys):
            events = [TriggerAlert(**spec) for spec in chunk[offset :: len(keys)]]
            if events:
                outbox.enqueue_many(events, routing_key=key)


RELAY = "alertwire relay"
DIRECT = "AsyncPagerDuty.send_many (no outbox)"


def _direct(base_url: str, events: Sequence[tuple[str, Any]], concurrency: int) -> None:
    """Send (routing key, event) pairs from memory: one client per key, one shared pool.

    The pool is the async default transport (``AsyncioTransport``), the one the
    relay sends through, so the two sides differ only by the outbox.
    """
    import alertwire
    from alertwire.transport import AsyncioTransport

    async def send() -> None:
        transport = AsyncioTransport(limit=concurrency)
        clients = {
            key: alertwire.AsyncPagerDuty(key, base_url=base_url, http_client=transport)
            for key, _ in events
        }
        todo = iter(events)

        async def worker() -> None:
            for key, event in todo:
                await clients[key].send(event)

        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            await transport.aclose()

    asyncio.run(send())


def run_relay(
    base_url: str,
    specs: Sequence[dict[str, Any]],
    *,
    rounds: int,
    workdir: Path,
    check: Callable[[int], None] | None = None,
) -> ScenarioResult:
    from alertwire.outbox import Outbox
    from alertwire.relay import DEFAULT_CONCURRENCY, Relay

    keys = routing_keys(RELAY_KEYS)
    result = ScenarioResult(
        key="relay",
        title=f"Relay end to end, {RELAY_KEYS} routing keys, pacing off",
        unit="events/s",
        subject=RELAY,
        contenders=[RELAY, DIRECT],
        goals=[Goal(DIRECT, ">=", 0.8)],
        notes=[
            f"{len(specs):,} events spread over {RELAY_KEYS} routing keys are enqueued"
            " first (untimed); the timed part is `Relay(outbox, rate_limit_per_minute=0,"
            f" pagerduty_url=...).run(drain=True)` (concurrency {DEFAULT_CONCURRENCY},"
            " the default) until the outbox is empty.",
            f"For context: the same events sent from memory by `AsyncPagerDuty.send` at"
            f" concurrency {DEFAULT_CONCURRENCY}, no outbox (no fsync, no claims, no"
            " per-key order).",
        ],
    )
    for index in range(rounds):
        values: dict[str, float] = {}
        for name in rotated(result.contenders, index):
            if name == RELAY:
                with Outbox(workdir / f"relay-{index}.db") as outbox:
                    _fill(outbox, specs, keys)
                    relay = Relay(outbox, rate_limit_per_minute=0, pagerduty_url=base_url)
                    started = time.perf_counter()
                    report = relay.run(drain=True)
                    elapsed = time.perf_counter() - started
                if report.delivered != len(specs):
                    raise RuntimeError(f"the relay delivered {report.delivered} of {len(specs)}")
            else:
                from alertwire import TriggerAlert

                events = [(keys[i % len(keys)], TriggerAlert(**s)) for i, s in enumerate(specs)]
                started = time.perf_counter()
                _direct(base_url, events, DEFAULT_CONCURRENCY)
                elapsed = time.perf_counter() - started
            if check is not None:
                check(len(specs))
            values[name] = len(specs) / elapsed
        result.rounds.append(values)
    result.events = len(specs)
    return result
