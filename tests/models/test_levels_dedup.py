"""Flux parity: level mappings and ``pagerduty.dedupKey``, with docs/protocol.md's test vectors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alertwire import (
    action_from_level,
    bigpanda_status_from_level,
    group_dedup_key,
    severity_from_level,
)
from alertwire.models.dedup import flux_string


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        ("warn", "warning"),
        ("crit", "critical"),
        ("info", "info"),
        ("ok", "info"),
        ("WARN", "warning"),
        ("Crit", "critical"),
        ("OK", "info"),
        ("critical", "error"),  # Flux maps only its own level names
        ("warning", "error"),
        ("", "error"),
        ("anything", "error"),
    ],
)
def test_severity_from_level(level: str, severity: str) -> None:
    assert severity_from_level(level) == severity


@pytest.mark.parametrize(
    ("level", "action"),
    [
        ("ok", "resolve"),
        ("OK", "resolve"),
        ("crit", "trigger"),
        ("info", "trigger"),
        ("", "trigger"),
    ],
)
def test_action_from_level(level: str, action: str) -> None:
    assert action_from_level(level) == action


@pytest.mark.parametrize(
    ("level", "status"),
    [
        ("warn", "warning"),
        ("crit", "critical"),
        ("info", "ok"),
        ("ok", "ok"),
        ("Info", "ok"),
        ("unknown", "critical"),
    ],
)
def test_bigpanda_status_from_level(level: str, status: str) -> None:
    assert bigpanda_status_from_level(level) == status


VECTOR_1 = "4989af42de08cdfbcd8cf398809af7b87bc256ea226fbca5f528185cac9d4a7f"
VECTOR_2 = "fd210af9b7d92b39dca3baae5e378101227f198d1aab051e6a3933e766fe52cf"


def test_dedup_key_vector_1() -> None:
    group = {"_field": "f0", "_measurement": "m0", "host": "a"}
    assert group_dedup_key(group) == VECTOR_1


def test_dedup_key_vector_1_ignores_start_stop_and_level() -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    group = {
        "host": "a",
        "_start": start,
        "_stop": start + timedelta(hours=1),
        "_measurement": "m0",
        "_field": "f0",
        "_level": "crit",
    }
    assert group_dedup_key(group) == VECTOR_1


def test_dedup_key_vector_2() -> None:
    group = {"_field": "f0", "_measurement": "m0", "host": "a", "_level": "ok"}
    assert group_dedup_key(group, exclude=["_start", "_stop"]) == VECTOR_2
    assert group_dedup_key(group, exclude=("_start", "_stop")) == VECTOR_2


def test_dedup_key_order_independent_and_value_sensitive() -> None:
    a = group_dedup_key({"x": "1", "y": "2"})
    assert a == group_dedup_key({"y": "2", "x": "1"})
    assert a != group_dedup_key({"x": "2", "y": "1"})
    assert len(a) == 64 and a == a.lower()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s", "s"),
        (42, "42"),
        (-7, "-7"),
        (2.0, "2"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (True, "true"),
        (False, "false"),
        (
            datetime(2006, 1, 2, 15, 4, 5, 123456, tzinfo=timezone.utc),
            "2006-01-02T15:04:05.123456000Z",
        ),
        (
            datetime(2006, 1, 2, 17, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "2006-01-02T15:04:05.000000000Z",
        ),
    ],
)
def test_flux_string(value: object, text: str) -> None:
    assert flux_string(value) == text


def test_int_and_float_render_alike() -> None:
    assert group_dedup_key({"n": 2}) == group_dedup_key({"n": 2.0}) == group_dedup_key({"n": "2"})
