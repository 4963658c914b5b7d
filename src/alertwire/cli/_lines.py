"""Reading a JSON-lines input (``alertwire send``, with or without ``--queue``), one rule.

Each line is read up to :data:`MAX_LINE_BYTES`; a longer one is skipped to its end a
bounded piece at a time and stands as :class:`LineTooLong`, that line's error, never
as a buffer the size of the input (``alertwire send /dev/zero`` grew to gigabytes
before ``send`` read lines this way too). The UTF-8 byte order mark a Windows editor
writes first is not part of line 1.

Standard input at a terminal gets one line on stderr first (:func:`standard_input`):
``alertwire send`` without a file otherwise sat there saying nothing, which looks
like a hang to someone who forgot the file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO, Final

from .._errors import ConfigurationError, ValidationError

__all__ = [
    "MAX_LINE_BYTES",
    "LineTooLong",
    "read_lines",
    "say_if_reading_a_terminal",
    "standard_input",
]

#: Longer than any event the services accept (PagerDuty's limit is 512 KB).
MAX_LINE_BYTES: Final = 1024 * 1024
_BOM: Final = b"\xef\xbb\xbf"


class LineTooLong(Exception):
    """A line over :data:`MAX_LINE_BYTES`; the rest of it was skipped."""

    def error(self) -> ValidationError:
        """What the line's outcome says."""
        return ValidationError("event", f"is longer than {MAX_LINE_BYTES} bytes")


def say_if_reading_a_terminal() -> None:
    """Tell a person at a terminal what standard input is waited for; refuse a closed one
    (``<&-``, a service manager's default) as the configuration error it is."""
    stdin = sys.stdin
    if stdin is None:
        raise ConfigurationError("standard input is closed: give the events as a FILE")
    try:
        at_terminal = stdin.isatty()
    except ValueError:  # a stream object closed in this process: nothing can be read
        raise ConfigurationError("standard input is closed: give the events as a FILE") from None
    except OSError:  # a stream without a descriptor (replaced in-process): read it as is
        at_terminal = False
    if at_terminal:
        print(
            "alertwire: reading JSON lines from the terminal; end with Ctrl-D (or give a FILE)",
            file=sys.stderr,
            flush=True,
        )


def standard_input() -> IO[bytes]:
    """``sys.stdin`` as bytes, after :func:`say_if_reading_a_terminal`."""
    say_if_reading_a_terminal()
    return sys.stdin.buffer


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | LineTooLong]]:
    """``(line number, bytes)`` from 1, each line at most :data:`MAX_LINE_BYTES` (its
    newline kept), a longer one as :class:`LineTooLong`."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        # Measured as read, mark included: a long first line with the mark taken off
        # first would pass as a line cut short, and its rest be read as line 2.
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while True:  # skip to the end of this line, a bounded piece at a time
                rest = stream.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, LineTooLong()
            continue
        yield number, raw.removeprefix(_BOM) if number == 1 else raw
