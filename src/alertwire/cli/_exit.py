"""Exit codes, the contract with shell scripts: documented here, in ``--help`` and in README."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Final

from .._errors import AlertwireError, DeliveryError, OutboxError

OK: Final = 0
#: ``alertwire demo`` only: a step did not behave as the demo expects (a bug to report).
DEMO_STEP_FAILED: Final = 1
#: Bad input or configuration: nothing was sent; the message names the field or the setting.
BAD_INPUT: Final = 2
#: The service refused the event and retrying cannot help (400, 401, ...): its own text is printed.
REJECTED: Final = 3
#: A retryable failure (network, 408, 429, 5xx) outlasted the retries.
RETRIES_EXHAUSTED: Final = 4
#: Not stored, for a passing reason (outbox lock held past the busy timeout, disk
#: full, database unreachable): the same command may succeed later; retry it.
OUTBOX_UNAVAILABLE: Final = 5
#: ``relay --drain`` stopped at its time bound with events still queued: they stay
#: queued for the next run (nothing was lost).
DRAIN_INCOMPLETE: Final = 6
#: ``relay --drain`` dead-lettered events in this run, or ``queue status
#: --fail-on-dead`` found dead letters: alerts that will not be delivered without
#: a person (``alertwire queue dead`` / ``queue retry``). Wins over 6.
DEAD_LETTERS: Final = 7
#: Standard output was closed by its reader (``alertwire queue dead | head``): what
#: the shell reports for a Unix tool that SIGPIPE ended (128 + 13), without a traceback.
#: Not in the help's lists: it says nothing about the events, only about the pipe.
OUTPUT_CLOSED: Final = 141
#: Ctrl-C: what a shell reports for a program SIGINT ended (128 + 2). Not in the help's
#: lists either: the user stopped the run, and what it did is said as it stops.
INTERRUPTED: Final = 130


class Interrupted(AlertwireError):
    """A line's outcome that Ctrl-C left undone or unknown (``send``): its code is 130.

    An outcome like any other, so ``send``'s report gives every line one (``--json``
    a record a script can act on) and the run's code, the highest, is 130.
    """


class OutputClosedAfterRun(BrokenPipeError):
    """Standard output closed while a command that had already run (``send``) was
    reporting: its own exit code, when not 0, is what the caller gets instead of 141.

    ``alertwire send events.jsonl | head`` with a refused line exited 141, which
    hid the 3 a script checks for; the events were sent before a line of output
    was written, so their outcome is the code worth keeping.
    """

    def __init__(self, code: int) -> None:
        super().__init__(f"output closed after the run (exit {code})")
        self.code = code


class OutputUnwritable(BrokenPipeError):
    """Standard output refused a write for another reason than a closed pipe: a full
    disk (``alertwire trigger x > /dev/full``), an I/O error. It ended in a traceback
    and exit 1 (the demo's code), after the event had been sent.

    Raised as a closed output (:class:`~._stdout.GuardedStdout`), so every command
    treats both alike: the rest of the output is dropped, and the exit code is the
    command's own when it failed, else 141 (never a code that says the event failed:
    a script that retried on it would page twice). Unlike a reader that stopped early,
    nobody asked for it, so it is said on stderr, once.
    """

    def __init__(self, error: OSError) -> None:
        super().__init__(error.errno, error.strerror)


#: What each code means, for the ``exit codes:`` list at the end of a command's help.
MEANINGS: Final[dict[int, str]] = {
    OK: "success",
    BAD_INPUT: "bad input or configuration; nothing was sent",
    REJECTED: "rejected by the service, not retryable (the service's own error text is printed)",
    RETRIES_EXHAUSTED: "retryable failure (network, 408, 429, 5xx) and retries exhausted",
    OUTBOX_UNAVAILABLE: "outbox temporarily unavailable (lock, disk full, database down);"
    " NOT stored: retry",
    DRAIN_INCOMPLETE: "--drain reached --drain-timeout; the events left stay queued for"
    " the next run",
    DEAD_LETTERS: "--drain dead-lettered events in this run (see alertwire queue dead);"
    " wins over 6",
}


def epilog(*codes: int, say: Mapping[int, str] | None = None) -> str:
    """The ``exit codes:`` list a command's ``--help`` ends with: only the codes that
    command can return (a script author reads it to decide what to retry or fix).

    ``say`` gives a command's own wording for some codes (what success means, for one).
    """
    import textwrap  # only for help: see all_codes_epilog

    texts = {**MEANINGS, **(say or {})}
    lines = [
        textwrap.fill(texts[code], 79, initial_indent=f"  {code}  ", subsequent_indent=" " * 5)
        for code in codes
    ]
    return "\n".join(["exit codes:", *lines])


#: What 5 means for a command that reads or delivers the outbox rather than storing an
#: event (``relay``, ``queue ...``): nothing of the user's is lost, the command may just
#: be run again.
OUTBOX_UNAVAILABLE_RUN_AGAIN: Final = (
    "the outbox is temporarily unavailable (lock, disk full, database down): run again later"
)

#: The sending commands' list (``trigger``, ``send``...): :func:`sending_epilog`.
EPILOG: str
#: Every code any command returns (the top-level ``alertwire --help``): :func:`all_codes_epilog`.
ALL_CODES_EPILOG: str


@functools.cache
def sending_epilog() -> str:
    """:data:`EPILOG`, made on first use, like :func:`all_codes_epilog`."""
    return epilog(
        OK,
        BAD_INPUT,
        REJECTED,
        RETRIES_EXHAUSTED,
        OUTBOX_UNAVAILABLE,
        say={OK: "delivered (or, with --queue, stored durably in the outbox)"},
    )


@functools.cache
def all_codes_epilog() -> str:
    """:data:`ALL_CODES_EPILOG`, made on first use.

    Why not at import: wrapping the lists imports ``textwrap``, and a one-event
    command that prints no help should not pay for it (cli/main.py's ``_Parser``
    reads its help texts only for ``--help``; docs/cli.md, "Start-up cost").
    """
    return epilog(*MEANINGS)


def __getattr__(name: str) -> str:
    """:data:`EPILOG` and :data:`ALL_CODES_EPILOG`, made on first access."""
    if name == "EPILOG":
        return sending_epilog()
    if name == "ALL_CODES_EPILOG":
        return all_codes_epilog()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def exit_code_for(error: AlertwireError) -> int:
    """The documented exit code for an error; ``send`` takes the worst over all lines."""
    if isinstance(error, Interrupted):
        return INTERRUPTED
    if isinstance(error, DeliveryError):
        return RETRIES_EXHAUSTED if error.retryable else REJECTED
    if isinstance(error, OutboxError) and error.retryable:
        return OUTBOX_UNAVAILABLE
    return BAD_INPUT
