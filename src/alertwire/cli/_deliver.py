"""The one step every sending command ends in: deliver validated events, or preview them.

Every command (``trigger``... ``bigpanda``, ``send``) builds :class:`Job`
values and hands them to :func:`dispatch`; nothing else in the CLI touches
a client. That is where a ``--queue`` option (store in the outbox instead of
sending now) belongs: one branch in :func:`dispatch`, and every command has it.

Decisions:

* Configuration is checked for every destination a run uses before the
  first event leaves, so exit code 2 always means nothing was sent.
* One event is sent by the synchronous client (HTTP/1.1 on the standard library's sockets): no event loop and
  no aiohttp import, which keeps a one-alert cron job's start-up small.
* Many events go on a thread pool over the same synchronous clients, with
  retries inside each client's ``send``. Events that must arrive in order
  share a chain that runs sequentially in file order: for PagerDuty, all
  alert events with the same dedup key (a ``resolve`` overtaking its
  ``trigger`` would leave the incident open); for BigPanda, all alerts
  about the same primary and secondary property. Everything else runs
  concurrently. A failure ends its chain: the later events of that key are
  not sent and each gets a :class:`HeldBack` outcome naming the line that
  failed, with that failure's exit code. Sent without it, they would leave
  the key in a state the input never meant, and re-sending the failed line
  alone afterwards (what a per-line report invites) would then undo them: a
  ``trigger`` that failed in an outage, re-sent after its ``resolve`` went
  through, opens an incident that was over. Re-sending the failed and the
  held lines together, in order, replays the key as written. The grouping and
  the walk are ``alertwire._chains``', which ``send_many`` uses too; only the
  key (:func:`order_key`: BigPanda alerts chain as well) and what Ctrl-C needs
  to know (which jobs started) are this module's.
* Ctrl-C starts no further job, and a send in flight ends after its current try
  (the clients' stop-aware ``_send_unless``: a retry wait ends at once). What is
  known then is raised to the command (:class:`SendInterrupted`): the answered
  jobs' outcomes, and :class:`InFlight` or :class:`NotSent` for the others.
* ``--dry-run`` builds the exact request with the library's protocol module
  and shows it with the key or token redacted.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, TypeGuard

from .. import _json
from .._errors import AlertwireError, DeliveryError, HeldBack
from .._secret import redact
from ..models.results import EventResult
from ._clients import Clients
from ._exit import Interrupted
from ._output import Output, Preview
from ._queue import enqueue_jobs, wants_queue

if TYPE_CHECKING:
    from threading import Event

    from ..outbox.machine import Destination

__all__ = ["HeldBack", "InFlight", "Job", "NotSent", "Outcome", "SendInterrupted", "dispatch"]

#: What each job ends as: delivered, previewed (``--dry-run``), or an error.
Outcome: TypeAlias = EventResult | Preview | AlertwireError


class Job(NamedTuple):
    """One validated event, where it goes, and the input line it came from (``send``).

    A ``NamedTuple``, not a frozen dataclass: making one of those costs a one-event
    ``alertwire trigger`` about half a millisecond of start-up (docs/cli.md, "Start-up cost").
    """

    destination: Destination
    event: Any
    line: int | None = None


def order_key(job: Job) -> Hashable | None:
    """Jobs with the same key must be delivered in input order; ``None``: any order."""
    event = job.event
    if job.destination == "pagerduty":
        dedup_key = getattr(event, "dedup_key", None)
        return ("pagerduty", dedup_key) if dedup_key else None
    # Every property that can name the entity: alerts about the same one keep their order.
    # (A BigPanda event's model has loaded these rules already: this import costs nothing.)
    from ..models.bigpanda_rules import DEFAULT_PRIMARY_PROPERTIES, DEFAULT_SECONDARY_PROPERTIES

    names = (
        "primary_property",
        "secondary_property",
        *DEFAULT_PRIMARY_PROPERTIES,
        *DEFAULT_SECONDARY_PROPERTIES,
    )
    return ("bigpanda", *(getattr(event, name, None) for name in names))


def held_back(failed: Job, failure: DeliveryError) -> HeldBack:
    """The outcome of a job not sent because ``failed``, earlier in its chain, failed:
    retryable exactly when that failure is, so the line's exit code is the failure's
    (3 or 4) and the run's exit code is what it would be without holding back."""
    return HeldBack(
        failure, earlier="an earlier event" if failed.line is None else f"line {failed.line}"
    )


class NotSent(Interrupted):
    """Never sent: Ctrl-C came before its turn (``send`` of many lines)."""

    def __init__(self) -> None:
        super().__init__("not sent: interrupted (Ctrl-C) before its turn")


class InFlight(Interrupted):
    """Being sent when Ctrl-C came, and not answered with a delivery: its last try may
    have reached the service before the answer was read (a timeout, a reset), so
    whether it arrived is not known. ``last``: that try's error, when it had one."""

    def __init__(self, last: DeliveryError | None) -> None:
        text = (
            "interrupted (Ctrl-C) while being sent: it may or may not have reached the"
            " service (sending it again with the same dedup key is safe)"
        )
        super().__init__(text if last is None else f"{text}; its last try: {last}")
        self.last = last


class SendInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`_send_all`, raised once the sends in flight have ended:
    every job's outcome, a :class:`NotSent` or an :class:`InFlight` where it stopped.

    A ``KeyboardInterrupt`` still, so a caller that does not report it exits 130 as before.
    """

    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__("interrupted")
        self.outcomes = outcomes


def dispatch(
    jobs: Sequence[Job],
    clients: Clients,
    output: Output,
    *,
    dry_run: bool,
    concurrency: int = 1,
) -> list[Outcome]:
    """Outcomes in job order; raises for configuration errors (nothing sent then), and
    :class:`SendInterrupted` for Ctrl-C while many jobs are sent."""
    clients.prepare(job.destination for job in jobs)
    if dry_run:
        return [_preview(job, clients) for job in jobs]
    if wants_queue(clients):
        return enqueue_jobs(jobs, clients)
    if len(jobs) == 1:
        return [_send(jobs[0], clients)]
    return _send_all(jobs, clients, output, concurrency)


def _send(job: Job, clients: Clients, stop: Event | None = None) -> Outcome:
    """``stop``: a send on one of :func:`_send_all`'s threads, which Ctrl-C reaches only
    through it; once set, no further try is made and a wait for a retry ends at once."""
    client = clients.get(job.destination)
    try:
        if stop is None:
            result: EventResult = client.send(job.event)
        else:
            result = client._send_unless(stop, job.event)
    except DeliveryError as exc:
        return exc
    return result


def _send_all(
    jobs: Sequence[Job], clients: Clients, output: Output, concurrency: int
) -> list[Outcome]:
    """Each key's jobs in order on one thread (:func:`alertwire._chains.send_chain`),
    ``concurrency`` threads at once.

    Interrupted (Ctrl-C reaches the main thread only), no job starts after it: the
    chains waiting for a thread are cancelled and the running ones stop before their
    next job. Before, leaving the pool's block ran every chain already submitted, so
    Ctrl-C on a mistaken ``send`` of thousands of pages sent them all, then said
    "interrupted". A job in flight ends after its current try: a wait for a retry
    ends at once (the clients' stop-aware send); before, the threads slept out their
    retries (a ``Retry-After`` of minutes) and then sent again, after the interrupt.

    Then :class:`SendInterrupted` says what is known: the jobs answered keep their
    outcomes, the others are :class:`NotSent` or :class:`InFlight`. A second Ctrl-C
    while the sends in flight end stops the wait: those are then in flight too.
    Before, Ctrl-C said only that "an event being sent may or may not" have arrived,
    nothing of the lines answered, or of those never sent.
    """
    from concurrent.futures import Future, ThreadPoolExecutor
    from threading import Event

    from .._chains import chains, send_chain

    stop = Event()
    key_chains = chains(jobs, order_key)
    outcomes: list[Outcome | None] = [None] * len(jobs)
    # Lists, not sets: the main thread may read them while threads write (second Ctrl-C).
    started = [False] * len(jobs)
    cut_short: list[DeliveryError | None] = [None] * len(jobs)
    progress = output.progress(len(jobs))

    def send_one(index: int) -> Outcome | None:
        started[index] = True  # before the check: read after stop is set, it is exact
        if stop.is_set():
            started[index] = False
            return None
        outcome = _send(jobs[index], clients, stop)
        if _stopped(outcome, stop):
            cut_short[index] = outcome
            return None
        return outcome

    def record(index: int, outcome: Outcome) -> None:
        outcomes[index] = outcome
        if progress is not None:
            progress.advance()

    def hold(failed: int, failure: DeliveryError) -> Outcome:
        return held_back(jobs[failed], failure)

    def run_chain(chain: list[int]) -> None:
        send_chain(chain, send_one, record, hold=hold, stop=stop)

    interrupted = False
    try:
        try:
            with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(key_chains)))) as pool:
                futures: list[Future[None]] = []
                try:
                    for chain in key_chains:
                        futures.append(pool.submit(run_chain, chain))
                    for future in futures:
                        future.result()
                except BaseException as exc:
                    stop.set()  # before leaving the block, which waits for the threads
                    for future in futures:
                        future.cancel()
                    if not isinstance(exc, KeyboardInterrupt):
                        raise
                    interrupted = True
        except KeyboardInterrupt:  # again, while the sends in flight ended: wait no more
            stop.set()
            interrupted = True
    finally:
        if progress is not None:
            progress.close()
    if interrupted:
        raise SendInterrupted(
            [
                _unfinished(cut_short[index], started[index]) if outcome is None else outcome
                for index, outcome in enumerate(outcomes)
            ]
        ) from None
    return [o for o in outcomes if o is not None]


def _stopped(outcome: Outcome, stop: Event) -> TypeGuard[DeliveryError]:
    """Whether ``outcome`` is a retryable failure that ``stop`` kept from being retried:
    not an answer to report, but a send cut short (a policy that gave up sets ``gave_up``)."""
    return (
        stop.is_set()
        and isinstance(outcome, DeliveryError)
        and outcome.retryable
        and outcome.gave_up is None
    )


def _unfinished(last: DeliveryError | None, started: bool) -> Interrupted:
    return InFlight(last) if started or last is not None else NotSent()


def _preview(job: Job, clients: Clients) -> Preview:
    client = clients.get(job.destination)
    if job.destination == "pagerduty":
        from ..protocol import pagerduty as protocol

        request, _ = protocol.build_request(client.base_url, client.routing_key, job.event)
        body = _json.loads(request.body)
        body["routing_key"] = redact(client.routing_key.reveal())
        return Preview(job.destination, request.method, request.url, body)
    from ..protocol import bigpanda as bp_protocol

    # The token travels in a header, which a preview never shows.
    request = bp_protocol.build_request(client.base_url, client.token, client.app_key, job.event)
    body = _json.loads(request.body)
    body["app_key"] = redact(client.app_key)
    return Preview(job.destination, request.method, request.url, body)
