"""Driving the outbox state machine by hand in tests: a settable clock, a machine, lifecycles.

Shared by the rule tests (tests/outbox/test_outbox_machine.py) and the
cross-store contract tests, so both drive the stores the same way.
"""

from __future__ import annotations

import time

from alertwire import AcknowledgeAlert, ResolveAlert, TriggerAlert
from alertwire.outbox import Outbox
from alertwire.outbox.machine import Machine

__all__ = ["KEY_A", "KEY_B", "Clock", "lifecycle", "machine"]

KEY_A = "a" * 32
KEY_B = "b" * 32


class Clock:
    """Starts a few seconds ahead of real time (enqueue stamps rows with the real clock)."""

    def __init__(self) -> None:
        self.now = time.time() + 5.0

    def __call__(self) -> float:
        return self.now


def machine(outbox: Outbox, clock: Clock, **kw: object) -> Machine:
    kw.setdefault("rate_limit_per_minute", 0)
    return Machine(outbox.store, clock=clock, **kw)  # type: ignore[arg-type]


def lifecycle(outbox: Outbox, key: str, routing_key: str = KEY_A) -> list[int]:
    rows = outbox.enqueue_many(
        [TriggerAlert("disk full", dedup_key=key), AcknowledgeAlert(key), ResolveAlert(key)],
        routing_key=routing_key,
    )
    return [r.id for r in rows]
