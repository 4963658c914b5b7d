"""RetryPolicy: the one decision about whether and when to try again.

The sync client, the async client and the relay all ask the same object. The
clients sleep for :meth:`RetryPolicy.delay`; the relay writes
``now + delay`` into the row as ``next_attempt_at`` instead of sleeping, so a
key waiting out a 429 blocks only itself.

What is retried is the protocol's business, not the policy's: PagerDuty's
table says network errors, 429 and 5xx (``DeliveryError.retryable``); 400
and other 4xx never. Every retry is bounded twice, by attempts and by
elapsed time, so no caller can hang forever on an outage.

Tests can make every delay zero with :func:`instant_retries` (as stamina's
``set_testing`` does), keeping the attempt bounds intact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ._errors import DeliveryError, GiveUp, RateLimited
from ._record_methods import dataclass_eq, dataclass_hash, dataclass_repr

__all__ = ["GiveUp", "RetryPolicy", "instant_retries"]

DEFAULT_MAX_ATTEMPTS: Final = 5
DEFAULT_INITIAL_BACKOFF: Final = 1.0
DEFAULT_MAX_BACKOFF: Final = 30.0
DEFAULT_MAX_ELAPSED: Final = 120.0
#: A ``Retry-After`` longer than this is capped: a misbehaving server must not park us for a day.
MAX_RETRY_AFTER: Final = 3600.0

_testing = False


@contextlib.contextmanager
def instant_retries() -> Iterator[None]:
    """Make every retry delay zero inside the block (attempt limits still apply)."""
    global _testing
    before, _testing = _testing, True
    try:
        yield
    finally:
        _testing = before


def set_instant_retries(on: bool) -> None:
    """Switch instant retries on or off for the whole process (for test suites)."""
    global _testing
    _testing = on


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RetryPolicy:
    """Jittered exponential backoff, bounded in attempts and in elapsed time.

    ``max_attempts`` counts every try, the first included (1 = never retry).
    The delay before try *n+1* is a random value in ``[0, min(max_backoff,
    initial_backoff * 2**(n-1))]`` ("full jitter", which spreads a herd of
    clients best), or the service's ``Retry-After`` when it gave one.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    initial_backoff: float = DEFAULT_INITIAL_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    max_elapsed: float = DEFAULT_MAX_ELAPSED

    # eq=False, repr=False above and these instead: the same methods, not compiled at import
    # (alertwire._record_methods says why; docs/cli.md, "Start-up cost", the figures).
    __eq__ = dataclass_eq
    __hash__ = dataclass_hash
    __repr__ = dataclass_repr

    def __post_init__(self) -> None:
        from ._errors import ValidationError
        from ._numbers import is_real, is_whole

        if not is_whole(self.max_attempts, minimum=1):
            raise ValidationError("max_attempts", "must be a whole number, at least 1")
        for name in ("initial_backoff", "max_backoff", "max_elapsed"):
            seconds = getattr(self, name)
            # ``not seconds >= 0`` is true for NaN too, which compares false with
            # everything: a NaN bound would never stop a retry.
            if not is_real(seconds):
                raise ValidationError(name, "must be a number of seconds")
            if not seconds >= 0:
                raise ValidationError(name, "must not be negative (or NaN)")

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt, no retry."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """The jittered exponential delay after the ``attempt``-th failed try (1-based)."""
        # ``random`` is imported on the first retry, not with the module: a one-event
        # ``alertwire trigger`` that is answered at once never needs it (a millisecond
        # and a half of its start-up; docs/cli.md, "Start-up cost").
        import random

        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** max(attempt - 1, 0))
        return random.uniform(0, ceiling)

    def delay(self, error: DeliveryError, attempt: int) -> float:
        """Seconds to wait before the next try, honouring ``Retry-After``."""
        if _testing:
            return 0.0
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), MAX_RETRY_AFTER)
        return self.backoff(attempt)

    def next_delay(self, error: DeliveryError, attempt: int, elapsed: float) -> float | None:
        """The delay before another try, or ``None`` when the error is final.

        ``attempt`` is how many tries were made, ``elapsed`` the seconds since
        the first one started. A retry whose delay would end past
        ``max_elapsed`` is not made.
        """
        if not error.retryable or attempt >= self.max_attempts:
            return None
        wait = self.delay(error, attempt)
        if elapsed + wait > self.max_elapsed:
            return None
        return wait

    def gave_up(self, error: DeliveryError, attempt: int, elapsed: float) -> GiveUp:
        """Which bound stopped a retryable ``error`` (call it when :meth:`next_delay` gave ``None``)."""
        retry_after = None
        if (
            attempt < self.max_attempts
            and isinstance(error, RateLimited)
            and error.retry_after is not None
            and not _testing
        ):
            retry_after = error.retry_after
        return GiveUp(attempt, self.max_attempts, elapsed, self.max_elapsed, retry_after)
