"""The relay as a service: its settings, its run (foreground or thread), signals, ingest.

:class:`Relay` is what users and ``alertwire relay`` hold. It checks the
settings, makes the :class:`~alertwire.outbox.machine.Machine` and the
:class:`._loop.DeliveryLoop` (claim → send → settle), and around each run
owns what lives as long as the run: the one store thread (a commit's fsync
never stalls sends in flight), the shared async transport, the signal
handlers, the ingest endpoint with ``listen=`` (on the same asyncio loop, so
a stored event wakes the loop at once) and the drain's time bound.

Stopping (``stop()``, SIGTERM, Ctrl-C) claims nothing new, waits for the
sends in flight, records their outcomes and returns: nothing is left
leased. A second request (a second Ctrl-C) stops at once: the sends in
flight are abandoned and their leases lapse, as after SIGKILL. A relay
killed with SIGKILL leaves its claims leased until ``lease_seconds`` pass;
then any relay takes them over. An event whose answer was lost with the
process is sent again: that is the "at least once".

A drain (``run(drain=True)``) is bounded by ``drain_timeout``: cron must
never pile up relays while an upstream is down. At the bound the relay
claims nothing new, lets the sends in flight finish, and returns with
``RelayReport.incomplete`` set; what is left stays queued for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
)
from .._delivery import async_transport_for
from .._errors import ConfigurationError, OutboxError
from .._numbers import is_real, is_whole
from .._relay_loop import RelayLoopGuard
from .._retry import RetryPolicy
from ..outbox import Outbox
from ..outbox.machine import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_AGE,
    DEFAULT_RATE_LIMIT_PER_MINUTE,
    DEFAULT_RESOLVE_MAX_AGE,
    RELAY_MAX_ATTEMPTS,
    Machine,
    Store,
    new_owner,
)
from ..outbox.metrics import OutboxMetrics
from ..transport import Verify, check_verify
from ._destinations import Destinations
from ._loop import DeliveryLoop, StoreCall, _log, logger
from ._outage import StoreOutage

#: At most this many rounds of sends claimed ahead (``claim_ahead_max``): enough that a
#: cycle's commit covers dozens of events (4 rounds measured no better on the bench), few
#: enough that a relay holds at most ``4 * concurrency`` heads, and that the defaults
#: (60 s lease, 10 s timeout: 40 s for a wait of 3 sends and its own) leave 20 s for the
#: commit that records the outcome, more than SQLite's busy timeout (10 s).
MAX_AHEAD_ROUNDS = 3

if TYPE_CHECKING:
    from ..ingest import IngestConfig, IngestServer

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_MAX_BACKOFF",
    "Relay",
    "RelayReport",
]


@dataclass(frozen=True, slots=True)
class RelayReport:
    """What one run did (this process only; a later run of the same relay counts afresh).

    ``leases_lapsed``: events claimed again while this relay was still sending them
    (a send outlived its lease; not sent twice), or whose lease ran out before their
    send could start (not sent by this relay); see docs/relay.md.
    ``incomplete``: a drain stopped at its ``drain_timeout`` with events still
    queued; ``left`` is how many were pending or in flight then (``None`` when
    the outbox could not be read to count them).
    """

    delivered: int
    retried: int
    dead: int
    lost_leases: int
    incomplete: bool = False
    left: int | None = None
    leases_lapsed: int = 0


def _check_drain_timeout(drain_timeout: object) -> None:
    if not is_real(drain_timeout, minimum=0):  # NaN too
        raise ConfigurationError(
            f"drain_timeout must be 0 (no bound) or a positive number of seconds,"
            f" got {drain_timeout!r}"
        )


def _check_settings(concurrency: object, rate_limit: object, **seconds: object) -> None:
    """A relay's numeric settings, each refused by name with its rule, as the CLI's options are.

    Checked only for sign, they let a string through to a bare TypeError, a NaN
    lease or poll interval through to the loop (NaN compares false with every
    bound), and a negative ``max_age`` was refused as "max_elapsed", the retry
    policy's name for it.
    """
    if not is_whole(concurrency, minimum=1):
        raise ConfigurationError(
            f"concurrency must be a whole number, at least 1, got {concurrency!r:.40}"
        )
    if not is_real(rate_limit) or not 0 <= rate_limit < math.inf:
        raise ConfigurationError(
            f"rate_limit_per_minute must be 0 (off) or a positive number, got {rate_limit!r:.40}"
        )
    for name, value in seconds.items():
        if not is_real(value) or not 0 < value < math.inf:
            raise ConfigurationError(
                f"{name} must be a number of seconds above 0, got {value!r:.40}"
            )


class Relay:
    """Deliver the outbox's events; ``run()`` in the foreground or ``start()`` in a thread.

    ``outbox`` is an :class:`Outbox`, a :class:`Store`, a path or URL, or
    ``None`` (``$ALERTWIRE_OUTBOX``, else the default file).
    ``rate_limit_per_minute`` paces each routing key (0: off);
    ``max_backoff`` caps the wait between tries unless ``retry`` is given;
    events older than ``max_age`` seconds are dead-lettered, resolves only past
    ``max(max_age, resolve_max_age)`` (a late resolve pages nobody; a dropped
    one leaves its incident open). Destinations:
    a row's own base URL if it was enqueued with one, else
    ``pagerduty_url`` / ``bigpanda_url``, else the ``region``'s hosts.
    ``listen`` (``"HOST:PORT"`` or an :class:`alertwire.ingest.IngestConfig`)
    also serves the ingest endpoint on the relay's loop (``self.ingest`` once
    ``self.listening`` is set; see docs/ingest.md).
    """

    def __init__(
        self,
        outbox: Outbox | Store | str | None = None,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit_per_minute: float = DEFAULT_RATE_LIMIT_PER_MINUTE,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        retry: RetryPolicy | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        resolve_max_age: float = DEFAULT_RESOLVE_MAX_AGE,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        pagerduty_url: str | None = None,
        bigpanda_url: str | None = None,
        region: str = "us",
        verify: Verify = True,
        http_client: Any = None,
        metrics: OutboxMetrics | None = None,
        owner: str | None = None,
        listen: IngestConfig | str | tuple[str, int] | None = None,
    ) -> None:
        if isinstance(outbox, Outbox):
            store = outbox.store
        elif outbox is None or isinstance(outbox, str):
            store = Outbox.open(outbox).store
        else:
            store = outbox
        _check_settings(
            concurrency,
            rate_limit_per_minute,
            timeout=timeout,
            poll_interval=poll_interval,
            lease_seconds=lease_seconds,
            max_age=max_age,
            resolve_max_age=resolve_max_age,
            max_backoff=max_backoff,
        )
        if lease_seconds <= timeout:
            raise ConfigurationError(
                f"lease_seconds ({lease_seconds:g}) must be longer than the HTTP timeout"
                f" ({timeout:g}): a send must never outlive its lease"
            )
        if retry is None:
            retry = RetryPolicy(
                max_attempts=RELAY_MAX_ATTEMPTS,
                initial_backoff=min(1.0, max_backoff),
                max_backoff=max_backoff,
                max_elapsed=max_age,
            )
        self.store = store
        self.machine = Machine(
            store,
            owner=owner or new_owner(),
            lease_seconds=lease_seconds,
            max_age=max_age,
            resolve_max_age=resolve_max_age,
            rate_limit_per_minute=rate_limit_per_minute,
            retry=retry,
        )
        self.concurrency = concurrency
        #: Heads claimed beyond the free send slots (see :mod:`._loop`): only when a ready
        #: row's lease outlasts its wait for a slot (one send) plus its own send.
        self.claim_ahead = concurrency if lease_seconds > 2 * timeout else 0
        #: How far that grows while the send slots wait for the store (see
        #: ``DeliveryLoop._resize``): ``k * concurrency`` rows ready wait at most ``k``
        #: sends for a slot, so the lease must outlast ``k + 1`` timeouts (k at most 3).
        self.claim_ahead_max = concurrency * max(
            (k for k in range(MAX_AHEAD_ROUNDS + 1) if lease_seconds > (k + 1) * timeout),
            default=0,
        )
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.destinations = Destinations.resolve(
            pagerduty_url=pagerduty_url, bigpanda_url=bigpanda_url, region=region
        )
        self.pagerduty_url = self.destinations.pagerduty_url
        self.bigpanda_url = self.destinations.bigpanda_url
        # ``listen`` ("HOST:PORT" or an alertwire.ingest.IngestConfig) also serves
        # the ingest endpoint (PagerDuty/BigPanda routes, /healthz, /metrics) on this loop.
        self.listen: IngestConfig | None = None
        if listen is not None:
            from ..ingest import IngestConfig

            self.listen = IngestConfig.coerce(listen)
            self.listen.check()
            # Its deliveries carry its mark, and its endpoint refuses its own and those of
            # relays it delivers to: a ring of relays dead-letters instead of looping.
            self.destinations = self.destinations.with_loop_guard(RelayLoopGuard())
            if metrics is None:
                metrics = OutboxMetrics(store)
        self.ingest: IngestServer | None = None
        self.listening = threading.Event()
        self.metrics = metrics
        self._verify = check_verify(verify)  # refused now, not in the first run
        self._http_client = http_client
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        #: A run is claimed (:meth:`_claim`) from the call that begins it (``start``,
        #: ``run``, ``run_async``) until it has ended (:meth:`_release`), under this lock;
        #: ``stop`` reads the claim under it too.
        self._run_lock = threading.Lock()
        self._claimed = False
        self._left_count: int | None = 0
        self.report: RelayReport | None = None
        #: Whether the store answers, as this relay last saw it (see :mod:`._outage`).
        self.outage = StoreOutage(store.location, passing=store.is_passing)
        if metrics is not None:
            self.outage.count_in(metrics.registry)
        self._delivery = DeliveryLoop(
            store,
            self.machine,
            self.destinations,
            concurrency=concurrency,
            claim_ahead=self.claim_ahead,
            claim_ahead_max=self.claim_ahead_max,
            timeout=timeout,
            poll_interval=poll_interval,
            metrics=metrics,
            outage=self.outage,
        )

    def health(self) -> str | None:
        """``None`` while the store answers, else why not (no path, no password); also
        not ``None`` once the thread of :meth:`start` has ended on an error, so a
        health check served beside a dead relay does not answer 200."""
        failed = self._thread_error
        if failed is not None:
            return f"the relay stopped on an error ({type(failed).__name__}); see its log"
        return self.outage.public_reason

    def __repr__(self) -> str:
        return f"Relay({self.store.location!r}, owner={self.machine.owner!r})"

    # ---------------------------------------------------------------- control

    def run(
        self, *, drain: bool = False, drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    ) -> RelayReport:
        """Deliver until stopped (or, with ``drain``, until nothing is pending or
        ``drain_timeout`` seconds have passed; 0 = no bound)."""
        return asyncio.run(self.run_async(drain=drain, drain_timeout=drain_timeout))

    def start(self, *, drain: bool = False, drain_timeout: float = DEFAULT_DRAIN_TIMEOUT) -> None:
        """Run in a daemon thread of the caller's process (for services).

        An error that ends the thread is logged at once (ERROR ``event=relay_failed``,
        with its traceback), :meth:`health` says so, and :meth:`stop` raises it: kept
        only for ``stop()``, it left a service delivering nothing with not a word said
        and a health check answering 200.
        """
        _check_drain_timeout(drain_timeout)
        if self._thread is not None and not self._thread.is_alive():
            raise RuntimeError(
                "this relay's last run has ended: call stop() (for its report, or its error)"
                " before starting it again"
            )
        self._claim()
        self._thread_error = None

        def target() -> None:
            try:
                asyncio.run(self._run_claimed(drain=drain, drain_timeout=drain_timeout))
            except BaseException as exc:  # noqa: BLE001 - handed to stop(), which re-raises it
                self._thread_error = exc
                logger.error(
                    'event=relay_failed error=%s note="delivery has stopped; stop() raises it"',
                    type(exc).__name__,
                    exc_info=exc,
                )

        self._thread = threading.Thread(target=target, name="alertwire-relay", daemon=True)
        try:
            self._thread.start()
        except BaseException:
            self._thread = None
            self._release()
            raise

    def stop(self, timeout: float | None = None) -> RelayReport | None:
        """Finish the sends in flight, then return (from any thread); the last run's report.

        With nothing running (a drain that finished by itself, a relay never
        started) there is nothing to stop, and no request is left standing: the
        next ``run()`` or ``start()`` delivers as usual. A run is running from the
        call that begins it, so a ``stop()`` right after ``start()``, or from
        another thread right after ``run()`` was called, is never lost; and a request
        made while a run is ending is spent with that run (see :meth:`_release`).
        """
        with self._run_lock:
            if self._claimed:
                self.request_stop()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError("the relay did not stop in time")
            self._thread = None
            failed, self._thread_error = self._thread_error, None
            if failed is not None:
                raise failed
        return self.report

    def _claim(self) -> None:
        """Mark a run as begun, in the calling thread, before anything else of it runs.

        Why here and not when the run reaches its event loop: two runs must never
        share one delivery loop and one owner's leases, and a check made there let
        ``start()`` and ``run()`` called together both through (or refused the
        wrong one), and a ``stop()`` made in between was lost. Each run starts with
        ``listening`` clear and no ``ingest`` (an earlier run's closed endpoint)."""
        with self._run_lock:
            if self._claimed:
                raise RuntimeError("this relay is already running: one run at a time")
            self._claimed = True
            self.listening.clear()
            self.ingest = None

    def _release(self) -> None:
        """The run has ended: a stop request made for it is spent with it (under the
        same lock as :meth:`stop`'s check, so none is left standing for the next run)."""
        with self._run_lock:
            self._claimed = False
            self._delivery.clear_stop()

    def request_stop(self) -> None:
        """Ask the loop to stop after in-flight sends; safe from threads and signal handlers.

        A second request stops at once, abandoning the sends in flight (their leases
        lapse and any relay sends them again): for a person whose Ctrl-C should not
        wait out a slow upstream's timeout. A request made before a run starts stops
        that run as it starts; the end of the run consumes it.
        """
        self._delivery.request_stop()

    # ---------------------------------------------------------------- one run

    async def run_async(
        self,
        *,
        drain: bool = False,
        handle_signals: bool = False,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    ) -> RelayReport:
        _check_drain_timeout(drain_timeout)
        self._claim()
        return await self._run_claimed(
            drain=drain, handle_signals=handle_signals, drain_timeout=drain_timeout
        )

    async def _run_claimed(
        self, *, drain: bool, drain_timeout: float, handle_signals: bool = False
    ) -> RelayReport:
        """One run, already claimed by the caller (:meth:`_claim`); released at its end,
        however it ends: a failure before the first send (signal handlers outside the
        main thread, the listener's settings) left the relay "running" for good."""
        try:
            return await self._one_run(
                drain=drain, handle_signals=handle_signals, drain_timeout=drain_timeout
            )
        finally:
            self._release()

    async def _one_run(
        self, *, drain: bool, handle_signals: bool, drain_timeout: float
    ) -> RelayReport:
        deadline = time.monotonic() + drain_timeout if drain and drain_timeout > 0 else None
        self._left_count = 0
        loop = asyncio.get_running_loop()
        db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alertwire-outbox")
        transport = None
        ingest = None

        async def call(fn: StoreCall, *args: Any) -> Any:
            return await loop.run_in_executor(db, functools.partial(fn, *args))

        self._delivery.attach()
        try:
            transport = async_transport_for(
                self._http_client, verify=self._verify, pool_size=self.concurrency
            )
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, self.request_stop)
            _log("relay_started", owner=self.machine.owner, concurrency=self.concurrency)
            if self.listen is not None:
                from ..ingest import IngestServer

                ingest = IngestServer(
                    self.store,
                    self.listen,
                    metrics=self.metrics,
                    on_stored=self._delivery.wake_up,
                    loop_guard=self.destinations.loop_guard,
                )
                await self._delivery.meet_store(call)
                if not self._delivery.stop_requested:  # a SIGTERM while it waited
                    await ingest.start()
                    self.ingest = ingest
                    self.listening.set()
            timed_out = await self._delivery.run(call, transport, drain=drain, deadline=deadline)
            if ingest is not None:  # refuse new connections, answer those in flight
                await ingest.stop()
            await self._delivery.finish(call)
            if timed_out:
                self._report_drain_bound(await self._left(call), drain_timeout)
        finally:
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    with contextlib.suppress(RuntimeError, ValueError):  # never added
                        loop.remove_signal_handler(sig)
            if ingest is not None:
                await ingest.stop()
            self.listening.set()
            if transport is not None:
                await transport.aclose()
            db.shutdown(wait=True)
            self._delivery.detach()
        counts = self._delivery.counts
        self.report = RelayReport(**counts, incomplete=self._left_count != 0, left=self._left_count)
        _log("relay_stopped", **counts)
        return self.report

    async def _left(self, call: StoreCall) -> int | None:
        try:
            stats = await call(self.store.stats)
        except OutboxError as exc:
            logger.error("event=drain_count_failed error=%s", exc)
            return None
        return int(stats.pending + stats.leased)

    def _report_drain_bound(self, left: int | None, drain_timeout: float) -> None:
        """The drain's time bound was reached: say how much is left for the next run."""
        self._left_count = left
        if left == 0:
            return  # the last sends in flight finished the work
        logger.warning(
            'event=drain_incomplete left=%s drain_timeout=%g note="left queued for the next run"',
            "unknown" if left is None else left,
            drain_timeout,
        )
