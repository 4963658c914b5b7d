"""The one way tests wait: poll an observable condition, bounded by a deadline.

A test never sleeps for a guessed time to let something happen: on a loaded
machine the guess is too short (a flake), elsewhere it is wasted time. It
polls what it waits for (a state, a count, a log line) until that holds, and
fails naming the condition when the bound runs out. The bound is a guard
against a hang, never an expectation of speed.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol, TypeVar, overload

__all__ = ["DEADLINE", "async_wait_for", "wait_for", "wait_while_alive"]

T = TypeVar("T")

#: Seconds before a wait gives up: generous, because the machine may be loaded.
DEADLINE: Final = 60.0
_POLL: Final = 0.02


def wait_for(what: str, condition: Callable[[], T], *, timeout: float = DEADLINE) -> T:
    """The first truthy value of ``condition()``; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(_POLL)


@overload
async def async_wait_for(
    what: str, condition: Callable[[], Awaitable[T]], *, timeout: float = ...
) -> T: ...


@overload
async def async_wait_for(what: str, condition: Callable[[], T], *, timeout: float = ...) -> T: ...


async def async_wait_for(
    what: str, condition: Callable[[], T | Awaitable[T]], *, timeout: float = DEADLINE
) -> T | Awaitable[T]:
    """:func:`wait_for` inside an event loop (``condition`` may be a coroutine function)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(_POLL)


class _Process(Protocol):
    returncode: int | None

    def poll(self) -> int | None: ...


def wait_while_alive(
    what: str,
    condition: Callable[[], object],
    processes: Sequence[_Process],
    *,
    output: Callable[[], str] | None = None,
    timeout: float = DEADLINE,
) -> None:
    """:func:`wait_for`, failing at once if one of ``processes`` exits first: a server
    that crashed must not look like a slow one. ``output`` (the process's log so
    far) is quoted in either failure."""

    def said() -> str:
        return f": {output()[-3000:]}" if output is not None else ""

    def alive_and_done() -> object:
        for process in processes:
            assert process.poll() is None, (
                f"a process exited ({process.returncode}) waiting for {what}{said()}"
            )
        return condition()

    try:
        wait_for(what, alive_and_done, timeout=timeout)
    except AssertionError as exc:
        if output is None or not str(exc).startswith("timed out"):
            raise
        raise AssertionError(f"{exc}{said()}") from None
