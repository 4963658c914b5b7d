"""``send --queue``'s reading thread hands lines over in batches: order, end and errors kept.

The thread reads while the other side stores, and hands over every line read
so far at each ``take`` (one hand-over per line cost more than storing the
line). What must hold whatever the timing: every line once, numbered, in
order; the end of the input last; a read error only after the lines read
before it, never silently taken for the end of the input. A stand-in stream
(a pure logic unit: only ``readline`` is used) makes the error happen on cue.
"""

from __future__ import annotations

import io
from typing import IO, cast

import pytest

from alertwire import ConfigurationError
from alertwire.cli._queue_stream import _END, _Reader

LINES = 3000  # more than the read-ahead bound (1,024 lines): the reader must wait for room


class _FailingAfter:
    """Gives ``lines`` lines, then fails the next read as a broken device would."""

    def __init__(self, lines: int) -> None:
        self._left = [f'{{"n":{n}}}\n'.encode() for n in range(1, lines + 1)]

    def readline(self, size: int = -1) -> bytes:
        if self._left:
            return self._left.pop(0)
        raise OSError(5, "Input/output error")


def _take_all(reader: _Reader) -> tuple[list[tuple[int, object]], BaseException | None]:
    taken: list[tuple[int, object]] = []
    while True:
        try:
            batch = reader.take(None)
        except ConfigurationError as exc:
            return taken, exc
        taken += batch
        if batch and batch[-1] == _END:
            return taken, None


def test_every_line_comes_once_in_order_then_the_end() -> None:
    data = b"".join(f'{{"n":{n}}}\n'.encode() for n in range(1, LINES + 1))
    reader = _Reader(io.BufferedReader(io.BytesIO(data)))
    try:
        taken, error = _take_all(reader)
    finally:
        reader.close()
    assert error is None
    assert taken[-1] == _END
    assert taken[:-1] == [(n, f'{{"n":{n}}}\n'.encode()) for n in range(1, LINES + 1)]


def test_a_read_error_comes_after_the_lines_before_it_and_is_not_the_end() -> None:
    reader = _Reader(cast(IO[bytes], _FailingAfter(LINES)))
    try:
        taken, error = _take_all(reader)
    finally:
        reader.close()
    assert [n for n, _ in taken] == list(range(1, LINES + 1))
    assert _END not in taken
    assert isinstance(error, ConfigurationError)
    assert "cannot read the input" in str(error) and "Input/output error" in str(error)
    with pytest.raises(ConfigurationError, match="cannot read the input"):
        reader.take(0)


def test_a_long_first_line_with_a_byte_order_mark_is_one_line_too_long() -> None:
    """The mark was taken off before the length was measured: a first line of exactly
    the bound plus the mark passed as a line cut short, and its end came as line 2."""
    from alertwire.cli._lines import MAX_LINE_BYTES, LineTooLong, read_lines

    first = b"\xef\xbb\xbf" + b"x" * MAX_LINE_BYTES + b"\n"
    lines = list(read_lines(io.BytesIO(first + b'{"type": "trigger"}\n')))
    assert [number for number, _ in lines] == [1, 2]
    assert isinstance(lines[0][1], LineTooLong)
    assert lines[1][1] == b'{"type": "trigger"}\n'
