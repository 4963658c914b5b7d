"""RetryPolicy: bounded by attempts and time, Retry-After honoured and capped, 4xx final."""

from __future__ import annotations

import random

import pytest

from alertwire import (
    BadRequest,
    NetworkError,
    RateLimited,
    RetryPolicy,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    ValidationError,
    instant_retries,
)
from alertwire._retry import MAX_RETRY_AFTER

# The suite makes retries instant (tests/conftest.py); the arithmetic is tested with real delays.
pytestmark = pytest.mark.usefixtures("real_retry_delays")


def test_defaults_match_the_issue() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_backoff, policy.max_backoff) == (5, 1.0, 30.0)
    assert policy.max_elapsed > 0


def test_keyword_config_is_frozen() -> None:
    policy = RetryPolicy(max_attempts=2)
    with pytest.raises(AttributeError):
        policy.max_attempts = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"initial_backoff": -1},
        {"max_backoff": -1},
        {"max_elapsed": -0.1},
        # NaN compares false with everything: a NaN time bound never stopped a retry, and
        # a NaN backoff slept for random.uniform(0, nan). A fractional or text count and
        # a text duration raised TypeError, or counted tries as 2.5.
        {"max_elapsed": float("nan")},
        {"max_backoff": float("nan")},
        {"initial_backoff": float("nan")},
        {"max_attempts": 2.5},
        {"max_attempts": "3"},
        {"max_attempts": True},
        {"max_elapsed": "120"},
    ],
)
def test_invalid_policies_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError) as info:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == next(iter(kwargs))


@pytest.mark.parametrize(
    "error", [NetworkError("reset"), ServerError("503", http_status=503), RateLimited("429")]
)
def test_retryable_errors_retried_until_attempts_run_out(error: NetworkError) -> None:
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.01)
    delays = [policy.next_delay(error, attempt, elapsed=0.0) for attempt in range(1, 6)]
    assert [d is not None for d in delays] == [True, True, True, False, False]


def test_never_means_one_attempt() -> None:
    assert RetryPolicy.never().next_delay(NetworkError("x"), 1, 0.0) is None


@pytest.mark.parametrize(
    "error",
    [
        BadRequest("400"),
        Unauthorized("401", http_status=401),
        Unauthorized("403", http_status=403),
        UnexpectedResponse("404", http_status=404),
        UnexpectedResponse("413", http_status=413),
        UnexpectedResponse("302", http_status=302),
    ],
)
def test_4xx_and_unexpected_never_retried(error: BadRequest) -> None:
    assert RetryPolicy(max_attempts=100).next_delay(error, 1, 0.0) is None


def test_elapsed_time_bound() -> None:
    policy = RetryPolicy(max_attempts=100, initial_backoff=1.0, max_backoff=1.0, max_elapsed=10.0)
    error = ServerError("x")
    assert policy.next_delay(error, 1, elapsed=5.0) is not None
    # Any delay ending past max_elapsed is not taken: at 9.5 s only <= 0.5 s waits fit.
    results = [policy.next_delay(error, 1, elapsed=9.5) for _ in range(200)]
    assert all(r is None or r <= 0.5 for r in results)
    assert policy.next_delay(error, 1, elapsed=10.5) is None


def test_retry_after_honoured() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff=100.0, max_backoff=100.0)
    assert policy.next_delay(RateLimited("x", retry_after=2.0), 1, 0.0) == 2.0
    assert policy.next_delay(RateLimited("x", retry_after=0.0), 1, 0.0) == 0.0


def test_retry_after_capped() -> None:
    policy = RetryPolicy(max_elapsed=10 * MAX_RETRY_AFTER)
    assert policy.delay(RateLimited("x", retry_after=86400.0), 1) == MAX_RETRY_AFTER


def test_retry_after_beyond_elapsed_bound_gives_up() -> None:
    policy = RetryPolicy(max_elapsed=60.0)
    assert policy.next_delay(RateLimited("x", retry_after=61.0), 1, 0.0) is None


def test_rate_limited_without_hint_backs_off() -> None:
    policy = RetryPolicy(initial_backoff=2.0, max_backoff=2.0)
    delays = {policy.delay(RateLimited("x"), 1) for _ in range(50)}
    assert all(0 <= d <= 2.0 for d in delays)
    assert len(delays) > 1


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 8, 20])
def test_full_jitter_range(attempt: int) -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=5.0)
    ceiling = min(5.0, 0.5 * 2 ** (attempt - 1))
    rng = random.Random(attempt)
    state = random.getstate()
    random.seed(rng.random())
    try:
        samples = [policy.backoff(attempt) for _ in range(400)]
    finally:
        random.setstate(state)
    assert all(0.0 <= s <= ceiling for s in samples)
    # Spread over the whole range (full jitter), not bunched at the top.
    assert min(samples) < ceiling * 0.1
    assert max(samples) > ceiling * 0.9


def test_instant_retries_zero_delay_but_keep_bounds() -> None:
    policy = RetryPolicy(max_attempts=2, initial_backoff=10.0)
    with instant_retries():
        assert policy.next_delay(ServerError("x"), 1, 0.0) == 0.0
        assert policy.next_delay(RateLimited("x", retry_after=30.0), 1, 0.0) == 0.0
        assert policy.next_delay(ServerError("x"), 2, 0.0) is None
        assert policy.next_delay(BadRequest("x"), 1, 0.0) is None
    assert policy.next_delay(RateLimited("x", retry_after=3.0), 1, 0.0) == 3.0


def test_instant_retries_nest_and_restore() -> None:
    policy = RetryPolicy()
    with instant_retries():
        with instant_retries():
            pass
        assert policy.delay(ServerError("x"), 5) == 0.0
    assert policy.delay(RateLimited("x", retry_after=1.0), 1) == 1.0
