"""``alertwire send --queue FILE|-``: stream JSON lines into the outbox in short chunks.

Why not one transaction: 300,000 lines held the outbox's write lock for 45 s
at 1.6 GB RSS, and a concurrent ``trigger --queue`` was refused. Now:

* **Bounded memory.** Lines are read one at a time (at most
  :data:`~._lines.MAX_LINE_BYTES` each; a longer line is invalid and skipped
  to its end: :mod:`._lines`); each line's outcome is reported as soon as it is known and then
  forgotten; ``--json`` writes its document as it goes.
* **Short transactions.** Valid lines are prepared (validated, dedup key
  assigned) outside any transaction and committed in chunks of at most
  :data:`CHUNK_EVENTS` events, :data:`CHUNK_BYTES` bytes of bodies, or
  :data:`CHUNK_SECONDS` seconds since the chunk's first line was read,
  whichever comes first. A chunk holds the write lock for about a
  fifth of a second (one fsync included), far below the 10 s busy timeout,
  so other producers never wait long; and a slow pipe (``tail -f ... | alertwire
  send --queue -``) has its lines stored within half a second, because the
  input is read on a thread of its own and a waiting chunk is committed when
  its time is up even if no further line comes.
* **Three threads.** One reads lines, the main one prepares them, and one
  stores the chunk before while the next is prepared (:class:`_Storer`; SQLite
  lets go of the interpreter lock while it writes a chunk's rows in one
  statement and fsyncs them).
* **What is atomic: one chunk.** Chunks are committed in input order, so
  what is stored is always every valid line up to some line N. If the run
  stops half way (the outbox refuses a chunk: a lock held past the busy
  timeout or a full disk, exit 5; or Ctrl-C, exit 130, once the chunk being
  stored has landed or failed), the last line says
  which: ``lines up to N are queued; from line N+1 on NOT queued``, and
  ``--json`` has ``stored_through_line`` and ``stopped_at_line``. Resume
  with ``tail -n +N+1 FILE | alertwire send --queue -``. A run killed
  outright (SIGKILL) prints nothing; ``alertwire queue status`` shows what
  arrived, always a prefix of the file's valid lines.
* **Its own connection is tuned for bulk writes** (a bigger page cache,
  rarer checkpoints; same durability): see :func:`_tune_for_bulk_writes`.
  Why these choices, and the figures: docs/cli.md, ``send --queue``.
* A line whose destination is not configured (a BigPanda line without a
  token) is that line's error (exit 2) and never stored; the other lines
  are. The error is said on stderr once, at the first such line, and the
  count of later lines refused for it at the end (:class:`_ErrorLines`), not
  once per line: a million-line file without a routing key printed a
  million copies of it. ``--json`` still has every line's record. With ``--strict`` every line is checked first (stdin is
  spooled to an unlinked temporary file for that) and nothing is stored if
  any line is invalid or unroutable.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import IO, TYPE_CHECKING, Any, Final

from .. import _json
from .._errors import AlertwireError, ConfigurationError, OutboxError, ValidationError
from ..models.results import EventResult
from . import _exit
from ._clients import Clients
from ._events import job_from_line
from ._lines import MAX_LINE_BYTES, LineTooLong, read_lines, say_if_reading_a_terminal
from ._output import Output, error_text, exit_code, outcome_record
from ._queue import prepare_row, queued_result

if TYPE_CHECKING:
    from ..outbox import Enqueued
    from ..outbox.machine import Destination

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_EVENTS",
    "CHUNK_SECONDS",
    "queue_lines",
]

#: 10,000, not 500: a commit's cost is mostly per commit (an fsync; index pages that
#: many chunks touch written to the WAL again each time), so 500-event chunks spent
#: about twice as long storing as 5,000-event ones, and 10,000 (with rarer
#: checkpoints) took 1,000,000 lines from about 48 s to 37 s (docs/cli.md, ``send
#: --queue``), while a chunk still holds the write lock for about a fifth of a second.
#: Two of the store's one-statement groups (``_BULK_INSERT_ROWS``).
CHUNK_EVENTS: Final = 10_000
CHUNK_BYTES: Final = 4 * 1024 * 1024
CHUNK_SECONDS: Final = 0.5
#: Lines (and bytes of them) read ahead of the chunk being built: bound memory when
#: storing is slower than reading. At least one line is always let through.
_READ_AHEAD: Final = 1024
_READ_AHEAD_BYTES: Final = 8 * 1024 * 1024
#: The input's read buffer: one read per megabyte, not per 8 KiB. The reading thread
#: waits for the interpreter lock after every read while lines are being stored, so
#: fewer reads is what keeps it ahead.
_READ_BUFFER: Final = 1024 * 1024

_END: Final = (0, b"")


class _Reader:
    """Reads lines on a thread of its own, so a chunk can be committed on time
    while the input is quiet (a slow pipe); ``take(timeout)`` returns ``[]`` then.

    Lines are handed over in batches, every line read so far at each
    ``take``, not one by one: a hand-over per line (a queue put and a wake-up)
    cost more than storing the line, and the two threads took turns at the
    interpreter lock for each. A line is still handed over as soon as it is
    read when the other side is waiting for one.

    ``owned``: the stream is closed here, by the reading thread, once it has read its
    last line, never by the storing side: after Ctrl-C that thread may be blocked in
    a read of a pipe that stays open (``tail -f ... |``), holding the stream's lock,
    and a close from the main thread would wait for it for ever.
    """

    def __init__(self, stream: IO[bytes], *, owned: bool = False) -> None:
        self._owned = owned
        self._ready = threading.Condition(threading.Lock())
        self._items: list[tuple[int, bytes | LineTooLong]] = []
        self._ahead = 0  # bytes of the lines in _items
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(
            target=self._run, args=(stream,), name="alertwire-send-reader", daemon=True
        )
        self._thread.start()

    def _put(self, item: tuple[int, bytes | LineTooLong]) -> bool:
        size = len(item[1]) if isinstance(item[1], bytes) else 0
        with self._ready:
            while self._items and (
                len(self._items) >= _READ_AHEAD or self._ahead + size > _READ_AHEAD_BYTES
            ):
                if self._stop:
                    return False
                self._ready.wait(0.1)
            if self._stop:
                return False
            self._items.append(item)
            self._ahead += size
            if len(self._items) == 1:
                self._ready.notify()  # the storing side may be waiting for a line
            return True

    def _run(self, stream: IO[bytes]) -> None:
        error: BaseException | None = None
        try:
            for item in read_lines(stream):
                if not self._put(item):
                    return
        except (OSError, ValueError) as exc:  # a read error, a stream closed under us
            error = exc
        finally:
            if self._owned:
                with contextlib.suppress(OSError):
                    stream.close()
            # Whatever happened, the storing side never waits forever: after the
            # last line comes the end, or the read error.
            with self._ready:
                if error is None:
                    self._items.append(_END)
                else:
                    self._error = error
                self._ready.notify()

    def take(self, timeout: float | None) -> list[tuple[int, bytes | LineTooLong]]:
        """The lines read since the last call, in order (the last one :data:`_END` at the
        end of the input); waits up to ``timeout`` for one (``None``: until one comes),
        else ``[]``. A read error is raised once every line before it was taken."""
        with self._ready:
            if not self._items and self._error is None:
                self._ready.wait(timeout)
            items, self._items, self._ahead = self._items, [], 0
            if items:
                self._ready.notify()  # room again for the reading side
                return items
            if self._error is not None:
                raise ConfigurationError(f"cannot read the input: {self._error}") from self._error
            return items

    def close(self) -> None:
        with self._ready:
            self._stop = True
            self._ready.notify_all()


def _open_input(name: str, *, rewindable: bool) -> IO[bytes]:
    """The input as a binary stream; stdin spooled to an unlinked file when it must
    be read twice (``--strict``)."""
    if name != "-":
        try:
            return open(name, "rb", buffering=_READ_BUFFER)
        except OSError as exc:
            raise ConfigurationError(f"cannot read {name!r}: {exc.strerror}") from None
    say_if_reading_a_terminal()
    if not rewindable:
        return _stdin_of_our_own()
    spool = tempfile.TemporaryFile(buffering=_READ_BUFFER)  # noqa: SIM115 - closed by the caller
    while chunk := sys.stdin.buffer.read(1 << 20):
        spool.write(chunk)
    spool.seek(0)
    return spool


def _stdin_of_our_own() -> IO[bytes]:
    """Standard input as a file object of this run's own, on the same descriptor.

    Why not ``sys.stdin.buffer``: when Ctrl-C ends a run whose input is a pipe that
    stays open, the reading thread (a daemon) is blocked in a read of it, holding
    the file object's lock; at exit the interpreter closes ``sys.stdin`` and, unable
    to take that lock, aborted ("Fatal Python error: _enter_buffered_busy", killed by
    SIGABRT instead of exit 130). Nothing at exit closes a file object of our own.
    ``closefd=False``: the descriptor stays the process's.
    """
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by something without one
        return sys.stdin.buffer
    return open(fd, "rb", buffering=_READ_BUFFER, closefd=False)


class _Storer:
    """Stores chunks on a thread of its own, one at a time and in input order, while
    the next chunk is read and prepared.

    Storing a chunk is mostly SQLite's own work (the rows written into the pages,
    the commit's fsync), during which the interpreter lock is free; preparing
    lines is Python. Done one after the other, each waited for the other; side by
    side, a run of 1,000,000 lines took about 40 s instead of 55 (docs/cli.md,
    ``send --queue``). At most one chunk is being stored and one built, so memory
    stays bounded and what is stored is still every valid line up to some line N:
    :meth:`start` is only called once the chunk before it was settled.
    """

    def __init__(self, outbox: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._outbox = outbox
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="alertwire-send-store")
        self._in_flight: tuple[list[tuple[int, Any]], Future[list[Enqueued]]] | None = None

    @property
    def in_flight(self) -> list[tuple[int, Any]]:
        """The lines of the chunk being stored (or whose storing failed); ``[]`` if none."""
        return self._in_flight[0] if self._in_flight is not None else []

    def start(self, chunk: list[tuple[int, Any]]) -> None:
        """Begin storing the valid rows of ``chunk`` (its errors are reported by the caller)."""
        assert self._in_flight is None, "the chunk before was not settled"
        rows = [row for _, row in chunk if not isinstance(row, AlertwireError)]
        future: Future[list[Enqueued]]
        if rows:
            future = self._pool.submit(self._outbox.put, rows)
        else:
            future = Future()
            future.set_result([])
        self._in_flight = (chunk, future)

    def settle(
        self, *, despite_interrupts: bool = False
    ) -> tuple[list[tuple[int, Any]], list[Enqueued]] | None:
        """Wait for the chunk being stored: its lines and their stored rows, or ``None``
        if there is none. The write's error (an :class:`OutboxError`) is raised; the
        chunk then stays :attr:`in_flight`, so the caller can say where storing stopped.

        ``despite_interrupts``: after a Ctrl-C, further ones do not stop the wait, so
        the last line printed says exactly which lines are stored (a write is one
        chunk: at most the busy timeout, 10 s, if another process holds the lock)."""
        if self._in_flight is None:
            return None
        chunk, future = self._in_flight
        while True:
            try:
                stored = future.result()
            except KeyboardInterrupt:
                if despite_interrupts:
                    continue
                raise
            self._in_flight = None
            return chunk, stored

    def close(self) -> None:
        """Wait for the thread (nothing is left to store once every chunk was settled)."""
        self._pool.shutdown(wait=True)


class _Rows:
    """A line's outbox row, or the error that keeps it out (per line, never raised).

    PagerDuty lines (the bulk of a large input) get their client, the URL to
    store, the routing key's check and the route digest once per chunk, not once
    per line, through one preparer; lines of one chunk without a timestamp share
    its enqueue time (see :meth:`~alertwire.outbox.Outbox.pagerduty_preparer`).
    BigPanda lines go through :func:`._queue.prepare_row`, as ``--queue`` does.
    """

    def __init__(self, args: argparse.Namespace, clients: Clients) -> None:
        self._args = args
        self._clients = clients
        self._unconfigured: dict[Destination, ConfigurationError] = {}
        self._pagerduty: Callable[[Any], Any] | None = None

    def new_chunk(self) -> None:
        """The next line starts a chunk: stamp its events with a time of their own."""
        self._pagerduty = None

    def row(self, number: int, raw: bytes | LineTooLong) -> Any:
        if isinstance(raw, LineTooLong):
            return raw.error()
        try:
            job = job_from_line(raw, number)
        except ValidationError as exc:
            return exc
        destination = job.destination
        if destination in self._unconfigured:
            return self._unconfigured[destination]
        try:
            if destination == "pagerduty":
                prepare = self._pagerduty
                if prepare is None:
                    prepare = self._pagerduty = self._pagerduty_preparer()
                return prepare(job.event)
            return prepare_row(self._args, job, self._client(destination))
        except (ValidationError, ConfigurationError) as exc:
            return exc

    def _client(self, destination: Destination) -> Any:
        try:
            return self._clients.get(destination)
        except ConfigurationError as exc:
            self._unconfigured[destination] = exc
            raise

    def _pagerduty_preparer(self) -> Callable[[Any], Any]:
        from ..outbox import Outbox
        from ._queue import explicit_url

        client = self._client("pagerduty")
        url = explicit_url(self._args, "pagerduty", client)
        return Outbox.pagerduty_preparer(client.routing_key, base_url=url)


class _ErrorLines:
    """A line's error on stderr, as it comes; a configuration error (a destination's
    missing settings: the same for each of its lines) only the first time, and in
    :meth:`close` how many later lines it refused. Counted by its text, so neither the
    error objects nor the lines are kept."""

    def __init__(self, output: Output) -> None:
        self._output = output
        self._repeated: dict[str, int] = {}
        self._closed = False

    def say(self, line: int, error: AlertwireError) -> None:
        text = error_text(error)
        if isinstance(error, ConfigurationError):
            if text in self._repeated:
                self._repeated[text] += 1
                return
            self._repeated[text] = 0
        self._output.error(f"line {line}: {text}")

    def close(self) -> None:
        """Say the counts (once: before a run's last line, which says where it stopped)."""
        if self._closed:
            return
        self._closed = True
        for text, later in self._repeated.items():
            if later:
                self._output.error(
                    f"{later:,} more line{'s' if later != 1 else ''} not queued: {text}"
                )


class _Report:
    """Each line's outcome as it is known: errors on stderr, ``--json`` streamed."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.errors = _ErrorLines(output)
        self.events = 0
        self.queued = 0
        #: Valid lines read but not stored: the run stopped before their chunk landed.
        self.not_stored = 0
        self.codes: dict[int, int] = {}
        self.stored_through = 0
        self._first = True
        #: Standard output refused a write (a reader gone, a full disk): nothing more is
        #: written to it, but every line is still stored, as ``send`` still sends every
        #: line; the run's own exit code then wins (:class:`~._exit.OutputClosedAfterRun`).
        self.closed = False
        if output.json:
            self._write('{"results": [')

    def stored(self, line: int, item: Enqueued) -> None:
        """A line stored in the outbox: counted; its record built only for ``--json``
        (a result object per stored line cost more than counting it)."""
        if self.output.json:
            self.outcome(line, queued_result(item))
            return
        self.stored_quietly(1)

    def stored_quietly(self, count: int) -> None:
        """``count`` lines stored, none with anything to print (no ``--json``): counted."""
        self.events += count
        self.queued += count
        self.codes[_exit.OK] = self.codes.get(_exit.OK, 0) + count

    def outcome(self, line: int, outcome: Any) -> None:
        self.events += 1
        code = exit_code(outcome)
        self.codes[code] = self.codes.get(code, 0) + 1
        if isinstance(outcome, EventResult):
            self.queued += 1
        if self.output.json:
            record = _json.dumps({"line": line, **outcome_record(outcome)}, no_floats=True).decode(
                "utf-8"
            )
            self._write(("" if self._first else ",\n") + self.output.scrub(record))
            self._first = False
        if isinstance(outcome, AlertwireError):
            self.errors.say(line, outcome)

    def summary(self) -> dict[str, int]:
        return {
            "events": self.events,
            "delivered": 0,
            "previewed": 0,
            "invalid": self.codes.get(_exit.BAD_INPUT, 0),
            "rejected": 0,
            "retries_exhausted": 0,
            "held_back": 0,
            "not_sent": self.not_stored,
            "queued": self.queued,
        }

    def finish(self, worst: int, *, extra: dict[str, Any] | None = None) -> int:
        from .send_cmd import summary_text

        self.errors.close()
        summary = self.summary()
        if self.output.json:
            tail = {"summary": summary, "ok": worst == _exit.OK, "exit_code": worst}
            tail.update(extra or {})
            rest = _json.dumps(tail, no_floats=True).decode("utf-8")
            self._write("],\n" + rest[1:] + "\n", flush=True)
        else:
            self._write(self.output.scrub(summary_text(summary)) + "\n")
        if self.closed:
            raise _exit.OutputClosedAfterRun(worst)
        return worst

    def _write(self, text: str, *, flush: bool = False) -> None:
        if self.closed:
            return
        try:
            self.output.stdout.write(text)
            if flush:
                self.output.stdout.flush()
        except BrokenPipeError:  # OutputUnwritable too: said once on stderr where raised
            self.closed = True


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
                return _store_all(args, clients, output, stream, owned=False)
        return _store_all(
            args, clients, output, _open_input(args.file, rewindable=False), owned=True
        )
    finally:
        clients.close()


def _check_all(args: argparse.Namespace, clients: Clients, output: Output, stream: Any) -> int:
    """``--strict``'s first pass: every line's error, nothing stored; the count."""
    rows = _Rows(args, clients)
    errors = _ErrorLines(output)
    invalid = 0
    for number, raw in read_lines(stream):
        if isinstance(raw, bytes) and not raw.strip():
            continue
        row = rows.row(number, raw)
        if isinstance(row, AlertwireError):
            invalid += 1
            errors.say(number, row)
    errors.close()
    return invalid


def _store_all(
    args: argparse.Namespace, clients: Clients, output: Output, stream: Any, *, owned: bool
) -> int:
    """``owned``: the stream is this run's to close (see :class:`_Reader`)."""
    from ..outbox import Outbox

    size = _size(stream)  # before the reader may have closed it
    reader = _Reader(stream, owned=owned)  # first: from here on, it closes an owned stream
    rows = _Rows(args, clients)
    report = _Report(output)
    progress = output.progress(size, unit="B")
    chunk: list[tuple[int, Any]] = []
    chunk_bytes = 0
    chunk_started = 0.0
    last_line = 0
    finished = False
    stopped: tuple[int, str, int] | None = None  # (first line not stored, why, exit code)

    def report_stored(settled: tuple[list[tuple[int, Any]], list[Enqueued]] | None) -> None:
        """Report a stored chunk's lines in order."""
        if settled is None:
            return
        lines, enqueued = settled
        stored = iter(enqueued)
        if len(enqueued) == len(lines) and not report.output.json:  # the usual chunk
            report.stored_quietly(len(enqueued))
        else:
            for line, row in lines:
                if isinstance(row, AlertwireError):
                    report.outcome(line, row)
                else:
                    report.stored(line, next(stored))
        report.stored_through = lines[-1][0]

    def commit(storer: _Storer) -> None:
        """Report the chunk stored before (waiting for it), then start storing this one."""
        nonlocal chunk, chunk_bytes
        report_stored(storer.settle())
        if chunk:
            storer.start(chunk)
            chunk, chunk_bytes = [], 0

    def first_not_stored(storer: _Storer) -> int:
        """The first valid line of the chunk whose storing failed or was cut short; the
        valid lines read and not stored are counted (the summary says "not sent",
        where it said "0 events" when the first chunk failed)."""
        unstored = [
            n for n, row in [*storer.in_flight, *chunk] if not isinstance(row, AlertwireError)
        ]
        report.events += len(unstored)
        report.not_stored += len(unstored)
        return unstored[0] if unstored else last_line + 1

    try:
        with Outbox.open(getattr(args, "outbox", None)) as outbox:
            _tune_for_bulk_writes(outbox)
            storer = _Storer(outbox)
            try:
                while not finished:
                    if chunk:  # commit it when its time is up, even if no line comes
                        timeout: float | None = max(
                            0.0, chunk_started + CHUNK_SECONDS - time.monotonic()
                        )
                    else:  # report the chunk being stored soon, even if no line comes
                        timeout = None if not storer.in_flight else CHUNK_SECONDS
                    items = reader.take(timeout)
                    if not items:  # the input is quiet: store what there is, and report it
                        commit(storer)
                        report_stored(storer.settle())
                        continue
                    for item in items:
                        number, raw = item
                        if item == _END:
                            commit(storer)
                            report_stored(storer.settle())
                            finished = True
                            break
                        last_line = number
                        if progress is not None:
                            progress.advance(len(raw) if isinstance(raw, bytes) else MAX_LINE_BYTES)
                        if isinstance(raw, bytes) and (not raw or raw.isspace()):  # blank
                            continue
                        if not chunk:
                            rows.new_chunk()
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
                            commit(storer)
            except OutboxError as exc:
                # The chunk whose storing failed is not stored, nor any after it; their
                # invalid lines never were going to be.
                stopped = (first_not_stored(storer), f"error: {error_text(exc)}", exit_code(exc))
            except KeyboardInterrupt:
                # The chunk being stored lands or fails as a whole: wait for it, so the
                # last line says exactly where storing stopped.
                with contextlib.suppress(OutboxError):
                    report_stored(storer.settle(despite_interrupts=True))
                stopped = (first_not_stored(storer), "interrupted", 130)
            finally:
                storer.close()
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
    report.errors.close()  # the counts before the line that says where the run stopped
    output.error(f"{why}; {where}")
    return report.finish(
        max(worst, code), extra={"stored_through_line": stored, "stopped_at_line": first}
    )


def _tune_for_bulk_writes(outbox: Any) -> None:
    """This run's own SQLite connection gets a bigger page cache and rarer checkpoints
    (see :meth:`~alertwire.outbox.sqlite.SQLiteStore.tune_for_bulk_writes`: same
    durability); other users of the file keep the defaults. PostgreSQL: nothing."""
    from ..outbox.sqlite import SQLiteStore

    if isinstance(outbox.store, SQLiteStore):
        outbox.store.tune_for_bulk_writes()


def _size(stream: Any) -> int | None:
    """The input's size when it is a regular file (a bar with an ETA), else ``None``."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    import stat

    return info.st_size if stat.S_ISREG(info.st_mode) else None
