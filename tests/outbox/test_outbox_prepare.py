"""Rows for PagerDuty events: spliced wire bytes must say what a rebuilt model said.

The outbox used to rebuild every model to stamp a timestamp and assign a
dedup key; it now splices both into the model's cached wire bytes. These
tests hold the splice to the rebuilt model (same JSON, same size limit, same
errors) and pin the stored digests, which rows written by older versions
must keep matching. Pure logic plus one SQLite batch; they take well under a
second.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from alertwire import (
    AcknowledgeAlert,
    Change,
    ResolveAlert,
    Secret,
    TriggerAlert,
    ValidationError,
)
from alertwire.models.limits import EVENT_MAX_BYTES
from alertwire.models.pagerduty import PagerDutyEvent
from alertwire.outbox import Outbox, machine
from alertwire.outbox.machine import NewEvent, order_key, order_keys, route_key
from alertwire.protocol import pagerduty as pd_protocol
from alertwire.protocol.pagerduty import splice_members
from tests.support.keys import ROUTING_KEY as KEY

NOW = datetime(2026, 11, 23, 23, 45, 1, 123456, tzinfo=timezone.utc)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox(tmp_path / "outbox.sqlite3") as box:
        yield box


def _rebuilt_body(event: PagerDutyEvent, dedup_key: str | None) -> dict[str, Any]:
    """What the outbox stored before the splice: the model rebuilt with the fields set."""
    values = {f.name: getattr(event, f.name) for f in fields(event) if not f.name.startswith("_")}
    if isinstance(event, (TriggerAlert, Change)) and event.timestamp is None:
        values["timestamp"] = NOW
    if isinstance(event, TriggerAlert) and event.dedup_key is None:
        values["dedup_key"] = dedup_key
    rebuilt = type(event)(**values)
    request, _ = pd_protocol.build_request("", Secret(KEY), rebuilt)
    parsed: dict[str, Any] = json.loads(request.body)
    return parsed


EVENTS: list[PagerDutyEvent] = [
    TriggerAlert("disk full", source="db1"),
    TriggerAlert("disk full", source="db1", dedup_key="disk-db1"),
    TriggerAlert("cpu", source="h", timestamp="2015-07-17T08:42:58.315+0000"),
    TriggerAlert(
        'quotes " and \\ and ☃',
        source="h",
        severity="critical",
        dedup_key="k",
        component="c",
        group="g",
        class_="cls",
        custom_details={"payload": {"timestamp": "nested, not ours"}, "n": 1},
        images=["https://example.com/i.png"],
        links=["https://example.com"],
        client="cl",
        client_url="https://example.com/c",
    ),
    TriggerAlert("details as text", source="h", custom_details="just text"),
    Change("deployed v2", source="ci"),
    Change("deployed v3", source="ci", timestamp=NOW, links=["https://example.com/d"]),
    AcknowledgeAlert("disk-db1"),
    ResolveAlert("disk-db1"),
]


def _prepared(event: PagerDutyEvent, *, after_another: bool) -> NewEvent:
    """``event``'s row, alone or as the second event of a batch: a preparer that has
    prepared an event takes a shorter way for the common one (a keyless, unstamped
    trigger: ``_PagerDutyRows.row``), which must give the same row."""
    if not after_another:
        return Outbox.prepare_pagerduty(event, routing_key=KEY, now=NOW)
    prepare = Outbox.pagerduty_preparer(KEY, now=NOW)
    prepare(TriggerAlert("the batch's first event", source="h"))
    return prepare(event)


@pytest.mark.parametrize("after_another", [False, True], ids=["alone", "after-another"])
@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_a_row_carries_what_a_rebuilt_model_would(
    event: PagerDutyEvent, after_another: bool
) -> None:
    row = _prepared(event, after_another=after_another)
    body = json.loads(row.body)
    assert body == _rebuilt_body(event, row.dedup_key)
    if isinstance(event, Change):
        assert row.kind == "pagerduty.change" and row.dedup_key is None
    else:
        assert row.kind == "pagerduty.alert"
        assert row.dedup_key == body["dedup_key"]
        if event.dedup_key is not None:
            assert row.dedup_key == event.dedup_key
        else:  # PagerDuty's own generated shape
            assert row.dedup_key is not None
            assert len(row.dedup_key) == 32 and int(row.dedup_key, 16) >= 0
    assert row.route == route_key("pagerduty.alert", Secret(KEY))


def test_a_batch_shares_one_timestamp_and_keeps_each_events_own(outbox: Outbox) -> None:
    events: list[TriggerAlert | Change] = [TriggerAlert(f"e{i}", source="h") for i in range(5)]
    events.append(TriggerAlert("own time", source="h", timestamp="2015-07-17T08:42:58Z"))
    events.append(Change("deploy", source="ci"))
    queued = outbox.enqueue_many(events, routing_key=KEY)
    assert [q.id for q in queued] == sorted(q.id for q in queued)
    assert len({q.dedup_key for q in queued[:6]}) == 6 and queued[6].dedup_key is None
    rows = [Outbox.prepare_pagerduty(e, routing_key=KEY, now=NOW) for e in events]
    stamped = {json.loads(r.body)["payload"].get("timestamp") for r in rows}
    assert stamped == {"2026-11-23T23:45:01.123+00:00", "2015-07-17T08:42:58Z"}


@pytest.mark.parametrize("after_another", [False, True], ids=["alone", "after-another"])
def test_the_size_limit_at_enqueue_is_the_rebuilt_models(after_another: bool) -> None:
    """A keyless, unstamped trigger near 512 KB: refused exactly when the rebuilt model
    was, alone or in a batch."""

    def trigger(size: int, **extra: Any) -> TriggerAlert:
        return TriggerAlert("big", source="h", custom_details="x" * size, **extra)

    base = len(trigger(0).wire_bytes)
    # the largest custom_details whose rebuilt model (timestamp + dedup key set) still fits
    room = EVENT_MAX_BYTES - base - len(_rebuilt_json_growth())
    room -= len('"routing_key":"",') + 32 + len('"dedup_key":"",') + 32  # the model's overhead
    fits, too_big = trigger(room), trigger(room + 1)
    # The oracle: the rebuilt model itself.
    TriggerAlert("big", source="h", custom_details="x" * room, timestamp=NOW, dedup_key="0" * 32)
    with pytest.raises(ValidationError):
        TriggerAlert(
            "big", source="h", custom_details="x" * (room + 1), timestamp=NOW, dedup_key="0" * 32
        )
    assert _prepared(fits, after_another=after_another).dedup_key
    with pytest.raises(ValidationError) as refused:
        _prepared(too_big, after_another=after_another)
    assert refused.value.field == "event"
    # With its own timestamp and dedup key nothing is added: an event at the model's
    # own limit is stored.
    overhead = len('"routing_key":"",') + 32 + len('"dedup_key":"",') + 32
    own_base = len(trigger(0, timestamp=NOW, dedup_key="0" * 32).wire_bytes)
    own = trigger(EVENT_MAX_BYTES - overhead - own_base, timestamp=NOW, dedup_key="0" * 32)
    assert _prepared(own, after_another=after_another).dedup_key == "0" * 32


def _rebuilt_json_growth() -> str:
    return ',"timestamp":"2026-11-23T23:45:01.123+00:00","dedup_key":"' + "0" * 32 + '"'


def test_errors_come_in_the_order_one_event_gives_them(outbox: Outbox) -> None:
    bad_url = "http://example.com"  # clear text: refused
    assert outbox.enqueue_many([], routing_key=KEY, base_url=bad_url) == []
    with pytest.raises(TypeError, match="not str"):
        outbox.enqueue_many(["trigger"], routing_key=KEY, base_url=bad_url)  # type: ignore[list-item]
    with pytest.raises(ValidationError) as refused:
        outbox.enqueue_many([TriggerAlert("x")], routing_key="short")
    assert refused.value.field == "routing_key"
    assert outbox.stats().pending == 0


def test_splice_members_adds_names_first_and_leaves_every_byte_in_place() -> None:
    assert splice_members(b'{"b":2}', b'"a":1') == b'{"a":1,"b":2}'
    assert splice_members(b'  {\n "b" : 2 }', b'"a":1') == b'  {"a":1,\n "b" : 2 }'
    assert splice_members(b"{}", b'"a":1') == b'{"a":1}'
    assert splice_members(b"{ \n}", b'"a":1,"c":3') == b'{"a":1,"c":3 \n}'
    # a nested object's opening (a payload) followed by more JSON
    head, wire = b'{"p":', b'{"p":{"x":1},"q":2}'
    spliced = head + splice_members(wire[len(head) :], b'"t":0')
    assert json.loads(spliced) == {"p": {"t": 0, "x": 1}, "q": 2}


def test_stored_digests_never_change() -> None:
    """Rows written by earlier versions must keep their route and order keys."""
    key = Secret("R" + "0" * 31)
    route = route_key("pagerduty.alert", key)
    assert route == "7af7ae4ddd09cc21705b0d368607508d4663cb05"
    assert route_key("pagerduty.change", key) == route  # one PagerDuty key, one limit
    assert route_key("bigpanda.alert", key, "app1") == "d2792472aa5333d1cb2fc0d52ebd1522adf0f29f"
    assert order_key(route, "alert:abc") == "6cbdee6b184558e9f3fb2e8aa328195df8fd8390"
    assert order_key(route, 'bigpanda:["host","é"]') == "8db66e3222efa0a65baff223138503c5b14f042e"
    keys = order_keys(route)  # the batch form: the route hashed once, the same keys
    assert keys("alert:abc") == "6cbdee6b184558e9f3fb2e8aa328195df8fd8390"
    assert keys('bigpanda:["host","é"]') == "8db66e3222efa0a65baff223138503c5b14f042e"
    assert keys("alert:abc") == order_key(route, "alert:abc")  # a copy each time, not a tally


def test_every_stored_key_is_made_by_one_recipe() -> None:
    """Route and order keys come from one function (``machine._digests``): a second
    spelling of the hash (an unrolled copy for speed, a batch form) could drift from the
    bytes existing outboxes were written with, and their keys would lose their order."""
    tree = ast.parse(Path(machine.__file__).read_text(encoding="utf-8"))
    hashed = [
        n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "sha256"
    ]
    assert len(hashed) == 1, hashed


TOKEN = "bp-token-0123456789abcdef"


def test_incoming_rows_store_what_the_caller_read_and_parse_nothing() -> None:
    """The ingest endpoint's entry point: the parts the wire routes read, stored as
    given (a body that is not even JSON goes in untouched: nothing reads it again),
    with the same route and order keys the raw entry point derives from the body."""
    opaque = b"\x00 not JSON: stored as given"
    row = Outbox.prepare_incoming_pagerduty(
        opaque, routing_key=Secret(KEY), change=False, dedup_key="d-1"
    )
    raw = json.dumps(
        {"routing_key": KEY, "event_action": "trigger", "dedup_key": "d-1", "payload": {}}
    ).encode()
    from_raw = Outbox.prepare_pagerduty_raw(raw)
    assert (row.body, row.dedup_key, row.credential) == (opaque, "d-1", Secret(KEY))
    assert (row.kind, row.route, row.order_key) == (
        from_raw.kind,
        from_raw.route,
        from_raw.order_key,
    )
    change = Outbox.prepare_incoming_pagerduty(
        opaque, routing_key=Secret(KEY), change=True, dedup_key=None
    )
    assert (change.kind, change.dedup_key, change.body) == ("pagerduty.change", None, opaque)
    assert change.route == route_key("pagerduty.change", Secret(KEY))

    items = [{"status": "ok", "host": "h1", "check": "c"}, {"status": "ok", "host": "h2"}]
    batch = {"app_key": "app1", "alerts": items}
    alerts = [{"app_key": "app1", **a} for a in items]
    bodies = [b"first as stored", b"second as stored"]
    rows = Outbox.prepare_incoming_bigpanda(
        zip(alerts, bodies, strict=True), token=Secret(TOKEN), app_key="app1"
    )
    raw_rows = Outbox.prepare_bigpanda_raw(json.dumps(batch).encode(), token=TOKEN)
    assert [r.body for r in rows] == bodies
    assert [(r.kind, r.route, r.order_key, r.credential) for r in rows] == [
        (r.kind, r.route, r.order_key, r.credential) for r in raw_rows
    ]
    assert TOKEN not in repr(rows) and KEY not in repr(row)


@pytest.mark.parametrize(
    ("token", "rule"), [("", "is required"), (None, "is required"), ("a b", "printable")]
)
def test_a_raw_bigpanda_body_needs_a_token_as_a_model_does(token: Any, rule: str) -> None:
    """The token is no part of the body the caller validated: a blank one was stored,
    and every delivery of it answered 401 until it was dead-lettered."""
    body = json.dumps({"app_key": "app1", "status": "ok", "host": "h1"}).encode()
    with pytest.raises(ValidationError, match=rule) as caught:
        Outbox.prepare_bigpanda_raw(body, token=token)
    assert caught.value.field == "token"
