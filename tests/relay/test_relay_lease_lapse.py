"""A send that outlives its lease: the relay claims its event again, and must not send it
twice while the first send is in flight.

An expired lease is claimable by any relay, this one included, so on a loaded
machine (an event loop stalled past ``--lease``) a cycle's claim can hand back an
event this relay is still sending. Sending it again was a duplicate page, and the
two outcomes in one batch crashed the relay. The relay's clock (the machine's, the
only one leases are read by) is pushed past the lease while the endpoint holds its
answer, so the lapse happens at a point the test chooses, on a real outbox and a
real socket; docs/relay.md (leases) says what the relay does then.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from alertwire import RetryPolicy, ServerError, TriggerAlert
from alertwire.outbox import Outbox
from alertwire.outbox.machine import new_owner
from alertwire.outbox.metrics import OutboxMetrics
from alertwire.relay import Relay
from alertwire.transport import AsyncioTransport, Request, Response
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.relay_upstream import OK, Fault, Upstream
from tests.support.waiting import wait_for

SAFETY = 30.0  # seconds: a bound on a hang, never an expectation
LEASE = 60.0


class HeldUpstream:
    """An :class:`Upstream` whose answers (``answer``) wait until the test lets them go:
    the first until ``gate`` is set, the second (with ``later``) until ``later`` is."""

    def __init__(self, upstream: Upstream, answer: Fault = OK) -> None:
        self.upstream = upstream
        self.answer = answer
        self.gate = threading.Event()
        self.later = threading.Event()
        self.later.set()
        upstream.plan = self._plan

    def _plan(self, seq: int, body: dict[str, Any]) -> Fault:
        self.gate.wait(SAFETY)
        if seq == 2:
            self.later.wait(SAFETY)
        return self.answer

    def open(self) -> None:
        """Every answer goes (the end of a test, whatever happened)."""
        self.gate.set()
        self.later.set()


class Clock:
    """The relay's wall clock, which the test may push forward (leases are read by it)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


def relay_with(
    outbox: Outbox, upstream: Upstream, clock: Clock, **options: Any
) -> tuple[Relay, OutboxMetrics]:
    metrics = OutboxMetrics(outbox.store)
    settings: dict[str, Any] = {"concurrency": 2, "timeout": SAFETY, **options}
    relay = Relay(
        outbox,
        pagerduty_url=upstream.url,
        rate_limit_per_minute=0,
        lease_seconds=LEASE,
        poll_interval=0.05,
        metrics=metrics,
        **settings,
    )
    # The relay's rules on the test's clock: its leases lapse when the test says.
    relay.machine = dataclasses.replace(relay.machine, clock=clock)
    relay._delivery.machine = relay.machine
    return relay, metrics


def stored_attempts(target: str, event_id: int) -> int:
    """The row's ``attempts`` as the store holds it (no public API shows a delivered
    row's): the tries the next retry's backoff and ``max_attempts`` count."""
    if target.startswith(("postgres://", "postgresql://")):
        import psycopg

        with psycopg.connect(target) as pg:
            row = pg.execute(
                "SELECT attempts FROM alertwire_events WHERE id = %s", (event_id,)
            ).fetchone()
    else:
        with contextlib.closing(sqlite3.connect(target)) as lite:
            row = lite.execute("SELECT attempts FROM events WHERE id = ?", (event_id,)).fetchone()
    assert row is not None
    return int(row[0])


def lapsed(metrics: OutboxMetrics) -> float:
    value = metrics.registry.get_sample_value(
        "alertwire_relay_leases_lapsed_total", {"destination": "pagerduty"}
    )
    return value or 0.0


def reclaimed(caplog: pytest.LogCaptureFixture) -> bool:
    return any("event=lease_lapsed" in r.getMessage() for r in list(caplog.records))


def test_an_event_claimed_again_while_in_flight_is_sent_once(
    outbox: Outbox, outbox_target: str, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="alertwire")
    held = HeldUpstream(upstream)
    clock = Clock()
    (event,) = outbox.enqueue_many([TriggerAlert("slow", dedup_key="k")], routing_key=KEY)
    relay, metrics = relay_with(outbox, upstream, clock)
    relay.start()
    try:
        wait_for("the first send", lambda: upstream.begun == 1)
        clock.ahead = LEASE + 1  # the send has now outlived its lease
        wait_for(
            "the relay to claim the event again",
            lambda: reclaimed(caplog) or upstream.begun > 1,
        )
        assert upstream.begun == 1  # not sent a second time
        (line,) = [r for r in caplog.records if "event=lease_lapsed" in r.getMessage()]
        assert line.levelno == logging.WARNING
        assert f"id={event.id}" in line.getMessage()
        assert "--lease" in line.getMessage()
        assert lapsed(metrics) == 1
        held.gate.set()
        wait_for("the delivery to be recorded", lambda: outbox.stats().delivered == 1)
    finally:
        held.gate.set()
        report = relay.stop(timeout=SAFETY)  # raises what crashed the relay's thread
    assert report is not None
    assert (report.delivered, report.lost_leases, report.leases_lapsed) == (1, 0, 1)
    # The claim that renewed the lease counted a try; the delivery took it back.
    assert stored_attempts(outbox_target, event.id) == upstream.begun == 1
    stats = outbox.stats()
    assert (stats.pending, stats.leased, stats.delivered, stats.dead) == (0, 0, 1, 0)
    assert [a.key for a in upstream.accepted()] == ["k"]
    assert upstream.begun == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_retry_after_a_lapsed_lease_counts_only_the_tries_made(
    outbox: Outbox, outbox_target: str, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """The send in flight fails (retryably) after its event was claimed again: the
    retry is recorded with the tries made, so the next try is the second (its backoff
    counts two, not three) and ``max_attempts=3`` allows three sends, not two."""
    caplog.set_level(logging.INFO, logger="alertwire")
    held = HeldUpstream(upstream, Fault(503))
    held.later.clear()  # the second send waits too: the count is read while it is out
    clock = Clock()
    (event,) = outbox.enqueue_many([TriggerAlert("slow", dedup_key="k")], routing_key=KEY)
    policy = RetryPolicy(max_attempts=3, max_elapsed=3600)
    relay, metrics = relay_with(outbox, upstream, clock, retry=policy)
    relay.start()
    try:
        wait_for("the first send", lambda: upstream.begun == 1)
        clock.ahead = LEASE + 1
        wait_for(
            "the relay to claim the event again",
            lambda: reclaimed(caplog) or upstream.begun > 1,
        )
        assert upstream.begun == 1 and lapsed(metrics) == 1
        held.gate.set()  # 503: a retry, due at once (the tests' retries wait 0 s)
        wait_for("the second send", lambda: upstream.begun == 2)
        # Two tries made (the second one out now), two counted.
        assert stored_attempts(outbox_target, event.id) == 2
        held.later.set()
        wait_for("the event dead-lettered", lambda: outbox.stats().dead == 1)
    finally:
        held.open()
        report = relay.stop(timeout=SAFETY)
    assert report is not None
    assert (report.retried, report.dead, report.lost_leases, report.leases_lapsed) == (2, 1, 0, 1)
    assert upstream.begun == 3
    tried = [
        r.getMessage().split(" attempt=")[1].split()[0]
        for r in caplog.records
        if "event=attempt_failed" in r.getMessage()
    ]
    assert tried == ["1", "2", "3"]  # what each retry's backoff was computed from
    (dead,) = outbox.dead()
    assert (dead.id, dead.attempts) == (event.id, 3)
    assert dead.error.startswith("gave up after 3 tries")
    assert stored_attempts(outbox_target, event.id) == 3


def test_a_ready_event_whose_lease_ran_out_is_not_sent(
    outbox: Outbox, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Claimed ahead, an event waits for a send slot; if its lease runs out meanwhile
    (here the one slot is held by a slow send; in service, a store outage), another
    relay may claim it and send it, so this relay must not send it as well."""
    caplog.set_level(logging.WARNING, logger="alertwire")
    held = HeldUpstream(upstream)
    clock = Clock()
    events = [TriggerAlert("slow", dedup_key="a"), TriggerAlert("waiting", dedup_key="b")]
    _, waiting = outbox.enqueue_many(events, routing_key=KEY)
    # One slot, and a lease that covers a wait for it (lease > 2 x timeout): claims ahead.
    relay, metrics = relay_with(outbox, upstream, clock, concurrency=1, timeout=LEASE / 3)
    relay.start()
    try:
        wait_for("one sent, one ready", lambda: upstream.begun == 1 and outbox.stats().leased == 2)
        clock.ahead = LEASE + 1  # both leases ran out: another relay takes both over
        other = dataclasses.replace(relay.machine, owner=new_owner())
        taken, _ = other.claim(10)
        assert sorted(row.dedup_key or "" for row in taken) == ["a", "b"]
        held.gate.set()  # the slot frees up; the ready event's lease is over
        wait_for(
            "the ready event dropped or sent",
            lambda: "event=lease_lapsed" in caplog.text or upstream.begun > 1,
        )
        assert upstream.begun == 1  # not sent: the other relay has it
        (line,) = [r for r in caplog.records if "event=lease_lapsed" in r.getMessage()]
        assert line.levelno == logging.WARNING
        assert f"id={waiting.id}" in line.getMessage() and "waited" in line.getMessage()
        assert lapsed(metrics) == 1
    finally:
        held.gate.set()
        report = relay.stop(timeout=SAFETY)
    assert report is not None
    # The slow send's outcome came after the other relay's claim: a lost lease.
    assert (report.delivered, report.lost_leases, report.leases_lapsed) == (0, 1, 1)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


class CrashingOnce:
    """A real transport with a bug in its first send, which crashes (not a delivery
    answer) only when the test lets it: the send of a re-claimed event ends with no
    outcome."""

    def __init__(self) -> None:
        self.inner = AsyncioTransport(limit=2)
        self.calls = 0
        self.gate = threading.Event()

    async def send(self, request: Request, *, timeout: float) -> Response:
        self.calls += 1
        if self.calls == 1:
            await asyncio.to_thread(self.gate.wait, SAFETY)
            raise RuntimeError("bug in a transport")
        return await self.inner.send(request, timeout=timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_crashed_send_of_a_reclaimed_event_is_tried_again(
    outbox: Outbox, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """A send that ends without an outcome records nothing, so the event must be tried
    again once its lease lapses: the relay must not go on holding it as in flight."""
    caplog.set_level(logging.WARNING, logger="alertwire")
    transport = CrashingOnce()
    clock = Clock()
    outbox.enqueue_many([TriggerAlert("x", dedup_key="k")], routing_key=KEY)
    relay, metrics = relay_with(outbox, upstream, clock, http_client=transport)
    relay.start()
    try:
        wait_for("the first send", lambda: transport.calls == 1)
        clock.ahead = LEASE + 1
        wait_for("the relay to claim the event again", lambda: reclaimed(caplog))
        transport.gate.set()  # the send crashes: nothing recorded
        wait_for("the crash to be logged", lambda: "event=send_crashed" in caplog.text)
        assert outbox.stats().leased == 1  # the re-claim's lease, left to lapse
        clock.ahead = 2 * (LEASE + 1)  # ... and it has
        wait_for("the event sent again and delivered", lambda: outbox.stats().delivered == 1)
    finally:
        transport.gate.set()
        report = relay.stop(timeout=SAFETY)
    assert report is not None
    assert (report.delivered, report.lost_leases, report.leases_lapsed) == (1, 0, 1)
    assert [a.key for a in upstream.accepted()] == ["k"]
    assert transport.calls == 2
    assert lapsed(metrics) == 1


def test_two_outcomes_for_one_event_do_not_crash_the_relay(
    outbox: Outbox, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """The store refuses a batch with two outcomes for one event; whatever bug would
    hand the relay such a batch, it records one (the delivery) and says so at ERROR."""
    outbox.enqueue_many([TriggerAlert("x", dedup_key="k")], routing_key=KEY)
    relay, _ = relay_with(outbox, upstream, Clock())
    (row,), _ = relay.machine.claim(1)
    retry = relay.machine.failed(row, ServerError("unavailable", http_status=503))
    relay._delivery._outcomes += [(row, retry), (row, relay.machine.delivered(row, 202))]
    report = relay.run(drain=True, drain_timeout=SAFETY)
    assert (report.delivered, report.retried, report.lost_leases) == (1, 0, 0)
    stats = outbox.stats()
    assert (stats.pending, stats.leased, stats.delivered) == (0, 0, 1)
    assert upstream.begun == 0
    (line,) = [r for r in caplog.records if "event=outcome_dropped" in r.getMessage()]
    assert line.levelno == logging.ERROR
    assert f"id={row.id} kept=Delivered dropped=Reschedule" in line.getMessage()


def test_a_ready_event_claimed_again_by_its_own_relay_is_sent_once_in_its_keys_order(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Claimed ahead, two events wait for a slot; the store becomes unavailable (a lock
    held past the busy timeout), so they go on waiting after every send has finished;
    their leases run out meanwhile. The first cycle after the outage claims them again
    (the slots are free): the relay must send each once, with its renewed lease, before
    the rest of its key, and take back the try the claim counted.

    Staged on a real SQLite outbox: the test holds the write lock (the outage), lets
    the slow sends answer one at a time, and pushes the relay's clock past the lease."""
    caplog.set_level(logging.INFO, logger="alertwire")
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox.open(path, env={"ALERTWIRE_OUTBOX_BUSY_TIMEOUT": "0.1"})
    gates = {s: threading.Event() for s in ("a1", "b1", "c1", "d1")}

    def plan(seq: int, body: dict[str, Any]) -> Fault:
        gate = gates.get(body["payload"]["summary"])
        if gate is not None:
            gate.wait(SAFETY)
        return OK

    upstream.plan = plan
    first = [TriggerAlert(s, dedup_key=s[0]) for s in ("a1", "b1", "c1", "d1", "e1", "f1")]
    later = [TriggerAlert(s, dedup_key=s[0]) for s in ("e2", "f2", "e3")]
    enqueued = outbox.enqueue_many([*first, *later], routing_key=KEY)
    ids = {e.summary: row.id for e, row in zip([*first, *later], enqueued, strict=True)}
    clock = Clock()
    # Three slots and a lease over twice the timeout: three more claimed ahead.
    relay, metrics = relay_with(outbox, upstream, clock, concurrency=3, timeout=LEASE / 3)

    def delivered() -> int:
        return sum("event=delivered" in r.getMessage() for r in list(caplog.records))

    relay.start()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        wait_for("a1-c1 sent, d1-f1 ready", lambda: upstream.begun == 3)
        assert outbox.stats().leased == 6
        holder.execute("BEGIN IMMEDIATE")  # the store is unavailable from the next call on
        gates["a1"].set()  # its slot takes d1; the cycle after it fails
        wait_for("the outage", lambda: "event=outbox_unavailable" in caplog.text)
        for summary in ("b1", "c1", "d1"):
            gates[summary].set()
        wait_for("a1-d1 answered", lambda: delivered() == 4)
        assert upstream.begun == 4  # e1 and f1 wait for the store, every slot free
        clock.ahead = LEASE + 1  # their leases ran out while they waited
        holder.execute("ROLLBACK")  # the store is back
        wait_for("every event delivered", lambda: outbox.stats().delivered == 9)
    finally:
        for gate in gates.values():
            gate.set()
        holder.close()
        report = relay.stop(timeout=SAFETY)
        outbox.close()
    assert report is not None
    assert (report.delivered, report.lost_leases, report.leases_lapsed) == (9, 0, 2)
    lapsed_ids = [
        r.getMessage().split(" id=")[1].split()[0]
        for r in caplog.records
        if "event=lease_lapsed" in r.getMessage()
    ]
    assert sorted(lapsed_ids) == sorted([str(ids["e1"]), str(ids["f1"])])
    assert lapsed(metrics) == 2
    summaries = [a.body["payload"]["summary"] for a in upstream.accepted()]
    assert sorted(summaries) == sorted(ids)  # each event once
    assert upstream.begun == 9
    for key in ("e", "f"):
        assert [s for s in summaries if s[0] == key] == sorted(s for s in ids if s[0] == key)
    # The claim that renewed e1's lease counted a try that was never made: taken back.
    assert stored_attempts(str(path), ids["e1"]) == stored_attempts(str(path), ids["f1"]) == 1
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and "outbox_unavailable" not in r.getMessage()
    ]
