"""Running a one-event command: build, dispatch, print, and return the exit code.

Every error alertwire raises on purpose is caught here and rendered by the
same code as a service's answer, so ``--json`` gives a document on stdout
for exit codes 2, 3 and 4 too (argparse's own usage errors excepted: those
are one line on stderr and exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .. import _log
from .._errors import AlertwireError
from ..models.results import EventResult
from ._clients import Clients
from ._deliver import Job, Outcome, dispatch
from ._output import Output, Preview, exit_code, outcome_record
from ._queue import wants_queue

if TYPE_CHECKING:
    import logging

__all__ = ["logging_to", "message", "preview_text", "run_one"]


def _handler(output: Output) -> logging.Handler:
    """``alertwire: <message>`` on the command's stderr, WARNING and up, secrets scrubbed."""
    import logging

    class Scrub(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg = output.scrub(record.getMessage())
            record.args = None
            return True

    handler = logging.StreamHandler(output.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("alertwire: %(message)s"))
    handler.addFilter(Scrub())
    return handler


def _no_op() -> None:
    pass


@contextlib.contextmanager
def logging_to(output: Output, *, lazily: bool = False) -> Iterator[None]:
    """Library warnings (a retry, a shortened summary) as ``alertwire: ...`` lines on stderr.

    Only for the duration of one command, and nothing else about the logger
    changes: a program (or a test) that calls ``main()`` in-process keeps
    its own logging configuration.

    ``lazily``: if ``logging`` is not loaded yet, the handler waits in
    :func:`alertwire._log.when_logging` until the first warning, so a
    one-event send that is answered at once never imports it (docs/cli.md,
    "Start-up cost"). Only for a command whose every warning goes through
    :mod:`alertwire._log` (a client's send, its models): a module that logs
    on its own (the outbox, the REST client) would write past a handler
    still waiting, so every other command installs it at once.
    """
    installed: list[logging.Handler] = []

    def install() -> None:
        import logging

        handler = _handler(output)
        logging.getLogger(_log.LOGGER).addHandler(handler)
        installed.append(handler)

    if lazily:
        cancel = _log.when_logging(install)
    else:
        install()
        cancel = _no_op
    try:
        yield
    finally:
        cancel()
        if installed:
            import logging

            logging.getLogger(_log.LOGGER).removeHandler(installed[0])


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
        # Lazily only for a direct send: --queue reaches the outbox, which logs on its own.
        with logging_to(output, lazily=not wants_queue(clients)):
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
