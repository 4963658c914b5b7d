"""An outbox outage, as the relay lives through it: back off, say so once, report it.

The relay calls its store many times a second. When the store cannot answer
(the PostgreSQL server restarted or failed over, the disk is full, a lock is
held too long), retrying at that rate burns a CPU and writes hundreds of
identical log lines a second, and exiting would stop delivery for good
(and, under a supervisor, turn a passing fault into a restart loop). So the
relay treats a failed store call as the start of an *outage*:

* it tries again after a bounded exponential backoff (0.5 s, doubling, at
  most 30 s, each delay shortened by up to a fifth at random so several
  relays do not hammer a database that is coming back in step);
* it logs ONE line when the outage starts (ERROR: delivery has stopped, with
  the store's reason) and ONE when it ends (WARNING, so ``--quiet`` shows it
  too, with how long it lasted and how many tries failed), nothing between;
* ``reason`` is the store's message while it lasts, which the health checks
  answer 503 with;
* it never exits. Sends already in flight finish; their outcomes are kept and
  recorded once the store answers again (or, if the relay is stopped first,
  their leases lapse and the events are sent again: at least once, in order).

Which failures count: every :class:`~alertwire.OutboxError` a store call
raises once the store has answered the relay at least once, whatever its
``retryable`` flag. That flag says whether the *caller of an enqueue* should
retry the same call; for a relay that was using the store a moment ago,
there is nothing better to do than to try again later either way: a
read-only file or a revoked password needs a person, but the relay cannot
tell a fixed fault from a lasting one without trying, and a relay that stays
up keeps ``/healthz`` answering with the reason. The start line says which
kind it is: "passing" for a cause that clears by itself (a lost connection,
a full disk, a lock), "needs a person" otherwise. The store says which
(:meth:`~alertwire.outbox.machine.Store.is_passing`): the relay knows no
store's errors, and a full disk counts as passing even where SQLite raised
it without the ``retryable`` flag.

The one failure that is clearly permanent is a store that has never answered
this relay and fails for a reason that is not passing (a wrong password, a
database that does not exist, a file that is not an outbox): that is a
configuration error, and :meth:`StoreOutage.failed` re-raises it, so
``alertwire relay`` exits 2 with the reason at once instead of waiting for a
fix that will not come. A passing failure at start (the database is not up
yet, as when services start together) is waited out like any other outage.
Anything that is not an ``OutboxError`` is a bug and is not caught.
"""

from __future__ import annotations

import logging
import random
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

from .._errors import OutboxError

__all__ = ["INITIAL_BACKOFF", "MAX_BACKOFF", "StoreOutage"]

logger = logging.getLogger("alertwire.relay")

#: First wait after a store call failed (seconds).
INITIAL_BACKOFF: Final = 0.5
#: Longest wait between two tries while the store is unavailable (seconds).
MAX_BACKOFF: Final = 30.0


def _flagged(exc: OutboxError) -> bool:
    """The passing rule without a store to ask: the ``retryable`` flag alone."""
    return exc.retryable


class StoreOutage:
    """The outage state of one relay's store; not thread-safe (the relay's loop owns it).

    ``failed(exc)`` returns how long to wait before the next try;
    ``succeeded()`` ends an outage, if one is going on. ``passing`` is the
    store's own rule for which failures clear by themselves (the relay passes
    :meth:`~alertwire.outbox.machine.Store.is_passing`).
    """

    def __init__(
        self,
        location: str,
        *,
        passing: Callable[[OutboxError], bool] = _flagged,
        initial: float = INITIAL_BACKOFF,
        maximum: float = MAX_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.location = location
        self._passing = passing
        self.initial = initial
        self.maximum = maximum
        self._clock = clock
        self._jitter = jitter
        #: The store's message while an outage lasts, else ``None``.
        self.reason: str | None = None
        self.started: float | None = None
        #: Failed tries in the current outage.
        self.failures = 0
        #: Outages since the relay started (for tests and metrics).
        self.outages = 0
        self._delay = 0.0
        #: Whether a store call ever succeeded (before that, only passing failures wait).
        self.answered = False
        self._outages_counter: Any = None
        self._failures_counter: Any = None

    @property
    def ongoing(self) -> bool:
        return self.reason is not None

    @property
    def public_reason(self) -> str | None:
        """``reason`` without the outbox's location, for health checks that strangers
        may read (a file path or a database host is not theirs to know)."""
        if self.reason is None:
            return None
        return self.reason.replace(f" {self.location}", "").replace(self.location, "the outbox")

    def count_in(self, registry: Any) -> None:
        """Expose the state in a Prometheus registry: ``alertwire_relay_outbox_available``
        (1 or 0), ``alertwire_relay_outbox_outages_total`` and
        ``alertwire_relay_outbox_failures_total`` (failed tries).

        The series are made once per registry: a second relay sharing one
        (run again in the same process, as a user's service or a test may)
        takes them over instead of failing on a duplicate; the counters keep
        counting and the gauge follows the newest relay.
        """
        series = _SERIES.get(registry)
        if series is None:
            series = _SERIES[registry] = _Series(registry)
        series.available.set_function(lambda: 0.0 if self.ongoing else 1.0)
        self._outages_counter = series.outages
        self._failures_counter = series.failures

    def failed(self, exc: OutboxError) -> float:
        """Record a failed store call; returns the seconds to wait before trying again.

        Re-raises ``exc`` if the store never answered and the cause is not
        passing: a configuration error, not an outage (see the module docstring).
        """
        if not self.answered and not self._passing(exc):
            raise exc
        self.reason = str(exc)
        self.failures += 1
        if self._failures_counter is not None:
            self._failures_counter.inc()
        if self.started is None:
            self.started = self._clock()
            self.outages += 1
            if self._outages_counter is not None:
                self._outages_counter.inc()
            self._delay = self.initial
            kind = "passing" if self._passing(exc) else "needs a person"
            logger.error(
                "event=outbox_unavailable kind=%r retry_in=%gs reason=%r:"
                " delivery paused; retrying with backoff up to %gs",
                kind,
                self._delay,
                self.reason,
                self.maximum,
            )
        else:
            self._delay = min(self._delay * 2, self.maximum)
        return self._delay * (1.0 - 0.2 * self._jitter())

    def succeeded(self) -> None:
        """A store call worked: end the outage (one line), if there was one."""
        self.answered = True
        if self.started is None:
            return
        lasted = self._clock() - self.started
        logger.warning(
            "event=outbox_available lasted=%.1fs failed_tries=%d: delivery resumed",
            lasted,
            self.failures,
        )
        self.reason = None
        self.started = None
        self.failures = 0
        self._delay = 0.0


class _Series:
    """The outage series of one Prometheus registry (see :meth:`StoreOutage.count_in`)."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge

        self.available = Gauge(
            "alertwire_relay_outbox_available",
            "1 while the relay's store calls succeed, 0 during an outbox outage",
            registry=registry,
        )
        self.outages = Counter(
            "alertwire_relay_outbox_outages",
            "Outbox outages the relay lived through (each: backoff, then recovery)",
            registry=registry,
        )
        self.failures = Counter(
            "alertwire_relay_outbox_failures",
            "Store calls that failed during outbox outages (one per backoff step)",
            registry=registry,
        )


_SERIES: weakref.WeakKeyDictionary[Any, _Series] = weakref.WeakKeyDictionary()
