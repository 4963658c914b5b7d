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
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar, overload

__all__ = ["DEADLINE", "async_wait_for", "wait_for"]

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
