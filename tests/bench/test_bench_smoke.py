"""The benchmark suite runs end to end on a tiny input and produces numbers and a table.

No timed assertions: speed is measured by ``python -m bench.run``, never
asserted here. What is asserted is that every scenario really sent its
events (the endpoint counts them) and that the report is well formed.
"""

from __future__ import annotations

import http.client
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._harness import Goal, ScenarioResult, make_event_specs  # noqa: E402
from bench.endpoint import ACCEPTED_BODY, Endpoint  # noqa: E402
from bench.run import Sizes, main, run_suite  # noqa: E402

from bench import report  # noqa: E402

TINY = Sizes(
    sequential_events=5,
    concurrent_events=8,
    rounds=2,
    cli_rounds=1,
    enqueue_single_events=3,
    enqueue_batched_events=120,
    relay_events=30,
    relay_rounds=1,
    memory_pending=150,
    memory_budget=3.0,
)


#: Scenarios 1-6 (bench/sequential, concurrency, cli_start, outbox_bench, relay_memory).
#: The PostgreSQL and ingest scenarios belong to their own modules and are not run here.
SCENARIOS = ("sequential", "concurrent", "cli", "enqueue", "relay", "memory")


@pytest.fixture(scope="module")
def results() -> list[ScenarioResult]:
    return run_suite(TINY, only=SCENARIOS)


def test_endpoint_answers_202_on_keep_alive_and_counts() -> None:
    with Endpoint() as endpoint:
        conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
        try:
            for _ in range(3):
                conn.request("POST", "/v2/enqueue", body=b"{}", headers={"Content-Type": "x"})
                answer = conn.getresponse()
                assert answer.status == 202
                assert answer.read() == ACCEPTED_BODY
            conn.request("GET", "/nowhere")
            missing = conn.getresponse()
            missing.read()
            assert missing.status == 404
        finally:
            conn.close()
        assert endpoint.posts() == 3


def test_every_rate_scenario_produces_positive_numbers(results: list[ScenarioResult]) -> None:
    by_key = {r.key: r for r in results}
    expected_rounds = {
        "sequential": TINY.rounds,
        "concurrent": TINY.rounds,
        "enqueue-single": TINY.rounds,
        "enqueue-batched": TINY.rounds,
        "relay": TINY.relay_rounds,
    }
    for key, rounds in expected_rounds.items():
        result = by_key[key]
        assert result.unavailable is None
        assert len(result.rounds) == rounds
        for name in result.contenders:
            values = result.values(name)
            assert len(values) == rounds, name
            assert all(v > 0 and math.isfinite(v) for v in values), name
        for other in result.contenders[1:]:
            ratio = result.ratio(other)
            assert ratio is not None and ratio > 0
        if key in ("sequential", "concurrent"):
            for name in result.contenders:
                assert len(result.cpu_us[name]) == rounds
                assert all(v > 0 for v in result.cpu_us[name])


def test_enqueue_reports_latency_percentiles(results: list[ScenarioResult]) -> None:
    for result in results:
        if result.key.startswith("enqueue"):
            assert result.extra is not None
            assert "p50" in result.extra and "p99" in result.extra


def test_memory_scenario_reports_a_peak_from_a_real_relay(results: list[ScenarioResult]) -> None:
    (memory,) = [r for r in results if r.key == "memory"]
    assert memory.events == TINY.memory_pending
    (peak,) = memory.values("alertwire relay")
    assert 5 < peak < 10_000  # MiB: a real process, not a placeholder


def test_send_queue_scenario_measures_a_real_cli_run_against_both_goals(tmp_path: Path) -> None:
    from bench.send_queue_bench import run_send_queue

    rate, memory = run_send_queue(lines=40, rounds=2, workdir=tmp_path)
    assert rate.events == memory.events == 40
    assert len(rate.values(rate.subject)) == len(memory.values(memory.subject)) == 2
    assert all(v > 0 and math.isfinite(v) for v in rate.values(rate.subject))
    assert all(5 < v < 10_000 for v in memory.values(memory.subject))  # MiB: a real process
    assert [g.text() for g in rate.goals + memory.goals] == [">= 20000 lines/s", "<= 95.4 MiB"]
    table = report.results_table([rate, memory])
    assert ">= 20000 lines/s" in table and "<= 95.4 MiB" in table


def test_cli_scenario_either_measures_or_says_why(results: list[ScenarioResult]) -> None:
    (cli,) = [r for r in results if r.key == "cli"]
    if cli.unavailable is None:
        assert len(cli.rounds) == TINY.cli_rounds
        assert all(v > 0 for r in cli.rounds for v in r.values())
    else:
        assert cli.unavailable.strip()
        assert cli.rounds == []


def test_import_scenario_measures_both_imports_against_a_bare_start() -> None:
    from bench.import_time import run_import

    results = run_import(rounds=2)
    assert [r.subject for r in results] == ["import alertwire", "import alertwire.airflow"]
    for result in results:
        assert len(result.values(result.subject)) == 2
        assert all(math.isfinite(v) for v in result.values(result.subject))
        assert [g.text() for g in result.goals] == ["<= 40 ms"]
        assert result.extra is not None and "CPU" in result.extra
    row = report.results_table(results).splitlines()[2]
    assert row.startswith("| `import alertwire`, above `python -c pass` |")
    assert "<= 40 ms" in row


def test_an_absolute_goal_is_on_the_subject_median() -> None:
    result = ScenarioResult(
        key="k",
        title="t",
        unit="ms",
        subject="a",
        contenders=["a"],
        goals=[Goal("a", "<=", 40, unit="ms")],
    )
    result.rounds = [{"a": 50.0}, {"a": 45.0}, {"a": 41.0}]
    assert "| <= 40 ms | **no** |" in report.results_table([result])
    result.rounds = [{"a": 5.0}]
    assert "| <= 40 ms | yes |" in report.results_table([result])


def test_markdown_table_has_a_row_per_goal(results: list[ScenarioResult]) -> None:
    table = report.results_table(results)
    lines = table.splitlines()
    assert lines[0].startswith("| Scenario |")
    assert len(lines) == 2 + sum(max(len(r.contenders) - 1, 1) for r in results)
    assert "not available" not in table or any(r.unavailable for r in results)
    page = report.markdown(results, machine=report.machine_info(), command="test")
    assert table in page
    assert "## Method" in page


def test_goal_direction() -> None:
    assert Goal("x", ">=", 1.3).met(1.31) is True
    assert Goal("x", ">=", 1.3).met(1.29) is False
    assert Goal("x", "<=", 1.0).met(0.9) is True
    assert Goal("x", "<=", 1.0).met(1.1) is False
    assert Goal("x", "<=", 1.0).met(None) is None


def test_ratio_is_median_of_per_round_ratios() -> None:
    result = ScenarioResult(
        key="k", title="t", unit="events/s", subject="a", contenders=["a", "b"], goals=[]
    )
    result.rounds = [{"a": 10, "b": 5}, {"a": 30, "b": 10}, {"a": 8, "b": 8}]
    assert result.ratio("b") == 2.0
    assert result.median("a") == 10


def test_same_events_for_everyone() -> None:
    specs = make_event_specs(4)
    assert len(specs) == 4
    assert {frozenset(s) for s in specs} == {
        frozenset({"summary", "source", "severity", "custom_details"})
    }


def test_quick_command_writes_page_and_plot(tmp_path: Path) -> None:
    assert main(["--quick", "--only", "sequential", "--output-dir", str(tmp_path)]) == 0
    page = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert "| Sequential sends, one connection | alertwire vs pagerduty (official) |" in page
    image = (tmp_path / "img" / "benchmarks.png").read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
