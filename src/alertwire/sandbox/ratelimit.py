"""Per-key rate limiting over a sliding 60-second window, as PagerDuty does it.

PagerDuty allows about 120 events per minute per integration key over a
sliding window (docs/sandbox.md). The REST routes use the same limiter per
API token, and :meth:`SlidingWindowLimiter.take` also says what PagerDuty's
REST ``ratelimit-*`` headers say: the limit, what is left, and the seconds
until the window frees a slot. The limiter keeps the accept times of the
last ``limit`` events per key: an event is allowed when fewer than
``limit`` were accepted in the last ``window`` seconds. Memory is bounded by
``limit`` per key seen. The clock is injectable so the window is tested
without sleeping.

Decision: PagerDuty sends no ``Retry-After`` on the Events API (no capture
shows one), so the sandbox's 429 carries none either by default; clients
must back off on their own, which is what production will ask of them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final

__all__ = ["WINDOW_SECONDS", "Allowance", "SlidingWindowLimiter"]

WINDOW_SECONDS: Final = 60.0


@dataclass(frozen=True, slots=True)
class Allowance:
    """One request's verdict, in the terms of PagerDuty's ``ratelimit-*`` headers."""

    allowed: bool
    limit: int
    remaining: int
    #: Whole seconds until the oldest counted request leaves the window (at least 1).
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset),
        }


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
        return self.take(key).allowed

    def take(self, key: Hashable) -> Allowance:
        """Like :meth:`allow`, with what is left and when the window frees a slot."""
        with self._lock:
            now = self._clock()
            times = self._seen.setdefault(key, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            allowed = len(times) < self.limit
            if allowed:
                times.append(now)
            reset = max(1, math.ceil(times[0] + self.window - now)) if times else 1
            return Allowance(allowed, self.limit, self.limit - len(times), reset)

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
