"""The ingest benchmark runs on a tiny input: every contender measured, every event accepted.

No timed assertions (speed belongs in bench/): this only proves the scenario
works, so a full ``python -m bench.run`` cannot fail late. A non-202 answer
makes the runner raise, so a fast failure cannot look fast.
"""

from __future__ import annotations

from pathlib import Path

from bench._harness import make_event_specs
from bench.ingest_bench import BARE, BARE_GROUPED, SANDBOX, SUBJECT, run_ingest


def test_ingest_scenario_measures_every_contender(tmp_path: Path) -> None:
    one = run_ingest(make_event_specs(12), concurrency=1, rounds=1, workdir=tmp_path)
    many = run_ingest(make_event_specs(40), concurrency=4, rounds=1, workdir=tmp_path)
    assert one.contenders == [SUBJECT, SANDBOX, BARE]
    assert many.contenders == [SUBJECT, SANDBOX, BARE, BARE_GROUPED]
    for result in (one, many):
        assert result.unit == "events/s" and result.events in (12, 40)
        [values] = result.rounds
        assert set(values) == set(result.contenders)
        assert all(v > 0 for v in values.values())
        assert result.extra is not None and "Group commit:" in result.extra
        assert "p50" in result.extra
