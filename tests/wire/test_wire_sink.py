"""The wire routes with a sink of our own: the contract the relay's ingest builds on.

A real aiohttp server on a loopback port with a recording sink, so what a
sink receives (raw bytes, the wire bytes to forward, the assigned dedup key)
and how its refusals are answered are tested without the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from alertwire import Secret
from alertwire.wire import (
    IncomingBigPanda,
    IncomingPagerDuty,
    Sink,
    SinkForbidden,
    SinkRateLimited,
    SinkUnavailable,
    add_wire_routes,
)
from tests.support.sandbox_http import KEY, TOKEN, trigger


@dataclass
class RecordingSink:
    pagerduty: list[IncomingPagerDuty] = field(default_factory=list)
    bigpanda: list[IncomingBigPanda] = field(default_factory=list)
    refuse: Exception | None = None

    async def accept_pagerduty(self, event: IncomingPagerDuty) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.pagerduty.append(event)

    async def accept_bigpanda(self, request: IncomingBigPanda) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.bigpanda.append(request)


@dataclass
class Served:
    url: str
    sink: RecordingSink
    session: aiohttp.ClientSession

    async def post(
        self, path: str, raw: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        async with self.session.post(self.url + path, data=raw, headers=headers) as r:
            return r.status, dict(r.headers), await r.read()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    sink = RecordingSink()
    assert isinstance(sink, Sink)
    app = web.Application()
    add_wire_routes(app, sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        yield Served(f"http://127.0.0.1:{port}", sink, session)
    await runner.cleanup()


async def test_assigned_dedup_key_is_spliced_into_the_clients_bytes(served: Served) -> None:
    raw = (
        b'  {"routing_key": "%s", "event_action":"trigger",\n "payload": {"summary":"s","source":"h","severity":"info","n":1.50}}'
        % KEY.encode()
    )
    status, _, body = await served.post("/v2/enqueue", raw)
    assert status == 202
    [event] = served.sink.pagerduty
    answered = json.loads(body)["dedup_key"]
    assert event.dedup_key == answered and event.dedup_key_assigned
    assert event.raw == raw
    assert event.wire == raw.replace(b"{", b'{"dedup_key":"' + answered.encode() + b'",', 1)
    assert json.loads(event.wire) == {**json.loads(raw), "dedup_key": answered}
    assert event.body["dedup_key"] == answered
    assert event.routing_key == Secret(KEY)
    assert KEY not in repr(event)


async def test_null_dedup_key_is_replaced_not_duplicated(served: Served) -> None:
    body = {**trigger(), "dedup_key": None}
    status, _, answer = await served.post("/v2/enqueue", json.dumps(body).encode())
    assert status == 202
    [event] = served.sink.pagerduty
    assert event.wire.count(b'"dedup_key"') == 1
    assert json.loads(event.wire)["dedup_key"] == json.loads(answer)["dedup_key"]


async def test_client_dedup_key_keeps_the_bytes_untouched(served: Served) -> None:
    raw = json.dumps(trigger("mine")).encode()
    await served.post("/v2/enqueue", raw)
    [event] = served.sink.pagerduty
    assert event.wire is event.raw or event.wire == raw
    assert (event.dedup_key, event.dedup_key_assigned) == ("mine", False)


async def test_change_event_reaches_the_sink_without_a_dedup_key(served: Served) -> None:
    raw = json.dumps({"routing_key": KEY, "payload": {"summary": "deploy"}}).encode()
    status, _, _ = await served.post("/v2/change/enqueue", raw)
    assert status == 202
    [event] = served.sink.pagerduty
    assert (event.kind, event.dedup_key, event.wire) == ("change", None, raw)


async def test_invalid_events_never_reach_the_sink(served: Served) -> None:
    await served.post("/v2/enqueue", b'{"routing_key":"short"}')
    await served.post("/v2/enqueue", b"{")
    await served.post("/data/v2/alerts", b'{"app_key":"a"}', {"Authorization": f"Bearer {TOKEN}"})
    assert served.sink.pagerduty == [] and served.sink.bigpanda == []


async def test_bigpanda_batch_reaches_the_sink_with_the_token(served: Served) -> None:
    raw = b'{"app_key":"a1","alerts":[{"status":"ok","host":"h"}]}'
    status, _, _ = await served.post("/data/v2/alerts", raw, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 201
    [req] = served.sink.bigpanda
    assert req.token == Secret(TOKEN) and req.batch and req.raw == raw and req.app_key == "a1"
    assert req.alerts == ({"app_key": "a1", "status": "ok", "host": "h"},)
    assert TOKEN not in repr(req)


async def test_bigpanda_bodies_are_the_bytes_to_store_one_per_alert(served: Served) -> None:
    batch = (
        b'{"app_key":"a1","alerts":[{"status":"ok","host":"h"},{"host":"i","status":"critical"}]}'
    )
    single = b' {"app_key":"a1", "status":"ok","host":"h"} '
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (await served.post("/data/v2/alerts", batch, auth))[0] == 201
    assert (await served.post("/data/v2/alerts", single, auth))[0] == 201
    split, whole = served.sink.bigpanda
    # A batch item is stored as its complete body (the batch's app_key first, the
    # item's own fields after it); a single alert as the client's bytes, untouched.
    assert [json.loads(b) for b in split.bodies] == [dict(a) for a in split.alerts]
    assert split.bodies == (
        b'{"app_key":"a1","status":"ok","host":"h"}',
        b'{"app_key":"a1","host":"i","status":"critical"}',
    )
    assert whole.bodies == (single,) and not whole.batch
    with pytest.raises(ValueError, match="one body per alert"):
        IncomingBigPanda(
            token=Secret(TOKEN), app_key="a1", alerts=split.alerts, raw=batch, bodies=()
        )


@pytest.mark.parametrize(
    ("refusal", "status", "retry_after"),
    [
        (SinkUnavailable("The outbox is not writable: disk full", retry_after=30), 503, "30"),
        (SinkUnavailable("read-only", retry_after=0.2), 503, "1"),
        (SinkRateLimited("Request Limit Exceeded"), 429, None),
        (SinkForbidden("This routing key is not allowed here"), 403, None),
        (RuntimeError("a bug in the sink"), 503, "5"),
    ],
)
@pytest.mark.parametrize("path", ["/v2/enqueue", "/data/v2/alerts"])
async def test_sink_refusals_become_their_status(
    served: Served, path: str, refusal: Exception, status: int, retry_after: str | None
) -> None:
    served.sink.refuse = refusal
    body = trigger() if path == "/v2/enqueue" else {"app_key": "a", "status": "ok", "host": "h"}
    got, headers, answer = await served.post(
        path, json.dumps(body).encode(), {"Authorization": f"Bearer {TOKEN}"}
    )
    assert got == status
    assert headers.get("Retry-After") == retry_after
    parsed: dict[str, Any] = json.loads(answer)
    if path == "/data/v2/alerts":  # each service's own error shape
        assert list(parsed) == ["status", "message", "errors"]
        assert parsed["status"] == "failure"
    else:
        assert list(parsed) == ["errors", "message", "status"]
    if not isinstance(refusal, RuntimeError):
        assert parsed["errors"] == [str(refusal)]
    else:
        assert "a bug" not in answer.decode()
