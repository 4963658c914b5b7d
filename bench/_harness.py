"""Rounds, alternation and the numbers a scenario reports.

The machines are noisy (two cores shared with other work), so a figure is
never one timing: every scenario runs its contenders in several rounds,
rotating their order each round so no contender always runs first or last
after the same neighbour, and the headline figure is the *ratio within a
round* (alertwire against a contender measured seconds apart), summarised
by its median. Absolute rates are reported as medians for context only.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "EVENT_SOURCES",
    "Goal",
    "Runner",
    "ScenarioResult",
    "make_event_specs",
    "measure_rounds",
]

#: A routing key of the right shape; the local endpoint accepts anything.
ROUTING_KEY = "R0123456789abcdef0123456789abcde"

EVENT_SOURCES = ("db-1.example.net", "db-2.example.net", "web-1.example.net")
_SEVERITIES = ("critical", "error", "warning", "info")


def make_event_specs(count: int) -> list[dict[str, Any]]:
    """The same events for every contender: what a monitoring check typically sends.

    Keyword arguments shared by every client's ``trigger``: ``summary``,
    ``source``, ``severity`` and a small ``custom_details`` object; no
    ``dedup_key`` (the commonest call, "open an alert").
    """
    return [
        {
            "summary": f"Disk /var {90 + i % 10}% full on {EVENT_SOURCES[i % 3]}",
            "source": EVENT_SOURCES[i % 3],
            "severity": _SEVERITIES[i % 4],
            "custom_details": {"mount": "/var", "used_pct": 90 + i % 10, "check": "disk", "n": i},
        }
        for i in range(count)
    ]


class Runner(Protocol):
    """One contender, set up (connections open) and ready: ``run`` is what is timed.

    A runner may also have ``prepare(specs)``: the harness calls it, untimed,
    right before the timed ``run(specs)``, to turn the specs into the input
    the contender's API takes (models, request bodies). A scenario that uses
    it says so, and gives every contender that can take prepared input the
    same treatment (see bench/concurrency.py).
    """

    def run(self, specs: Sequence[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Goal:
    """``alertwire / against`` must be ``op`` ``threshold`` (rates: higher is better).

    With a ``unit`` other than ``"x"`` the goal is on an absolute figure, the
    subject's own median (``against`` is then the subject): ``import
    alertwire`` adds at most 40 ms.
    """

    against: str
    op: Literal[">=", "<="]
    threshold: float
    unit: str = "x"

    def met(self, ratio: float | None) -> bool | None:
        if ratio is None:
            return None
        return ratio >= self.threshold if self.op == ">=" else ratio <= self.threshold

    def text(self) -> str:
        if self.unit == "x":
            return f"{self.op} {self.threshold:g}x"
        return f"{self.op} {self.threshold:g} {self.unit}"


@dataclass(slots=True)
class ScenarioResult:
    """Per-round values for each contender, and the ratios against ``subject``."""

    key: str
    title: str
    unit: str  # "events/s" (higher is better), "ms" or "MiB" (lower is better)
    subject: str
    contenders: list[str]
    goals: list[Goal]
    rounds: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: str | None = None
    events: int = 0
    #: More markdown shown under the scenario's table (latency percentiles...).
    extra: str | None = None
    #: Client-process CPU time per event (µs) per round: steadier than wall time on a
    #: shared machine, since it excludes time spent waiting for a core.
    cpu_us: dict[str, list[float]] = field(default_factory=dict)
    #: What one run is, when "one event per run" would be wrong (an import, a start).
    per_run: str | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.unit not in ("ms", "MiB")

    def values(self, name: str) -> list[float]:
        return [r[name] for r in self.rounds if name in r]

    def median(self, name: str) -> float | None:
        values = self.values(name)
        return statistics.median(values) if values else None

    def ratios(self, against: str) -> list[float]:
        return [
            r[self.subject] / r[against]
            for r in self.rounds
            if self.subject in r and against in r and r[against] > 0
        ]

    def ratio(self, against: str) -> float | None:
        ratios = self.ratios(against)
        return statistics.median(ratios) if ratios else None


def rotated(items: Sequence[str], shift: int) -> list[str]:
    shift %= max(len(items), 1)
    return [*items[shift:], *items[:shift]]


def settle_heap() -> None:
    """Collect garbage, then freeze what survives, just before a timed run.

    Every scenario runs in one process, one after another, and so do the
    contenders of a round: without this, a run inherits its predecessors'
    garbage and a heap whose size depends on what ran before, and a full
    collection (which walks every tracked object, the bench's own event specs
    and earlier results included) lands in whichever run happens to cross the
    threshold (the concurrent scenario's ratio was 0.88-0.96x with its two
    contenders alone in a fresh process, 0.69x inside the full suite).
    ``gc.freeze()`` moves the survivors out of the collector's sight, so
    each timed run pays only for the objects it creates itself. Applied to
    every contender of every scenario alike; the collector stays enabled
    (``gc.unfreeze()`` follows each run), so a contender that allocates more
    still pays for it.
    """
    gc.collect()
    gc.freeze()


def measure_rounds(
    result: ScenarioResult,
    factories: dict[str, Callable[[], Runner]],
    specs: Sequence[dict[str, Any]],
    *,
    rounds: int,
    warmup: int,
    check: Callable[[int], None] | None = None,
) -> ScenarioResult:
    """Time ``run(specs)`` for each contender, ``rounds`` times, in rotating order.

    Each contender is set up fresh every round and warmed with ``warmup``
    events (connections opened, lazy imports done) outside the timed window,
    and the heap is settled (:func:`settle_heap`) right before its timed run.
    ``check(n)`` is told how many events each timed run sent, so the caller
    can prove they all reached the endpoint.
    """
    names = list(factories)
    warm = list(specs[: max(warmup, 1)])
    result.events = len(specs)
    for index in range(rounds):
        values: dict[str, float] = {}
        for name in rotated(names, index):
            runner = factories[name]()
            try:
                runner.run(warm)
                if check is not None:
                    check(len(warm))
                prepare = getattr(runner, "prepare", None)
                if prepare is not None:
                    prepare(specs)
                settle_heap()
                cpu_started = time.process_time()
                started = time.perf_counter()
                runner.run(specs)
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
                if check is not None:
                    check(len(specs))
            finally:
                gc.unfreeze()
                runner.close()
            values[name] = len(specs) / elapsed
            result.cpu_us.setdefault(name, []).append(cpu / len(specs) * 1e6)
        result.rounds.append(values)
    return result
