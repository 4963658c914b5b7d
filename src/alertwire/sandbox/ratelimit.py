"""Per-key rate limiting over a sliding 60-second window, as PagerDuty does it.

PagerDuty allows about 120 events per minute per integration key over a
sliding window (protocols.md). The limiter keeps the accept times of the
last ``limit`` events per key: an event is allowed when fewer than
``limit`` were accepted in the last ``window`` seconds. Memory is bounded by
``limit`` per key seen. The clock is injectable so the window is tested
without sleeping.

Decision: PagerDuty sends no ``Retry-After`` on the Events API (no capture
shows one), so the sandbox's 429 carries none either by default; clients
must back off on their own, which is what production will ask of them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Final

__all__ = ["WINDOW_SECONDS", "SlidingWindowLimiter"]

WINDOW_SECONDS: Final = 60.0


class SlidingWindowLimiter:
    """At most ``limit`` events per ``window`` seconds for each key."""

    def __init__(
        self,
        limit: int,
        *,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("rate limit must be at least 1 event per window")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[Hashable, deque[float]] = {}

    def allow(self, key: Hashable) -> bool:
        """Count an event for ``key`` if the window has room; ``False`` means answer 429."""
        with self._lock:
            now = self._clock()
            times = self._seen.setdefault(key, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
