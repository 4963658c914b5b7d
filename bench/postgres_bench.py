"""Scenario 7: the outbox on PostgreSQL, several relays sharing it, against SQLite.

1. Relays: events per second end to end (outbox -> local endpoint) with 1, 2
   and 4 ``alertwire relay`` processes on one PostgreSQL outbox, and 1 relay
   on a SQLite outbox, pacing off, events spread over 100 routing keys. Each
   contender starts its relays on a fresh, empty outbox and warms them (a
   few events delivered, so connections are open); then the events are
   committed in ONE transaction (untimed: they all become visible at once)
   and the clock runs from that commit until the outbox reports every one
   delivered. The endpoint's own count proves they all arrived.
2. Enqueue latency: ``Outbox.enqueue`` one event per transaction, p50/p99,
   on each backend.

Both backends are durable as configured by alertwire: SQLite WAL with
``synchronous=FULL`` in a temporary directory; PostgreSQL a throwaway
cluster started like the tests' (:mod:`tests.support.pg_cluster`) but with
``fsync`` on, and ``synchronous_commit=on`` per session (the store's own
setting). Everything runs on one machine here: the relays, the endpoint
and the database share its cores, so more relays also means more
contention; on separate hosts the scaling would only be better.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ._harness import Goal, ScenarioResult, rotated
from .outbox_bench import _percentile, filesystem_of, routing_keys

__all__ = ["run_postgres", "run_postgres_backlog"]

RELAY_KEYS = 100
PG = "PostgreSQL"
SQLITE = "SQLite"
PG_RELAYS = (1, 2, 4)
SAFETY = 300.0  # a bound on a hang, never an expectation


class SlowEndpoint:
    """An endpoint that answers 202 after ``latency`` seconds, in its own process.

    The fast endpoint makes the relays CPU-bound, so on a small shared machine
    more relay processes only compete for the same cores. A real service
    answers in tens of milliseconds: then a relay waits on the network, and
    that is where more relays (on more hosts) add throughput. aiohttp.web,
    because each request sleeps concurrently; ``GET /__count`` as the fast one.
    """

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SlowEndpoint:
        root = str(Path(__file__).resolve().parent.parent)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.postgres_bench", "serve", str(self.latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip():
            self.__exit__()
            raise RuntimeError("slow endpoint did not start")
        self.port = int(line)
        return self

    def posts(self) -> int:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/__count")
            return int(conn.getresponse().read())
        finally:
            conn.close()

    def __exit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


async def _serve_slow(latency: float) -> None:
    import asyncio

    from aiohttp import web

    from .endpoint import ACCEPTED_BODY

    count = 0

    async def post(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        await asyncio.sleep(latency)
        count += 1
        return web.Response(status=202, body=ACCEPTED_BODY, content_type="application/json")

    async def get_count(request: web.Request) -> web.Response:
        return web.Response(text=str(count))

    app = web.Application()
    app.router.add_get("/__count", get_count)
    app.router.add_post("/{tail:.*}", post)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    server = site._server
    assert server is not None
    print(server.sockets[0].getsockname()[1], flush=True)  # type: ignore[attr-defined]  # aiohttp says AbstractServer; it is asyncio's Server
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()  # until the parent closes stdin (or dies)
    await runner.cleanup()


class _Counted:
    """``check(n)``: the endpoint received exactly ``n`` more POSTs since the last check."""

    def __init__(self, endpoint: SlowEndpoint) -> None:
        self._endpoint = endpoint
        self._seen = endpoint.posts()

    def __call__(self, expected: int) -> None:
        now = self._endpoint.posts()
        if now - self._seen != expected:
            raise RuntimeError(f"the endpoint received {now - self._seen}, expected {expected}")
        self._seen = now


def _name(backend: str, relays: int) -> str:
    return f"{backend}, {relays} relay{'s' if relays > 1 else ''}"


SUBJECT = _name(PG, 2)


@contextmanager
def _cluster() -> Iterator[Any]:
    """A durable throwaway cluster, and a password file so URLs and argv carry no password."""
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tests.support.pg_cluster import throwaway_cluster

    with throwaway_cluster(durable=True) as cluster, tempfile.TemporaryDirectory() as tmp:
        passfile = Path(tmp) / "pgpass"
        fd = os.open(passfile, os.O_CREAT | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"127.0.0.1:{cluster.port}:*:{cluster.user}:{cluster.password}\n")
        previous = os.environ.get("PGPASSFILE")
        os.environ["PGPASSFILE"] = str(passfile)
        try:
            yield cluster
        finally:
            if previous is None:
                os.environ.pop("PGPASSFILE", None)
            else:
                os.environ["PGPASSFILE"] = previous


def _fresh_pg(cluster: Any) -> str:
    """A new schema; the URL (no password) selecting it."""
    import psycopg

    schema = "b_" + secrets.token_hex(6)
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return (
        f"postgresql://{cluster.user}@127.0.0.1:{cluster.port}/{cluster.database}"
        f"?options=-csearch_path%3D{schema}"
    )


def _rows(specs: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[Any]:
    from alertwire import TriggerAlert
    from alertwire.outbox import Outbox

    return [
        Outbox.prepare_pagerduty(TriggerAlert(**spec), routing_key=keys[i % len(keys)])
        for i, spec in enumerate(specs)
    ]


def _start_relays(target: str, base_url: str, count: int, logdir: Path) -> list[Any]:
    procs = []
    for i in range(count):
        log = (logdir / f"relay-{i}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "alertwire.cli.main",
                "relay",
                "--quiet",
                "--outbox",
                target,
                "--pagerduty-url",
                base_url,
                "--rate-limit",
                "0",
                "--poll-interval",
                "0.05",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        procs.append((proc, log))
    return procs


def _stop_relays(procs: list[Any]) -> None:
    for proc, _ in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc, log in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_delivered(outbox: Any, expected: int, procs: list[Any]) -> None:
    deadline = time.monotonic() + SAFETY
    while outbox.stats().delivered < expected:
        for proc, _ in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a relay exited with {proc.returncode} during the benchmark")
        if time.monotonic() > deadline:
            raise RuntimeError("the relays made no progress")
        time.sleep(0.01)


def _one_run(
    target: str,
    base_url: str,
    relays: int,
    rows: Sequence[Any],
    warm: Sequence[Any],
    logdir: Path,
    check: Callable[[int], None] | None,
) -> float:
    from alertwire.outbox import Outbox

    with Outbox.open(target) as outbox:
        outbox.store.migrate()
        procs = _start_relays(target, base_url, relays, logdir)
        try:
            outbox.put(warm)  # every relay connected and warmed before the clock starts
            _wait_delivered(outbox, len(warm), procs)
            if check is not None:
                check(len(warm))
            outbox.put(rows)  # one commit: all visible at once
            started = time.perf_counter()
            _wait_delivered(outbox, len(warm) + len(rows), procs)
            elapsed = time.perf_counter() - started
        finally:
            _stop_relays(procs)
    if check is not None:
        check(len(rows))
    return len(rows) / elapsed


def _relays_result(events: int, latency: float, workdir: Path) -> ScenarioResult:
    where = (
        "a fast local endpoint"
        if latency == 0
        else f"an endpoint answering after {latency * 1000:g} ms"
    )
    return ScenarioResult(
        key="relays-postgres" if latency == 0 else f"relays-postgres-{latency * 1000:g}ms",
        title=f"Several relays on PostgreSQL, {where}",
        unit="events/s",
        subject=SUBJECT,
        contenders=[_name(PG, n) for n in PG_RELAYS] + [_name(SQLITE, 1)],
        goals=[Goal(_name(PG, 1), ">=", 1.0 if latency == 0 else 1.5)],
        notes=[
            f"{events:,} events over {RELAY_KEYS} routing keys, committed in one transaction;"
            " timed from that commit until the outbox reports every one delivered. Each"
            " relay is an `alertwire relay --rate-limit 0` process (concurrency 16), pacing"
            " off; every contender starts on a fresh outbox, relays warmed first.",
            "Goal: two relays deliver at least as much as one. Relays, endpoint and"
            " database share this machine's cores"
            + (
                ": with an endpoint this fast the relays are CPU-bound, so extra relay"
                " processes compete for the same cores."
                if latency == 0
                else "; with a service that takes time to answer (as a real one does),"
                " relays wait on the network, and more relays deliver more."
            ),
            f"SQLite outbox on {filesystem_of(str(workdir))}; PostgreSQL with fsync on.",
        ],
    )


def run_postgres(
    base_url: str,
    specs: Sequence[dict[str, Any]],
    *,
    rounds: int,
    enqueue_events: int,
    workdir: Path,
    check: Callable[[int], None] | None = None,
    slow_latency: float = 0.05,
    log: Callable[[str], None] = lambda _msg: None,
) -> list[ScenarioResult]:
    """Relays 1/2/4 on PostgreSQL vs 1 on SQLite (fast and slow endpoint); enqueue p50/p99."""
    fast = _relays_result(len(specs), 0.0, workdir)
    slow = _relays_result(len(specs), slow_latency, workdir)
    enqueue = ScenarioResult(
        key="enqueue-backends",
        title="Enqueue one event per transaction: PostgreSQL vs SQLite",
        unit="events/s",
        subject=PG,
        contenders=[PG, SQLITE],
        goals=[],
        notes=[
            f"`Outbox.enqueue` of {enqueue_events} events, one durable commit each, over a"
            " loopback connection (PostgreSQL, fsync on, synchronous_commit on) or to a"
            " local file (SQLite, WAL, synchronous=FULL).",
        ],
    )
    results = [fast, slow, enqueue]
    with ExitStack() as stack:
        try:
            cluster = stack.enter_context(_cluster())
        except Exception as exc:  # reported in the page, never hidden
            for result in results:
                result.unavailable = f"no PostgreSQL server ({exc})"
            return results
        keys = routing_keys(RELAY_KEYS)
        rows = _rows(specs, keys)
        slow_endpoint = stack.enter_context(SlowEndpoint(slow_latency))
        for result, url, counted in (
            (fast, base_url, check),
            (slow, slow_endpoint.base_url, _Counted(slow_endpoint)),
        ):
            log(f"{result.key}: {rounds} rounds x {len(result.contenders)} contenders")
            for index in range(rounds):
                values: dict[str, float] = {}
                for name in rotated(result.contenders, index):
                    backend, count = name.split(", ")[0], int(name.split(", ")[1].split()[0])
                    warm = _rows(specs[: 4 * count], keys)
                    logdir = Path(tempfile.mkdtemp(dir=workdir))
                    target = (
                        _fresh_pg(cluster)
                        if backend == PG
                        else str(workdir / f"{result.key}-{index}-{count}.sqlite3")
                    )
                    values[name] = _one_run(target, url, count, rows, warm, logdir, counted)
                result.rounds.append(values)
            result.events = len(specs)
        log(f"enqueue-backends: {rounds} rounds x {enqueue_events} events")
        _enqueue_latency(enqueue, cluster, workdir, enqueue_events, rounds)
    return results


def _enqueue_latency(
    result: ScenarioResult, cluster: Any, workdir: Path, events: int, rounds: int
) -> None:
    from alertwire import TriggerAlert
    from alertwire.outbox import Outbox

    from ._harness import ROUTING_KEY, make_event_specs

    specs = make_event_specs(events)
    latencies: dict[str, list[float]] = {PG: [], SQLITE: []}
    for index in range(rounds):
        values: dict[str, float] = {}
        for name in rotated(result.contenders, index):
            target = _fresh_pg(cluster) if name == PG else str(workdir / f"enqueue-{index}.sqlite3")
            with Outbox.open(target) as outbox:
                outbox.enqueue(TriggerAlert(**specs[0]), routing_key=ROUTING_KEY)  # warm
                started = time.perf_counter()
                for spec in specs:
                    before = time.perf_counter()
                    outbox.enqueue(TriggerAlert(**spec), routing_key=ROUTING_KEY)
                    latencies[name].append((time.perf_counter() - before) * 1000.0)
                values[name] = len(specs) / (time.perf_counter() - started)
        result.rounds.append(values)
    result.events = events
    lines = ["| Backend | Enqueue latency p50 | p99 |", "|---|---:|---:|"]
    for name in result.contenders:
        lines.append(
            f"| {name} | {_percentile(latencies[name], 0.5):.2f} ms"
            f" | {_percentile(latencies[name], 0.99):.2f} ms |"
        )
    result.extra = "\n".join(lines)


if __name__ == "__main__":
    import asyncio

    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        asyncio.run(_serve_slow(float(sys.argv[2])))
    else:
        sys.exit("usage: python -m bench.postgres_bench serve LATENCY_SECONDS")


BACKLOG = "PostgreSQL, 1 relay, large backlog"
#: Events past the timed ones, so neither relay's timed window includes its last sends
#: (fewer than 16 in flight).
TAIL = 100
SMALL = "PostgreSQL, 1 relay, small backlog"


def _rate_after_warm(outbox: Any, procs: list[Any], warm: int, timed: int) -> float:
    """Events/s over ``timed`` deliveries, counted from the ``warm``-th delivered event.

    The clock starts once the relay has delivered ``warm`` events (process
    started, connections open, first claims done), so both contenders are
    timed in the same steady state whatever their backlog.
    """
    _wait_delivered(outbox, warm, procs)
    first: int = outbox.stats().delivered  # a few more than warm: the poll is not instant
    started = time.perf_counter()
    _wait_delivered(outbox, warm + timed, procs)
    return (warm + timed - first) / (time.perf_counter() - started)


def _put_chunked(outbox: Any, rows: Sequence[Any], chunk: int = 2000) -> None:
    for start in range(0, len(rows), chunk):
        outbox.put(rows[start : start + chunk])


def run_postgres_backlog(
    base_url: str,
    *,
    pending: int,
    timed: int,
    warm: int,
    rounds: int,
    workdir: Path,
    log: Callable[[str], None] = lambda _msg: None,
) -> ScenarioResult:
    """One relay draining a PostgreSQL outbox holding ``pending`` events, against the
    same relay draining only what it is timed on: what a big backlog costs per event."""
    from alertwire.outbox import Outbox

    from ._harness import make_event_specs

    result = ScenarioResult(
        key="postgres-backlog",
        title=f"PostgreSQL relay with {pending:,} pending events",
        unit="events/s",
        subject=BACKLOG,
        contenders=[BACKLOG, SMALL],
        goals=[Goal(SMALL, ">=", 0.9)],
        notes=[
            f"One `alertwire relay --rate-limit 0` process (concurrency 16) on a PostgreSQL"
            f" outbox holding {pending:,} events over {RELAY_KEYS} routing keys (queued"
            f" before it starts, untimed), against the same relay on an outbox holding only"
            f" {warm + timed + TAIL:,}. Each is timed over {timed:,} deliveries after its first"
            f" {warm:,} (process started, connections open), against the fast local"
            " endpoint.",
            "Goal: a backlog costs a relay at most a tenth of its rate (every query the"
            " relay runs per cycle is meant to cost the same at any backlog).",
            "PostgreSQL with fsync on, synchronous_commit on.",
            "After queuing and before the relay starts, both contenders' tables get"
            " `VACUUM (ANALYZE)`, what autovacuum does within a minute of any bulk"
            " enqueue, so that the timed seconds never include autovacuum's first pass"
            " over the fresh rows: the figure is a relay in service. (A relay started"
            " on a table filled a second ago analyzes it at its first claim itself,"
            " docs/several-relays.md; this scenario does not measure that.)",
        ],
    )
    with ExitStack() as stack:
        try:
            cluster = stack.enter_context(_cluster())
        except Exception as exc:  # reported in the page, never hidden
            result.unavailable = f"no PostgreSQL server ({exc})"
            return result
        keys = routing_keys(RELAY_KEYS)
        specs = make_event_specs(max(pending, warm + timed + TAIL))
        rows = _rows(specs, keys)
        for index in range(rounds):
            values: dict[str, float] = {}
            for name in rotated(result.contenders, index):
                size = pending if name == BACKLOG else warm + timed + TAIL
                log(f"postgres-backlog: round {index + 1}, {size:,} pending")
                target = _fresh_pg(cluster)
                logdir = Path(tempfile.mkdtemp(dir=workdir))
                with Outbox.open(target) as outbox:
                    outbox.store.migrate()
                    _put_chunked(outbox, rows[:size])
                    _settle_in(target)
                    procs = _start_relays(target, base_url, 1, logdir)
                    try:
                        values[name] = _rate_after_warm(outbox, procs, warm, timed)
                    finally:
                        _stop_relays(procs)
                    _drop_schema(cluster, target)
            result.rounds.append(values)
        result.events = timed
    return result


def _settle_in(target: str) -> None:
    """What autovacuum does within a minute of a bulk enqueue, done before the clock:
    ``VACUUM (ANALYZE)`` of the outbox's tables, for both contenders.

    The events are queued in a burst right before the relay starts, which no
    relay in service sees: there the table has statistics, and autovacuum has
    already passed after the burst. Without this, the timed seconds measured
    the planner's guesses on a table it knew nothing about (the two backlog
    sizes got different plans for the same claim: 1,432 against 864 buffers a
    claim at 3,300 and 100,000 pending), and could include autovacuum's first
    pass over the fresh rows (about 2 s here for 100,000 rows, vacuum and
    analyze), depending on where its one-minute nap ended.
    """
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) alertwire_events, alertwire_counts, alertwire_routes")


def _drop_schema(cluster: Any, target: str) -> None:
    """Free the big backlog's disk before the next round (the URL names the schema)."""
    import psycopg

    schema = target.rsplit("%3D", 1)[1]
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
