"""Turn scenario results into ``docs/benchmarks.md`` and ``docs/img/benchmarks.png``.

The markdown is generated whole on every run (never hand-edited), so the
figures in the docs are always the ones this machine last measured, next to
the machine they were measured on.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ._harness import ScenarioResult

__all__ = ["machine_info", "markdown", "plot", "results_table"]

_PACKAGES = (
    "alertwire",
    "pagerduty",
    "pdpyras",
    "urllib3",
    "aiohttp",
    "orjson",
    "httpx2",
    "requests",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info() -> dict[str, str]:
    versions = []
    for name in _PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    try:
        load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{_cpu_model()}, {os.cpu_count()} logical CPUs",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": ", ".join(versions),
        "load": load,
    }


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "ms":
        return f"{value:,.0f} ms" if abs(value) >= 100 else f"{value:,.1f} ms"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    return f"{value:,.0f}/s"


def _spread(values: Sequence[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{min(values):.2f}–{max(values):.2f}"


def results_table(results: Sequence[ScenarioResult]) -> str:
    """The headline table: the subject against each contender, ratio = median of per-round ratios."""
    lines = [
        "| Scenario | Compared | Ratio (median) | Range over rounds | Goal | Met |",
        "|---|---|---:|---:|---:|:---:|",
    ]
    for result in results:
        goals = {g.against: g for g in result.goals}
        others = [c for c in result.contenders if c != result.subject]
        if not others:
            shown = _fmt(result.median(result.subject), result.unit)
            if result.unavailable is not None:
                shown = "not available"
            goal = goals.get(result.subject)
            goal_text, mark = "–", "–"
            if goal is not None:
                goal_text = goal.text()
                met = goal.met(result.median(result.subject))
                mark = "–" if met is None else ("yes" if met else "**no**")
            values = result.values(result.subject)
            spread = (
                f"{_fmt(min(values), result.unit)}–{_fmt(max(values), result.unit)}"
                if len(values) > 1
                else "–"
            )
            lines.append(
                f"| {result.title} | {result.subject} (absolute: {shown}) | – | {spread}"
                f" | {goal_text} | {mark} |"
            )
            continue
        for other in others:
            pair = f"{result.subject} vs {other}"
            goal = goals.get(other)
            goal_text = goal.text() if goal is not None else "–"
            if result.unavailable is not None:
                lines.append(f"| {result.title} | {pair} | not available | – | {goal_text} | – |")
                continue
            ratio = result.ratio(other)
            met = goal.met(ratio) if goal is not None else None
            mark = "–" if met is None else ("yes" if met else "**no**")
            shown = "–" if ratio is None else f"{ratio:.2f}x"
            lines.append(
                f"| {result.title} | {pair} | {shown}"
                f" | {_spread(result.ratios(other))} | {goal_text} | {mark} |"
            )
    return "\n".join(lines)


def _absolute_table(result: ScenarioResult) -> str:
    better = "higher" if result.higher_is_better else "lower"
    cpu = bool(result.cpu_us)
    head = f"| Contender | Median ({better} is better) | Min | Max |"
    rule = "|---|---:|---:|---:|"
    if cpu:
        head += " Client CPU per event (median) |"
        rule += "---:|"
    lines = [head, rule]
    for name in result.contenders:
        values = result.values(name)
        row = (
            f"| {name} | {_fmt(result.median(name), result.unit)}"
            f" | {_fmt(min(values) if values else None, result.unit)}"
            f" | {_fmt(max(values) if values else None, result.unit)} |"
        )
        if cpu:
            spent = result.cpu_us.get(name)
            row += f" {statistics.median(spent):,.0f} µs |" if spent else " – |"
        lines.append(row)
    return "\n".join(lines)


def markdown(
    results: Sequence[ScenarioResult],
    *,
    machine: dict[str, str],
    command: str,
    plot_path: str | None = "img/benchmarks.png",
    pending: Sequence[str] = (),
) -> str:
    """The whole generated page."""
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python -m bench.run`; do not edit by hand. -->",
        "",
        f"Measured {machine['date']} with `{command}` on one machine, every contender"
        " against the same local keep-alive endpoint (a raw-asyncio HTTP/1.1 server in its"
        " own process that answers every POST with PagerDuty's canned 202).",
        "",
        f"- CPU: {machine['cpu']}",
        f"- OS: {machine['os']}; {machine['python']}",
        f"- Packages: {machine['packages']}",
        f"- Load average at start: {machine['load']} (the machine is shared; see Method)",
        "",
        "## Results",
        "",
        "Ratios are the subject's figure (the first contender of each scenario, highlighted"
        " in the plot) divided by the other contender's, measured in the same"
        " round seconds apart, then the median over rounds. For rates (events/s) higher"
        " is better; for the CLI (wall time) lower is better.",
        "",
        results_table(results),
        "",
    ]
    if plot_path:
        out += [f"![Benchmark medians]({plot_path})", ""]
    for result in results:
        out += [f"### {result.title}", ""]
        if result.unavailable is not None:
            out += [f"Not available in this run: {result.unavailable}.", ""]
            continue
        per = result.per_run or {
            "ms": "one event per run",
            "MiB": f"{result.events:,} pending events",
        }.get(result.unit, f"{result.events:,} events per run")
        rounds = (
            f"{len(result.rounds)} rounds, {per}, contenders in rotating order."
            if len(result.contenders) > 1
            else f"{len(result.rounds)} run(s), {per}."
        )
        out += [
            rounds,
            "",
            _absolute_table(result),
            "",
        ]
        if result.extra:
            out += [result.extra, ""]
        out += [f"- {note}" for note in result.notes]
        out.append("")
    if pending:
        out += ["## Not yet measured", ""]
        out += [f"- {item}" for item in pending]
        out.append("")
    out += [
        "## Method",
        "",
        "- One command runs everything: `python -m bench.run` (add `--quick` for a"
        " seconds-long smoke run with tiny inputs; its figures mean nothing).",
        "- The endpoint runs in a separate process, so it never shares the GIL with the"
        " client being measured, and counts the POSTs it answers: after every timed run"
        " the bench checks that exactly the expected number of events arrived.",
        "- Each contender is set up fresh in every round and warmed up (connections"
        " opened, lazy imports done) before the timed window; contenders run in a"
        " different order each round.",
        "- Before each timed run of the sequential and concurrent scenarios the heap is"
        " collected and frozen (`gc.collect(); gc.freeze()`), for every contender alike,"
        " so no contender pays for garbage an earlier one left.",
        "- Every contender sends the same events: `trigger` with a summary, source,"
        " severity and a small `custom_details` object, no dedup key.",
        "- The machine is shared with other work, so absolute rates wander between runs;"
        " the ratios, measured side by side, are the figures to compare. Client CPU per"
        " event (process time of the measuring process, all its threads, divided by the"
        " events sent) is shown for context: it does not count time spent waiting for a"
        " core, so it moves less with the load.",
        "",
    ]
    return "\n".join(out)


def plot(results: Sequence[ScenarioResult], path: Path) -> None:
    """One horizontal bar panel per scenario: the median of each contender, alertwire highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if r.unavailable is None and r.rounds]
    if not shown:
        shown = list(results[:1])
    fig, axes = plt.subplots(
        len(shown), 1, figsize=(8, 1.2 + 1.1 * sum(max(len(r.contenders), 1) for r in shown) / 1.6)
    )
    if len(shown) == 1:
        axes = [axes]
    for ax, result in zip(axes, shown, strict=True):
        names = list(reversed(result.contenders))
        medians = [result.median(n) or 0.0 for n in names]
        colours = ["#d9480f" if n == result.subject else "#868e96" for n in names]
        bars = ax.barh(names, medians, color=colours)
        top = max(medians) if medians and max(medians) > 0 else 1.0
        ax.set_xlim(0, top * 1.35)
        for bar, name, value in zip(bars, names, medians, strict=True):
            label = _fmt(value, result.unit) if value else "n/a"
            if name != result.subject and result.ratio(name) is not None:
                label += f"  ({result.subject}: {result.ratio(name):.2f}x)"
            ax.text(
                bar.get_width() + top * 0.01,
                bar.get_y() + bar.get_height() / 2,
                label,
                va="center",
                fontsize=8,
            )
        better = "higher" if result.higher_is_better else "lower"
        unit = {"ms": "wall time, ms", "MiB": "peak RSS, MiB"}.get(result.unit, result.unit)
        ax.set_title(result.title, fontsize=9)
        ax.set_xlabel(f"median {unit} ({better} is better)", fontsize=8)
        ax.tick_params(axis="both", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
