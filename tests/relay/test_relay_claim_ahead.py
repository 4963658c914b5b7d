"""Claiming ahead: the relay holds up to ``concurrency`` claimed rows ready beyond its
free send slots, and gives back the ones it has not sent when it stops.

Both stores (the parametrised ``outbox`` fixture): a :class:`Release` puts a leased
row back to PENDING with its claim's try taken back, only for the lease's owner; a
relay stopped with rows ready leaves nothing leased and nothing counted as tried.
"""

from __future__ import annotations

import pytest

from alertwire import TriggerAlert
from alertwire.outbox import Outbox
from alertwire.outbox.machine import Machine, Release
from alertwire.relay import Relay
from tests.relay import test_relay_delivery as _relay
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.relay_upstream import Upstream
from tests.support.waiting import wait_for

SAFETY = 30.0  # seconds: a bound on a hang, never an expectation


def test_a_release_makes_the_row_pending_again_and_takes_back_its_try(outbox: Outbox) -> None:
    outbox.enqueue(TriggerAlert("x", dedup_key="k"), routing_key=KEY)
    machine = Machine(outbox.store, owner="relay-1", rate_limit_per_minute=0)
    (row,), _ = machine.claim(10)
    assert row.attempts == 1
    assert outbox.stats().leased == 1
    assert machine.settle([machine.release(row)]) == [True]
    stats = outbox.stats()
    assert (stats.pending, stats.leased, stats.delivered, stats.dead) == (1, 0, 0, 0)
    (again,), _ = machine.claim(10)  # due at once, and its first try is still its first
    assert (again.id, again.attempts) == (row.id, 1)


def test_only_the_lease_owner_can_release(outbox: Outbox) -> None:
    outbox.enqueue(TriggerAlert("x", dedup_key="k"), routing_key=KEY)
    owner = Machine(outbox.store, owner="relay-1", rate_limit_per_minute=0)
    other = Machine(outbox.store, owner="relay-2", rate_limit_per_minute=0)
    (row,), _ = owner.claim(10)
    assert other.settle([Release(row.id)]) == [False]
    assert outbox.stats().leased == 1


def test_claims_ahead_only_when_the_lease_outlasts_a_wait_and_a_send(outbox: Outbox) -> None:
    assert Relay(outbox, concurrency=4, lease_seconds=60, timeout=10).claim_ahead == 4
    assert Relay(outbox, concurrency=4, lease_seconds=20, timeout=10).claim_ahead == 0


def test_a_stop_gives_back_the_rows_claimed_ahead(outbox: Outbox, upstream: Upstream) -> None:
    upstream.delay = 0.5
    outbox.enqueue_many(
        [TriggerAlert(f"slow {i}", dedup_key=f"k{i}") for i in range(3)], routing_key=KEY
    )
    relay = Relay(
        outbox, pagerduty_url=upstream.url, rate_limit_per_minute=0, concurrency=1
    )  # one slot, one row ready
    relay.start()
    wait_for("the first send", lambda: upstream.begun == 1)
    assert outbox.stats().leased == 2  # the one in flight and the one ready, one claim
    report = relay.stop(timeout=SAFETY)
    assert report is not None and (report.delivered, report.lost_leases) == (1, 0)
    stats = outbox.stats()
    assert (stats.pending, stats.leased, stats.delivered) == (2, 0, 1)
    assert [a.key for a in upstream.accepted()] == ["k0"]
    machine = Machine(outbox.store, owner="after", rate_limit_per_minute=0)
    rows, _ = machine.claim(10)
    assert [(r.dedup_key, r.attempts) for r in rows] == [("k1", 1), ("k2", 1)]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_claiming_ahead_keeps_each_keys_order(
    outbox: Outbox, upstream: Upstream, concurrency: int
) -> None:
    _relay.enqueue_lifecycles(outbox, keys=7)
    report = _relay.relay(outbox, upstream, concurrency=concurrency).run(drain=True)
    assert report.delivered == 21
    assert all(
        actions == list(_relay.ACTIONS) for actions in _relay.per_key(upstream.accepted()).values()
    )
    assert upstream.overlapping_keys == 0  # never two of one key in flight
    assert upstream.max_inflight <= concurrency  # ready rows wait for a free slot
