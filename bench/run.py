"""Run the benchmark suite and write ``docs/benchmarks.md`` and ``docs/img/benchmarks.png``.

Usage (from the repository root)::

    .venv/bin/python -m bench.run            # full run, a few minutes
    .venv/bin/python -m bench.run --quick    # tiny inputs, seconds; figures mean nothing

``--output-dir`` writes the page and plot somewhere else (the smoke test
uses a temporary directory); ``--only sequential,cli`` runs some scenarios.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report
from bench._harness import ScenarioResult, make_event_specs
from bench.cli_start import run_cli
from bench.concurrency import run_concurrent
from bench.endpoint import Endpoint
from bench.import_time import run_import
from bench.sequential import run_sequential

__all__ = ["Sizes", "main", "run_suite"]

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = (
    "sequential",
    "concurrent",
    "cli",
    "enqueue",
    "relay",
    "memory",
    "postgres",
    "postgres-backlog",
    "ingest",
    "import",
    "send-queue",
)


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each scenario does; ``QUICK`` is for smoke tests only."""

    sequential_events: int
    concurrent_events: int
    rounds: int
    cli_rounds: int
    enqueue_single_events: int = 300
    enqueue_batched_events: int = 3000
    relay_events: int = 3000
    relay_rounds: int = 3
    memory_pending: int = 100_000
    memory_budget: float = 15.0
    # PostgreSQL scenarios (bench/postgres_bench.py); tiny defaults, FULL sets real sizes.
    postgres_events: int = 20
    postgres_rounds: int = 1
    postgres_enqueue_events: int = 5
    # One PostgreSQL relay with a large backlog vs a small one (postgres_bench.py).
    postgres_backlog_pending: int = 400
    postgres_backlog_timed: int = 40
    postgres_backlog_warm: int = 10
    # The ingest endpoint (bench/ingest_bench.py): events at 32 senders; a quarter at 1.
    ingest_events: int = 40
    ingest_rounds: int = 1
    # Fresh interpreters per import measured (bench/import_time.py).
    import_rounds: int = 3
    # `alertwire send --queue` of a JSON-lines file (bench/send_queue_bench.py); tiny
    # defaults, FULL sets real sizes (the goal's 1,000,000 lines take minutes today).
    send_queue_lines: int = 200
    send_queue_rounds: int = 1


FULL = Sizes(
    sequential_events=1000,
    concurrent_events=2000,
    rounds=7,
    cli_rounds=31,
    postgres_events=1500,
    postgres_rounds=3,
    postgres_enqueue_events=300,
    postgres_backlog_pending=100_000,
    postgres_backlog_timed=10_000,
    postgres_backlog_warm=200,
    ingest_events=2000,
    ingest_rounds=3,
    import_rounds=41,
    send_queue_lines=1_000_000,
    send_queue_rounds=2,
)
QUICK = Sizes(
    sequential_events=30,
    concurrent_events=60,
    rounds=2,
    cli_rounds=2,
    enqueue_single_events=10,
    enqueue_batched_events=200,
    relay_events=200,
    relay_rounds=1,
    memory_pending=500,
    memory_budget=5.0,
)


class _ArrivalCheck:
    """Proves every timed event reached the endpoint (a fast failure must not look fast)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._seen = endpoint.posts()

    def __call__(self, expected: int) -> None:
        now = self._endpoint.posts()
        if now - self._seen != expected:
            raise RuntimeError(
                f"the endpoint received {now - self._seen} events, expected {expected}"
            )
        self._seen = now

    def resync(self) -> None:
        """Accept what arrived meanwhile (a run whose count is checked another way)."""
        self._seen = self._endpoint.posts()


def run_suite(
    sizes: Sizes,
    *,
    only: Sequence[str] = SCENARIOS,
    log: Callable[[str], None] = lambda _msg: None,
) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    with Endpoint() as endpoint:
        check = _ArrivalCheck(endpoint)
        url = endpoint.base_url
        if "sequential" in only:
            log(f"sequential: {sizes.rounds} rounds x {sizes.sequential_events} events")
            specs = make_event_specs(sizes.sequential_events)
            results.append(run_sequential(url, specs, rounds=sizes.rounds, check=check))
        if "concurrent" in only:
            log(f"concurrent: {sizes.rounds} rounds x {sizes.concurrent_events} events")
            specs = make_event_specs(sizes.concurrent_events)
            results.append(run_concurrent(url, specs, rounds=sizes.rounds, check=check))
        if "cli" in only:
            log(f"cli: {sizes.cli_rounds} rounds")
            results.append(run_cli(url, rounds=sizes.cli_rounds, check=check))
        if "import" in only:
            log(f"import: {sizes.import_rounds} rounds")
            results += run_import(rounds=sizes.import_rounds)
        if {"enqueue", "relay", "memory", "postgres", "postgres-backlog"} & set(only):
            results += _outbox_scenarios(sizes, only, url, check, log)
        if "ingest" in only:
            from bench.ingest_bench import run_ingest

            with tempfile.TemporaryDirectory(prefix="alertwire-bench-ingest-") as tmp:
                for senders, count in ((1, sizes.ingest_events // 4), (32, sizes.ingest_events)):
                    log(f"ingest: {sizes.ingest_rounds} rounds x {count} events, {senders} senders")
                    results.append(
                        run_ingest(
                            make_event_specs(count),
                            concurrency=senders,
                            rounds=sizes.ingest_rounds,
                            workdir=Path(tmp),
                        )
                    )
        if "send-queue" in only:
            from bench.send_queue_bench import run_send_queue

            log(f"send-queue: {sizes.send_queue_rounds} rounds x {sizes.send_queue_lines:,} lines")
            with tempfile.TemporaryDirectory(prefix="alertwire-bench-send-") as tmp:
                results += run_send_queue(
                    lines=sizes.send_queue_lines,
                    rounds=sizes.send_queue_rounds,
                    workdir=Path(tmp),
                )
    return results


def _outbox_scenarios(
    sizes: Sizes,
    only: Sequence[str],
    url: str,
    check: _ArrivalCheck,
    log: Callable[[str], None],
) -> list[ScenarioResult]:
    """Scenarios 4-6: the outbox and relay live in their own modules, loaded only here."""
    from bench.outbox_bench import BATCH, run_enqueue, run_relay
    from bench.relay_memory import run_memory

    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="alertwire-bench-") as tmp:
        workdir = Path(tmp)
        if "enqueue" in only:
            log(f"enqueue: {sizes.rounds} rounds, single and batched")
            specs = make_event_specs(sizes.enqueue_single_events)
            results.append(run_enqueue(specs, batch=1, rounds=sizes.rounds, workdir=workdir))
            specs = make_event_specs(sizes.enqueue_batched_events)
            results.append(run_enqueue(specs, batch=BATCH, rounds=sizes.rounds, workdir=workdir))
        if "relay" in only:
            log(f"relay: {sizes.relay_rounds} rounds x {sizes.relay_events} events")
            specs = make_event_specs(sizes.relay_events)
            results.append(
                run_relay(url, specs, rounds=sizes.relay_rounds, workdir=workdir, check=check)
            )
        if "memory" in only:
            log(f"memory: {sizes.memory_pending:,} pending, budget {sizes.memory_budget:g} s")
            results.append(
                run_memory(
                    url, pending=sizes.memory_pending, budget=sizes.memory_budget, workdir=workdir
                )
            )
            check.resync()
        if "postgres" in only:
            from bench.postgres_bench import run_postgres

            specs = make_event_specs(sizes.postgres_events)
            results += run_postgres(
                url,
                specs,
                rounds=sizes.postgres_rounds,
                enqueue_events=sizes.postgres_enqueue_events,
                workdir=workdir,
                check=check,
                log=log,
            )
        if "postgres-backlog" in only:
            from bench.postgres_bench import run_postgres_backlog

            log(
                f"postgres-backlog: {sizes.postgres_rounds} rounds,"
                f" {sizes.postgres_backlog_pending:,} pending"
            )
            results.append(
                run_postgres_backlog(
                    url,
                    pending=sizes.postgres_backlog_pending,
                    timed=sizes.postgres_backlog_timed,
                    warm=sizes.postgres_backlog_warm,
                    rounds=sizes.postgres_rounds,
                    workdir=workdir,
                    log=log,
                )
            )
            check.resync()
    return results


def write_docs(
    results: Sequence[ScenarioResult], *, output_dir: Path, command: str
) -> tuple[Path, Path]:
    page = output_dir / "benchmarks.md"
    image = output_dir / "img" / "benchmarks.png"
    report.plot(results, image)
    text = report.markdown(results, machine=report.machine_info(), command=command)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text, encoding="utf-8")
    return page, image


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny inputs (smoke run)")
    parser.add_argument(
        "--output-dir", type=Path, default=ROOT / "docs", help="where benchmarks.md goes"
    )
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}"
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    results = run_suite(QUICK if args.quick else FULL, only=only, log=log)
    command = "python -m bench.run" + (" --quick" if args.quick else "")
    page, image = write_docs(results, output_dir=args.output_dir, command=command)
    print(report.results_table(results))
    log(f"wrote {page} and {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
