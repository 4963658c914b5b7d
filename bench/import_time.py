"""Scenario: what ``import alertwire`` (and ``import alertwire.airflow``) adds to a process start.

Every DAG file Airflow parses, every plugin and every short script pays for
the import, so the figure is the import *above* a bare interpreter: each
round starts ``python -c pass``, ``python -c "import alertwire"`` and
``python -c "import alertwire.airflow"`` as fresh processes, in rotating
order, and a round's value is an import's wall time minus the bare start's
in that same round (milliseconds, lower is better); the headline is the
median over many rounds. The CPU time of each child (user + system, from
``getrusage``) is reported beside it: it does not count time spent waiting
for a core, so it moves less with the machine's load.

``alertwire.airflow`` is imported in our own virtual environment, where
Airflow is not installed: the package must not import Airflow (or the
library) at module import, only when a hook or notifier is first used. Each
run checks that, so a module that starts importing Airflow fails the scenario
instead of looking fast.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from statistics import median

from ._harness import Goal, ScenarioResult, rotated
from .cli_start import ensure_bytecode

__all__ = ["run_import"]

BARE = "python -c pass"
#: The goal: an import adds at most this much to a process start.
GOAL_MS = 40.0

_IMPORTS = {
    "import alertwire": "import alertwire",
    "import alertwire.airflow": "import alertwire.airflow",
}
#: A probe that fails the run if an import pulled in what it must not.
_CHECK = (
    "\nimport sys\n"
    "bad = [m for m in ('airflow', 'urllib3', 'aiohttp') if m in sys.modules]\n"
    "if bad:\n"
    "    sys.exit(f'imported {bad}')\n"
)


def _time_once(code: str) -> tuple[float, float]:
    """(wall ms, child CPU ms) of one fresh ``python -c code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    wall = (time.perf_counter() - started) * 1000.0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"`python -c {code!r}` failed: {done.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000.0
    return wall, cpu


def run_import(*, rounds: int) -> list[ScenarioResult]:
    """One result per import: its wall time above ``python -c pass``, per round."""
    ensure_bytecode("alertwire")
    codes = {BARE: "pass", **{name: code + _CHECK for name, code in _IMPORTS.items()}}
    for code in codes.values():  # untimed: the page cache, and the checks once
        _time_once(code)
    walls: dict[str, list[float]] = {name: [] for name in codes}
    cpus: dict[str, list[float]] = {name: [] for name in codes}
    for index in range(rounds):
        for name in rotated(list(codes), index):
            wall, cpu = _time_once(codes[name])
            walls[name].append(wall)
            cpus[name].append(cpu)
    results = []
    for name in _IMPORTS:
        result = ScenarioResult(
            key=name.replace("import ", "import-"),
            title=f"`{name}`, above `{BARE}`",
            unit="ms",
            subject=name,
            contenders=[name],
            goals=[Goal(name, "<=", GOAL_MS, unit="ms")],
            notes=[
                f"Fresh interpreters, `{BARE}` and the import in the same round (rotating"
                " order); a round's figure is the import's wall time minus the bare start's."
                " The package's bytecode is compiled beforehand, as `pip install` leaves it.",
            ],
        )
        result.rounds = [
            {name: wall - bare} for wall, bare in zip(walls[name], walls[BARE], strict=True)
        ]
        result.per_run = "a fresh interpreter per import and per bare start"
        result.extra = (
            "| Process | Wall, median | CPU (user + system), median |\n"
            "|---|---:|---:|\n"
            f"| `{BARE}` | {median(walls[BARE]):.1f} ms | {median(cpus[BARE]):.1f} ms |\n"
            f'| `python -c "{name}"` | {median(walls[name]):.1f} ms'
            f" | {median(cpus[name]):.1f} ms |\n"
            f"| difference | {median(walls[name]) - median(walls[BARE]):+.1f} ms"
            f" | {median(cpus[name]) - median(cpus[BARE]):+.1f} ms |"
        )
        if name.endswith("airflow"):
            result.notes.append(
                "Measured in alertwire's own virtual environment, where Airflow is not"
                " installed: importing `alertwire.airflow` loads neither Airflow nor the"
                " library (checked on every run); hooks and notifiers load them on first use."
            )
        results.append(result)
    return results
