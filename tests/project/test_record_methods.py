"""The hand-over methods of alertwire._record_methods behave as @dataclass's generated ones.

The seven public dataclasses on the one-event path take ``__eq__``, ``__hash__``
and ``__repr__`` from there instead of letting ``@dataclass`` compile them
(docs/cli.md, "Start-up cost"). Each is compared here with a twin that
``@dataclass`` generates from the same fields.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from alertwire import EventResult, Image, Link, RetryPolicy, Secret, Severity, TriggerAlert
from alertwire._record_methods import slot_setters
from alertwire.outbox import Enqueued
from alertwire.outbox.machine import NewEvent
from alertwire.transport import Request, Response

CLASSES: list[type[Any]] = [TriggerAlert, Link, Image, EventResult, RetryPolicy, Request, Response]


_TWINS: dict[type[Any], type[Any]] = {}


def _twin(cls: type[Any]) -> type[Any]:
    """A dataclass with ``cls``'s fields whose methods @dataclass generated (eq, frozen); one per class."""
    if cls in _TWINS:
        return _TWINS[cls]
    specs = [
        (f.name, Any, dataclasses.field(repr=f.repr, compare=f.compare, hash=f.hash))
        for f in dataclasses.fields(cls)
    ]
    twin = dataclasses.make_dataclass(cls.__name__, specs, frozen=True)
    twin.__qualname__ = cls.__qualname__
    _TWINS[cls] = twin
    return twin


def _as_twin(obj: Any) -> Any:
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return _twin(type(obj))(**values)


def _samples() -> list[tuple[Any, Any, Any]]:
    """(value, an equal one, a different one) for each class."""
    trigger = TriggerAlert("disk full", source="h", dedup_key="k", custom_details="text")
    return [
        (trigger, TriggerAlert("disk full", source="h", dedup_key="k", custom_details="text"),
         TriggerAlert("disk fuller", source="h", dedup_key="k", custom_details="text")),
        (Link("https://x.example", "x"), Link("https://x.example", "x"), Link("https://x.example")),
        (Image("https://x.example/i.png"), Image("https://x.example/i.png"),
         Image("https://x.example/i.png", alt="graph")),
        (EventResult("success", "Event processed", "k", 202),
         EventResult("success", "Event processed", "k", 202),
         EventResult("success", "Event processed", None, 202)),
        (RetryPolicy(), RetryPolicy(), RetryPolicy(max_attempts=2)),
        (Request("POST", "http://h/x", {"a": "b"}, b"{}"),
         Request("POST", "http://h/x", {"a": "b"}, b"{}"),
         Request("POST", "http://h/x", {"a": "b"}, b"[]")),
        (Response(202, {"a": "b"}, b"{}"), Response(202, {"a": "b"}, b"{}"),
         Response(400, {"a": "b"}, b"{}")),
    ]  # fmt: skip


@pytest.mark.parametrize("value, same, other", _samples(), ids=[c.__name__ for c in CLASSES])
def test_eq_hash_and_repr_match_the_generated_ones(value: Any, same: Any, other: Any) -> None:
    twin, twin_same, twin_other = _as_twin(value), _as_twin(same), _as_twin(other)
    assert (value == same, value == other, value != other) == (
        twin == twin_same,
        twin == twin_other,
        twin != twin_other,
    )
    assert value == same and value != other
    assert value.__eq__(object()) is NotImplemented and twin.__eq__(object()) is NotImplemented
    assert (value == twin) is False  # not the same class
    if type(value) is not Request:  # Request's repr is its own (no headers: they hold secrets)
        assert repr(value) == repr(twin)
        assert repr(other) == repr(twin_other)
    try:
        expected: Any = hash(twin)
    except TypeError as exc:  # a dict field: unhashable, as generated
        with pytest.raises(TypeError, match=str(exc)):
            hash(value)
    else:
        assert hash(value) == expected and hash(same) == expected


def test_unhashable_fields_stay_unhashable() -> None:
    response = Response(200, {"a": "b"}, b"")
    with pytest.raises(TypeError, match="unhashable type: 'dict'"):
        hash(response)
    with pytest.raises(TypeError, match="unhashable type: 'dict'"):
        hash(_as_twin(response))


def test_a_recursive_value_shows_dots_as_generated() -> None:
    headers: dict[str, Any] = {}
    response = Response(200, headers, b"")
    headers["self"] = response
    twin_headers: dict[str, Any] = {}
    twin = _twin(Response)(200, twin_headers, b"")
    twin_headers["self"] = twin
    assert repr(response) == repr(twin) == "Response(status=200, headers={'self': ...}, body=b'')"


def test_a_subclass_shows_its_own_name_and_compares_only_with_itself() -> None:
    class Mine(EventResult):
        __slots__ = ()

    mine, base = Mine("success", "ok", None, 202), EventResult("success", "ok", None, 202)
    assert repr(mine).startswith(
        "test_a_subclass_shows_its_own_name_and_compares_only_with_itself.<locals>.Mine("
    )
    assert mine != base and mine == Mine("success", "ok", None, 202)


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_they_stay_frozen_dataclasses(cls: type[Any]) -> None:
    assert dataclasses.is_dataclass(cls)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__eq__" in vars(cls) and "__hash__" in vars(cls) and "__repr__" in vars(cls)
    value = next(v for v, _, _ in _samples() if type(v) is cls)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, dataclasses.fields(cls)[0].name, None)
    assert list(dataclasses.asdict(value)) == [f.name for f in dataclasses.fields(cls)]


def test_slot_setters_store_each_field_of_a_frozen_class_in_field_order() -> None:
    """The hand-written __init__s (TriggerAlert, NewEvent, Enqueued) store through these:
    each setter fills its own field, and the instance stays frozen."""

    @dataclasses.dataclass(frozen=True, slots=True, init=False)
    class Pair:
        first: int
        second: str

        def __init__(self, first: int, second: str) -> None:
            set_first, set_second = slot_setters(Pair)
            set_first(self, first)
            set_second(self, second)

    pair = Pair(1, "two")
    assert (pair.first, pair.second) == (1, "two")
    assert pair == Pair(1, "two") and pair != Pair(1, "three")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pair.first = 3  # type: ignore[misc]
    assert dataclasses.replace(pair, second="three") == Pair(1, "three")


def test_classes_with_hand_written_inits_build_as_the_generated_ones_would() -> None:
    """Every field set, positionally and by keyword, defaults included; replace() works."""
    key = Secret("R" + "0" * 31)
    row = NewEvent("pagerduty.alert", "r", "o", key, b"{}")
    assert dataclasses.astuple(row) == ("pagerduty.alert", "r", "o", key, b"{}", None, None)
    by_name = NewEvent(
        kind="pagerduty.alert",
        route="r",
        order_key="o",
        credential=key,
        body=b"{}",
        base_url="https://x.example",
        dedup_key="d",
    )
    assert dataclasses.replace(row, base_url="https://x.example", dedup_key="d") == by_name
    assert Enqueued(7, "d") == Enqueued(id=7, dedup_key="d")
    assert (Enqueued(7, None).id, Enqueued(7, None).dedup_key) == (7, None)
    trigger = TriggerAlert("x", source="h", client="c", client_url="https://c.example")
    assert [getattr(trigger, f.name) for f in dataclasses.fields(TriggerAlert)] == [
        "x",
        "h",
        Severity.ERROR,
        None,
        None,
        None,
        None,
        None,
        None,
        (),
        (),
        "c",
        "https://c.example",
        trigger.wire_bytes,
    ]
