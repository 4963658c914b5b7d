"""BigPandaAlert: normalisation, refusals naming the argument, the cached wire body."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import pickle
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertwire import BigPandaAlert, BigPandaStatus, ValidationError, bigpanda_status_from_level
from alertwire.models.bigpanda_rules import RESERVED_FIELDS, check_alert


def wire(a: BigPandaAlert) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(a.wire_bytes)
    return body


@pytest.mark.parametrize(
    ("given_status", "expected"),
    [
        ("ok", "ok"),
        ("OK", "ok"),
        (" Critical ", "critical"),
        ("crit", "critical"),
        ("WARN", "warning"),
        ("warning", "warning"),
        ("ack", "acknowledged"),
        ("Acknowledged", "acknowledged"),
        ("unknown", "unknown"),
        (BigPandaStatus.WARNING, "warning"),
    ],
)
def test_status_spellings(given_status: str, expected: str) -> None:
    a = BigPandaAlert(given_status, host="h")
    assert a.status.value == expected
    assert wire(a)["status"] == expected


@pytest.mark.parametrize("status", ["resolved", "", None, 3, "err"])
def test_bad_status(status: Any) -> None:
    with pytest.raises(ValidationError) as info:
        BigPandaAlert(status, host="h")
    assert info.value.field == "status"


@pytest.mark.parametrize("level", ["crit", "warn", "info", "ok", "weird"])
def test_flux_levels_make_valid_alerts(level: str) -> None:
    assert BigPandaAlert(bigpanda_status_from_level(level), host="h").status.value in {
        "critical",
        "warning",
        "ok",
    }


def test_wire_body_is_flat_without_app_key() -> None:
    a = BigPandaAlert(
        "critical",
        host="web-1",
        check="cpu",
        description="load high",
        incident_identifier="inc-9",
        cluster="eu-1",
        tags={"region": "eu", "pod": 7, "owners": ["ops", "sre"]},
    )
    assert wire(a) == {
        "status": "critical",
        "host": "web-1",
        "check": "cpu",
        "description": "load high",
        "incident_identifier": "inc-9",
        "cluster": "eu-1",
        "region": "eu",
        "pod": 7,
        "owners": ["ops", "sre"],
    }
    assert a.wire_body() == wire(a)
    assert check_alert(wire(a), in_batch=True) == []


def test_immutable_and_comparable() -> None:
    a = BigPandaAlert("ok", host="h", tags={"x": [1, 2]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.host = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.tags["y"] = 1  # type: ignore[index]
    assert a.tags["x"] == (1, 2)
    assert a == BigPandaAlert("ok", host="h", tags={"x": (1, 2)})
    assert hash(a) == hash(BigPandaAlert("ok", host="h", tags={"x": [1, 2]}))


@pytest.mark.parametrize("tags", [None, {"x": [1, 2], "y": "z"}])
def test_an_alert_pickles_and_copies_as_itself(tags: dict[str, Any] | None) -> None:
    """Its read-only tags once made every alert unpicklable, even one without tags."""
    alert = BigPandaAlert("ok", host="h", tags=tags)
    pickled = pickle.loads(pickle.dumps(alert))  # noqa: S301 - our own bytes
    for copied in (pickled, copy.deepcopy(alert), copy.copy(alert)):
        assert copied == alert and hash(copied) == hash(alert)
        with pytest.raises(TypeError, match="read-only"):
            copied.tags["w"] = 1  # type: ignore[index]


def test_primary_property_required() -> None:
    with pytest.raises(ValidationError) as info:
        BigPandaAlert("ok", check="cpu")
    assert info.value.field == "primary_property"
    with pytest.raises(ValidationError) as info:
        BigPandaAlert("ok", host="h", primary_property="pod")
    assert info.value.field == "primary_property"
    a = BigPandaAlert("ok", primary_property="pod", tags={"pod": "p-1"})
    assert wire(a)["primary_property"] == "pod"


def test_secondary_property_must_name_a_present_field() -> None:
    with pytest.raises(ValidationError) as info:
        BigPandaAlert("ok", host="h", secondary_property="check")
    assert info.value.field == "secondary_property"
    assert BigPandaAlert("ok", host="h", check="c", secondary_property="check")


@pytest.mark.parametrize("name", sorted(RESERVED_FIELDS))
def test_tags_cannot_clash_with_reserved_fields(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        BigPandaAlert("ok", host="h", tags={name: "x"})
    assert info.value.field == f"tags.{name}"
    assert "reserved" in info.value.rule


@pytest.mark.parametrize(
    ("tags", "field"),
    [
        ({"t": {"nested": 1}}, "tags.t"),
        ({"t": 1.5}, "tags.t"),
        ({"t": True}, "tags.t"),
        ({"t": None}, "tags.t"),
        ({"t": [1, {"a": 2}]}, "tags.t[1]"),
        ({"t": "x" * 513}, "tags.t"),
        ({"t": list(range(31))}, "tags.t"),
        ({"": "x"}, "tags"),
        ({3: "x"}, "tags"),
        ({"t": {1, 2}}, "tags.t"),
    ],
)
def test_bad_tags_name_the_tag(tags: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        BigPandaAlert("ok", host="h", tags=tags)
    assert info.value.field == field


def test_tags_must_be_a_mapping() -> None:
    with pytest.raises(ValidationError) as info:
        BigPandaAlert("ok", host="h", tags=["a"])  # type: ignore[arg-type]
    assert info.value.field == "tags"


@pytest.mark.parametrize("name", ["host", "service", "check", "cluster", "description"])
def test_text_fields_must_be_strings(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        BigPandaAlert("ok", device="d", **{name: 5})  # type: ignore[arg-type]  # the wrong type on purpose
    assert info.value.field == name


def test_timestamp_forms() -> None:
    aware = datetime(2024, 5, 1, 12, 0, 30, 900_000, tzinfo=timezone(timedelta(hours=2)))
    assert BigPandaAlert("ok", host="h", timestamp=aware).timestamp == 1714557630
    assert BigPandaAlert("ok", host="h", timestamp=1714557630.99).timestamp == 1714557630
    assert wire(BigPandaAlert("ok", host="h", timestamp=1714557630))["timestamp"] == 1714557630
    naive = datetime(2024, 5, 1, 12, 0, 0)
    expected = int(naive.astimezone().timestamp())
    assert BigPandaAlert("ok", host="h", timestamp=naive).timestamp == expected


@pytest.mark.parametrize(
    "timestamp",
    ["2024-01-01", float("nan"), float("inf"), -5, 1_714_557_630_000, True, datetime(1, 1, 1)],
)
def test_bad_timestamps(timestamp: Any) -> None:
    with pytest.raises(ValidationError) as info:
        BigPandaAlert("ok", host="h", timestamp=timestamp)
    assert info.value.field == "timestamp"


def test_long_description_is_shortened_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="alertwire"):
        a = BigPandaAlert("ok", host="h", description="d" * 5000)
    assert a.description is not None
    assert len(a.description) == 2048
    assert a.description.endswith("…")
    assert "shortened" in caplog.text
    exact = BigPandaAlert("ok", host="h", description="d" * 2048)
    assert exact.description == "d" * 2048


# Any input either builds an alert whose body the wire rules accept, or raises
# ValidationError: never another exception, never a body BigPanda would refuse.
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.text(min_size=510, max_size=514),
)
_tag_value = st.one_of(
    _scalar,
    st.lists(_scalar, max_size=32),
    st.tuples(st.text(max_size=4), st.integers()),
    st.dictionaries(st.text(max_size=3), _scalar, max_size=2),
)
_names = st.one_of(st.sampled_from(sorted(RESERVED_FIELDS)), st.text(max_size=6), st.integers())
_text_or_junk = st.one_of(st.none(), st.text(max_size=6), st.integers(), st.just(""))


@settings(max_examples=300, deadline=None)
@given(
    status=st.one_of(
        st.sampled_from(["ok", "CRIT", "warn", "Ack", "unknown", "acknowledged", "x", ""]),
        st.text(max_size=5),
        st.none(),
        st.integers(),
    ),
    host=_text_or_junk,
    service=_text_or_junk,
    device=_text_or_junk,
    check=_text_or_junk,
    description=st.one_of(st.none(), st.text(max_size=5), st.text(min_size=2040, max_size=2100)),
    timestamp=st.one_of(
        st.none(),
        st.integers(min_value=-(2**65), max_value=2**65),
        st.floats(),
        st.datetimes(timezones=st.one_of(st.none(), st.just(timezone.utc))),
        st.text(max_size=3),
    ),
    primary_property=st.one_of(st.none(), _names),
    secondary_property=st.one_of(st.none(), _names),
    tags=st.one_of(st.none(), st.dictionaries(_names, _tag_value, max_size=4), st.integers()),
)
def test_any_input_validates_or_raises_validation_error(**kwargs: Any) -> None:
    status = kwargs.pop("status")
    try:
        a = BigPandaAlert(status, **kwargs)
    except ValidationError as exc:
        assert exc.field
        assert exc.rule
        return
    body = json.loads(a.wire_bytes)
    assert check_alert(body, in_batch=True) == []
    assert check_alert({"app_key": "k", **body}) == []


_good_text = st.text(min_size=1, max_size=20).filter(str.strip)
_good_tag = st.one_of(
    st.text(max_size=512),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.lists(st.one_of(st.text(max_size=20), st.integers(-100, 100)), max_size=30),
)


@settings(max_examples=100, deadline=None)
@given(
    status=st.sampled_from(["ok", "critical", "warning", "acknowledged", "unknown", "crit"]),
    entity=st.sampled_from(["host", "service", "application", "device"]),
    name=_good_text,
    timestamp=st.one_of(st.none(), st.integers(0, 32_503_679_999)),
    tags=st.dictionaries(
        _good_text.filter(lambda n: n not in RESERVED_FIELDS), _good_tag, max_size=5
    ),
)
def test_valid_input_always_builds(
    status: str, entity: str, name: str, timestamp: int | None, tags: dict[str, Any]
) -> None:
    a = BigPandaAlert(status, timestamp=timestamp, tags=tags, **{entity: name})
    body = json.loads(a.wire_bytes)
    assert body[entity] == name
    assert {k: body[k] for k in tags} == tags


def test_dataclasses_replace_makes_a_new_checked_alert() -> None:
    alert = BigPandaAlert("critical", host="web3", check="http", tags={"env": "prod"})
    resolved = dataclasses.replace(alert, status=BigPandaStatus.OK)
    assert resolved.status == "ok" and resolved.host == "web3"
    assert b'"status":"ok"' in resolved.wire_bytes.replace(b" ", b"")
    with pytest.raises(ValidationError):
        dataclasses.replace(alert, status=cast(BigPandaStatus, "on fire"))
