"""``alertwire send --queue FILE|-``: stream JSON lines into the outbox in short chunks.

Why not one transaction: 300,000 lines held the outbox's write lock for 45 s
at 1.6 GB RSS, and a concurrent ``trigger --queue`` was refused. Now:

* **Bounded memory.** Lines are read one at a time (at most
  :data:`MAX_LINE_BYTES` each; a longer line is invalid and skipped to its
  end); each line's outcome is reported as soon as it is known and then
  forgotten; ``--json`` writes its document as it goes.
* **Short transactions.** Valid lines are prepared (validated, dedup key
  assigned) outside any transaction and committed in chunks of at most
  :data:`CHUNK_EVENTS` events, :data:`CHUNK_BYTES` bytes of bodies, or
  :data:`CHUNK_SECONDS` seconds since the chunk's first line was read,
  whichever comes first. A chunk holds the write lock for a few
  milliseconds plus one fsync, far below the 10 s busy timeout, so other
  producers never wait long; and a slow pipe (``tail -f ... | alertwire
  send --queue -``) has its lines stored within half a second, because the
  input is read on a thread of its own and a waiting chunk is committed when
  its time is up even if no further line comes.
* **What is atomic: one chunk.** Chunks are committed in input order, so
  what is stored is always every valid line up to some line N. If the run
  stops half way (the outbox refuses a chunk: a lock held past the busy
  timeout or a full disk, exit 5; or Ctrl-C, exit 130), the last line says
  which: ``lines up to N are queued; from line N+1 on NOT queued``, and
  ``--json`` has ``stored_through_line`` and ``stopped_at_line``. Resume
  with ``tail -n +N+1 FILE | alertwire send --queue -``. A run killed
  outright (SIGKILL) prints nothing; ``alertwire queue status`` shows what
  arrived, always a prefix of the file's valid lines.
* A line whose destination is not configured (a BigPanda line without a
  token) is reported as that line's error (exit 2) and never stored; the
  other lines are. With ``--strict`` every line is checked first (stdin is
  spooled to an unlinked temporary file for that) and nothing is stored if
  any line is invalid or unroutable.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO, Any, Final

from .. import _json
from .._errors import AlertwireError, ConfigurationError, OutboxError, ValidationError
from ..models.results import EventResult
from . import _exit
from ._clients import Clients, Destination
from ._output import Output, error_text, exit_code, outcome_record
from ._queue import queued_result

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_EVENTS",
    "CHUNK_SECONDS",
    "MAX_LINE_BYTES",
    "queue_lines",
]

CHUNK_EVENTS: Final = 500
CHUNK_BYTES: Final = 4 * 1024 * 1024
CHUNK_SECONDS: Final = 0.5
#: Longer than any event the services accept (PagerDuty's limit is 512 KB).
MAX_LINE_BYTES: Final = 1024 * 1024
BOM: Final = b"\xef\xbb\xbf"
#: Lines read ahead of the chunk being built: bounds memory when storing is slower.
_READ_AHEAD: Final = 1024

_END: Final = (0, b"")


class _TooLong(Exception):
    """A line over :data:`MAX_LINE_BYTES`; the rest of it was skipped."""


def _read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | _TooLong]]:
    """``(line number, bytes)`` from 1, the UTF-8 BOM of line 1 dropped (editors
    on Windows write one), each line at most :data:`MAX_LINE_BYTES`."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if number == 1:
            raw = raw.removeprefix(BOM)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while True:  # skip to the end of this line, a bounded piece at a time
                rest = stream.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, _TooLong()
            continue
        yield number, raw


class _Reader:
    """Reads lines on a thread of its own, so a chunk can be committed on time
    while the input is quiet (a slow pipe); ``get(timeout)`` returns ``None`` then."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._queue: queue.Queue[tuple[int, bytes | _TooLong] | BaseException] = queue.Queue(
            _READ_AHEAD
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(stream,), name="alertwire-send-reader", daemon=True
        )
        self._thread.start()

    def _put(self, item: tuple[int, bytes | _TooLong] | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _run(self, stream: IO[bytes]) -> None:
        try:
            for item in _read_lines(stream):
                if not self._put(item):
                    return
        except (OSError, ValueError) as exc:  # a read error, a stream closed under us
            self._put(exc)
        finally:
            self._put(_END)  # whatever happened, the reading side never waits forever

    def get(self, timeout: float | None) -> tuple[int, bytes | _TooLong] | None:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise ConfigurationError(f"cannot read the input: {item}") from item
        return item

    def close(self) -> None:
        self._stop.set()


def _open_input(name: str, *, rewindable: bool) -> IO[bytes]:
    """The input as a binary stream; stdin spooled to an unlinked file when it must
    be read twice (``--strict``)."""
    if name != "-":
        try:
            return open(name, "rb")
        except OSError as exc:
            raise ConfigurationError(f"cannot read {name!r}: {exc.strerror}") from None
    if not rewindable:
        return sys.stdin.buffer
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the caller
    while chunk := sys.stdin.buffer.read(1 << 20):
        spool.write(chunk)
    spool.seek(0)
    return spool


class _Rows:
    """A line's outbox row, or the error that keeps it out (per line, never raised)."""

    def __init__(self, args: argparse.Namespace, clients: Clients) -> None:
        self._args = args
        self._clients = clients
        self._unconfigured: dict[Destination, ConfigurationError] = {}

    def row(self, number: int, raw: bytes | _TooLong) -> Any:
        from ._events import job_from_line
        from ._queue import prepare_row

        if isinstance(raw, _TooLong):
            return ValidationError("event", f"is longer than {MAX_LINE_BYTES} bytes")
        try:
            job = job_from_line(raw, number)
        except ValidationError as exc:
            return exc
        destination = job.destination
        if destination in self._unconfigured:
            return self._unconfigured[destination]
        try:
            client = self._clients.get(destination)
        except ConfigurationError as exc:
            self._unconfigured[destination] = exc
            return exc
        try:
            return prepare_row(self._args, job, client)
        except (ValidationError, ConfigurationError) as exc:
            return exc


class _Report:
    """Each line's outcome as it is known: errors on stderr, ``--json`` streamed."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.events = 0
        self.queued = 0
        self.codes: dict[int, int] = {}
        self.stored_through = 0
        self._first = True
        if output.json:
            output.stdout.write('{"results": [')

    def outcome(self, line: int, outcome: Any) -> None:
        self.events += 1
        code = exit_code(outcome)
        self.codes[code] = self.codes.get(code, 0) + 1
        if isinstance(outcome, EventResult):
            self.queued += 1
        if self.output.json:
            record = _json.dumps({"line": line, **outcome_record(outcome)}).decode("utf-8")
            self.output.stdout.write(("" if self._first else ",\n") + self.output.scrub(record))
            self._first = False
        if isinstance(outcome, AlertwireError):
            self.output.error(f"line {line}: {error_text(outcome)}")

    def summary(self) -> dict[str, int]:
        return {
            "events": self.events,
            "delivered": 0,
            "previewed": 0,
            "invalid": self.codes.get(_exit.BAD_INPUT, 0),
            "rejected": 0,
            "retries_exhausted": 0,
            "not_sent": 0,
            "queued": self.queued,
        }

    def finish(self, worst: int, *, extra: dict[str, Any] | None = None) -> int:
        from .send_cmd import summary_text

        summary = self.summary()
        if self.output.json:
            tail = {"summary": summary, "ok": worst == _exit.OK, "exit_code": worst}
            tail.update(extra or {})
            rest = _json.dumps(tail).decode("utf-8")
            self.output.stdout.write("],\n" + rest[1:] + "\n")
            self.output.stdout.flush()
        else:
            self.output.result(summary_text(summary))
        return worst


def queue_lines(args: argparse.Namespace, output: Output) -> int:
    """Store every valid line of ``args.file`` in the outbox, chunk by chunk."""
    clients = Clients(args, output)
    try:
        if args.strict:
            with contextlib.closing(_open_input(args.file, rewindable=True)) as stream:
                invalid = _check_all(args, clients, output, stream)
                if invalid:
                    output.error(
                        f"nothing sent: {invalid} invalid line{'s' if invalid != 1 else ''}"
                        " and --strict"
                    )
                    return _exit.BAD_INPUT
                stream.seek(0)
                return _store_all(args, clients, output, stream)
        stream = _open_input(args.file, rewindable=False)
        try:
            return _store_all(args, clients, output, stream)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
    finally:
        clients.close()


def _check_all(args: argparse.Namespace, clients: Clients, output: Output, stream: Any) -> int:
    """``--strict``'s first pass: every line's error, nothing stored; the count."""
    rows = _Rows(args, clients)
    invalid = 0
    for number, raw in _read_lines(stream):
        if isinstance(raw, bytes) and not raw.strip():
            continue
        row = rows.row(number, raw)
        if isinstance(row, AlertwireError):
            invalid += 1
            output.error(f"line {number}: {error_text(row)}")
    return invalid


def _store_all(args: argparse.Namespace, clients: Clients, output: Output, stream: Any) -> int:
    from ..outbox import Outbox

    rows = _Rows(args, clients)
    report = _Report(output)
    reader = _Reader(stream)
    progress = output.progress(_size(stream), unit="B")
    chunk: list[tuple[int, Any]] = []
    chunk_bytes = 0
    chunk_started = 0.0
    last_line = 0
    stopped: tuple[int, str, int] | None = None  # (first line not stored, why, exit code)

    def commit(outbox: Outbox) -> None:
        """Store the chunk's rows in one transaction, then report its lines in order."""
        nonlocal chunk, chunk_bytes
        if not chunk:
            return
        rows = [row for _, row in chunk if not isinstance(row, AlertwireError)]
        stored = iter(outbox.put(rows) if rows else [])
        for line, row in chunk:
            if isinstance(row, AlertwireError):
                report.outcome(line, row)
                continue
            item = next(stored)
            report.outcome(line, queued_result(item))
        report.stored_through = chunk[-1][0]
        chunk, chunk_bytes = [], 0

    try:
        with Outbox.open(getattr(args, "outbox", None)) as outbox:
            try:
                while True:
                    timeout = (
                        None
                        if not chunk
                        else max(0.0, chunk_started + CHUNK_SECONDS - time.monotonic())
                    )
                    item = reader.get(timeout)
                    if item is None:  # the input is quiet and the chunk's time is up
                        commit(outbox)
                        continue
                    number, raw = item
                    if item == _END:
                        commit(outbox)
                        break
                    last_line = number
                    if progress is not None:
                        progress.advance(len(raw) if isinstance(raw, bytes) else MAX_LINE_BYTES)
                    if isinstance(raw, bytes) and not raw.strip():
                        continue
                    row = rows.row(number, raw)
                    if not chunk:
                        chunk_started = time.monotonic()
                    chunk.append((number, row))
                    if not isinstance(row, AlertwireError):
                        chunk_bytes += len(row.body)
                    if (
                        len(chunk) >= CHUNK_EVENTS
                        or chunk_bytes >= CHUNK_BYTES
                        or time.monotonic() - chunk_started >= CHUNK_SECONDS
                    ):
                        commit(outbox)
            except OutboxError as exc:
                # The chunk being stored is not; its invalid lines never were going to be.
                first = next((n for n, r in chunk if not isinstance(r, AlertwireError)), 0)
                first = first or last_line + 1
                stopped = (first, f"error: {error_text(exc)}", exit_code(exc))
            except KeyboardInterrupt:
                first = next((n for n, r in chunk if not isinstance(r, AlertwireError)), 0)
                first = first or last_line + 1
                stopped = (first, "interrupted", 130)
    except OutboxError as exc:  # the outbox could not be opened at all: nothing stored
        stopped = (1, f"error: {error_text(exc)}", exit_code(exc))
    finally:
        reader.close()
        if progress is not None:
            progress.close()

    worst = max(report.codes, default=_exit.OK)
    if stopped is None:
        return report.finish(worst)
    first, why, code = stopped
    stored = report.stored_through
    where = (
        f"lines up to {stored} are queued; from line {first} on NOT queued"
        if stored
        else f"nothing was queued (from line {first} on NOT queued)"
    )
    output.error(f"{why}; {where}")
    return report.finish(
        max(worst, code), extra={"stored_through_line": stored, "stopped_at_line": first}
    )


def _size(stream: Any) -> int | None:
    """The input's size when it is a regular file (a bar with an ETA), else ``None``."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    import stat

    return info.st_size if stat.S_ISREG(info.st_mode) else None
