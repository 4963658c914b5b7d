"""The outbox rules: heads per key, leases with owners, retries in the row, dead letters, pacing.

Decisions are tested against the real stores with a fake clock, so every
rule is checked where it is enforced: in SQL. ``outbox`` is the parametrised
fixture of :mod:`tests.support.outbox_backends`: each test runs once on SQLite and once
on PostgreSQL.
"""

from __future__ import annotations

import pytest

from alertwire import (
    BadRequest,
    BigPandaAlert,
    NetworkError,
    RateLimited,
    ResolveAlert,
    RetryPolicy,
    ServerError,
    TriggerAlert,
    Unauthorized,
    ValidationError,
)
from alertwire.outbox import Outbox, State
from alertwire.outbox.machine import Claimed, Machine, MarkDead, Reschedule
from tests.support.outbox_rules import KEY_A, KEY_B, Clock, lifecycle, machine


def test_only_the_head_of_each_key_is_claimable(outbox: Outbox) -> None:
    clock = Clock()
    a = lifecycle(outbox, "k1")
    b = lifecycle(outbox, "k2")
    m = machine(outbox, clock)
    claimed, _ = m.claim(10)
    assert [c.id for c in claimed] == [a[0], b[0]]
    # While the heads are leased, nothing else of those keys may go.
    assert m.claim(10) == ([], [])
    m.settle([m.delivered(claimed[0], 202)])
    claimed2, _ = m.claim(10)
    assert [c.id for c in claimed2] == [a[1]]


@pytest.mark.usefixtures("real_retry_delays")
def test_a_head_waiting_for_retry_blocks_only_its_key(outbox: Outbox) -> None:
    clock = Clock()
    a = lifecycle(outbox, "k1")
    b = lifecycle(outbox, "k2")
    m = machine(
        outbox, clock, retry=RetryPolicy(max_attempts=100, initial_backoff=10, max_backoff=10)
    )
    heads, _ = m.claim(10)
    failed = m.failed(heads[0], ServerError("boom", http_status=503))
    assert isinstance(failed, Reschedule)
    m.settle([failed, m.delivered(heads[1], 202)])
    nxt, _ = m.claim(10)
    assert [c.id for c in nxt] == [b[1]]  # k2 moves on, k1 waits in place
    clock.now = failed.not_before
    again, _ = m.claim(10)
    assert [c.id for c in again] == [a[0]]
    assert again[0].attempts == 2


def two_relays(outbox: Outbox, clock: Clock) -> tuple[Machine, Machine]:
    """relay-1 and relay-2 sharing ``outbox``, each's leases 30 s long."""
    return (
        machine(outbox, clock, owner="relay-1", lease_seconds=30),
        machine(outbox, clock, owner="relay-2", lease_seconds=30),
    )


def test_expired_lease_is_taken_over_and_the_old_owner_cannot_settle(outbox: Outbox) -> None:
    clock = Clock()
    lifecycle(outbox, "k1")
    first, second = two_relays(outbox, clock)
    (row,), _ = first.claim(1)
    assert second.claim(1) == ([], [])  # leased: nobody else
    clock.now += 31  # relay-1 stalled past its lease
    (taken,), _ = second.claim(1)
    assert taken.id == row.id and taken.attempts == 2
    # The stalled relay wakes up: its outcome is refused, the new owner's stands.
    assert first.settle([first.delivered(row, 202)]) == [False]
    assert second.settle([second.delivered(taken, 202)]) == [True]
    assert outbox.stats().delivered == 1


def test_an_outcome_takes_back_the_tries_its_relays_later_claims_counted(outbox: Outbox) -> None:
    """A relay whose send outlived its lease claims the event again (it does not send it
    twice: the send in flight settles it); that claim counted a try never made, and
    the outcome takes it back, whatever its kind, next to outcomes that take none."""
    clock = Clock()
    keys = ["retried", "dead", "released", "plain"]
    heads = [lifecycle(outbox, key)[0] for key in keys]
    m = machine(outbox, clock, lease_seconds=30)
    rows, _ = m.claim(10)
    assert [r.id for r in rows] == heads
    clock.now += 31  # every send outlived its lease
    again, _ = m.claim(10)
    assert [(r.id, r.attempts) for r in again] == [(h, 2) for h in heads]
    retried, dead, released, plain = rows
    outcomes = [
        m.failed(retried, ServerError("boom", http_status=503)),
        m.failed(dead, BadRequest("no")),
        m.release(released),
        m.failed(plain, ServerError("boom", http_status=503)),
    ]
    # One claim each taken back, but for `plain`'s (a retry that takes nothing back).
    reclaims = {retried.id: 1, dead.id: 1, released.id: 1}
    assert m.settle(outcomes, reclaims=reclaims) == [True] * 4
    (lost,) = outbox.dead()
    assert (lost.id, lost.attempts) == (dead.id, 1)  # the one try made
    nxt, _ = m.claim(10)
    # Tries made so far, plus this claim's: 1 + 1, the dead one's key moves on, 0 + 1
    # (released unsent), and 2 + 1 where nothing was taken back.
    assert [r.attempts for r in nxt] == [2, 1, 1, 3]
    assert nxt[1].order_key == dead.order_key and nxt[1].id != dead.id


def test_a_take_back_never_touches_a_row_another_relay_holds(outbox: Outbox) -> None:
    clock = Clock()
    lifecycle(outbox, "k1")
    first, second = two_relays(outbox, clock)
    (row,), _ = first.claim(1)
    clock.now += 31
    assert first.claim(1)[0][0].attempts == 2  # relay-1 again: a try not made
    clock.now += 31
    (taken,), _ = second.claim(1)  # relay-2 takes it over, and tries
    assert taken.attempts == 3
    # relay-1's send ends: its outcome, take-back included, is refused.
    assert first.settle([first.delivered(row, 202)], reclaims={row.id: 1}) == [False]
    assert second.settle([second.failed(taken, ServerError("boom", http_status=503))]) == [True]
    (nxt,), _ = second.claim(1)
    assert nxt.attempts == 4  # relay-2's row as relay-2 left it


def test_a_take_back_keeps_a_try_another_relay_made_meanwhile(outbox: Outbox) -> None:
    """relay-1's send outlives its lease; relay-2 takes the event over, tries, and
    reschedules it; relay-1's claim takes it back while relay-1's send is still in
    flight (not sent again). relay-1's outcome takes back that one claim, not the
    difference to its own claim's count: relay-2's try was made."""
    clock = Clock()
    lifecycle(outbox, "k1")
    first, second = two_relays(outbox, clock)
    (row,), _ = first.claim(1)
    clock.now += 31
    (taken,), _ = second.claim(1)
    assert second.settle([second.failed(taken, ServerError("boom", http_status=503))]) == [True]
    assert first.claim(1)[0][0].attempts == 3
    failed = first.failed(row, ServerError("boom", http_status=503))
    assert first.settle([failed], reclaims={row.id: 1}) == [True]
    (nxt,), _ = second.claim(1)
    assert nxt.attempts == 3  # two tries made (relay-1's, relay-2's), and this one


def test_a_take_back_never_leaves_fewer_than_no_tries(outbox: Outbox) -> None:
    """More taken back than the row counts (a double lapse, a takeover, a dead letter
    and a ``queue retry`` all within one send could come to that): the count stops at
    0 tries made, never below, so backoff and ``max_attempts`` never see a negative."""
    clock = Clock()
    lifecycle(outbox, "k1")
    m = machine(outbox, clock)
    (row,), _ = m.claim(1)
    assert row.attempts == 1
    failed = m.failed(row, ServerError("boom", http_status=503))
    assert m.settle([failed], reclaims={row.id: 3}) == [True]
    (nxt,), _ = m.claim(1)
    assert nxt.attempts == 1  # 0 stored, and this claim's


def test_non_retryable_answers_dead_letter_with_the_service_text(outbox: Outbox) -> None:
    clock = Clock()
    lifecycle(outbox, "k1")
    m = machine(outbox, clock)
    (row,), _ = m.claim(1)
    error = BadRequest(
        "PagerDuty refused the event (HTTP 400): Event object is invalid",
        errors=["'payload.source' is missing or blank"],
        body='{"errors":["\'payload.source\' is missing or blank"]}',
    )
    outcome = m.failed(row, error)
    assert isinstance(outcome, MarkDead)
    m.settle([outcome])
    (dead,) = outbox.dead()
    assert dead.id == row.id and dead.http_status == 400
    assert "'payload.source' is missing or blank" in dead.error
    # A dead head unblocks its key: the acknowledge is next.
    (nxt,), _ = m.claim(5)
    assert nxt.id == row.id + 1


def test_unauthorized_is_dead_too(outbox: Outbox) -> None:
    clock = Clock()
    lifecycle(outbox, "k1")
    m = machine(outbox, clock)
    (row,), _ = m.claim(1)
    assert isinstance(m.failed(row, Unauthorized("refused", http_status=401)), MarkDead)


def test_events_older_than_max_age_are_dead_lettered_not_sent(outbox: Outbox) -> None:
    clock = Clock()
    lifecycle(outbox, "k1")
    # The outbox stamped created_at with the real clock; put ours past the max age from it.
    created = outbox.stats().oldest_pending_at
    assert created is not None
    clock.now = created.timestamp() + 3601
    m = machine(outbox, clock, max_age=3600)
    fresh, expired = m.claim(10)
    assert fresh == []
    assert len(expired) == 1
    (dead,) = outbox.dead()
    assert "max age 3600" in dead.error
    # Never tried: said in words, and the try the claim counted is taken back.
    assert expired[0][1].reason == "max_age" and not expired[0][1].sent
    assert "expired before delivery" in dead.error and dead.attempts == 0


def test_an_event_tried_once_then_too_old_shows_one_try(outbox: Outbox) -> None:
    clock = Clock()
    lifecycle(outbox, "k1")
    created = outbox.stats().oldest_pending_at
    assert created is not None
    clock.now = created.timestamp() + 1
    m = machine(outbox, clock, max_age=3600)
    (row,), _ = m.claim(1)
    m.settle([Reschedule(row.id, clock.now, "HTTP 503", 503)])
    clock.now += 3601
    assert m.claim(1)[0] == []
    (dead,) = outbox.dead()
    assert dead.attempts == 1 and "s ago, 1 try)" in dead.error


@pytest.mark.usefixtures("real_retry_delays")
def test_retryable_failures_give_up_at_max_age(outbox: Outbox) -> None:
    clock = Clock()
    lifecycle(outbox, "k1")
    created = outbox.stats().oldest_pending_at
    assert created is not None
    clock.now = created.timestamp() + 3590
    m = machine(
        outbox,
        clock,
        max_age=3600,
        retry=RetryPolicy(max_attempts=1000, initial_backoff=20, max_backoff=20, max_elapsed=3600),
    )
    (row,), _ = m.claim(1)
    outcome = m.failed(row, NetworkError("no answer"))
    if isinstance(outcome, Reschedule):  # jitter chose a wait under 10 s
        assert outcome.not_before - clock.now <= 10
    else:
        assert "gave up after 1 tries" in outcome.error


def _created(outbox: Outbox) -> float:
    created = outbox.stats().oldest_pending_at
    assert created is not None
    return created.timestamp()


def test_a_resolve_past_max_age_is_still_sent_a_trigger_is_not(outbox: Outbox) -> None:
    clock = Clock()
    (trigger,) = outbox.enqueue_many([TriggerAlert("old page", dedup_key="k1")], routing_key=KEY_A)
    (resolve,) = outbox.enqueue_many([ResolveAlert("k2")], routing_key=KEY_A)
    clock.now = _created(outbox) + 2 * 86400
    m = machine(outbox, clock, max_age=86400, resolve_max_age=7 * 86400)
    fresh, expired = m.claim(10)
    # The resolve pages nobody and closes what its trigger opened before the outage.
    assert [c.id for c in fresh] == [resolve.id]
    assert [c.id for c, _ in expired] == [trigger.id]
    assert "within max age 86400 s" in outbox.dead()[0].error


def test_a_resolve_past_its_own_bound_is_dead_lettered_and_says_which_bound(
    outbox: Outbox,
) -> None:
    clock = Clock()
    outbox.enqueue_many([ResolveAlert("k1")], routing_key=KEY_A)
    clock.now = _created(outbox) + 3 * 86400
    m = machine(outbox, clock, max_age=3600, resolve_max_age=2 * 86400)
    fresh, expired = m.claim(10)
    assert fresh == [] and [mark.reason for _, mark in expired] == ["max_age"]
    (dead,) = outbox.dead()
    assert "within resolve max age 172800 s" in dead.error


def test_resolve_max_age_never_shortens_max_age(outbox: Outbox) -> None:
    clock = Clock()
    outbox.enqueue_many([ResolveAlert("k1")], routing_key=KEY_A)
    clock.now = _created(outbox) + 5000
    m = machine(outbox, clock, max_age=10_000, resolve_max_age=60)
    fresh, expired = m.claim(10)
    assert len(fresh) == 1 and expired == []


def _resolve_claimed(
    outbox: Outbox, clock: Clock, age: float, *, budget: float, **ages: float
) -> tuple[Machine, Claimed]:
    """A resolve claimed ``age`` seconds after it was queued, by a machine with these
    ages whose retry policy gives up after ``budget`` seconds (fixed 20 s backoff)."""
    outbox.enqueue_many([ResolveAlert("k1")], routing_key=KEY_A)
    clock.now = _created(outbox) + age
    retry = RetryPolicy(max_attempts=1000, initial_backoff=20, max_backoff=20, max_elapsed=budget)
    m = machine(outbox, clock, retry=retry, **ages)
    (row,), _ = m.claim(1)
    return m, row


@pytest.mark.usefixtures("real_retry_delays")
def test_a_resolve_past_max_age_keeps_being_retried_within_its_bound(outbox: Outbox) -> None:
    clock = Clock()
    m, row = _resolve_claimed(outbox, clock, 3590, budget=3600, max_age=3600, resolve_max_age=86400)
    clock.now += 11  # answered past max_age: a trigger would be given up here
    outcome = m.failed(row, NetworkError("no answer"))
    assert isinstance(outcome, Reschedule)
    # A trigger in the same place gives up (test_retryable_failures_give_up_at_max_age);
    # past the resolve's own bound, so does the resolve.
    m.settle([outcome])
    clock.now = _created(outbox) + 86400 - 5
    (row,), _ = m.claim(1)
    clock.now += 6  # the answer comes once the resolve's own bound has passed
    final = m.failed(row, NetworkError("no answer"))
    assert isinstance(final, MarkDead) and final.reason == "max_age"


@pytest.mark.usefixtures("real_retry_delays")
def test_a_retry_budget_shorter_than_max_age_bounds_resolves_too(outbox: Outbox) -> None:
    clock = Clock()
    m, row = _resolve_claimed(
        outbox, clock, 590, budget=600, max_age=86400, resolve_max_age=7 * 86400
    )
    clock.now += 11  # past the caller's own budget, well within max_age
    outcome = m.failed(row, NetworkError("no answer"))
    assert isinstance(outcome, MarkDead) and "gave up after 1 tries" in outcome.error


def test_a_bigpanda_ok_alert_is_a_resolve_too(outbox: Outbox) -> None:
    clock = Clock()
    outbox.enqueue_bigpanda(
        BigPandaAlert(status="ok", host="db1", check="disk"), token="t" * 32, app_key="app"
    )
    outbox.enqueue_bigpanda(
        BigPandaAlert(status="critical", host="db2", check="disk"), token="t" * 32, app_key="app"
    )
    clock.now = _created(outbox) + 2 * 86400
    m = machine(outbox, clock, max_age=86400)
    fresh, expired = m.claim(10)
    assert [b'"status":"ok"' in c.body for c in fresh] == [True]
    assert [b'"status":"critical"' in c.body for c, _ in expired] == [True]


@pytest.mark.usefixtures("real_retry_delays")
def test_a_429_pauses_its_routing_key_only(outbox: Outbox) -> None:
    clock = Clock()
    a = lifecycle(outbox, "k1", KEY_A)
    a2 = lifecycle(outbox, "k2", KEY_A)
    b = lifecycle(outbox, "k3", KEY_B)
    m = machine(outbox, clock)
    heads, _ = m.claim(10)
    assert [h.id for h in heads] == [a[0], a2[0], b[0]]
    limited = m.failed(heads[0], RateLimited("slow down", retry_after=30))
    assert isinstance(limited, Reschedule)
    assert limited.not_before == clock.now + 30 and limited.pause_route_until == clock.now + 30
    m.settle([limited, m.delivered(heads[1], 202), m.delivered(heads[2], 202)])
    nxt, _ = m.claim(10)
    # Routing key A is paused (k2's acknowledge waits too); B goes on.
    assert [c.id for c in nxt] == [b[1]]
    clock.now += 30
    later, _ = m.claim(10)
    assert sorted(c.id for c in later) == [a[0], a2[1]]


def test_pacing_spaces_claims_per_routing_key(outbox: Outbox) -> None:
    clock = Clock()
    a = [lifecycle(outbox, f"k{i}", KEY_A)[0] for i in range(3)]
    b = lifecycle(outbox, "kb", KEY_B)[0]
    m = machine(outbox, clock, rate_limit_per_minute=60)  # one per second per key
    first, _ = m.claim(10)
    assert [c.id for c in first] == [a[0], b]
    assert m.claim(10) == ([], [])
    assert m.next_wait(ceiling=5) == pytest.approx(1.0)
    clock.now += 1.0
    second, _ = m.claim(10)
    assert [c.id for c in second] == [a[1]]


def test_pacing_off_claims_every_head(outbox: Outbox) -> None:
    clock = Clock()
    heads = [lifecycle(outbox, f"k{i}", KEY_A)[0] for i in range(5)]
    m = machine(outbox, clock, rate_limit_per_minute=0)
    claimed, _ = m.claim(10)
    assert [c.id for c in claimed] == heads


def test_retry_dead_requeues_with_fresh_age(outbox: Outbox) -> None:
    clock = Clock()
    lifecycle(outbox, "k1")
    m = machine(outbox, clock)
    (row,), _ = m.claim(1)
    m.settle([m.failed(row, BadRequest("no"))])
    assert outbox.stats().dead == 1
    assert outbox.retry([row.id]) == 1
    assert outbox.retry([row.id]) == 0  # no longer dead
    stats = outbox.stats()
    assert (stats.dead, stats.pending) == (0, 3)


def test_a_dead_letter_a_later_delivery_superseded_is_retried_only_when_asked_for(
    outbox: Outbox,
) -> None:
    """Its key's resolve was delivered after it died: retried, the trigger would re-open
    the incident. A dead letter with nothing delivered after it is retried as before."""
    clock = Clock()
    trigger, ack, resolve = lifecycle(outbox, "k1")
    (alone,) = outbox.enqueue_many([TriggerAlert("x", dedup_key="k2")], routing_key=KEY_A)
    m = machine(outbox, clock)
    claimed, _ = m.claim(10)
    assert sorted(r.id for r in claimed) == [trigger, alone.id]
    m.settle([m.failed(r, BadRequest("no")) for r in claimed])
    for expected in (ack, resolve):
        (row,), _ = m.claim(10)
        assert row.id == expected
        m.settle([m.delivered(row, 202)])
    assert {d.id: d.superseded for d in outbox.dead()} == {trigger: True, alone.id: False}
    assert outbox.retry() == 1  # k2's only
    assert [d.id for d in outbox.dead()] == [trigger]
    assert outbox.retry([trigger]) == 0
    assert outbox.retry([trigger], superseded=True) == 1
    assert (outbox.stats().dead, outbox.stats().pending) == (0, 2)


@pytest.mark.parametrize("ids", [["1"], "1", 1, [1.0], [None], [True], [2**63], [0], [-1]])
def test_retry_takes_whole_numbers_only(outbox: Outbox, ids: object) -> None:
    """SQLite matched the id "1" to row 1 while the superseded check compared it with
    the number 1: a superseded trigger went back to pending (and would have re-opened
    its incident). A string "12" was read as the ids 1 and 2. An id past what a store
    holds raised a bare OverflowError; an id below 1 is none."""
    clock = Clock()
    trigger, ack, resolve = lifecycle(outbox, "k1")
    assert trigger == 1
    m = machine(outbox, clock)
    (row,), _ = m.claim(10)
    m.settle([m.failed(row, BadRequest("no"))])
    for expected in (ack, resolve):
        (row,), _ = m.claim(10)
        assert row.id == expected
        m.settle([m.delivered(row, 202)])
    with pytest.raises(ValidationError) as caught:
        outbox.retry(ids)  # type: ignore[arg-type]
    assert caught.value.field == "ids"
    assert [(d.id, d.superseded) for d in outbox.dead()] == [(trigger, True)]


@pytest.mark.parametrize("limit", ["3", -1, 2.5, True])
def test_dead_takes_a_whole_number_limit(outbox: Outbox, limit: object) -> None:
    """A str failed with a bare TypeError; -1 meant no limit on SQLite and an error on
    PostgreSQL."""
    with pytest.raises(ValidationError) as caught:
        outbox.dead(limit=limit)  # type: ignore[arg-type]
    assert caught.value.field == "limit"


@pytest.mark.parametrize("before", [None, "7d", 1700000000])
def test_purge_takes_an_aware_datetime_only(outbox: Outbox, before: object) -> None:
    with pytest.raises(ValidationError) as caught:
        outbox.purge_delivered(before=before)  # type: ignore[arg-type]
    assert caught.value.field == "before"


@pytest.mark.parametrize("base_url", [8765, b"http://127.0.0.1:8765"])
def test_an_event_base_url_that_is_not_a_string_is_refused_by_name(
    outbox: Outbox, base_url: object
) -> None:
    from alertwire import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"^base_url must be a URL string"):
        outbox.enqueue(TriggerAlert("x"), routing_key=KEY_A, base_url=base_url)  # type: ignore[arg-type]
    assert outbox.stats().pending == 0


def test_state_values_are_stable() -> None:
    # Both stores and existing files depend on these numbers.
    assert [int(s) for s in State] == [0, 1, 2, 3]
