"""Fault injection: make the sandbox fail the way real services fail, on demand.

Configured with ``POST /sandbox/faults`` (or ``Sandbox.fail_next()``)::

    {"fail_next": [503, 429, {"status": 429, "retry_after": 2}, "reset"],
     "reset_next": 1,          # close the next N connections without an answer
     "latency_ms": 250,        # delay every wire request
     "fail_rate": 0.1, "fail_rate_status": 503, "seed": 7,
     "rate_limit": 120,        # per routing key per minute; null switches it off
     "rest_fail_next": [429, {"status": 429, "retry_after": 3}, 503, "reset"],
     "rest_rate_limit": 60}    # REST requests per API token per minute; null: off

Faults apply only to the wire routes (``/v2/...``, ``/data/v2/alerts``), never
to the inspection API, and they strike *before* the request is read, like a
load balancer in front of the real service: a failed request is not
recorded. ``fail_next`` entries are consumed one per request, in order;
``"reset"`` in the list (or ``reset_next``) closes the connection without
an answer, which clients must treat as a retryable network error. A POST
replaces only the settings it names; ``{"clear": true}`` removes them all.

The REST routes (``/incidents``, ``/services``, ``/oncalls``) have their own
queue, ``rest_fail_next``, so a test can fail a REST call without touching
the events it sends, and the other way round. Their refusals use PagerDuty's
REST error body; a 429 carries ``ratelimit-limit``, ``ratelimit-remaining``
(0) and ``ratelimit-reset`` (the entry's ``retry_after``, else 1 second), as
PagerDuty's REST API does. ``latency_ms`` and ``fail_rate`` apply to the wire
routes only.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._numbers import is_real, is_whole

__all__ = ["Fault", "FaultSpecError", "Faults"]

_MAX_LATENCY_MS: Final = 60_000
_MAX_QUEUE: Final = 10_000
#: What one ``fail_next`` / ``rest_fail_next`` entry may say besides a bare status.
_ENTRY_KEYS: Final = frozenset({"status", "retry_after"})


class FaultSpecError(ValueError):
    """A fault specification that makes no sense; answered 400 naming the field."""


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one request: answer ``status`` (with ``retry_after``) or reset."""

    status: int | None = None
    retry_after: float | None = None
    reset: bool = False


def _status(value: object, field: str) -> int:
    if not is_whole(value, minimum=400, maximum=599):
        raise FaultSpecError(f"{field} must be an HTTP error status (400-599)")
    return value


def _fault(value: object, field: str) -> Fault:
    if value == "reset":
        return Fault(reset=True)
    if isinstance(value, Mapping):
        # A misspelt key ("retryAfter", "retry-after") once went unnoticed: the fault
        # struck without its Retry-After, and the test that relied on it proved nothing.
        unknown = sorted(str(k) for k in value if k not in _ENTRY_KEYS)
        if unknown:
            raise FaultSpecError(
                f"{field} has unknown key(s) {', '.join(unknown)[:200]} (known: status, retry_after)"
            )
        retry_after = value.get("retry_after")
        if retry_after is not None and not is_real(retry_after, minimum=0, maximum=86_400):
            raise FaultSpecError(f"{field}.retry_after must be seconds between 0 and 86400")
        return Fault(
            status=_status(value.get("status"), f"{field}.status"), retry_after=retry_after
        )
    return Fault(status=_status(value, field))


def _count(value: object, field: str) -> int:
    if not is_whole(value, minimum=0, maximum=_MAX_QUEUE):
        raise FaultSpecError(f"{field} must be an integer between 0 and {_MAX_QUEUE}")
    return value


class Faults:
    """The current fault settings. Thread-safe: tests set them from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._queue: deque[Fault] = deque()
            self._rest_queue: deque[Fault] = deque()
            self._latency = 0.0
            self._rate = 0.0
            self._rate_status = 503
            self._random = random.Random()

    def configure(self, spec: object) -> dict[str, Any]:
        """Apply a specification (see the module docstring); returns the fields it set.

        Everything is checked before anything changes, so a bad spec leaves
        the settings as they were.
        """
        if not isinstance(spec, Mapping):
            raise FaultSpecError("the fault specification must be a JSON object")
        known = {
            "fail_next",
            "reset_next",
            "latency_ms",
            "fail_rate",
            "fail_rate_status",
            "seed",
            "clear",
            "rate_limit",
            "rest_fail_next",
            "rest_rate_limit",
        }
        unknown = sorted(str(k) for k in spec if k not in known)
        if unknown:
            raise FaultSpecError(f"unknown fault setting(s): {', '.join(unknown)[:200]}")
        queue: list[Fault] = []
        fail_next = spec.get("fail_next", [])
        if not isinstance(fail_next, list) or len(fail_next) > _MAX_QUEUE:
            raise FaultSpecError(f"fail_next must be a list of at most {_MAX_QUEUE} statuses")
        queue += [_fault(v, f"fail_next[{i}]") for i, v in enumerate(fail_next)]
        queue += [Fault(reset=True)] * _count(spec.get("reset_next", 0), "reset_next")
        rest_fail_next = spec.get("rest_fail_next", [])
        if not isinstance(rest_fail_next, list) or len(rest_fail_next) > _MAX_QUEUE:
            raise FaultSpecError(f"rest_fail_next must be a list of at most {_MAX_QUEUE} statuses")
        rest_queue = [_fault(v, f"rest_fail_next[{i}]") for i, v in enumerate(rest_fail_next)]
        latency = spec.get("latency_ms")
        if latency is not None and not is_real(latency, minimum=0, maximum=_MAX_LATENCY_MS):
            raise FaultSpecError(f"latency_ms must be between 0 and {_MAX_LATENCY_MS}")
        rate = spec.get("fail_rate")
        if rate is not None and not is_real(rate, minimum=0, maximum=1):
            raise FaultSpecError("fail_rate must be a number between 0 and 1")
        rate_status = spec.get("fail_rate_status")
        if rate_status is not None:
            rate_status = _status(rate_status, "fail_rate_status")
        seed = spec.get("seed")
        if seed is not None and not is_whole(seed):
            raise FaultSpecError("seed must be an integer")
        clear = spec.get("clear", False)
        if not isinstance(clear, bool):
            # {"clear": "yes"} or {"clear": 1} once left every fault in place, answered 200.
            raise FaultSpecError("clear must be true or false")
        if clear:
            self.clear()
        with self._lock:
            self._queue.extend(queue)
            self._rest_queue.extend(rest_queue)
            if latency is not None:
                self._latency = float(latency) / 1000
            if rate is not None:
                self._rate = float(rate)
            if rate_status is not None:
                self._rate_status = rate_status
            if seed is not None:
                self._random = random.Random(seed)
        return self.describe()

    @property
    def latency(self) -> float:
        """Seconds to wait before handling each wire request."""
        return self._latency

    def next_fault(self) -> Fault | None:
        """The fault for the request at hand, if any (consumes one queued fault)."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self._rate and self._random.random() < self._rate:
                return Fault(status=self._rate_status)
            return None

    def next_rest_fault(self) -> Fault | None:
        """The fault for the REST request at hand, if any (consumes one)."""
        with self._lock:
            return self._rest_queue.popleft() if self._rest_queue else None

    def describe(self) -> dict[str, Any]:
        def shown(queue: deque[Fault]) -> list[Any]:
            return [
                "reset" if f.reset else {"status": f.status, "retry_after": f.retry_after}
                for f in queue
            ]

        with self._lock:
            return {
                "fail_next": shown(self._queue),
                "rest_fail_next": shown(self._rest_queue),
                "latency_ms": self._latency * 1000,
                "fail_rate": self._rate,
                "fail_rate_status": self._rate_status,
            }
