"""Prometheus metrics for the outbox, the relay and the ingest endpoint.

One module so that every component counts the same things under the same
names. Each :class:`OutboxMetrics` has its own ``CollectorRegistry`` (never
the global one): a process may run several relays, and tests create many.

Labels are ``destination`` (``pagerduty`` | ``bigpanda``) and a ``reason``
word; never a routing key, token or dedup key. Queue depth and the oldest
pending age are read from the store when scraped, so they are true for every
relay sharing the outbox, not only this process.

Serving them is the servers' job: the ingest endpoint's ``/metrics`` route,
or :class:`alertwire.relay.MetricsEndpoint` for ``--metrics-listen``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from .._errors import OutboxError
from .machine import Destination, Kind, Store

__all__ = ["OutboxMetrics", "destination_of"]


#: Each kind's destination (its first part), looked up rather than split so it is typed.
_DESTINATIONS: Final[Mapping[Kind, Destination]] = {
    "pagerduty.alert": "pagerduty",
    "pagerduty.change": "pagerduty",
    "bigpanda.alert": "bigpanda",
}


def destination_of(kind: Kind) -> Destination:
    """``pagerduty.alert`` -> ``pagerduty``: the only label that names where an event goes."""
    return _DESTINATIONS[kind]


class _QueueCollector:
    """Gauges computed from the store at scrape time."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            stats = self._store.stats()
        except OutboxError:
            # The store is down (an outage): leave these gauges out rather than fail
            # the whole scrape, so the counters and the outage gauge still get through.
            return
        events = GaugeMetricFamily(
            "alertwire_outbox_events", "Events in the outbox by state", labels=["state"]
        )
        for state, count in (
            ("pending", stats.pending),
            ("leased", stats.leased),
            ("delivered", stats.delivered),
            ("dead", stats.dead),
        ):
            events.add_metric([state], count)
        yield events
        age = stats.oldest_pending_age()
        yield GaugeMetricFamily(
            "alertwire_outbox_oldest_pending_age_seconds",
            "Age of the oldest event not yet delivered or dead (0 when none waits)",
            value=0.0 if age is None else age,
        )

    def describe(self) -> list[Any]:
        return []


class OutboxMetrics:
    """Counters for accepted / refused / delivered / dead / retried / 429, and queue gauges."""

    def __init__(self, store: Store | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter

        self.registry = CollectorRegistry(auto_describe=True)

        def counter(name: str, documentation: str, *labels: str) -> Counter:
            """A counter in this registry, by ``destination`` (and ``labels``), as all are."""
            return Counter(name, documentation, ["destination", *labels], registry=self.registry)

        self.accepted = counter("alertwire_outbox_accepted", "Events durably stored in the outbox")
        self.refused = counter(
            "alertwire_outbox_refused",
            "Events refused at enqueue (invalid, or the outbox could not store them)",
            "reason",
        )
        self.delivered = counter("alertwire_relay_delivered", "Events the destination accepted")
        self.dead = counter(
            "alertwire_relay_dead",
            "Events dead-lettered, by reason: rejected (refused by the destination),"
            " max_age (too old, tried or not) or attempts (the retry policy's tries ran out)",
            "reason",
        )
        self.retried = counter("alertwire_relay_retried", "Failed attempts scheduled for a retry")
        self.rate_limited = counter("alertwire_relay_rate_limited", "HTTP 429 answers received")
        self.leases_lapsed = counter(
            "alertwire_relay_leases_lapsed",
            "Events claimed again while this relay was still sending them (a send outlived"
            " its lease; not sent twice), or whose lease ran out before their send could"
            " start (not sent by this relay): raise --lease",
        )
        if store is not None:
            self.registry.register(_QueueCollector(store))

    def exposition(self) -> bytes:
        """The text format for a ``/metrics`` answer (the ingest server's route uses this)."""
        from prometheus_client import generate_latest

        data: bytes = generate_latest(self.registry)
        return data

    @property
    def content_type(self) -> str:
        from prometheus_client import CONTENT_TYPE_LATEST

        return str(CONTENT_TYPE_LATEST)
