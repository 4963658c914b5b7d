"""Everything the command line prints goes through here, scrubbed of keys and tokens.

Keys are held as :class:`~alertwire.Secret`, so the library never renders
one; but the CLI also prints text it did not write (a service's error body,
a file name). :meth:`Output.scrub` replaces every key and token read in this
run with its redacted form before anything reaches stdout or stderr, so
"no key is ever printed" does not depend on every service behaving.

Streams: results (a dedup key, a summary, ``--json`` documents, dry-run
requests) go to stdout for scripts; errors and the progress bar go to
stderr, and the bar only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any, NamedTuple, TextIO

from .. import _json
from .._errors import AlertwireError, BadRequest, DeliveryError, RateLimited, ValidationError
from .._secret import Secret
from ..models.results import EventResult
from . import _exit

__all__ = ["Output", "Preview", "Progress", "exit_code", "outcome_record"]

_MIN_SCRUBBED = 6


class Preview(NamedTuple):
    """What ``--dry-run`` shows instead of sending: the request, credentials redacted.

    A ``NamedTuple``, not a frozen dataclass: making one of those costs a one-event
    ``alertwire trigger`` about half a millisecond of start-up (docs/cli.md, "Start-up cost").
    """

    destination: str
    method: str
    url: str
    body: Any


def exit_code(outcome: object) -> int:
    """0 for a result or a dry-run preview, else the documented code for the error."""
    if isinstance(outcome, AlertwireError):
        return _exit.exit_code_for(outcome)
    return _exit.OK


def error_text(error: AlertwireError) -> str:
    """One line: what went wrong, in the words the exit-code contract promises.

    Exit 2 names the field (the library's ValidationError already does) or the
    missing setting; exit 3 carries the service's own text (the library puts it
    in the message); exit 4 says that the retries ran out, and after how many tries.
    """
    text = str(error)
    if isinstance(error, ValidationError):
        return f"invalid input: {text}"
    if isinstance(error, DeliveryError) and error.retryable and error.attempts:
        if error.gave_up is not None:  # name the bound, in the options' words
            why = error.gave_up.describe(budget="--max-time", attempts_limit="--max-attempts")
            return f"{why}: {error.message}"  # str(error) would name the bound a second time
        tries = f"{error.attempts} attempt{'s' if error.attempts != 1 else ''}"
        return f"retries exhausted after {tries}: {text}"
    return text


def outcome_record(outcome: object) -> dict[str, Any]:
    """The ``--json`` form of one outcome (a result, a preview or an error)."""
    if isinstance(outcome, EventResult):
        return {
            "ok": True,
            "exit_code": _exit.OK,
            "http_status": outcome.http_status,
            "status": outcome.status,
            "message": outcome.message,
            "dedup_key": outcome.dedup_key,
        }
    if isinstance(outcome, AlertwireError):
        record: dict[str, Any] = {
            "ok": False,
            "exit_code": exit_code(outcome),
            "error": type(outcome).__name__,
            "message": error_text(outcome),
        }
        if isinstance(outcome, ValidationError):
            record["problems"] = [{"field": f, "rule": r} for f, r in outcome.problems]
        if isinstance(outcome, DeliveryError):
            record.update(
                http_status=outcome.http_status,
                retryable=outcome.retryable,
                attempts=outcome.attempts,
                body=outcome.body,
            )
        if isinstance(outcome, BadRequest):
            record["errors"] = list(outcome.errors)
        if isinstance(outcome, RateLimited):
            record["retry_after"] = outcome.retry_after
        return record
    if isinstance(outcome, Preview):
        return {
            "ok": True,
            "exit_code": _exit.OK,
            "dry_run": True,
            "destination": outcome.destination,
            "method": outcome.method,
            "url": outcome.url,
            "body": outcome.body,
        }
    raise TypeError(f"not an outcome: {type(outcome).__name__}")


class Output:
    """Prints for one run; knows every secret read so far and never prints one."""

    def __init__(
        self, *, json: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.json = json
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self._secrets: list[Secret] = []

    def add_secret(self, secret: Secret | str) -> None:
        secret = Secret(secret)
        # Very short values would garble ordinary words; real keys and tokens are long.
        if len(secret) >= _MIN_SCRUBBED and secret not in self._secrets:
            self._secrets.append(secret)
            # Longest first, so a key that contains another is replaced whole.
            self._secrets.sort(key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = secret.scrub(text)
        return text

    def result(self, text: str) -> None:
        print(self.scrub(text), file=self.stdout)

    def document(self, value: Any) -> None:
        """A JSON document on stdout (the ``--json`` result)."""
        self.result(_json.dumps(value, no_floats=True).decode("utf-8"))

    def error(self, text: str) -> None:
        # A standard error that refuses writes (``2>/dev/full``) can say nothing, a
        # traceback included: the exit code is all that is left, so it must still come.
        with contextlib.suppress(OSError, ValueError):
            print(f"alertwire: {self.scrub(text)}", file=self.stderr)

    def fail(self, error: AlertwireError) -> int:
        """A command stopped by ``error``: its ``--json`` document (with ``--json``), the
        one line on stderr, and the documented exit code, alike for every command."""
        code = exit_code(error)
        if self.json:
            try:
                self.document(outcome_record(error))
            except BrokenPipeError:  # the failure, not the pipe, is what the caller gets
                self.error(f"error: {error_text(error)}")
                raise _exit.OutputClosedAfterRun(code) from None
        self.error(f"error: {error_text(error)}")
        return code

    def progress(self, total: int | None, *, unit: str = "event") -> Progress | None:
        """A bar on stderr, or ``None`` when stderr is not a terminal (logs stay clean).

        Events with a known total (``send``): only for two or more. Bytes
        (``send --queue FILE``): the file's size, or ``None`` for a pipe (a
        count and a rate, without an ETA).
        """
        isatty = getattr(self.stderr, "isatty", None)
        if isatty is None or not isatty():
            return None
        if unit == "event" and (total is None or total < 2):
            return None
        return Progress(self.stderr, total, unit=unit)


class Progress:
    """tqdm on stderr: done/total, rate and ETA, redrawn at most ten times a second.

    Why tqdm: rate, ETA, unit scaling and redraw throttling are what it does
    well, and our own bar redrew on every event and showed neither. It is a
    core dependency (one small pure-Python package, no dependencies of its
    own) and is imported here only, when a bar is actually drawn: a
    one-alert ``alertwire trigger`` and ``import alertwire`` never load it.
    Safe to advance from worker threads.
    """

    def __init__(self, stream: TextIO, total: int | None, *, unit: str = "event") -> None:
        from tqdm import tqdm

        self._lock = threading.Lock()
        self._bar = tqdm(
            total=total,
            file=stream,
            unit=unit,
            unit_scale=unit == "B",
            unit_divisor=1024 if unit == "B" else 1000,
            mininterval=0.1,
            leave=True,
            **_size_if_unknown(stream),
        )

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self._bar.update(count)

    def close(self) -> None:
        with self._lock:
            self._bar.close()


def _size_if_unknown(stream: TextIO) -> dict[str, int]:
    """Nothing (tqdm asks the terminal) unless the terminal reports 0 x 0, as a
    pseudo-terminal without a size does: tqdm then draws nothing at all (no row
    is free for the bar), so an ordinary 80 x 24 is assumed."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return {}
    if size.columns > 0 and size.lines > 0:
        return {}
    return {"ncols": size.columns or 80, "nrows": size.lines or 24}
