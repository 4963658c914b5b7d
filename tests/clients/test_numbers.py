"""The one rule for "a whole number" and "a real number" that every numeric setting uses."""

from __future__ import annotations

import math

import pytest

from alertwire._numbers import is_real, is_whole


@pytest.mark.parametrize("value", [0, 1, -5, 2**70])
def test_an_int_is_whole(value: int) -> None:
    assert is_whole(value)


@pytest.mark.parametrize("value", [True, False, 1.0, 2.5, "1", None, math.nan, [1]])
def test_a_bool_a_float_or_text_is_not_whole(value: object) -> None:
    assert not is_whole(value)
    assert not is_whole(value, minimum=0, maximum=10)


def test_whole_bounds_are_inclusive() -> None:
    assert is_whole(1, minimum=1) and is_whole(10, maximum=10)
    assert is_whole(5, minimum=1, maximum=10)
    assert not is_whole(0, minimum=1)
    assert not is_whole(11, minimum=1, maximum=10)


@pytest.mark.parametrize("value", [0, 1, -1.5, 2.5, math.inf, math.nan])
def test_an_int_or_a_float_is_real_unbounded_even_nan_or_infinite(value: float) -> None:
    assert is_real(value)


@pytest.mark.parametrize("value", [True, False, "1", None, 1j, [1.0]])
def test_a_bool_text_or_a_complex_is_not_real(value: object) -> None:
    assert not is_real(value)


def test_real_bounds_are_inclusive_and_refuse_nan() -> None:
    assert is_real(0, minimum=0) and is_real(1.0, maximum=1) and is_real(0.5, minimum=0, maximum=1)
    assert not is_real(-0.1, minimum=0)
    assert not is_real(1.5, maximum=1)
    assert not is_real(math.nan, minimum=0)
    assert not is_real(math.nan, maximum=1)
    assert not is_real(math.inf, maximum=1e300)
    assert is_real(math.inf, minimum=0)  # an upper bound, if any, is the caller's to give
