"""The relay against the sandbox: the real wire routes and alert state, with its own faults.

Where :mod:`tests.relay.test_relay_delivery` watches the wire from a recording
server, this checks the outcome a person would see at PagerDuty: every
alert in its final state, every event accepted in order, with 429s,
resets, 5xx and the sandbox's rate limit in the way.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from alertwire import AcknowledgeAlert, ResolveAlert, TriggerAlert
from alertwire.models.bigpanda import BigPandaAlert
from alertwire.outbox import Outbox
from alertwire.relay import Relay
from alertwire.sandbox import Sandbox
from tests.support.keys import BIGPANDA_TOKEN as TOKEN

KEYS = ("R0123456789abcdef0123456789abcde", "Q0123456789abcdef0123456789abcde")


@pytest.fixture(autouse=True)
def plain_logging() -> Iterator[None]:
    """No stale CLI handler (bound to a closed captured stream) on ``alertwire``."""
    logger = logging.getLogger("alertwire")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers, logger.propagate = [], True
    yield
    logger.handlers, logger.propagate, logger.level = saved[0], saved[1], saved[2]


def test_relay_brings_every_alert_to_its_final_state_through_faults(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite3") as outbox, Sandbox() as sandbox:
        for n, routing_key in enumerate(KEYS):
            events: list[object] = []
            for i in range(20):
                k = f"{n}-key-{i:02d}"
                events += [TriggerAlert(f"p{i}", dedup_key=k), AcknowledgeAlert(k), ResolveAlert(k)]
            outbox.enqueue_many(events, routing_key=routing_key)  # type: ignore[arg-type]
        outbox.enqueue_bigpanda_many(
            [BigPandaAlert("critical", host="db1"), BigPandaAlert("ok", host="db1")],
            token=TOKEN,
            app_key="app1",
        )
        sandbox.faults(
            fail_next=[429, "reset", 503, {"status": 429, "retry_after": 0}],
            fail_rate=0.1,
            fail_rate_status=503,
            seed=7,
        )
        report = Relay(
            outbox,
            pagerduty_url=sandbox.url,
            bigpanda_url=sandbox.url,
            rate_limit_per_minute=0,
            poll_interval=0.02,
        ).run(drain=True)

        assert report.dead == 0 and report.retried >= 4
        alerts = sandbox.alerts()
        assert len(alerts) == 40
        assert {a["status"] for a in alerts} == {"resolved"}
        history: dict[str, list[str]] = defaultdict(list)
        for event in sandbox.events():
            if event["api"] != "events":
                continue
            history[event["dedup_key"]].append(event["event_action"])
        assert all(h == ["trigger", "acknowledge", "resolve"] for h in history.values())
        assert [a["body"]["status"] for a in sandbox.bigpanda()] == ["critical", "ok"]
        stats = outbox.stats()
        assert (stats.pending, stats.leased, stats.delivered) == (0, 0, 122)
