"""The ring guard's rules, as pure logic (the relays themselves: tests/ingest/test_ingest_http.py)."""

from __future__ import annotations

from alertwire._relay_loop import MAX_PATH, RelayLoopGuard, parse_path

A, B, C = ("a" * 32, "b" * 32, "c" * 32)


def test_its_own_mark_is_refused_as_itself_a_downstream_one_as_a_ring() -> None:
    guard = RelayLoopGuard(A)
    assert guard.refusal("pagerduty", A) == "itself"
    assert guard.refusal("pagerduty", B) is None
    guard.learn("pagerduty", f"{B},{C}")
    assert guard.refusal("pagerduty", B) == "ring"
    assert guard.refusal("pagerduty", C) == "ring"
    # What lies behind the PagerDuty upstream says nothing about the BigPanda one.
    assert guard.refusal("bigpanda", B) is None


def test_an_answer_replaces_what_was_learned_so_a_mended_ring_is_forgotten() -> None:
    guard = RelayLoopGuard(A)
    guard.learn("pagerduty", f"{B},{C}")
    guard.learn("pagerduty", None)  # the upstream is the service now
    assert guard.downstream("pagerduty") == frozenset()
    assert guard.refusal("pagerduty", B) is None


def test_the_path_is_its_mark_then_what_lies_behind_it_bounded() -> None:
    guard = RelayLoopGuard(A)
    assert guard.path("pagerduty") == A
    guard.learn("pagerduty", f"{C},{B},{A}")
    assert guard.path("pagerduty") == f"{A},{B},{C}"
    many = [f"{n:032x}" for n in range(1, 40)]
    guard.learn("pagerduty", ",".join(many))
    assert len(guard.path("pagerduty").split(",")) == MAX_PATH


def test_anything_but_marks_in_the_header_is_ignored() -> None:
    assert parse_path(None) == frozenset()
    assert parse_path("") == frozenset()
    assert parse_path(f" {B} ,nonsense,{'G' * 32},{A}x,{C}") == {B, C}
    assert len(parse_path(",".join(f"{n:032x}" for n in range(100)))) == MAX_PATH


def test_a_fresh_guard_has_a_random_mark() -> None:
    first, second = RelayLoopGuard(), RelayLoopGuard()
    assert first.mark != second.mark and parse_path(first.mark) == {first.mark}
