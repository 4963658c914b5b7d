"""Where another thread of this process is, observed from outside it (Linux only).

For tests that must act while a thread waits inside C code (SQLite's busy
handler, a lock): its innermost Python frame says which call it is in, and
``/proc/self/task/<tid>/syscall`` says whether the OS thread is blocked in the
kernel right now, and in which system call. Together they are an observable
condition to wait on instead of a guessed sleep.
"""

from __future__ import annotations

import platform
import sys
import threading
from pathlib import Path
from typing import Final

__all__ = ["in_syscall", "innermost_file", "innermost_function", "observable"]

#: The system calls a blocked thread sits in, by number, per architecture.
_SYSCALLS: Final = {
    "x86_64": {"nanosleep": 35, "clock_nanosleep": 230, "futex": 202},
    "aarch64": {"nanosleep": 101, "clock_nanosleep": 115, "futex": 98},
}


def _syscall(thread: threading.Thread) -> int | None:
    """The number of the system call ``thread`` is blocked in, ``None`` if it runs."""
    try:
        text = Path(f"/proc/self/task/{thread.native_id}/syscall").read_text()
    except OSError:
        return None
    first = text.split(maxsplit=1)[0]
    return int(first) if first.lstrip("-").isdigit() else None


def observable() -> bool:
    """Whether this machine shows threads' system calls (Linux on a known architecture)."""
    if platform.machine() not in _SYSCALLS:
        return False
    return _syscall(threading.current_thread()) is not None


def in_syscall(thread: threading.Thread, *names: str) -> bool:
    """Whether ``thread`` is blocked in one of the system calls ``names`` right now."""
    numbers = _SYSCALLS[platform.machine()]
    return _syscall(thread) in {numbers[name] for name in names}


def innermost_file(thread: threading.Thread) -> str:
    """The source file of the Python code ``thread`` is running ("" if it has none)."""
    frame = sys._current_frames().get(thread.ident or -1)
    return "" if frame is None else frame.f_code.co_filename


def innermost_function(thread: threading.Thread) -> str | None:
    """The name of the Python function ``thread`` is running (or blocked in a C call from)."""
    frame = sys._current_frames().get(thread.ident or -1)
    return None if frame is None else frame.f_code.co_name
