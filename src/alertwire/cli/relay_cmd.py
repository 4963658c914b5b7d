"""``alertwire relay``: deliver the outbox (a thin call into :class:`~alertwire.relay.Relay`).

SIGTERM and Ctrl-C stop claiming, let the sends in flight finish and record
their outcomes, then exit 0: a supervisor's restart never loses or leaks a
lease. A second SIGTERM or Ctrl-C stops at once (the sends in flight are
abandoned; their leases lapse and they are sent again). ``--drain`` exits
once nothing is pending (cron, tests), or at ``--drain-timeout`` with exit
6, leaving the rest queued; a drain that dead-lettered anything exits 7.
Log lines go to stderr as ``key=value`` pairs and never carry a key.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .._config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RATE_LIMIT_PER_MINUTE,
    DEFAULT_RESOLVE_MAX_AGE,
    DEFAULT_TIMEOUT,
    parse_host_port,
)
from .._errors import ConfigurationError
from . import _exit
from ._ingest_options import add_ingest_options, ingest_config
from ._options import (
    Command,
    add_outbox_option,
    add_region_and_ca_options,
    add_url_option,
    number,
)

__all__ = ["COMMAND", "register"]


def _listen(text: str) -> tuple[str, int]:
    """The package's one ``HOST:PORT`` parser, its error worded for argparse."""
    try:
        return parse_host_port(text)
    except ConfigurationError:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT, got {text!r}") from None


def _add_seconds(parser: argparse.ArgumentParser, flag: str, *, default: float, help: str) -> None:
    """A relay duration that must be more than zero (``SECONDS``), with its default."""
    parser.add_argument(
        flag,
        type=number(float, low=0, above=True, unit="seconds"),
        default=default,
        metavar="SECONDS",
        help=help,
    )


COMMAND = Command(
    "relay",
    help="deliver the events queued in the outbox",
    description="Deliver the outbox's events at least once, in order per (routing key,"
    " dedup key), with retries scheduled in the outbox. SIGTERM / Ctrl-C finish the"
    " sends in flight, then exit 0; a second SIGTERM / Ctrl-C stops at once (the sends"
    " in flight are sent again after their lease). Dead letters are logged at WARNING,"
    " also with --quiet.",
    epilog=_exit.epilog(
        _exit.OK,
        _exit.BAD_INPUT,
        _exit.OUTBOX_UNAVAILABLE,
        _exit.DRAIN_INCOMPLETE,
        _exit.DEAD_LETTERS,
        say={
            _exit.OK: "stopped by SIGTERM / Ctrl-C, or --drain delivered everything",
            _exit.BAD_INPUT: "bad option or configuration (e.g. --metrics-listen on a"
            " port in use); nothing was sent",
            _exit.OUTBOX_UNAVAILABLE: _exit.OUTBOX_UNAVAILABLE_RUN_AGAIN,
        },
    ),
)


def register(subparsers: Any, only: str | None = None) -> None:
    """Adds this module's one command (``only``, the command invoked, cannot leave it out)."""
    parser = COMMAND.add_to(subparsers)
    add_outbox_option(parser)
    parser.add_argument(
        "--drain", action="store_true", help="exit once nothing is pending (for cron and tests)"
    )
    parser.add_argument(
        "--drain-timeout",
        type=number(float, low=0, unit="seconds"),
        default=DEFAULT_DRAIN_TIMEOUT,
        metavar="SECONDS",
        help=f"with --drain: stop claiming after this long, let the sends in flight finish,"
        f" leave the rest queued and exit 6 (default {DEFAULT_DRAIN_TIMEOUT:g}; 0 = no bound)",
    )
    parser.add_argument(
        "--concurrency",
        type=number(int, low=1),
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="sends in flight at once, over different keys (default %(default)s)",
    )
    parser.add_argument(
        "--rate-limit",
        type=number(float, low=0),
        default=DEFAULT_RATE_LIMIT_PER_MINUTE,
        metavar="PER_MINUTE",
        help="events per minute per routing key (default %(default)s, PagerDuty's limit; 0 = off)",
    )
    _add_seconds(
        parser,
        "--max-backoff",
        default=DEFAULT_MAX_BACKOFF,
        help=f"longest wait between two tries of an event (default {DEFAULT_MAX_BACKOFF:g};"
        " Retry-After is honoured)",
    )
    _add_seconds(
        parser,
        "--max-age",
        default=DEFAULT_MAX_AGE,
        help="dead-letter events not delivered within this long of being queued"
        f" (default {DEFAULT_MAX_AGE:g})",
    )
    _add_seconds(
        parser,
        "--resolve-max-age",
        default=DEFAULT_RESOLVE_MAX_AGE,
        help="the same for resolves, which page nobody and close what a trigger opened"
        f" (default {DEFAULT_RESOLVE_MAX_AGE:g}; never less than --max-age)",
    )
    _add_seconds(
        parser,
        "--timeout",
        default=DEFAULT_TIMEOUT,
        help=f"give up on one attempt after this long (default {DEFAULT_TIMEOUT:g})",
    )
    _add_seconds(
        parser,
        "--lease",
        default=DEFAULT_LEASE_SECONDS,
        help="how long a claimed event is held; a killed relay's events are taken over"
        f" after this (default {DEFAULT_LEASE_SECONDS:g}; must exceed --timeout)",
    )
    _add_seconds(
        parser,
        "--poll-interval",
        default=DEFAULT_POLL_INTERVAL,
        help=f"how often an idle relay looks for new events (default {DEFAULT_POLL_INTERVAL:g})",
    )
    add_url_option(parser, "pagerduty")
    add_url_option(parser, "bigpanda")
    add_region_and_ca_options(parser)
    parser.add_argument(
        "--metrics-listen",
        type=_listen,
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464)",
    )
    parser.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    add_ingest_options(parser)
    parser.set_defaults(handler=run)


@contextlib.contextmanager
def _relay_logging(quiet: bool) -> Iterator[None]:
    """The relay's structured lines on stderr while the command runs, then as before.

    A service's log is the relay's main output, so it is on at INFO (WARNING
    with ``--quiet``). Only the ``alertwire`` logger is touched, and its
    handlers, level and propagation are restored afterwards: a program (or a
    test) that calls ``main()`` in-process keeps its own logging set-up.
    """
    logger = logging.getLogger("alertwire")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    # psycopg's pool logs every failed reconnection and discarded connection; during a
    # database outage the relay's own two lines (outbox_unavailable/_available) say it.
    pool_logger = logging.getLogger("psycopg.pool")
    pool_level = pool_logger.level
    pool_logger.setLevel(logging.ERROR)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
        pool_logger.setLevel(pool_level)


class _EarlyStop:
    """SIGTERM/SIGINT honoured from the command's first instant, not only once the loop runs.

    A supervisor may stop a relay it has just (re)started, while it is still
    importing or opening the outbox; the default action would kill it (exit
    -15) instead of the documented clean exit 0. Until the relay's own loop
    takes the signals over, a request is remembered and handed to the relay
    as soon as it exists; with nothing in flight yet, it stops at once.
    """

    def __init__(self) -> None:
        self.requested = False
        self._target: Callable[[], None] | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True
        if self._target is not None:
            self._target()

    def forward_to(self, target: Callable[[], None]) -> None:
        self._target = target
        if self.requested:
            target()


@contextlib.contextmanager
def _early_stop() -> Iterator[_EarlyStop]:
    stop = _EarlyStop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach only the main thread; nothing to install
        return
    saved = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    with _relay_logging(args.quiet), _early_stop() as stop:
        return _run(args, stop)


def _run(args: argparse.Namespace, stop: _EarlyStop) -> int:
    import asyncio

    from .. import _config
    from ..outbox import Outbox
    from ..outbox.metrics import OutboxMetrics
    from ..relay import MetricsEndpoint, Relay
    from ._clients import _region, _verify, construct

    listen = ingest_config(args)
    verify = _verify(args)  # the sending commands' rule: a readable file, else exit 2
    outbox = Outbox.open(args.outbox)
    metrics = None
    if args.metrics_listen is not None:
        metrics = OutboxMetrics(outbox.store)
    said_as = {
        "lease_seconds": "--lease",
        "pagerduty_url": f"--pagerduty-url (or ${_config.ENV_PAGERDUTY_URL})",
        "bigpanda_url": f"--bigpanda-url (or ${_config.ENV_BIGPANDA_URL})",
    }
    relay: Relay = construct(
        Relay,
        outbox,
        said_as=said_as,
        concurrency=args.concurrency,
        rate_limit_per_minute=args.rate_limit,
        max_backoff=args.max_backoff,
        max_age=args.max_age,
        resolve_max_age=args.resolve_max_age,
        timeout=args.timeout,
        lease_seconds=args.lease,
        poll_interval=args.poll_interval,
        pagerduty_url=_config.resolve(args.pagerduty_url, _config.ENV_PAGERDUTY_URL, None),
        bigpanda_url=_config.resolve(args.bigpanda_url, _config.ENV_BIGPANDA_URL, None),
        region=_region(args),
        verify=verify,
        metrics=metrics,
        listen=listen,
    )
    endpoint = None
    if metrics is not None:
        host, wanted = args.metrics_listen
        endpoint = MetricsEndpoint(metrics, health=relay.health)
        try:
            port = endpoint.serve(host, wanted)
        except OSError as exc:
            outbox.close()
            raise ConfigurationError(
                f"--metrics-listen {host}:{wanted}: cannot listen there:"
                f" {exc.strerror or exc} (another process may hold the port)"
            ) from None
        logging.getLogger("alertwire.relay").info(
            "event=metrics_listening address=%s:%d", host, port
        )
    stop.forward_to(relay.request_stop)
    try:
        report = asyncio.run(
            relay.run_async(drain=args.drain, drain_timeout=args.drain_timeout, handle_signals=True)
        )
    finally:
        if endpoint is not None:
            endpoint.close()
        outbox.close()
    if args.drain and report.dead:
        return _exit.DEAD_LETTERS  # wins over 6: these need a person, the rest only time
    if args.drain and report.incomplete:
        return _exit.DRAIN_INCOMPLETE
    return _exit.OK
