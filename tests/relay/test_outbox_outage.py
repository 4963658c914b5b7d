"""The relay through an outbox outage, in process: the backoff rules, and a relay whose
real SQLite store is made to fail on demand.

Why a failing wrapper around a real store here: it turns the outage on and off at
exact points of the test (the process-level tests, ``test_outbox_outage_pg.py`` and
``test_outbox_outage_disk.py``, cause real ones: a PostgreSQL crash, a file-size
limit). The backoff arithmetic is pure logic and gets a fake clock.
"""

from __future__ import annotations

import itertools
import logging
import math
import sqlite3
import threading
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from alertwire import AcknowledgeAlert, OutboxError, ResolveAlert, TriggerAlert
from alertwire.outbox import Outbox
from alertwire.outbox.machine import Store
from alertwire.outbox.metrics import OutboxMetrics
from alertwire.outbox.sqlite import SQLiteStore
from alertwire.relay import MetricsEndpoint, Relay
from alertwire.relay._outage import MAX_BACKOFF, StoreOutage
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.relay_upstream import Upstream
from tests.support.waiting import wait_for

RANK = {"trigger": 0, "acknowledge": 1, "resolve": 2}
SAFETY = 30.0  # seconds: a bound on a hang, never an expectation


@pytest.fixture(autouse=True)
def plain_logging() -> Iterator[None]:
    """Relay lines reach caplog (CLI tests may leave handlers bound to a closed stream)."""
    logger = logging.getLogger("alertwire")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers, logger.propagate = [], True
    yield
    logger.handlers, logger.propagate, logger.level = saved[0], saved[1], saved[2]


# ---------------------------------------------------------------- the rules


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_from_half_a_second_to_thirty_and_logs_once_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    outage = StoreOutage("/srv/outbox.sqlite3", clock=clock, jitter=lambda: 0.0)
    outage.succeeded()  # the store answered once
    caplog.set_level(logging.DEBUG, logger="alertwire")
    error = OutboxError(
        "cannot claim events in the outbox /srv/outbox.sqlite3: boom", retryable=True
    )
    delays = []
    for _ in range(12):
        delays.append(outage.failed(error))
        clock.now += delays[-1]
    assert delays[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert set(delays[6:]) == {MAX_BACKOFF}
    assert outage.ongoing and outage.failures == 12
    started = [r for r in caplog.records if "event=outbox_unavailable" in r.getMessage()]
    assert len(started) == 1 and started[0].levelno == logging.ERROR
    assert "kind='passing'" in started[0].getMessage() and "boom" in started[0].getMessage()

    outage.succeeded()
    outage.succeeded()  # no outage: nothing to say
    ended = [r for r in caplog.records if "event=outbox_available" in r.getMessage()]
    assert len(ended) == 1 and ended[0].levelno == logging.WARNING
    assert f"lasted={sum(delays):.1f}s failed_tries=12" in ended[0].getMessage()
    assert not outage.ongoing and outage.outages == 1
    assert len(caplog.records) == 2  # nothing between the two lines

    assert outage.failed(error) == 0.5  # a new outage starts from the beginning
    assert outage.outages == 2


def test_a_store_that_never_answered_fails_for_good_unless_the_cause_is_passing() -> None:
    outage = StoreOutage("x")
    wrong_password = OutboxError("cannot open the outbox x: password authentication failed")
    with pytest.raises(OutboxError, match="password"):
        outage.failed(wrong_password)  # a configuration error: the relay exits with it
    assert not outage.ongoing
    assert outage.failed(OutboxError("connection refused", retryable=True)) > 0  # not up yet
    outage.succeeded()
    # Once it has answered, even a lasting cause is an outage: wait, say so, report it.
    assert outage.failed(wrong_password) > 0 and outage.ongoing


def test_jitter_only_shortens_a_delay_by_at_most_a_fifth() -> None:
    outage = StoreOutage("x", jitter=lambda: 0.999999)
    error = OutboxError("x", retryable=True)
    first, second = outage.failed(error), outage.failed(error)
    assert 0.4 <= first < 0.5 and 0.8 <= second < 1.0


def test_health_reason_hides_the_location() -> None:
    outage = StoreOutage("postgresql://aw:***@db.internal:5432/alertwire")
    assert outage.public_reason is None
    outage.failed(
        OutboxError(
            "cannot read in the outbox postgresql://aw:***@db.internal:5432/alertwire:"
            " connection refused",
            retryable=True,
        )
    )
    assert outage.public_reason == "cannot read in the outbox: connection refused"
    assert outage.reason is not None and "db.internal" in outage.reason


def test_full_disk_is_passing_even_when_the_store_does_not_flag_it(tmp_path: Path) -> None:
    """The SQLite store's own rule (``Store.is_passing``), which the relay asks."""
    is_passing = SQLiteStore(tmp_path / "outbox.sqlite3").is_passing
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    write = sqlite3.OperationalError("disk I/O error")
    write.sqlite_errorname = "SQLITE_IOERR_WRITE"  # type: ignore[attr-defined]
    readonly = sqlite3.OperationalError("attempt to write a readonly database")
    readonly.sqlite_errorname = "SQLITE_READONLY"  # type: ignore[attr-defined]

    def raised(cause: BaseException) -> OutboxError:
        try:
            raise OutboxError("cannot store") from cause
        except OutboxError as exc:
            return exc

    assert is_passing(raised(full)) and is_passing(raised(write))
    assert not is_passing(raised(readonly))
    assert is_passing(OutboxError("lost connection", retryable=True))
    assert not is_passing(OutboxError("damaged"))
    # The relay's outage asks that rule: an unflagged full disk at start is waited out,
    # where the flag alone would have taken it for a configuration error.
    assert StoreOutage("x", passing=is_passing).failed(raised(full)) > 0
    with pytest.raises(OutboxError):
        StoreOutage("x").failed(raised(full))


# ---------------------------------------------------------------- a relay through one


class FailingStore:
    """A real store whose every call raises a retryable OutboxError while ``down``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.location = inner.location
        self.down = threading.Event()
        self.refused = 0

    def is_passing(self, exc: OutboxError) -> bool:
        """A question about an error, not a store call: answered even while ``down``."""
        return self.inner.is_passing(exc)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down.is_set():
                self.refused += 1
                raise OutboxError(
                    f"cannot {name} in the outbox {self.location}: the disk is full",
                    retryable=True,
                )
            return attr(*args, **kwargs)

        return call


def test_relay_waits_out_an_outage_keeps_its_outcomes_and_delivers_everything_once_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="alertwire")
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    for make in (lambda k: TriggerAlert("p", dedup_key=k), AcknowledgeAlert, ResolveAlert):
        outbox.enqueue_many([make(f"k{i}") for i in range(40)], routing_key=KEY)
    store = FailingStore(outbox.store)
    upstream = Upstream(delay=0.02).start()
    metrics = OutboxMetrics()
    relay = Relay(
        cast(Store, store),
        pagerduty_url=upstream.url,
        rate_limit_per_minute=0,
        poll_interval=0.02,
        concurrency=8,
        metrics=metrics,
    )
    endpoint = MetricsEndpoint(metrics, health=relay.health)
    metrics_port = endpoint.serve("127.0.0.1", 0)
    health_url = f"http://127.0.0.1:{metrics_port}/healthz"
    relay.start()
    try:
        wait_for("deliveries before the outage", lambda: upstream.accepted_count() >= 20)
        store.down.set()  # sends in flight now finish into an outbox that cannot record them
        wait_for("the relay to notice", lambda: relay.health() is not None)
        wait_for("three failed tries (0.5 s, then 1 s apart)", lambda: store.refused >= 3)
        in_outage = upstream.accepted_count()
        status, body, headers = get(health_url)
        assert status == 503 and headers["Retry-After"] == "10"
        assert "the disk is full" in body and str(tmp_path) not in body
        assert (
            "alertwire_relay_outbox_available 0.0"
            in get(f"http://127.0.0.1:{metrics_port}/metrics")[1]
        )
        assert relay._thread is not None and relay._thread.is_alive()  # never exits
        store.down.clear()
        wait_for("everything delivered after it", lambda: outbox.stats().delivered == 120)
        wait_for("the outage to end", lambda: relay.health() is None)
        assert get(health_url)[0] == 200
        report = relay.stop(timeout=SAFETY)
    finally:
        relay.stop(timeout=SAFETY)
        endpoint.close()
        upstream.stop()
    accepted = upstream.accepted()
    sent = Counter((a.key, a.action) for a in accepted)
    assert len(sent) == 120, "an event was lost"
    # Outcomes kept through the outage: nothing was sent twice (one relay, leases held).
    assert max(sent.values()) == 1, [k for k, n in sent.items() if n > 1]
    history: dict[Any, list[int]] = defaultdict(list)
    for a in sorted(upstream.arrivals, key=lambda a: a.seq):
        history[a.key].append(RANK[str(a.action)])
    assert all(x <= y for ranks in history.values() for x, y in itertools.pairwise(ranks))
    assert report is not None and report.delivered == 120 and report.lost_leases == 0
    assert in_outage < 120
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split()[0] for r in lines] == [
        "event=outbox_unavailable",
        "event=outbox_available",
    ], [r.getMessage() for r in lines]
    tries = int(lines[1].getMessage().split("failed_tries=")[1].split(":")[0])
    lasted = float(lines[1].getMessage().split("lasted=")[1].split("s ")[0])
    # Backoff, not a spin: n tries need at least 0.4 * (2**(n-1) - 1) seconds.
    assert 3 <= tries <= 2 + math.log2(1 + lasted / 0.4), (tries, lasted)
    assert relay.outage.outages == 1


@pytest.fixture
def outage_with_an_hour_of_backoff(
    tmp_path: Path,
) -> Iterator[tuple[Outbox, FailingStore, Relay]]:
    """One queued event, a store that is down, and a relay whose next try is an hour away."""
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    outbox.enqueue(TriggerAlert("p"), routing_key=KEY)
    store = FailingStore(outbox.store)
    store.down.set()
    upstream = Upstream().start()
    relay = Relay(cast(Store, store), pagerduty_url=upstream.url, rate_limit_per_minute=0)
    relay.outage.initial = relay.outage.maximum = 3600.0  # nothing may wait for this
    try:
        yield outbox, store, relay
    finally:
        relay.request_stop()
        upstream.stop()
        store.down.clear()
        assert outbox.stats().pending == 1  # still queued for the next run
        outbox.close()


def test_a_stop_cuts_the_backoff_short_and_exits_cleanly(
    outage_with_an_hour_of_backoff: tuple[Outbox, FailingStore, Relay],
) -> None:
    _, _, relay = outage_with_an_hour_of_backoff
    relay.start()
    wait_for("the outage", lambda: relay.health() is not None)
    report = relay.stop(timeout=SAFETY)
    assert report is not None and report.delivered == 0


def test_a_drain_in_an_outage_ends_at_its_bound_not_after_the_backoff(
    outage_with_an_hour_of_backoff: tuple[Outbox, FailingStore, Relay],
) -> None:
    """A cron drain whose store fails ends at ``drain_timeout``: the outage's backoff
    (an hour) is cut at the bound, and the drain says it is incomplete."""
    _, _, relay = outage_with_an_hour_of_backoff
    drain = threading.Thread(target=relay.run, kwargs={"drain": True, "drain_timeout": 0.5})
    drain.start()
    drain.join(SAFETY)
    ended = not drain.is_alive()
    relay.request_stop()
    drain.join(SAFETY)
    assert ended, "the drain waited out the backoff past its bound"
    assert relay.report is not None and relay.report.incomplete
    assert relay.report.left is None  # the store could not be asked how many are left


def get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)
