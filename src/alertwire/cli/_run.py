"""Running a one-event command: build, dispatch, print, and return the exit code.

Every error alertwire raises on purpose is caught here and rendered by the
same code as a service's answer, so ``--json`` gives a document on stdout
for exit codes 2, 3 and 4 too (argparse's own usage errors excepted: those
are one line on stderr and exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Callable, Iterator

from .._errors import AlertwireError
from ..models.results import EventResult
from ._clients import Clients
from ._deliver import Job, Outcome, dispatch
from ._output import Output, Preview, exit_code, outcome_record

__all__ = ["logging_to", "message", "preview_text", "run_one"]


class _Scrub(logging.Filter):
    def __init__(self, output: Output) -> None:
        super().__init__()
        self._output = output

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._output.scrub(record.getMessage())
        record.args = None
        return True


@contextlib.contextmanager
def logging_to(output: Output) -> Iterator[None]:
    """Library warnings (a retry, a shortened summary) as ``alertwire: ...`` lines on stderr.

    Only for the duration of one command, and nothing else about the logger
    changes: a program (or a test) that calls ``main()`` in-process keeps
    its own logging configuration.
    """
    logger = logging.getLogger("alertwire")
    handler = logging.StreamHandler(output.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("alertwire: %(message)s"))
    handler.addFilter(_Scrub(output))
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def preview_text(preview: Preview) -> str:
    import json

    body = json.dumps(preview.body, indent=2, ensure_ascii=False)
    return f"{preview.method} {preview.url}\n{body}"


def message(result: EventResult) -> str:
    """The success line of a command whose event has no key to print: the service's message."""
    return result.message or result.status


def run_one(
    args: argparse.Namespace,
    build: Callable[[], Job],
    show: Callable[[EventResult], str],
) -> int:
    """Send the job ``build`` makes; ``show`` is the plain-text success line (stdout)."""
    output = Output(json=args.json)
    clients = Clients(args, output, single=True)
    outcome: Outcome
    try:
        with logging_to(output):
            outcome = dispatch([build()], clients, output, dry_run=args.dry_run)[0]
    except AlertwireError as exc:
        outcome = exc
    finally:
        clients.close()
    if isinstance(outcome, AlertwireError):
        return output.fail(outcome)
    if output.json:
        output.document(outcome_record(outcome))
    else:
        output.result(preview_text(outcome) if isinstance(outcome, Preview) else show(outcome))
    return exit_code(outcome)
