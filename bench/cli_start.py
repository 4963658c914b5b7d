"""Scenario 3: the CLI, start to exit.

``alertwire trigger`` is timed for real: a fresh process that parses its
arguments, reads ``ALERTWIRE_ROUTING_KEY``, builds the event, sends it to the
local endpoint over http:// (allowed: loopback) and exits. The official
client's CLI is timed doing *less*: ``pagerduty --help`` only starts the
program and prints its help (it cannot send to an http:// endpoint at all).
Goal: alertwire's whole send takes at most 0.6x the official CLI's start.

Where the time goes (docs/cli.md, "Start-up cost", has the figures): the
libraries a real ``alertwire trigger`` loads, imported alone (this
scenario's floor row), cost about 0.43x of ``pagerduty --help``: argparse,
``typing``, ``dataclasses`` with ``inspect``, orjson with ``uuid`` and
``platform``, ``socket``, ``urllib.parse``. No longer among them since
2026-12: ``http.client`` with its ``email`` parser (the sync transport
writes HTTP/1.1 itself), ``ssl`` (https only), ``logging`` (only when the
send warns) and ``random`` (only for a retry). alertwire's own modules, the
parser and the send add the rest (the "vs its libraries alone" row). Since
2026-12 a trigger creates seven frozen dataclasses, not eleven (the other
event classes load on first use), and those seven take eq/hash/repr from
``alertwire._record_methods`` instead of compiling them: 0.636x to 0.591x of
the official CLI's instructions. Much further needs hand-written model
classes instead of dataclasses, or no orjson or argparse on this path.

Wall time of ``subprocess.run`` in milliseconds, lower is better; the two
commands alternate within each round, and the headline is the median of the
per-round ratios. Each child's CPU time (user + system, from ``getrusage``)
is reported beside it: it leaves out time spent waiting for a core, so its
ratio moves less with the machine's load. Until ``alertwire trigger`` exists
(its ``--help`` fails), the scenario reports itself "not available".

Both packages' bytecode is compiled before the first run, as ``pip install``
leaves it: with ``PYTHONDONTWRITEBYTECODE`` set, an editable checkout would
otherwise recompile alertwire's sources on every start while the official
client's installed ``.pyc`` files load, which times the compiler, not the CLI.
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import median

from ._harness import ROUTING_KEY, Goal, ScenarioResult, rotated

__all__ = ["ensure_bytecode", "run_cli", "trigger_command"]

SUBJECT = "alertwire trigger"
OFFICIAL = "pagerduty --help"
#: For context: a process that only imports the third-party and standard-library
#: modules ``alertwire trigger`` loads (argparse, dataclasses, orjson, socket...),
#: none of alertwire's own: a floor for the CLI.
FLOOR = "its libraries alone (imports only)"
GOALS = [Goal(OFFICIAL, "<=", 0.6)]

_MODULES_PROBE = """
import contextlib, io, sys
from alertwire.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(",".join(m for m in sys.modules if m.partition(".")[0] not in ("alertwire", "__main__")))
sys.exit(code)
"""


def ensure_bytecode(*packages: str) -> None:
    """Compile each package's ``.pyc`` files (where missing or stale), as an install does."""
    for package in packages:
        spec = importlib.util.find_spec(package)
        for directory in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(directory, quiet=1)


def _script(name: str) -> str | None:
    """The console script next to this interpreter (the venv's), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)


def trigger_command(alertwire: str, base_url: str) -> list[str]:
    return [
        alertwire,
        "trigger",
        "--pagerduty-url",
        base_url,
        "--source",
        "db-1.example.net",
        "--severity",
        "warning",
        "Disk /var 97% full on db-1.example.net",
    ]


def _availability(alertwire: str | None, official: str | None, env: dict[str, str]) -> str | None:
    if official is None:
        return "the official `pagerduty` CLI is not installed"
    if alertwire is None:
        return "the `alertwire` console script is not installed"
    probe = subprocess.run(
        [alertwire, "trigger", "--help"], capture_output=True, env=env, check=False
    )
    if probe.returncode != 0:
        return "`alertwire trigger` does not exist yet (`alertwire trigger --help` fails)"
    return None


def _time_once(
    command: Sequence[str], env: dict[str, str], cpu: list[float] | None = None
) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    """Wall ms of one run; the child's CPU ms (user + system) is appended to ``cpu``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    elapsed = (time.perf_counter() - started) * 1000.0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return elapsed, done


def run_cli(
    base_url: str,
    *,
    rounds: int,
    check: Callable[[int], None] | None = None,
) -> ScenarioResult:
    result = ScenarioResult(
        key="cli",
        title="CLI: one `alertwire trigger`, start to exit",
        unit="ms",
        subject=SUBJECT,
        contenders=[SUBJECT, OFFICIAL],
        goals=GOALS,
        notes=[
            "`alertwire trigger` sends a real event to the local endpoint (http:// to"
            " loopback); `pagerduty --help` only starts the official CLI and prints help.",
            "Bytecode of both packages compiled beforehand, as `pip install` leaves it.",
            "Over https:// a real send also imports `ssl` and does the TLS handshake, which"
            ' http:// never loads (docs/cli.md, "Start-up cost", measures both).',
            f"'{FLOOR}': a process that imports every non-alertwire module a real"
            " `alertwire trigger` ends up with (listed by running one), and does nothing"
            " else: what the CLI would cost if alertwire's own modules, parsing and the"
            " send were free. Its own ratio to `pagerduty --help` (the last row of the ratios) is"
            " the best this design could reach: the goal leaves alertwire's own part (its"
            " modules, dataclasses, parser and send) only the gap between that ratio and 0.6x.",
        ],
    )
    env = {**os.environ, "ALERTWIRE_ROUTING_KEY": ROUTING_KEY}
    alertwire = _script("alertwire")
    official = _script("pagerduty")
    result.unavailable = _availability(alertwire, official, env)
    if result.unavailable is not None:
        return result
    assert alertwire is not None and official is not None
    ensure_bytecode("alertwire", "pagerduty")
    trigger = trigger_command(alertwire, base_url)
    probe = subprocess.run(
        [sys.executable, "-c", _MODULES_PROBE, *trigger[1:]],
        capture_output=True,
        env=env,
        check=False,
        text=True,
    )
    if probe.returncode != 0:
        result.unavailable = f"`{SUBJECT}` failed (exit {probe.returncode}): {probe.stderr[-300:]}"
        return result
    if check is not None:
        check(1)
    commands = {
        SUBJECT: trigger,
        OFFICIAL: [official, "--help"],
        FLOOR: [sys.executable, "-c", f"import {probe.stdout.strip()}"],
    }
    result.contenders = list(commands)
    # One untimed run each: the first start reads .pyc files from a cold page cache.
    for name, command in commands.items():
        _, done = _time_once(command, env)
        if done.returncode != 0:
            result.unavailable = f"`{name}` failed (exit {done.returncode}): {done.stderr.decode(errors='replace')[-300:]}"
            return result
        if check is not None and name == SUBJECT:
            check(1)
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for index in range(rounds):
        values: dict[str, float] = {}
        for name in rotated(list(commands), index):
            elapsed, done = _time_once(commands[name], env, cpu[name])
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed with exit {done.returncode}")
            if check is not None and name == SUBJECT:
                check(1)
            values[name] = elapsed
        result.rounds.append(values)
    result.events = 1
    result.extra = _cpu_tables(result, cpu)
    return result


def _cpu_tables(result: ScenarioResult, cpu: dict[str, list[float]]) -> str:
    """Each contender's CPU time, then the ratios by wall and by CPU time."""
    lines = ["| Contender | CPU (user + system), median | Min |", "|---|---:|---:|"]
    lines += [f"| {name} | {median(v):.0f} ms | {min(v):.0f} ms |" for name, v in cpu.items()]
    lines += ["", "| Ratio, median of rounds | Wall | CPU |", "|---|---:|---:|"]
    for one, other in ((SUBJECT, OFFICIAL), (SUBJECT, FLOOR), (FLOOR, OFFICIAL)):
        wall = [r[one] / r[other] for r in result.rounds if r.get(other)]
        spent = [a / b for a, b in zip(cpu[one], cpu[other], strict=True) if b > 0]
        if wall and spent:
            lines.append(f"| {one} / {other} | {median(wall):.2f}x | {median(spent):.2f}x |")
    return "\n".join(lines)
