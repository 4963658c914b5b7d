"""The PagerDuty event models: every rule of docs/protocol.md, enforced at construction."""

from __future__ import annotations

import copy
import json
import logging
import math
import pickle
import socket
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import pytest

from alertwire import (
    AcknowledgeAlert,
    AlertwireError,
    Change,
    Image,
    Link,
    ResolveAlert,
    Secret,
    Severity,
    TriggerAlert,
    ValidationError,
)
from alertwire.models.limits import EVENT_MAX_BYTES
from alertwire.protocol import pagerduty as protocol
from tests.support.keys import MIXED_CASE_ROUTING_KEY as KEY


def wire(event: object) -> dict[str, object]:
    return json.loads(event.wire_bytes)  # type: ignore[attr-defined,no-any-return]


def test_trigger_wire_body_complete() -> None:
    event = TriggerAlert(
        "CPU high",
        source="web-1",
        severity="warning",
        dedup_key="cpu/web-1",
        timestamp="2015-07-17T08:42:58.315+0000",
        component="cpu",
        group="web",
        class_="load",
        custom_details={"load": 9.5, "cores": 4},
        images=[{"src": "https://example.com/graph.png", "alt": "graph"}],
        links=["https://example.com/runbook", Link("https://example.com", "home")],
        client="alertwire",
        client_url="https://example.com/ui",
    )
    assert wire(event) == {
        "event_action": "trigger",
        "dedup_key": "cpu/web-1",
        "payload": {
            "summary": "CPU high",
            "source": "web-1",
            "severity": "warning",
            "timestamp": "2015-07-17T08:42:58.315+0000",
            "component": "cpu",
            "group": "web",
            "class": "load",
            "custom_details": {"load": 9.5, "cores": 4},
        },
        "images": [{"src": "https://example.com/graph.png", "alt": "graph"}],
        "links": [
            {"href": "https://example.com/runbook"},
            {"href": "https://example.com", "text": "home"},
        ],
        "client": "alertwire",
        "client_url": "https://example.com/ui",
    }
    assert event.wire_body() == wire(event)


def test_models_are_immutable() -> None:
    event = TriggerAlert("x")
    with pytest.raises(AttributeError):
        event.summary = "y"  # type: ignore[misc]


def test_defaults() -> None:
    event = TriggerAlert("x")
    assert event.severity is Severity.ERROR
    assert event.source == socket.gethostname()
    assert event.dedup_key is None
    assert "dedup_key" not in wire(event)
    assert Change("deployed").source == socket.gethostname()


# --- severity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("critical", Severity.CRITICAL),
        ("CRITICAL", Severity.CRITICAL),
        ("Critical", Severity.CRITICAL),
        ("crit", Severity.CRITICAL),
        ("CRIT", Severity.CRITICAL),
        ("error", Severity.ERROR),
        ("err", Severity.ERROR),
        ("ERR", Severity.ERROR),
        ("warning", Severity.WARNING),
        ("warn", Severity.WARNING),
        ("Warn", Severity.WARNING),
        ("info", Severity.INFO),
        ("INFO", Severity.INFO),
        (Severity.INFO, Severity.INFO),
    ],
)
def test_severity_spellings(spelling: str, expected: Severity) -> None:
    event = TriggerAlert("x", severity=spelling)
    assert event.severity is expected
    # The service is case-sensitive: always the lower-case wire spelling.
    assert wire(event)["payload"]["severity"] == expected.value  # type: ignore[index]


@pytest.mark.parametrize("bad", ["fatal", "", "ok", "warnings", 3, None])
def test_severity_refused(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        TriggerAlert("x", severity=bad)  # type: ignore[arg-type]
    assert info.value.field == "severity"
    assert "critical" in str(info.value)


def test_severity_str_is_wire_value() -> None:
    assert str(Severity.CRITICAL) == "critical"
    assert Severity("warning") is Severity.WARNING


# --- summary ----------------------------------------------------------------------------


def test_long_summary_shortened_with_ellipsis_and_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="alertwire"):
        event = TriggerAlert("é" * 5000)
    assert len(event.summary) == 1024
    assert event.summary.endswith("…")
    assert event.summary[:-1] == "é" * 1023
    assert any("shortened" in r.getMessage() for r in caplog.records)
    assert wire(event)["payload"]["summary"] == event.summary  # type: ignore[index]


def test_change_summary_shortened_too(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="alertwire"):
        event = Change("x" * 1025)
    assert len(event.summary) == 1024 and event.summary.endswith("…")
    assert caplog.records


def test_summary_of_exactly_1024_kept_without_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="alertwire"):
        event = TriggerAlert("y" * 1024)
    assert event.summary == "y" * 1024
    assert not caplog.records


@pytest.mark.parametrize("cls", [TriggerAlert, Change])
@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_blank_summary_refused(cls: type[TriggerAlert], blank: str) -> None:
    with pytest.raises(ValidationError) as info:
        cls(blank)
    assert info.value.field == "summary"
    assert "blank" in str(info.value)


@pytest.mark.parametrize("cls", [TriggerAlert, Change])
def test_non_string_summary_refused(cls: type[TriggerAlert]) -> None:
    with pytest.raises(ValidationError) as info:
        cls(42)  # type: ignore[arg-type]
    assert info.value.field == "summary"


# --- source -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [TriggerAlert, Change])
@pytest.mark.parametrize("blank", ["", "  "])
def test_blank_source_refused(cls: type[TriggerAlert], blank: str) -> None:
    with pytest.raises(ValidationError) as info:
        cls("x", source=blank)
    assert info.value.field == "source"


# --- dedup key --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [TriggerAlert, AcknowledgeAlert, ResolveAlert])
def test_dedup_key_length(cls: type[object]) -> None:
    def make(key: str) -> object:
        return cls("x", dedup_key=key) if cls is TriggerAlert else cls(key)  # type: ignore[call-arg]

    assert make("k" * 255).dedup_key == "k" * 255  # type: ignore[attr-defined]
    with pytest.raises(ValidationError) as info:
        make("k" * 256)
    assert info.value.field == "dedup_key"
    assert "255" in str(info.value)


@pytest.mark.parametrize("cls", [TriggerAlert, AcknowledgeAlert, ResolveAlert])
@pytest.mark.parametrize("blank", ["", " "])
def test_dedup_key_blank(cls: type[object], blank: str) -> None:
    with pytest.raises(ValidationError) as info:
        cls("x", dedup_key=blank) if cls is TriggerAlert else cls(blank)  # type: ignore[call-arg]
    assert info.value.field == "dedup_key"


@pytest.mark.parametrize("cls", [AcknowledgeAlert, ResolveAlert])
def test_ack_resolve_need_a_key(cls: type[AcknowledgeAlert]) -> None:
    with pytest.raises(ValidationError) as info:
        cls(None)  # type: ignore[arg-type]
    assert info.value.field == "dedup_key"
    assert wire(cls("abc")) == {"event_action": cls.event_action, "dedup_key": "abc"}


# --- timestamps -------------------------------------------------------------------------


def test_aware_datetime() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    event = TriggerAlert("x", timestamp=when)
    assert event.timestamp == "2024-05-06T07:08:09.123+02:00"


def test_naive_datetime_is_local_time() -> None:
    naive = datetime(2024, 5, 6, 7, 8, 9)
    event = TriggerAlert("x", timestamp=naive)
    assert event.timestamp is not None
    parsed = datetime.fromisoformat(event.timestamp)
    assert parsed.tzinfo is not None
    assert parsed == naive.astimezone()  # the same instant as local time


def test_utc_now_round_trips() -> None:
    now = datetime.now(timezone.utc)
    event = Change("x", timestamp=now)
    assert event.timestamp is not None
    assert abs(datetime.fromisoformat(event.timestamp) - now) < timedelta(milliseconds=1)


@pytest.mark.parametrize(
    "text",
    [
        "2015-07-17T08:42:58.315+0000",
        "2015-07-17T08:42:58.315+00:00",
        "2015-07-17T08:42:58Z",
        "2015-07-17T08:42:58.123456789Z",
        "2015-07-17T08:42:58-0530",
        "2015-07-17T08:42:58",
        "2015-07-17 08:42",
    ],
)
def test_iso_timestamps_accepted_verbatim(text: str) -> None:
    assert TriggerAlert("x", timestamp=text).timestamp == text
    assert Change("x", timestamp=text).timestamp == text


@pytest.mark.parametrize(
    "bad",
    [
        "yesterday",
        "2015-13-01T00:00:00Z",
        "2015-02-30T00:00:00Z",
        "2015-07-17T25:00:00Z",
        "2015-07-17",
        "2015-07-17T08:42:58+2500",
        "٢٠١٥-٠٧-١٧T08:42:58Z",  # Arabic-Indic digits: \d in Python matches them
        "",
        1437121378,
        # Its offset has seconds (+05:00:15): the wire form has them too, which no
        # ISO 8601 reader takes (only the wire rules, not the datetime's formatting, see it).
        datetime(2015, 7, 17, tzinfo=timezone(timedelta(hours=5, seconds=15))),
    ],
)
def test_bad_timestamps_refused(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        TriggerAlert("x", timestamp=bad)  # type: ignore[arg-type]
    assert info.value.field == "timestamp"
    assert "ISO 8601" in str(info.value)


# --- custom details ---------------------------------------------------------------------


def test_custom_details_object_or_string() -> None:
    assert TriggerAlert("x", custom_details={"a": [1, {"b": None}]}).custom_details == {
        "a": [1, {"b": None}]
    }
    assert TriggerAlert("x", custom_details="free text").custom_details == "free text"


@pytest.mark.parametrize(
    "bad",
    [{"a": {1, 2}}, {"a": object()}, {"n": 2**70}, [1, 2], 5, {"s": "\ud800"}],
)
def test_custom_details_must_be_json(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        TriggerAlert("x", custom_details=bad)  # type: ignore[arg-type]
    assert info.value.field == "custom_details"


def test_nan_and_infinities_in_custom_details_are_sent_as_strings_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """JSON has no NaN; sent as ``null`` they would read as "no value", silently."""
    details = {"cpu": math.nan, "limits": [math.inf, -math.inf, 1.5], "none": None}
    with caplog.at_level(logging.WARNING, logger="alertwire"):
        event = TriggerAlert("x", custom_details=details)
        change = Change("deployed", custom_details={"ratio": math.inf})
    assert wire(event)["payload"] == {
        "summary": "x",
        "source": event.source,
        "severity": "error",
        "custom_details": {"cpu": "NaN", "limits": ["Infinity", "-Infinity", 1.5], "none": None},
    }
    assert wire(change)["payload"]["custom_details"] == {"ratio": "Infinity"}  # type: ignore[index]
    assert [r.getMessage() for r in caplog.records] == [
        "payload.custom_details.cpu, payload.custom_details.limits[0],"
        " payload.custom_details.limits[1]: sent as the strings NaN, Infinity or -Infinity"
        " (JSON has no such numbers)",
        "payload.custom_details.ratio: sent as the strings NaN, Infinity or -Infinity"
        " (JSON has no such numbers)",
    ]


def test_the_nan_warning_is_one_line_naming_five_places_at_most(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key is the caller's text (quoted when it is not a plain name, so a newline in
    it cannot start a second log line), and a thousand NaNs make one short line."""
    details: dict[str, object] = {f"m{n}": math.nan for n in range(7)}
    details["a\nb"] = math.inf
    with caplog.at_level(logging.WARNING, logger="alertwire"):
        TriggerAlert("x", custom_details=details)
        TriggerAlert("x", custom_details={"a\nb": math.inf})
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == (
        "payload.custom_details.m0, payload.custom_details.m1, payload.custom_details.m2,"
        " payload.custom_details.m3, payload.custom_details.m4 and 3 more: sent as the"
        " strings NaN, Infinity or -Infinity (JSON has no such numbers)"
    )
    assert said[1].startswith("payload.custom_details.'a\\nb': sent as") and "\n" not in said[1]


def test_keys_that_are_not_strings_show_as_they_are_sent() -> None:
    """They are sent as their text, so that is what the event shows; two keys that
    become the same text would send the name twice, and are refused."""
    event = TriggerAlert("x", custom_details={1: "a", None: "b", "c": "d"})  # type: ignore[dict-item]
    assert dict(event.custom_details) == {"1": "a", "null": "b", "c": "d"}  # type: ignore[arg-type]
    assert event.custom_details == wire(event)["payload"]["custom_details"]  # type: ignore[index]
    with pytest.raises(ValidationError) as info:
        TriggerAlert("x", custom_details={1: "a", "1": "b"})  # type: ignore[dict-item]
    assert info.value.field == "custom_details"
    assert "same once written as JSON text" in str(info.value)


def test_custom_details_with_null_and_finite_numbers_only_are_sent_as_they_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    details = {"a": None, "b": [1.0, -0.0, 1e308], "null": "null"}
    with caplog.at_level(logging.WARNING, logger="alertwire"):
        event = TriggerAlert("x", custom_details=details)
    assert wire(event)["payload"]["custom_details"] == details  # type: ignore[index]
    assert caplog.records == []


def test_custom_details_copied_not_aliased() -> None:
    details = {"a": 1}
    event = TriggerAlert("x", custom_details=details)
    details["a"] = 2
    assert wire(event)["payload"]["custom_details"] == {"a": 1}  # type: ignore[index]


@pytest.mark.parametrize("cls", [TriggerAlert, Change])
def test_custom_details_are_read_only_and_show_what_is_sent(cls: type[TriggerAlert]) -> None:
    """The wire bytes are made once, at construction: a mutable copy would drift from them."""
    tags = ["a"]
    event = cls("x", custom_details={"n": 1, "tags": tags, "at": datetime(2026, 1, 2, 3, 4)})
    with pytest.raises(TypeError, match="read-only"):
        event.custom_details["n"] = 2  # type: ignore[index]
    with pytest.raises(TypeError, match="read-only"):
        event.custom_details.clear()  # type: ignore[union-attr]
    tags.append("b")  # the caller's own list is not the event's
    sent = wire(event)["payload"]["custom_details"]  # type: ignore[index]
    assert event.custom_details == sent == {"n": 1, "tags": ["a"], "at": "2026-01-02T03:04:00"}
    assert repr(event).count("'tags': ['a']") == 1
    flat = cls("x", custom_details={"n": 1, "s": "t", "b": True, "none": None})
    assert flat.custom_details == {"n": 1, "s": "t", "b": True, "none": None}
    with pytest.raises(TypeError):
        flat.custom_details["n"] = 2  # type: ignore[index]


@pytest.mark.parametrize("cls", [TriggerAlert, Change])
@pytest.mark.parametrize("details", [{"n": 1}, {"n": 1.5, "tags": ["a"]}, None])
def test_an_event_pickles_and_copies_as_itself(
    cls: type[TriggerAlert], details: dict[str, object] | None
) -> None:
    """A process pool pickles its arguments and frameworks deep-copy theirs; read-only
    details once made both fail ("cannot pickle 'mappingproxy' object")."""
    event = cls("x", custom_details=details)
    pickled = pickle.loads(pickle.dumps(event))  # noqa: S301 - our own bytes
    for copied in (pickled, copy.deepcopy(event), copy.copy(event)):
        assert copied == event and repr(copied) == repr(event)
        assert wire(copied) == wire(event)
        if details is not None:
            with pytest.raises(TypeError, match="read-only"):
                copied.custom_details["n"] = 2  # type: ignore[index]


# --- images and links -------------------------------------------------------------------


def test_image_https_only() -> None:
    assert Image("HTTPS://example.com/a.png").src == "HTTPS://example.com/a.png"
    for bad in ("http://example.com/a.png", "ftp://x", "example.com/a.png"):
        with pytest.raises(ValidationError) as info:
            Image(bad)
        assert info.value.field == "images.src"
        assert "https" in str(info.value)
    with pytest.raises(ValidationError, match=r"images\.src"):
        TriggerAlert("x", images=["http://example.com/a.png"])


def test_image_and_link_shapes() -> None:
    with pytest.raises(ValidationError, match=r"images\.src"):
        Image("")
    with pytest.raises(ValidationError, match=r"links\.href"):
        Link("  ")
    with pytest.raises(ValidationError, match=r"links\.text"):
        Link("https://x", 5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="links"):
        TriggerAlert("x", links="https://x")  # a bare string is not a list of links
    with pytest.raises(ValidationError, match="images"):
        TriggerAlert("x", images=[42])  # type: ignore[list-item]


@pytest.mark.parametrize("bad", [5, 1.5, object()])
def test_non_iterable_links_and_images_are_validation_errors(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        TriggerAlert("x", links=bad)  # type: ignore[arg-type]
    assert info.value.field == "links"
    with pytest.raises(ValidationError) as info:
        TriggerAlert("x", images=bad)  # type: ignore[arg-type]
    assert info.value.field == "images"
    with pytest.raises(ValidationError):
        Change("x", links=bad)  # type: ignore[arg-type]


# --- optional strings -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["source", "component", "group", "class_", "client", "client_url", "dedup_key"]
)
def test_optional_fields_must_be_strings(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        TriggerAlert("x", **{name: 12})  # type: ignore[arg-type]
    assert info.value.field == name


def test_lone_surrogates_are_validation_errors() -> None:
    for kwargs in ({"summary": "a\ud800"}, {"summary": "x", "source": "\udfff"}):
        with pytest.raises(ValidationError):
            TriggerAlert(**kwargs)
    with pytest.raises(ValidationError, match="dedup_key"):
        ResolveAlert("k\ud800")
    with pytest.raises(ValidationError):
        Change("x", links=["https://x/\ud800"])


# --- size -------------------------------------------------------------------------------


def test_event_over_512_kb_refused() -> None:
    with pytest.raises(ValidationError) as info:
        TriggerAlert("x", custom_details={"blob": "a" * EVENT_MAX_BYTES})
    assert info.value.field == "event"
    assert "512" in str(info.value)
    with pytest.raises(ValidationError, match="event"):
        Change("x", custom_details={"blob": "a" * EVENT_MAX_BYTES})


def _largest_accepted(make: object) -> object:
    """Binary-search the biggest padding the model accepts."""
    lo, hi = 0, EVENT_MAX_BYTES
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        try:
            best = make(mid)  # type: ignore[operator]
        except ValidationError:
            hi = mid - 1
        else:
            lo = mid + 1
    assert best is not None
    return best


@pytest.mark.parametrize(
    "make",
    [
        lambda n: TriggerAlert("x", custom_details={"pad": "a" * n}),
        lambda n: TriggerAlert("x", dedup_key="k", custom_details={"pad": "a" * n}),
        lambda n: Change("x", custom_details={"pad": "a" * n}),
    ],
    ids=["keyless-trigger", "keyed-trigger", "change"],
)
def test_largest_accepted_event_fits_on_the_wire(make: object) -> None:
    """What the model accepts must still be <= 512 KB once the key (and a generated dedup key) are added."""
    event = _largest_accepted(make)
    request, _ = protocol.build_request(
        "https://events.pagerduty.com",
        Secret(KEY),
        event,  # type: ignore[arg-type]
    )
    assert len(request.body) <= EVENT_MAX_BYTES
    assert len(request.body) > EVENT_MAX_BYTES - 200  # the limit is not needlessly tight


# --- errors -----------------------------------------------------------------------------


def test_validation_error_is_value_error_and_names_field_and_rule() -> None:
    with pytest.raises(ValueError) as info:
        TriggerAlert("x", dedup_key="k" * 300)
    exc = info.value
    assert isinstance(exc, ValidationError) and isinstance(exc, AlertwireError)
    assert exc.field == "dedup_key"
    assert "at most 255" in exc.rule
    assert str(exc).startswith("dedup_key: ")


def test_several_problems_reported_together() -> None:
    with pytest.raises(ValidationError) as info:
        TriggerAlert("x", source=" ", dedup_key="k" * 300, images=["https://ok/"])
    fields = {f for f, _ in info.value.problems}
    assert {"source", "dedup_key"} <= fields


@pytest.mark.parametrize("when", [datetime.min, datetime.max])
def test_naive_datetimes_at_calendar_edges(when: datetime) -> None:
    """Local time at year 1 / 9999 may not exist: a ValidationError, never a bare ValueError."""
    try:
        event = TriggerAlert("x", timestamp=when)
    except ValidationError as exc:
        assert exc.field == "timestamp"
    else:
        assert event.timestamp is not None
        assert datetime.fromisoformat(event.timestamp).tzinfo is not None


@pytest.mark.parametrize(
    ("event", "change", "expected"),
    [
        (
            TriggerAlert("disk full", source="db1", links=["https://x.example"]),
            {"severity": "critical"},
            {"severity": "critical", "summary": "disk full"},
        ),
        (AcknowledgeAlert("k1"), {"dedup_key": "k2"}, {"dedup_key": "k2"}),
        (ResolveAlert("k1"), {"dedup_key": "k2"}, {"dedup_key": "k2"}),
        (Change("deployed", source="ci"), {"summary": "v2"}, {"summary": "v2", "source": "ci"}),
    ],
)
def test_dataclasses_replace_makes_a_new_checked_event(
    event: Any, change: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Frozen events are tweaked with ``dataclasses.replace``: the copy is built by the
    constructor, so its wire body follows the change and the rules are checked again."""
    import dataclasses

    copy = dataclasses.replace(event, **change)
    body = json.loads(copy.wire_bytes)
    for name, value in expected.items():
        assert getattr(copy, name) == value
        assert (body.get("payload") or {}).get(name, body.get(name)) == value
    with pytest.raises(ValueError):
        dataclasses.replace(event, _wire=b"{}")  # the wire body is never given, only built
    if isinstance(event, TriggerAlert):
        with pytest.raises(ValidationError, match="severity"):
            dataclasses.replace(event, severity=cast(Any, "fatal"))
