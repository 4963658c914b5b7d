"""Standard output that reports a failed write as a closed output, once.

A command's result goes to standard output with ``print`` (through
:class:`~._output.Output` or directly, as ``queue status`` does). When the output
refuses it for another reason than a closed pipe (``> /dev/full``, an I/O error),
``print`` raised an ``OSError`` out of the command: a traceback and exit 1, after
the event had been sent. The program's standard output is wrapped once, at start
(:func:`~.main.console`), so every write and flush turns such an error into
:class:`~._exit.OutputUnwritable`, which ``main`` handles as it handles a closed
pipe; the line that says why goes to stderr here, the first time only.
"""

from __future__ import annotations

import contextlib
import io
from typing import TextIO

from ._exit import OutputUnwritable

__all__ = ["GuardedStdout"]


class GuardedStdout(io.TextIOBase):
    """``stream``, whose write and flush errors (a closed pipe aside) are said on
    ``stderr`` and raised as :class:`~._exit.OutputUnwritable`."""

    def __init__(self, stream: TextIO, stderr: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._stderr = stderr
        self._said = False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._unwritable(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._unwritable(exc) from exc

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def _unwritable(self, error: OSError) -> OutputUnwritable:
        if not self._said:
            self._said = True
            reason = error.strerror or type(error).__name__
            # stderr may be on the same full disk: then nothing more can be said.
            with contextlib.suppress(OSError, ValueError):
                print(
                    f"alertwire: error: could not write to standard output ({reason}); the"
                    " rest of the output is lost, the exit code still says what happened"
                    " to the events",
                    file=self._stderr,
                    flush=True,
                )
        return OutputUnwritable(error)
