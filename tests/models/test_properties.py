"""Property tests: any model input validates or raises ValidationError, and what validates is
what PagerDuty accepts.

Inputs mix plausible values (the spellings, ISO strings, datetimes in odd
offsets, nested JSON) with wrong types and hostile text (lone surrogates,
other scripts' digits, very long strings). Whatever validates is turned into
the real request body by the protocol core, with a routing key, and must pass
the wire rules the sandbox applies and fit in 512 KB.
"""

from __future__ import annotations

import json
import string
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from alertwire import AcknowledgeAlert, Change, ResolveAlert, Secret, TriggerAlert, ValidationError
from alertwire.models.limits import EVENT_MAX_BYTES
from alertwire.models.pagerduty_rules import check_alert_event, check_change_event
from alertwire.protocol import pagerduty as protocol

KEY = Secret("R0uT1nGkEy0123456789abcdefABCDEF")
BASE = "https://events.pagerduty.com"

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text including lone surrogates and every other category.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.sets(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.builds(object),
)
text_or_junk = st.one_of(st.text(max_size=40), any_text, junk)

severities = st.one_of(
    st.sampled_from(["critical", "error", "warning", "info", "crit", "warn", "err"]).flatmap(
        lambda s: st.sampled_from([s, s.upper(), s.title(), f" {s} "])
    ),
    text_or_junk,
)

offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
odd_offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
datetimes = st.datetimes(timezones=st.none() | offsets)
ascii_iso = st.one_of(
    datetimes.map(lambda d: d.isoformat()),
    st.datetimes(timezones=offsets).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f%z")),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.from_regex(
        r"\A[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
        r"(Z|[+-][01][0-9]:?[0-5][0-9])?\Z"
    ),
)
# ``\d`` in a regex strategy draws any script's digits; PagerDuty's parser reads ASCII only.
iso_strings = ascii_iso | st.from_regex(
    r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,12})?)?(Z|[+-]\d{2}:?\d{2})?\Z"
)
timestamps = st.one_of(datetimes, iso_strings, st.datetimes(timezones=odd_offsets), text_or_junk)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
custom_details = st.one_of(
    st.dictionaries(st.text(max_size=8), json_values, max_size=4), any_text, junk
)

urls = st.one_of(
    st.builds(
        lambda s, p: f"{s}://example.com/{p}",
        st.sampled_from(["https", "HTTPS", "http", "ftp"]),
        st.text(string.ascii_letters, max_size=8),
    ),
    text_or_junk,
)
image_items = st.one_of(
    urls,
    st.fixed_dictionaries({"src": urls}, optional={"href": text_or_junk, "alt": text_or_junk}),
    junk,
)
link_items = st.one_of(
    urls, st.fixed_dictionaries({"href": urls}, optional={"text": text_or_junk}), junk
)
images = st.one_of(st.lists(image_items, max_size=3), st.tuples(image_items), junk, any_text)
links = st.one_of(st.lists(link_items, max_size=3), st.tuples(link_items), junk, any_text)

summaries = st.one_of(
    st.text(max_size=60),
    st.text(min_size=1000, max_size=1100),
    any_text,
    junk,
)
dedup_keys = st.one_of(
    st.none(), st.text(max_size=20), st.text(min_size=250, max_size=260), any_text, junk
)
optional_text = st.one_of(st.none(), st.text(max_size=20), any_text, junk)


# Plausible values per field (some still invalid: blank, too long, a bad ISO string...).
plain_text = st.text(max_size=20)
plausible_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | plain_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(plain_text, inner, max_size=3),
    max_leaves=8,
)
https_urls = st.text(string.ascii_letters + "/.-_", max_size=12).map(
    lambda p: f"https://example.com/{p}"
)
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "summary": st.one_of(st.text(max_size=60), st.text(min_size=1000, max_size=1100)),
    "source": st.none() | st.text(min_size=1, max_size=20),
    "severity": st.sampled_from(
        ["critical", "error", "warning", "info", "crit", "warn", "err"]
    ).flatmap(lambda s: st.sampled_from([s, s.upper(), s.title(), f" {s} "])),
    "dedup_key": st.none() | st.text(max_size=20) | st.text(min_size=250, max_size=260),
    "timestamp": st.none() | datetimes | ascii_iso,
    "component": st.none() | plain_text,
    "group": st.none() | plain_text,
    "class_": st.none() | plain_text,
    "custom_details": st.none()
    | plain_text
    | st.dictionaries(plain_text, plausible_json, max_size=4),
    "images": st.lists(
        https_urls
        | st.fixed_dictionaries(
            {"src": https_urls}, optional={"href": plain_text, "alt": plain_text}
        ),
        max_size=3,
    ),
    "links": st.lists(
        https_urls | st.fixed_dictionaries({"href": https_urls}, optional={"text": plain_text}),
        max_size=3,
    ),
    "client": st.none() | plain_text,
    "client_url": st.none() | plain_text,
}
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "summary": summaries,
    "source": optional_text,
    "severity": severities,
    "dedup_key": dedup_keys,
    "timestamp": timestamps,
    "component": optional_text,
    "group": optional_text,
    "class_": optional_text,
    "custom_details": custom_details,
    "images": images,
    "links": links,
    "client": optional_text,
    "client_url": optional_text,
}
CHANGE_FIELDS = ("summary", "source", "timestamp", "custom_details", "links")


def _draw_fields(data: st.DataObject, names: tuple[str, ...]) -> dict[str, Any]:
    """Plausible values, with zero to two fields drawn from the hostile strategies."""
    hostile = data.draw(st.sets(st.sampled_from(names), max_size=2), label="hostile fields")
    return {
        name: data.draw((HOSTILE if name in hostile else PLAUSIBLE)[name], label=name)
        for name in names
    }


def _request_body(event: Any) -> dict[str, Any]:
    request, _ = protocol.build_request(BASE, KEY, event)
    assert len(request.body) <= EVENT_MAX_BYTES
    body = json.loads(request.body)
    assert isinstance(body, dict)
    return body


@SETTINGS
@given(st.data())
def test_trigger_validates_or_raises_validation_error(data: st.DataObject) -> None:
    fields = _draw_fields(data, tuple(PLAUSIBLE))
    summary = fields.pop("summary")
    try:
        model = TriggerAlert(summary, **fields)
    except ValidationError as exc:
        assert exc.field and exc.rule
        event(f"refused: {exc.field}")
        return
    event("validated")
    body = _request_body(model)
    assert check_alert_event(body) == []
    assert len(body["payload"]["summary"]) <= 1024


@SETTINGS
@given(st.data())
def test_change_validates_or_raises_validation_error(data: st.DataObject) -> None:
    fields = _draw_fields(data, CHANGE_FIELDS)
    summary = fields.pop("summary")
    try:
        model = Change(summary, **fields)
    except ValidationError as exc:
        assert exc.field and exc.rule
        event(f"refused: {exc.field}")
        return
    event("validated")
    body = _request_body(model)
    assert check_change_event(body) == []
    assert "dedup_key" not in body and "event_action" not in body


@SETTINGS
@given(cls=st.sampled_from([AcknowledgeAlert, ResolveAlert]), dedup_key=dedup_keys)
def test_ack_resolve_validate_or_raise_validation_error(cls: type[Any], dedup_key: Any) -> None:
    try:
        model = cls(dedup_key)
    except ValidationError as exc:
        assert exc.field == "dedup_key"
        return
    body = _request_body(model)
    assert check_alert_event(body) == []
    assert body["dedup_key"] == dedup_key


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=3000).filter(lambda s: s.strip()))
def test_any_non_blank_summary_is_sent_at_most_1024_long(summary: str) -> None:
    event = TriggerAlert(summary, source="h")
    assert len(event.summary) <= 1024
    if len(summary) <= 1024:
        assert event.summary == summary
    else:
        assert event.summary.endswith("…")
        assert summary.startswith(event.summary[:-1])


@settings(max_examples=60, deadline=None)
@given(datetimes)
def test_any_datetime_round_trips_to_the_same_instant(when: datetime) -> None:
    try:
        event = TriggerAlert("x", source="h", timestamp=when)
    except ValidationError:
        return  # an offset with seconds is not ISO 8601 text PagerDuty reads
    assert event.timestamp is not None
    sent = datetime.fromisoformat(event.timestamp)
    aware = when if when.tzinfo is not None else when.astimezone()
    assert abs(sent - aware) < timedelta(milliseconds=1)
