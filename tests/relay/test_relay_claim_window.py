"""The claim-ahead window grows while the store is the bottleneck and shrinks back.

A relay whose sends finish before its commit does (a fast upstream, an fsync per
cycle) claims more rows per cycle, up to ``claim_ahead_max``: what the lease
allows (``k * concurrency`` ready rows wait at most ``k`` sends for a slot, so the
lease must outlast ``k + 1`` timeouts). The rules it must keep are the ones of
:mod:`tests.relay.test_relay_claim_ahead`: per-key order, never more sends than
``concurrency`` at once, rows not sent at a stop given back.
"""

from __future__ import annotations

from alertwire.outbox import Outbox
from alertwire.relay import Relay
from tests.relay import test_relay_delivery as _relay
from tests.support.relay_upstream import Upstream


def test_the_window_may_grow_only_as_far_as_the_lease_covers(outbox: Outbox) -> None:
    def most(lease: float) -> int:
        return Relay(outbox, concurrency=4, lease_seconds=lease, timeout=10).claim_ahead_max

    assert most(20) == 0  # no claiming ahead at all (claim_ahead 0)
    assert most(25) == 4  # one round ready: a wait of one send, then its own
    assert most(35) == 8
    assert most(60) == 12  # the defaults: 3 rounds (40 s < 60 s)
    assert most(3600) == 12  # never more than 3 rounds, however long the lease


def test_the_window_doubles_while_starved_and_halves_while_rows_wait(outbox: Outbox) -> None:
    loop = Relay(outbox, concurrency=4, lease_seconds=60, timeout=10)._delivery
    ahead = [loop._ahead]
    for starved, full, waiting in [
        (True, True, 0),  # the slots sat idle through a commit, with a backlog: grow
        (True, True, 0),
        (True, True, 0),  # at claim_ahead_max
        (True, False, 0),  # idle but no backlog: more claims would find nothing
        (False, True, 3),  # a few rows waited for a slot: leave it
        (False, True, 4),  # a round of sends' worth waited: the sends are the bottleneck
        (False, True, 9),
        (False, True, 9),  # never below claim_ahead
    ]:
        loop._resize(starved=starved, full=full, waiting=waiting)
        ahead.append(loop._ahead)
    assert ahead == [4, 8, 12, 12, 12, 12, 6, 4, 4]


def test_a_grown_window_keeps_each_keys_order_and_the_send_limit(
    outbox: Outbox, upstream: Upstream
) -> None:
    _relay.enqueue_lifecycles(outbox, keys=40)
    relay = _relay.relay(outbox, upstream, concurrency=2)
    assert relay.claim_ahead_max == 6
    report = relay.run(drain=True)
    assert report.delivered == 120
    assert all(
        actions == list(_relay.ACTIONS) for actions in _relay.per_key(upstream.accepted()).values()
    )
    assert len(_relay.per_key(upstream.accepted())) == 40
    assert upstream.overlapping_keys == 0  # never two of one key in flight
    assert upstream.max_inflight <= 2  # ready rows wait for a free slot
    stats = outbox.stats()
    assert (stats.pending, stats.leased, stats.delivered) == (0, 0, 120)
