"""``alertwire send [FILE|-]``: many events from JSON lines, sent concurrently.

Each non-blank line is one JSON object: ``"type"`` (``trigger``,
``acknowledge``, ``resolve``, ``change`` or ``bigpanda``) and the keyword
arguments of the matching model (``TriggerAlert``, ... ``BigPandaAlert``);
``"class"`` may be written for ``class_``.

Decisions:

* Every line is validated before anything is sent. Invalid lines are
  reported by line number and never sent; the valid lines *are* sent (an
  alert that arrives beats one held back by an unrelated typo), unless
  ``--strict`` is given, which sends nothing when any line is invalid.
* A missing key or token for a destination the file uses is exit 2 with
  nothing sent, like the single-event commands.
* The exit code is the highest of the lines' codes: 0 all delivered, 2 some
  line invalid, 3 some line rejected by the service, 4 some line's retries
  exhausted. ``--json`` gives every line's outcome, so a script can re-send
  exactly the lines that failed.
* Lines of one key go in file order, and a failure ends its key: the later
  lines of that key are held back (not sent; the failed line's code), so
  re-sending the failed and held lines together replays the key as written
  (:mod:`alertwire.cli._deliver`).
* Ctrl-C (exit 130) still reports: the lines answered as usual, each line in
  flight by number (it may or may not have arrived), and the lines never sent
  by ranges; ``--json`` has a record for every line (:func:`_report`).
* Blank lines are skipped but still counted for line numbers. A UTF-8 byte
  order mark at the start of the input (Windows editors write one) is
  dropped, so line 1 is read as the text it shows.
* ``--queue`` streams the input into the outbox in short chunks (bounded
  memory, a short write lock, a report of where it stopped if it does): see
  :mod:`alertwire.cli._queue_stream`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .._config import DEFAULT_CONCURRENCY
from . import _exit
from ._options import MAX_CONCURRENCY, Command, add_delivery_options, int_between

if TYPE_CHECKING:
    from ._deliver import Outcome
    from ._lines import LineTooLong
    from ._output import Output

__all__ = ["COMMAND", "register"]


COMMAND = Command(
    "send",
    help="send many events from a JSON-lines file (or stdin)",
    description="Send events from JSON lines, one event per line, concurrently"
    " (events with the same dedup key in file order; after one of them fails, the"
    ' rest of that key are held back, not sent). Each line has a "type"'
    " (trigger, acknowledge, resolve, change or bigpanda) and that event's fields,"
    ' e.g. {"type": "trigger", "summary": "disk full", "severity": "critical",'
    ' "dedup_key": "disk-db1"}. Prints a summary and reports each failed line by'
    " number; invalid lines are never sent (the valid ones are, unless --strict)."
    " A progress bar is shown on stderr when it is a terminal. The exit code is"
    " the worst line's. With --queue the input is streamed into the outbox in"
    " chunks of up to 10,000 lines, each stored whole or not at all, in file order;"
    " if storing stops half way the last line says which lines are queued.",
    epilog="For send, each line has its own outcome and the exit code is the highest:\n"
    "an invalid line (2) is never sent, but the valid lines are (unless --strict).\n\n"
    f"{_exit.EPILOG}",
)


def register(subparsers: Any, only: str | None = None) -> None:
    """Adds this module's one command (``only``, the command invoked, cannot leave it out)."""
    command = COMMAND.add_to(subparsers)
    command.add_argument(
        "file",
        nargs="?",
        default="-",
        metavar="FILE|-",
        help="the JSON-lines file (default: stdin)",
    )
    command.add_argument(
        "--concurrency",
        type=int_between(1, MAX_CONCURRENCY),
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight at once (default {DEFAULT_CONCURRENCY}, at most {MAX_CONCURRENCY})",
    )
    command.add_argument(
        "--strict", action="store_true", help="send nothing at all if any line is invalid"
    )
    add_delivery_options(
        command,
        pagerduty=True,
        bigpanda=True,
        queue_prints="a summary, 'N events: 0 delivered, N queued in the outbox'",
    )
    command.set_defaults(handler=_send)


def _read(name: str) -> list[tuple[int, bytes | LineTooLong]]:
    """The input's lines (:func:`~._lines.read_lines`: each at most a megabyte), all of
    them: ``--strict`` sends nothing until every line is known to be valid."""
    from .._errors import ConfigurationError
    from ._lines import read_lines, standard_input

    try:
        if name == "-":
            return list(read_lines(standard_input()))
        with open(name, "rb") as handle:
            return list(read_lines(handle))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {name!r}: {exc.strerror}") from None


def _send(args: argparse.Namespace) -> int:
    from ._output import Output
    from ._run import logging_to

    output = Output(json=args.json)
    with logging_to(output):
        if getattr(args, "queue", False) and not args.dry_run:
            from ._queue_stream import queue_lines

            return queue_lines(args, output)
        return _send_lines(args, output)


def _send_lines(args: argparse.Namespace, output: Output) -> int:
    from .._errors import AlertwireError, ValidationError
    from ..models.results import EventResult
    from ._clients import Clients
    from ._deliver import HeldBack, InFlight, Job, NotSent, SendInterrupted, dispatch
    from ._events import job_from_line
    from ._lines import LineTooLong
    from ._output import Preview, exit_code

    try:
        lines = _read(args.file)
    except AlertwireError as exc:
        return output.fail(exc)

    jobs: list[Job] = []
    outcomes: dict[int, Outcome] = {}
    for number, raw in lines:
        if isinstance(raw, LineTooLong):
            outcomes[number] = raw.error()
            continue
        if not raw.strip():
            continue
        try:
            jobs.append(job_from_line(raw, number))
        except ValidationError as exc:
            outcomes[number] = exc
    del lines

    invalid = len(outcomes)
    held_back = bool(invalid and args.strict)
    clients = Clients(args, output)
    interrupted = False
    try:
        if jobs and not held_back:
            try:
                sent = dispatch(
                    jobs, clients, output, dry_run=args.dry_run, concurrency=args.concurrency
                )
            except SendInterrupted as stopped:  # Ctrl-C: report what is known, then exit 130
                sent, interrupted = stopped.outcomes, True
            outcomes.update(
                (job.line or 0, outcome) for job, outcome in zip(jobs, sent, strict=True)
            )
    except AlertwireError as exc:
        return output.fail(exc)
    finally:
        clients.close()

    codes = [exit_code(o) for o in outcomes.values()]
    # Not sent because an earlier line of their key failed: they carry its code.
    held = [exit_code(o) for o in outcomes.values() if isinstance(o, HeldBack)]
    # --queue: stored in the outbox, not yet delivered (the relay does that).
    queued = sum(isinstance(o, EventResult) and o.status == "queued" for o in outcomes.values())
    summary = {
        "events": len(jobs) + invalid,
        "delivered": sum(isinstance(o, EventResult) for o in outcomes.values()) - queued,
        "previewed": sum(isinstance(o, Preview) for o in outcomes.values()),
        "invalid": codes.count(_exit.BAD_INPUT),
        "rejected": codes.count(_exit.REJECTED) - held.count(_exit.REJECTED),
        "retries_exhausted": codes.count(_exit.RETRIES_EXHAUSTED)
        - held.count(_exit.RETRIES_EXHAUSTED),
        "held_back": len(held),
        "not_sent": len(jobs) if held_back else 0,
    }
    if getattr(args, "queue", False):
        summary["queued"] = queued
    if interrupted:
        summary["in_flight"] = sum(isinstance(o, InFlight) for o in outcomes.values())
        summary["not_sent"] = sum(isinstance(o, NotSent) for o in outcomes.values())
    worst = max(codes, default=_exit.OK)
    if _report(
        output,
        outcomes,
        summary,
        worst,
        not_sent=held_back,
        invalid=invalid,
        interrupted=interrupted,
    ):
        raise _exit.OutputClosedAfterRun(worst)
    return worst


def _report(
    output: Output,
    outcomes: dict[int, Outcome],
    summary: dict[str, int],
    worst: int,
    *,
    not_sent: bool,
    invalid: int,
    interrupted: bool = False,
) -> bool:
    """Each line's outcome, then the summary (after every line was sent).

    ``interrupted`` (Ctrl-C): the lines answered are reported as usual, each line in
    flight is named (it may or may not have arrived), and the lines never sent, which
    may be thousands, are one line that names them by ranges; ``--json`` has a
    record for each (``NotSent``, ``InFlight``) and ``"interrupted": true``.

    Returns whether standard output was closed by its reader on the way. The
    failed lines are still said on standard error then: they are what the
    exit code is about, and a reader that stopped early (``| head``) did not
    ask to lose them.
    """
    from .._errors import AlertwireError
    from ._deliver import NotSent
    from ._output import Preview, error_text, outcome_record
    from ._run import preview_text

    closed = False

    def result(text: str) -> None:
        nonlocal closed
        if not closed:
            try:
                output.result(text)
            except BrokenPipeError:
                closed = True

    if output.json:
        results = [{"line": line, **outcome_record(outcomes[line])} for line in sorted(outcomes)]
        document: dict[str, object] = {"ok": worst == _exit.OK, "exit_code": worst}
        if interrupted:
            document["interrupted"] = True
        document["summary"] = summary
        try:
            output.document({**document, "results": results})
        except BrokenPipeError:
            closed = True
    never_sent: list[int] = []
    for line in sorted(outcomes):
        outcome = outcomes[line]
        if isinstance(outcome, NotSent):
            never_sent.append(line)
        elif isinstance(outcome, AlertwireError):
            output.error(f"line {line}: {error_text(outcome)}")
        elif isinstance(outcome, Preview) and not output.json:
            result(f"# line {line}\n{preview_text(outcome)}")
    if not_sent:
        output.error(
            f"nothing sent: {invalid} invalid line{'s' if invalid != 1 else ''} and --strict"
        )
    if interrupted:
        output.error(interrupted_text(never_sent, summary.get("in_flight", 0)))
    if not output.json:
        result(summary_text(summary))
    return closed


def interrupted_text(never_sent: list[int], in_flight: int) -> str:
    """The last word of a ``send`` stopped by Ctrl-C, in the spirit of ``send --queue``'s
    "lines up to N are queued; from line M on NOT queued": what was not sent, by line."""
    said: list[str] = []
    if never_sent:
        plural = "s" if len(never_sent) != 1 else ""
        said.append(f"{len(never_sent)} line{plural} NOT sent ({line_ranges(never_sent)})")
    if in_flight:
        plural = "s" if in_flight != 1 else ""
        said.append(
            f"{in_flight} line{plural} in flight, which may or may not have reached the"
            " service (named above)"
        )
    said.append("every other line was answered (the summary counts them)")
    return f"interrupted: {'; '.join(said)}"


def line_ranges(lines: list[int], most: int = 5) -> str:
    """``"lines 4, 7-200"``: sorted line numbers as ranges, the first ``most`` of them."""
    ranges: list[list[int]] = []
    for line in lines:
        if ranges and line == ranges[-1][1] + 1:
            ranges[-1][1] = line
        else:
            ranges.append([line, line])
    said = [f"{a}-{b}" if a != b else str(a) for a, b in ranges[:most]]
    more = f" and {len(ranges) - most} more ranges" if len(ranges) > most else ""
    return f"line{'s' if len(lines) != 1 else ''} {', '.join(said)}{more}"


def summary_text(summary: dict[str, int]) -> str:
    parts = [
        f"{summary.get(name, 0)} {label}"
        for name, label in (
            ("delivered", "delivered"),
            ("queued", "queued in the outbox"),
            ("previewed", "valid (dry run, nothing sent)"),
            ("invalid", "invalid"),
            ("rejected", "rejected"),
            ("retries_exhausted", "failed after retries"),
            ("held_back", "held back (an earlier line of their key failed)"),
            ("in_flight", "in flight at Ctrl-C (may or may not have arrived)"),
            ("not_sent", "not sent"),
        )
        if summary.get(name) or name == "delivered"
    ]
    events = summary["events"]
    return f"{events} event{'s' if events != 1 else ''}: {', '.join(parts)}"
