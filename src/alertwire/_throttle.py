"""Rate-limited logging: one line per kind of trouble per interval, with a count.

A hostile or broken client can cause the same trouble thousands of times a
second (stalled connections, refused connections, parse failures). Logging
each one would fill the disk the servers are meant to protect, so each kind
of trouble logs at most one line per :data:`DEFAULT_INTERVAL` seconds; the
next line that does get through says how many were held back in between, so
nothing is hidden, only summarised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

__all__ = ["DEFAULT_INTERVAL", "Throttle", "ThrottleFilter"]

#: At most one line per kind of trouble in this many seconds.
DEFAULT_INTERVAL: Final = 10.0


class Throttle:
    """Decides, per kind, whether a line may be written now and how many were held back."""

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()  # aiohttp may log from executor threads too

    def admit(self, kind: str) -> int | None:
        """``None``: hold this line back; else the number held back since the last one."""
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return None
            self._last[kind] = now
            return self._held.pop(kind, 0)

    def log(self, logger: logging.Logger, level: int, kind: str, msg: str, *args: object) -> None:
        """``logger.log(level, msg, *args)`` unless a line of ``kind`` went out recently."""
        held = self.admit(kind)
        if held is None:
            return
        if held:
            logger.log(level, msg + " suppressed=%d", *args, held)
        else:
            logger.log(level, msg, *args)


class ThrottleFilter(logging.Filter):
    """The same limit on someone else's log lines (aiohttp's server logger), by message
    template: a traceback still shows once per interval, with the count of its repeats."""

    def __init__(self, throttle: Throttle) -> None:
        super().__init__()
        self.throttle = throttle

    def filter(self, record: logging.LogRecord) -> bool:
        held = self.throttle.admit(f"{record.name}:{record.msg}")
        if held is None:
            return False
        if held:
            record.msg = f"{record.msg} ({held} similar lines suppressed)"
        return True
