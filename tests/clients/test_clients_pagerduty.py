"""PagerDuty / AsyncPagerDuty against a real HTTP server on loopback.

Every test runs five ways: the sync client (http.client), the async client
(its default, AsyncioTransport, and AiohttpTransport, the default before it),
and each with the caller's own httpx client. The server
(``tests/support/loopback_server.py``) scripts each answer, so every status path,
Retry-After, resets, silent closes and timeouts are staged on real sockets.
Retries are instant suite-wide (``tests/conftest.py``); the one test of
delays records what the client would sleep instead of sleeping.

Redaction is checked everywhere: an autouse fixture captures every log
record at DEBUG and fails the test if the routing key appears, and every
error a test sees goes through :func:`assert_redacted` (str, repr, args and
the whole exception chain).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import alertwire
from alertwire import (
    AcknowledgeAlert,
    AsyncPagerDuty,
    BadRequest,
    Change,
    ConfigurationError,
    DeliveryError,
    EventResult,
    HeldBack,
    NetworkError,
    PagerDuty,
    RateLimited,
    ResolveAlert,
    RetryPolicy,
    SendOutcome,
    ServerError,
    TriggerAlert,
    Unauthorized,
    UnexpectedResponse,
    ValidationError,
)
from alertwire.protocol import pagerduty as protocol
from alertwire.transport import AiohttpTransport, MockTransport, Request, Response
from tests.support.keys import MIXED_CASE_ROUTING_KEY as KEY
from tests.support.loopback_server import Answer, LoopbackServer, Received, serve

KINDS = ["sync", "sync-httpx", "async", "async-aiohttp", "async-httpx"]
SAFETY = 30.0  # seconds: a bound on a hang, never an expectation

server = pytest.fixture(serve)


def assert_redacted(exc: BaseException) -> None:
    """The key appears nowhere in the error or anything it was raised from."""
    seen: BaseException | None = exc
    while seen is not None:
        for text in (str(seen), repr(seen), *map(str, seen.args)):
            assert KEY not in text, f"routing key leaked in {type(seen).__name__}: {text}"
        if isinstance(seen, DeliveryError):
            assert KEY not in seen.body
        seen = seen.__cause__ or seen.__context__


@pytest.fixture(autouse=True)
def no_key_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert KEY not in record.getMessage(), f"routing key logged by {record.name}"
    assert KEY not in caplog.text


class Client:
    """One face for the five client kinds: every call is awaited, sync ones run inline."""

    def __init__(self, kind: str, url: str, **options: Any) -> None:
        self.kind = kind
        self.url = url
        self.options = options
        self.httpx: httpx.Client | httpx.AsyncClient | None = None
        self.client: PagerDuty | AsyncPagerDuty

    async def __aenter__(self) -> Client:
        options = dict(self.options)
        options.setdefault("base_url", self.url)
        if self.kind == "sync-httpx":
            self.httpx = options["http_client"] = httpx.Client()
        elif self.kind == "async-httpx":
            self.httpx = options["http_client"] = httpx.AsyncClient()
        elif self.kind == "async-aiohttp":
            options["http_client"] = AiohttpTransport()  # closed by the client, as a default is
        cls = PagerDuty if self.kind.startswith("sync") else AsyncPagerDuty
        self.client = cls(KEY, **options)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if isinstance(self.client, AsyncPagerDuty):
            await self.client.aclose()
        else:
            self.client.close()
        if isinstance(self.httpx, httpx.AsyncClient):
            await self.httpx.aclose()
        elif isinstance(self.httpx, httpx.Client):
            self.httpx.close()

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    async def send(self, event: Any) -> EventResult:
        result: EventResult = await self.call("send", event)
        return result

    async def fails(self, event: Any) -> DeliveryError:
        """Send, expecting a DeliveryError; checks it for the key on the way."""
        with pytest.raises(DeliveryError) as info:
            await self.send(event)
        assert_redacted(info.value)
        return info.value


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def pd(kind: str, server: LoopbackServer) -> AsyncIterator[Client]:
    async with Client(kind, server.url, retry=RetryPolicy(max_attempts=3)) as client:
        yield client


# --- success ----------------------------------------------------------------------------


async def test_trigger_success(pd: Client, server: LoopbackServer) -> None:
    result = await pd.call("trigger", "disk full", severity="crit", source="db-1")
    assert isinstance(result, EventResult)
    assert result.status == "success"
    assert result.message == "Event processed"
    assert result.http_status == 202
    (seen,) = server.received
    assert seen.method == "POST"
    assert seen.path == "/v2/enqueue"
    assert seen.headers["content-type"] == "application/json"
    # Every transport, the caller's own httpx client too, says who is calling.
    assert seen.headers["user-agent"] == f"alertwire/{alertwire.__version__}"
    body = seen.json()
    assert body["routing_key"] == KEY
    assert body["payload"] == {"summary": "disk full", "source": "db-1", "severity": "critical"}
    assert result.dedup_key == body["dedup_key"]
    assert result.dedup_key is not None and len(result.dedup_key) == 32


async def test_a_202_whose_status_is_not_success_is_delivered_once_with_a_warning(
    pd: Client, server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Not retried: PagerDuty's 202 already queued it, a second send would page twice."""
    protocol.forget_odd_statuses()
    odd = {"status": "accepted", "message": "Event processed", "dedup_key": "odd-1"}
    server.script(Answer(202, odd))
    result = await pd.send(TriggerAlert("disk full", dedup_key="odd-1"))
    assert (result.status, result.dedup_key, result.http_status) == ("accepted", "odd-1", 202)
    assert len(server.received) == 1
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "status 'accepted', not 'success'; counted as delivered" in warning.getMessage()


async def test_acknowledge_resolve_change(pd: Client, server: LoopbackServer) -> None:
    ack = await pd.call("acknowledge", "k-1")
    resolved = await pd.call("resolve", "k-1")
    change = await pd.call("change", "deployed v2", custom_details={"sha": "abc"})
    assert (ack.dedup_key, resolved.dedup_key, change.dedup_key) == ("k-1", "k-1", None)
    assert change.message == "Change event processed"
    paths = [r.path for r in server.received]
    assert paths == ["/v2/enqueue", "/v2/enqueue", "/v2/change/enqueue"]
    actions = [r.json().get("event_action") for r in server.received]
    assert actions == ["acknowledge", "resolve", None]


async def test_send_refuses_non_events(pd: Client, server: LoopbackServer) -> None:
    with pytest.raises(TypeError):
        await pd.send({"summary": "a dict is not an event"})
    assert server.received == []


async def test_invalid_fields_fail_before_the_network(pd: Client, server: LoopbackServer) -> None:
    with pytest.raises(ValidationError) as info:
        await pd.call("trigger", "x", severity="loud")
    assert info.value.field == "severity"
    assert server.received == []


# --- every status path ------------------------------------------------------------------

PD_400 = {
    "errors": ["'payload.source' is missing or blank"],
    "message": "Event object is invalid",
    "status": "invalid event",
}


@pytest.mark.parametrize(
    ("answer", "error", "retryable"),
    [
        (Answer(400, PD_400), BadRequest, False),
        (Answer(400, "Invalid routing key"), BadRequest, False),
        (Answer(401, "Unauthorized"), Unauthorized, False),
        (Answer(403, "Forbidden"), Unauthorized, False),
        (Answer(404, "Not Found"), UnexpectedResponse, False),
        (Answer(302, "", headers={"Location": "https://elsewhere/"}), UnexpectedResponse, False),
        (Answer(202, "Accepted, but not JSON"), UnexpectedResponse, False),
        (Answer(429, "Request Limit Exceeded"), RateLimited, True),
        (Answer(500, "oops"), ServerError, True),
        (Answer(503, "<html>unavailable</html>"), ServerError, True),
    ],
    ids=lambda v: (
        f"{v.status}-{type(v.body).__name__}"
        if isinstance(v, Answer)
        else getattr(v, "__name__", v)
    ),
)
async def test_status_paths(
    pd: Client,
    server: LoopbackServer,
    answer: Answer,
    error: type[DeliveryError],
    retryable: bool,
) -> None:
    server.script(answer, answer, answer)
    exc = await pd.fails(TriggerAlert("x"))
    assert type(exc) is error
    assert exc.retryable is retryable
    assert exc.http_status == answer.status
    # Retryable answers are retried up to max_attempts (3); the others are final at once.
    expected_attempts = 3 if retryable else 1
    assert exc.attempts == expected_attempts
    assert len(server.received) == expected_attempts
    if isinstance(answer.body, str) and answer.body:
        assert answer.body in exc.body
        assert answer.body in str(exc)


async def test_bad_request_carries_pagerduty_errors(pd: Client, server: LoopbackServer) -> None:
    server.script(Answer(400, PD_400))
    exc = await pd.fails(TriggerAlert("x"))
    assert isinstance(exc, BadRequest)
    assert exc.errors == ("'payload.source' is missing or blank",)
    assert "'payload.source' is missing or blank" in str(exc)


async def test_retries_then_success_with_the_same_body(pd: Client, server: LoopbackServer) -> None:
    server.script(Answer(503), Answer(action="reset"))
    result = await pd.call("trigger", "flaky")
    assert result.http_status == 202
    bodies = [r.body for r in server.received]
    assert len(bodies) == 3
    # The generated dedup key is fixed before the first try: a retry cannot open a second alert.
    assert bodies[0] == bodies[1] == bodies[2]
    assert result.dedup_key == server.received[0].json()["dedup_key"]


async def test_retry_set_after_construction_is_used(pd: Client, server: LoopbackServer) -> None:
    """Once the sender existed, assigning ``retry`` (or ``timeout``) changed nothing."""
    server.script(Answer(202))
    await pd.call("trigger", "first")  # an async client makes its sender now
    pd.client.retry = RetryPolicy.never()
    server.script(Answer(503))
    exc = await pd.fails(TriggerAlert("flaky", source="db1"))
    assert isinstance(exc, ServerError)
    assert exc.attempts == 1
    assert len(server.received) == 2


async def test_retry_after_respected(
    kind: str, server: LoopbackServer, caplog: pytest.LogCaptureFixture, real_retry_delays: None
) -> None:
    """The client waits what the server asked, then succeeds.

    The waits are read from the client's own retry log lines (logged with the
    very value it then sleeps), not timed: small values keep the test fast.
    """
    server.script(
        Answer(429, headers={"Retry-After": "0.05"}), Answer(429, headers={"Retry-After": "0.1"})
    )
    policy = RetryPolicy(max_attempts=5, initial_backoff=100.0, max_backoff=100.0)
    async with Client(kind, server.url, retry=policy) as pd:
        result = await pd.call("trigger", "x")
    assert result.http_status == 202
    waits = [
        r.args[3]  # type: ignore[index]
        for r in caplog.records
        if r.name == "alertwire" and "retrying in" in r.msg
    ]
    assert waits == [0.05, 0.1]
    assert len(server.received) == 3


async def test_rate_limited_gives_up_when_retry_after_exceeds_the_time_bound(
    kind: str, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, real_retry_delays: None
) -> None:
    server.script(Answer(429, headers={"Retry-After": "600"}))
    async with Client(kind, server.url, retry=RetryPolicy(max_elapsed=60.0)) as pd:
        exc = await pd.fails(TriggerAlert("x"))
    assert isinstance(exc, RateLimited)
    assert exc.retry_after == 600.0
    assert len(server.received) == 1


# --- the network failing ----------------------------------------------------------------


@pytest.mark.parametrize("action", ["reset", "close"])
async def test_no_answer_is_network_error(kind: str, server: LoopbackServer, action: str) -> None:
    server.script(Answer(action=action))  # type: ignore[arg-type]
    async with Client(kind, server.url, retry=RetryPolicy.never()) as pd:
        exc = await pd.fails(TriggerAlert("x"))
    assert isinstance(exc, NetworkError)
    assert exc.retryable
    assert exc.http_status is None
    assert "127.0.0.1" in str(exc)
    assert exc.__cause__ is not None  # mapped with ``raise ... from``


async def test_connection_refused(kind: str) -> None:
    with LoopbackServer() as dead:  # bound, then closed: nothing listens there any more
        url = dead.url
    async with Client(kind, url, retry=RetryPolicy(max_attempts=2)) as pd:
        exc = await pd.fails(TriggerAlert("x"))
    assert isinstance(exc, NetworkError)
    assert exc.attempts == 2


async def test_timeout(kind: str, server: LoopbackServer) -> None:
    server.script(Answer(delay=5.0))
    async with Client(kind, server.url, timeout=0.2, retry=RetryPolicy.never()) as pd:
        exc = await pd.fails(TriggerAlert("x"))
    assert isinstance(exc, NetworkError)
    assert exc.retryable


async def test_timeout_then_retry_succeeds(kind: str, server: LoopbackServer) -> None:
    server.script(Answer(delay=5.0))
    async with Client(kind, server.url, timeout=0.2, retry=RetryPolicy(max_attempts=2)) as pd:
        result = await pd.call("trigger", "slow")
    assert result.http_status == 202
    first, second = server.received
    assert first.body == second.body


async def test_keep_alive_reuse(pd: Client, server: LoopbackServer) -> None:
    for i in range(5):
        await pd.call("trigger", f"event {i}")
    assert len(server.received) == 5
    assert len(server.connections) == 1


async def test_server_closing_idle_keep_alive_connection(
    pd: Client, server: LoopbackServer
) -> None:
    server.script(Answer(action="answer_then_close"))
    await pd.call("trigger", "first")
    result = await pd.call("trigger", "second")
    assert result.http_status == 202
    summaries = [r.json()["payload"]["summary"] for r in server.received]
    assert summaries[0] == "first"
    assert summaries[-1] == "second"
    assert len(server.connections) == 2


async def test_reset_on_reused_connection_is_retried(pd: Client, server: LoopbackServer) -> None:
    """PagerDuty drops idle keep-alive connections: a send racing that drop must not fail."""
    server.script(Answer(), Answer(action="reset"))
    await pd.call("trigger", "first")
    result = await pd.call("trigger", "second")
    assert result.http_status == 202
    first, reset, retried = server.received
    assert reset.connection == first.connection  # the reused connection was the one reset
    assert retried.connection != first.connection
    assert reset.body == retried.body


# --- send_many --------------------------------------------------------------------------


async def test_send_many_order_and_failures_as_values(kind: str, server: LoopbackServer) -> None:
    def by_summary(received: Received) -> Answer | None:
        summary = received.json().get("payload", {}).get("summary", "")
        if summary.startswith("bad"):
            return Answer(400, PD_400)
        if summary.startswith("down"):
            return Answer(503, "maintenance")
        return None

    server.respond_with(by_summary)
    events: list[Any] = [
        TriggerAlert(
            f"bad {i}" if i % 5 == 0 else f"down {i}" if i % 7 == 0 else f"ok {i}",
            dedup_key=f"k{i}",
        )
        for i in range(30)
    ]
    events.append(ResolveAlert("k1"))
    events.append(Change("deployed"))
    async with Client(kind, server.url, retry=RetryPolicy(max_attempts=2)) as pd:
        outcomes = await pd.call("send_many", events, concurrency=4)
    assert len(outcomes) == len(events)
    for i, outcome in enumerate(outcomes[:30]):
        if i % 5 == 0:
            assert isinstance(outcome, BadRequest)
            assert_redacted(outcome)
        elif i % 7 == 0:
            assert isinstance(outcome, ServerError)
            assert outcome.attempts == 2
        else:
            assert isinstance(outcome, EventResult)
            assert outcome.dedup_key == f"k{i}"
    assert isinstance(outcomes[30], EventResult) and outcomes[30].dedup_key == "k1"
    assert isinstance(outcomes[31], EventResult) and outcomes[31].dedup_key is None
    assert len(server.connections) <= 4


async def test_send_many_empty(pd: Client, server: LoopbackServer) -> None:
    assert await pd.call("send_many", []) == []
    assert server.received == []


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [PagerDuty, AsyncPagerDuty])
async def test_from_env_key_from_variable(cls: type[PagerDuty], server: LoopbackServer) -> None:
    env = {"ALERTWIRE_ROUTING_KEY": KEY, "ALERTWIRE_PAGERDUTY_URL": server.url}
    client = cls.from_env(env, retry=RetryPolicy.never())
    try:
        assert client.base_url == server.url
        assert client.routing_key.reveal() == KEY
        result = client.trigger("from env")
        if asyncio.iscoroutine(result):
            result = await result
        assert result.http_status == 202
        assert server.received[0].json()["routing_key"] == KEY
    finally:
        closing = client.close() if isinstance(client, PagerDuty) else client.aclose()  # type: ignore[func-returns-value]
        if asyncio.iscoroutine(closing):
            await closing


@pytest.mark.parametrize("cls", [PagerDuty, AsyncPagerDuty])
def test_from_env_key_from_file(cls: type[PagerDuty], tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    client = cls.from_env({"ALERTWIRE_ROUTING_KEY_FILE": str(path), "ALERTWIRE_REGION": "EU"})
    assert client.routing_key.reveal() == KEY
    assert client.base_url == "https://events.eu.pagerduty.com"
    if isinstance(client, PagerDuty):
        client.close()


@pytest.mark.parametrize("cls", [PagerDuty, AsyncPagerDuty])
def test_from_env_missing_variable_named(cls: type[PagerDuty], tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ALERTWIRE_ROUTING_KEY"):
        cls.from_env({})
    with pytest.raises(ConfigurationError, match="cannot read"):
        cls.from_env({"ALERTWIRE_ROUTING_KEY_FILE": str(tmp_path / "absent")})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigurationError, match="empty"):
        cls.from_env({"ALERTWIRE_ROUTING_KEY_FILE": str(empty)})


@pytest.mark.parametrize("cls", [PagerDuty, AsyncPagerDuty])
def test_from_env_reads_only_the_start_of_a_key_file(cls: type[PagerDuty], tmp_path: Path) -> None:
    """A key file is read up to 64 Ki characters: read whole, a big file was held in memory and
    ``/dev/zero`` (a device, not a file) was read for ever, until memory ran out."""
    big = tmp_path / "big"
    big.write_text(KEY + "\n" + "#" * (64 * 1024))
    for path in (big, Path("/dev/zero")):
        with pytest.raises(ConfigurationError, match="larger than a key file") as info:
            cls.from_env({"ALERTWIRE_ROUTING_KEY_FILE": str(path)})
        assert KEY not in str(info.value)
    fits = tmp_path / "fits"
    fits.write_text(KEY + "\n" + "#" * (64 * 1024 - len(KEY) - 1))
    client = cls.from_env({"ALERTWIRE_ROUTING_KEY_FILE": str(fits)})
    assert client.routing_key.reveal() == KEY
    if isinstance(client, PagerDuty):
        client.close()


@pytest.mark.parametrize("cls", [PagerDuty, AsyncPagerDuty])
def test_from_env_key_file_with_a_byte_order_mark(cls: type[PagerDuty], tmp_path: Path) -> None:
    """Windows editors start a UTF-8 file with a byte order mark: read as part of the
    key, a good key was refused as "must contain only letters and digits"."""
    path = tmp_path / "notepad.txt"
    path.write_bytes(b"\xef\xbb\xbf" + KEY.encode() + b"\r\n")
    client = cls.from_env({"ALERTWIRE_ROUTING_KEY_FILE": str(path)})
    assert client.routing_key.reveal() == KEY
    if isinstance(client, PagerDuty):
        client.close()


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTWIRE_ROUTING_KEY", KEY)
    monkeypatch.delenv("ALERTWIRE_PAGERDUTY_URL", raising=False)
    monkeypatch.delenv("ALERTWIRE_REGION", raising=False)
    with PagerDuty.from_env() as client:
        assert client.base_url == "https://events.pagerduty.com"


class _Recorder:
    """A Transport that records and answers 202: checks the URL a region maps to."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def send(self, request: Request, *, timeout: float) -> Response:
        self.requests.append(request)
        return Response(202, {}, b'{"status":"success","message":"Event processed"}')

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("region", "url"),
    [("us", "https://events.pagerduty.com"), ("eu", "https://events.eu.pagerduty.com")],
)
def test_region_urls(region: str, url: str) -> None:
    transport = _Recorder()
    with PagerDuty(KEY, region=region, http_client=transport) as client:
        client.trigger("x")
        client.change("y")
    assert [r.url for r in transport.requests] == [url + "/v2/enqueue", url + "/v2/change/enqueue"]
    assert AsyncPagerDuty(KEY, region=region).base_url == url
    with pytest.raises(ConfigurationError, match="region"):
        PagerDuty(KEY, region="mars")


@pytest.mark.parametrize("cls", [PagerDuty, AsyncPagerDuty])
@pytest.mark.parametrize("url", ["http://events.pagerduty.com", "http://192.168.1.10:8080"])
def test_http_refused_off_loopback(cls: type[PagerDuty], url: str) -> None:
    with pytest.raises(ConfigurationError, match="clear text") as info:
        cls(KEY, base_url=url)
    assert_redacted(info.value)


@pytest.mark.parametrize("cls", [PagerDuty, AsyncPagerDuty])
def test_rest_token_length_key_hint(cls: type[PagerDuty]) -> None:
    token = "y_NbAkKc66ryYTWUXYEu"
    with pytest.raises(ValidationError) as info:
        cls(token)
    assert "REST API token" in str(info.value)
    assert info.value.field == "routing_key"
    assert token not in str(info.value) and token not in repr(info.value)


@pytest.mark.parametrize("cls", [PagerDuty, AsyncPagerDuty])
def test_bad_http_client_refused(cls: type[PagerDuty]) -> None:
    with pytest.raises(TypeError, match="http_client"):
        client = cls(KEY, http_client=object())
        if isinstance(client, AsyncPagerDuty):
            client._get_sender()


def _client_makers() -> list[Any]:
    """How to build one of each client class with a given timeout (nothing is sent)."""
    from alertwire import AsyncBigPanda, BigPanda
    from alertwire.rest import AsyncPagerDutyAPI, PagerDutyAPI

    token = "y_NbAkKc66ryYTWUXYEu"
    return [
        lambda timeout: PagerDuty(KEY, timeout=timeout),
        lambda timeout: AsyncPagerDuty(KEY, timeout=timeout),
        lambda timeout: BigPanda("bp-token", "app", timeout=timeout),
        lambda timeout: AsyncBigPanda("bp-token", "app", timeout=timeout),
        lambda timeout: PagerDutyAPI(token, timeout=timeout),
        lambda timeout: AsyncPagerDutyAPI(token, timeout=timeout),
    ]


@pytest.mark.parametrize(
    "timeout", [0, -1, float("nan"), float("inf"), "5", None, True, 1e300, 86400.5]
)
def test_a_timeout_that_cannot_bound_a_request_is_refused_at_construction(timeout: Any) -> None:
    """0 or less failed every send as a retryable network error (a relay or a script
    retrying what can never work); a string, NaN, infinity or a number beyond what a
    socket takes (1e300) raised TypeError, ValueError or OverflowError from deep inside
    the first send."""
    for make in _client_makers():
        with pytest.raises(ValidationError, match="timeout") as info:
            make(timeout)
        assert info.value.field == "timeout"


def test_a_timeout_in_seconds_is_kept() -> None:
    for seconds in (2, 0.25, 86400):
        clients = [make(seconds) for make in _client_makers()]
        assert [c.timeout for c in clients] == [seconds] * 6
        for sync_client in clients[0::2]:  # the async ones have no pool before a request
            sync_client.close()


@pytest.mark.parametrize("limit", [0, -1, 2.5, "10", True])
def test_an_async_clients_max_connections_is_checked_at_construction(limit: Any) -> None:
    """It raised ValueError ('limit must be at least 1') or TypeError at the first send,
    not an AlertwireError, and only once a request was under way."""
    from alertwire import AsyncBigPanda
    from alertwire.rest import AsyncPagerDutyAPI

    for make in (
        lambda: AsyncPagerDuty(KEY, max_connections=limit),
        lambda: AsyncBigPanda("bp-token", "app", max_connections=limit),
        lambda: AsyncPagerDutyAPI("y_NbAkKc66ryYTWUXYEu", max_connections=limit),
    ):
        with pytest.raises(ValidationError) as info:
            make()
        assert info.value.field == "max_connections"


def test_ctrl_c_during_send_many_makes_no_further_try(
    server: LoopbackServer, real_retry_delays: None
) -> None:
    """Ctrl-C reaches the main thread only: the threads slept out their retries (two
    minutes by default) before it took effect, and then sent again. Here each event's
    first try is answered 429 with a 20 s Retry-After, and SIGINT comes with the
    last of them: no event is tried a second time."""
    events = [TriggerAlert(f"event {i}") for i in range(4)]
    answered = itertools.count(1)

    def slow_down(received: Received) -> Answer:
        if next(answered) == len(events):
            os.kill(os.getpid(), signal.SIGINT)
        return Answer(429, {"status": "throttle"}, headers={"Retry-After": "20"})

    server.respond_with(slow_down)
    policy = RetryPolicy(max_attempts=2, max_elapsed=600)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with (
            PagerDuty(KEY, base_url=server.url, retry=policy) as client,
            pytest.raises(KeyboardInterrupt),
        ):
            client.send_many(events, concurrency=len(events))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(server.received) == len(events)


def _lifecycle_batch() -> list[Any]:
    """Two keys' trigger, acknowledge and resolve, interleaved, and a change event."""
    events: list[Any] = []
    for action in (TriggerAlert, AcknowledgeAlert, ResolveAlert):
        for key in ("k1", "k2"):
            events.append(
                TriggerAlert("x", dedup_key=key) if action is TriggerAlert else action(key)
            )
    return [*events, Change("deployed")]


def _accepted(request: Request) -> Response:
    return Response(202, {}, json.dumps({"status": "success", "message": "ok"}).encode())


def test_async_send_many_keeps_each_keys_order() -> None:
    """Side by side, a resolve could reach PagerDuty before its trigger: dropped (nothing
    open yet), it left the incident the trigger then opened open, every outcome a success."""
    in_flight: dict[str | None, int] = {}
    overlaps: list[str | None] = []
    arrived: list[tuple[str | None, str]] = []

    async def handler(request: Request) -> Response:
        body = json.loads(request.body)
        key = body.get("dedup_key")
        arrived.append((key, body.get("event_action", "change")))
        in_flight[key] = in_flight.get(key, 0) + 1
        if in_flight[key] > 1:
            overlaps.append(key)
        for _ in range(20):  # let the other workers start what they would
            await asyncio.sleep(0)
        in_flight[key] -= 1
        return _accepted(request)

    async def run() -> list[SendOutcome]:
        async with AsyncPagerDuty(KEY, http_client=MockTransport(handler)) as client:
            return await client.send_many(_lifecycle_batch(), concurrency=8)

    outcomes = asyncio.run(run())
    assert all(isinstance(o, EventResult) for o in outcomes)
    assert overlaps == []
    for key in ("k1", "k2"):
        assert [a for k, a in arrived if k == key] == ["trigger", "acknowledge", "resolve"]


def test_sync_send_many_keeps_each_keys_order() -> None:
    lock = threading.Lock()
    in_flight: dict[str | None, int] = {}
    overlaps: list[str | None] = []
    change_seen = threading.Event()

    def handler(request: Request) -> Response:
        body = json.loads(request.body)
        key = body.get("dedup_key")
        with lock:
            in_flight[key] = in_flight.get(key, 0) + 1
            if in_flight[key] > 1:
                overlaps.append(key)
        if body.get("event_action") is None:
            change_seen.set()
        elif body.get("event_action") == "trigger":
            # Held until the last event of the batch has started: side by side, every
            # other event (the resolves too) would be in flight by then.
            change_seen.wait(SAFETY)
        with lock:
            in_flight[key] -= 1
        return _accepted(request)

    arrived: list[tuple[str | None, str]] = []

    def recording(request: Request) -> Response:
        body = json.loads(request.body)
        with lock:
            arrived.append((body.get("dedup_key"), body.get("event_action", "change")))
        return handler(request)

    with PagerDuty(KEY, http_client=MockTransport(recording)) as client:
        outcomes = client.send_many(_lifecycle_batch(), concurrency=8)
    assert all(isinstance(o, EventResult) for o in outcomes)
    assert overlaps == []
    for key in ("k1", "k2"):
        assert [a for k, a in arrived if k == key] == ["trigger", "acknowledge", "resolve"]


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_send_many_holds_back_the_rest_of_a_key_after_a_failure(
    kind: str, concurrency: int
) -> None:
    """A trigger refused: its acknowledge and resolve are not sent (each a HeldBack with
    the trigger's failure), the other key goes on. Sent anyway, the resolve was dropped
    (nothing open) and re-sending the failed trigger then opened an incident that was
    over; the CLI's ``send`` already held them back."""
    sent: list[tuple[str | None, str]] = []

    def answer(request: Request) -> Response:
        body = json.loads(request.body)
        key, action = body.get("dedup_key"), body.get("event_action", "change")
        sent.append((key, action))
        if (key, action) == ("k1", "trigger"):
            return Response(400, {}, json.dumps(PD_400).encode())
        return _accepted(request)

    async def answer_async(request: Request) -> Response:
        return answer(request)

    events = _lifecycle_batch()
    if kind == "sync":
        with PagerDuty(KEY, http_client=MockTransport(answer)) as client:
            outcomes = client.send_many(events, concurrency=concurrency)
    else:

        async def run() -> list[SendOutcome]:
            async with AsyncPagerDuty(KEY, http_client=MockTransport(answer_async)) as client:
                return await client.send_many(events, concurrency=concurrency)

        outcomes = asyncio.run(run())
    assert [a for k, a in sent if k == "k1"] == ["trigger"]
    assert [a for k, a in sent if k == "k2"] == ["trigger", "acknowledge", "resolve"]
    refused = outcomes[0]
    assert isinstance(refused, BadRequest)
    for held in (outcomes[2], outcomes[4]):  # k1's acknowledge and resolve
        assert isinstance(held, HeldBack) and held.failure is refused
        assert not held.retryable and held.attempts == 0
        assert "send them again together, in order" in str(held)
    assert all(isinstance(outcomes[i], EventResult) for i in (1, 3, 5, 6))


def test_async_send_many_stops_its_other_workers_when_one_fails_outright() -> None:
    """A custom transport's own exception (not a DeliveryError) ends the call: the other
    workers went on sending the rest of the batch, unseen, after it had raised."""
    started: list[str] = []

    async def handler(request: Request) -> Response:
        summary = json.loads(request.body)["payload"]["summary"]
        started.append(summary)
        if summary == "boom":
            raise OSError("the custom transport's own failure")
        await asyncio.Event().wait()  # in flight until cancelled
        raise AssertionError("never answered")

    async def run() -> None:
        events = [TriggerAlert("slow"), TriggerAlert("boom")]
        events += [TriggerAlert(f"later {i}") for i in range(10)]
        async with AsyncPagerDuty(KEY, http_client=MockTransport(handler)) as client:
            with pytest.raises(OSError, match="own failure"):
                await client.send_many(events, concurrency=2)
            assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(run())
    assert started == ["slow", "boom"]


@pytest.mark.parametrize("concurrency", [0, -1, 2.5, "10", None, True])
def test_send_many_checks_its_concurrency_before_sending(
    concurrency: Any, server: LoopbackServer
) -> None:
    """A string or None failed with a bare comparison TypeError; 0 or less was taken
    as one at a time. Either is a ValidationError naming it, and nothing is sent."""
    events = [TriggerAlert("a"), TriggerAlert("b")]
    with PagerDuty(KEY, base_url=server.url) as sync_client:
        with pytest.raises(ValidationError) as info:
            sync_client.send_many(events, concurrency=concurrency)
        assert info.value.field == "concurrency"

    async def send_async() -> None:
        async with AsyncPagerDuty(KEY, base_url=server.url) as async_client:
            await async_client.send_many(events, concurrency=concurrency)

    with pytest.raises(ValidationError) as info:
        asyncio.run(send_async())
    assert info.value.field == "concurrency"
    assert server.received == []


@pytest.mark.parametrize("what", ["missing", "not a certificate", "a directory"])
def test_a_ca_bundle_that_cannot_be_read_is_a_configuration_error_naming_it(
    tmp_path: Path, what: str
) -> None:
    """``verify=PATH`` of a missing file raised FileNotFoundError without the path, and
    a file that holds no certificate ssl.SSLError: neither an AlertwireError."""
    from alertwire import AsyncBigPanda, BigPanda
    from alertwire.rest import AsyncPagerDutyAPI, PagerDutyAPI

    path = tmp_path / "ca.pem"
    if what == "not a certificate":
        path.write_text("not a certificate\n")
    elif what == "a directory":
        path = tmp_path
    token = "y_NbAkKc66ryYTWUXYEu"
    for make in (
        lambda: PagerDuty(KEY, verify=str(path)),
        lambda: BigPanda("bp-token", "app", verify=str(path)),
        lambda: PagerDutyAPI(token, verify=str(path)),
        lambda: AsyncPagerDuty(KEY, verify=str(path))._get_sender(),
        lambda: AsyncBigPanda("bp-token", "app", verify=str(path))._get_sender(),
        lambda: AsyncPagerDutyAPI(token, verify=str(path))._get_sender(),
    ):
        with pytest.raises(ConfigurationError, match="CA bundle") as info:
            make()
        assert str(path) in str(info.value)


@pytest.mark.parametrize("base_url", [8765, Path("/v2/enqueue"), b"http://127.0.0.1"])
def test_a_base_url_that_is_not_a_string_is_a_configuration_error_naming_it(
    base_url: object, tmp_path: Path
) -> None:
    """The constructors failed with an AttributeError ('int' object has no attribute
    'strip'); only an assignment after construction was checked.

    The relay's outbox is opened with no environment (``env={}``): given a path, it
    read ``ALERTWIRE_OUTBOX_BUSY_TIMEOUT`` from the test process's, whose error (set to
    something invalid) came before the one for the URL."""
    from alertwire import AsyncBigPanda, BigPanda
    from alertwire.outbox import Outbox
    from alertwire.relay import Relay
    from alertwire.rest import PagerDutyAPI

    outbox = Outbox.open(tmp_path / "o.sqlite3", env={})
    for make, setting in (
        (lambda: PagerDuty(KEY, base_url=base_url), "base_url"),  # type: ignore[arg-type]
        (lambda: AsyncPagerDuty(KEY, base_url=base_url), "base_url"),  # type: ignore[arg-type]
        (lambda: BigPanda("bp-token", "app", base_url=base_url), "base_url"),  # type: ignore[arg-type]
        (lambda: AsyncBigPanda("bp-token", "app", base_url=base_url), "base_url"),  # type: ignore[arg-type]
        (lambda: PagerDutyAPI("y_NbAkKc66ryYTWUXYEu", base_url=base_url), "base_url"),  # type: ignore[arg-type]
        (lambda: Relay(outbox, pagerduty_url=base_url), "pagerduty_url"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigurationError, match=f"^{setting} must be a URL string"):
            make()
    outbox.close()


@pytest.mark.parametrize("verify", [None, 0, b"ca.pem", object()])
def test_verify_of_another_type_is_a_configuration_error_when_the_client_is_made(
    verify: object, tmp_path: Path
) -> None:
    """Anything but True, False, a path or an SSLContext meant the system store,
    without a word (an async client's too, whose transport comes at its first send)."""
    from alertwire import AsyncBigPanda, BigPanda
    from alertwire.relay import Relay
    from alertwire.rest import AsyncPagerDutyAPI, PagerDutyAPI

    token = "y_NbAkKc66ryYTWUXYEu"
    for make in (
        lambda: PagerDuty(KEY, verify=verify),  # type: ignore[arg-type]
        lambda: BigPanda("bp-token", "app", verify=verify),  # type: ignore[arg-type]
        lambda: PagerDutyAPI(token, verify=verify),  # type: ignore[arg-type]
        lambda: AsyncPagerDuty(KEY, verify=verify),  # type: ignore[arg-type]
        lambda: AsyncBigPanda("bp-token", "app", verify=verify),  # type: ignore[arg-type]
        lambda: AsyncPagerDutyAPI(token, verify=verify),  # type: ignore[arg-type]
        lambda: Relay(str(tmp_path / "o.sqlite3"), verify=verify),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigurationError, match="verify must be True, False, a CA bundle"):
            make()


# --- redaction --------------------------------------------------------------------------


async def test_repr_hides_key(pd: Client) -> None:
    text = repr(pd.client)
    assert KEY not in text
    assert "CDEF" in text  # the last four, to tell keys apart
    assert KEY not in str(pd.client)


async def test_retry_logging_is_redacted(
    pd: Client, server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Answer(503, "down"), Answer(action="reset"))
    await pd.call("trigger", "x")
    retries = [r for r in caplog.records if r.name == "alertwire" and "retrying" in r.getMessage()]
    assert len(retries) == 2
    # the autouse fixture then checks every record, including the HTTP libraries' own DEBUG logs


async def test_sync_client_context_manager_closes_pool(server: LoopbackServer) -> None:
    with PagerDuty(KEY, base_url=server.url) as client:
        client.trigger("x")
    # After close a new send opens a fresh connection rather than failing.
    client.trigger("y")
    client.close()
    assert len(server.connections) == 2


@pytest.mark.parametrize("kind", ["sync-httpx", "async-httpx"])
async def test_callers_httpx_client_stays_open(kind: str, server: LoopbackServer) -> None:
    """The adapter wraps the caller's client and leaves its life to the caller."""
    async with Client(kind, server.url) as pd:
        await pd.call("trigger", "x")
        closing = pd.client.close() if isinstance(pd.client, PagerDuty) else pd.client.aclose()  # type: ignore[func-returns-value]  # None or a coroutine: awaited below if one
        if asyncio.iscoroutine(closing):
            await closing
        assert pd.httpx is not None
        assert not pd.httpx.is_closed


@pytest.mark.parametrize("status", [200, 202])
async def test_key_echoed_in_an_accepted_answer_is_redacted_in_the_result(
    pd: Client, server: LoopbackServer, status: int
) -> None:
    """Errors were scrubbed of the key, results were not: a gateway quoting the request
    in a 2xx put the key in ``EventResult.message`` and so in its repr and any log."""

    def echo(received: Received) -> Answer:
        return Answer(status, {"status": "success", "message": f"took {received.body.decode()}"})

    server.respond_with(echo)
    result = await pd.send(TriggerAlert("x"))
    assert KEY not in repr(result) and KEY not in result.message
    assert "…CDEF" in result.message  # the rest of the echo is kept


async def test_a_dedup_key_holding_the_routing_key_is_returned_as_it_is(
    pd: Client, server: LoopbackServer
) -> None:
    """Only the answer's free text is scrubbed: the dedup key names the incident, and a
    key scrubbed into ``Secret('…CDEF')-disk`` would send the acknowledge or resolve
    that follows to an incident that does not exist."""
    dedup_key = f"{KEY}-disk"
    server.respond_with(
        lambda received: Answer(202, {"status": "success", "message": "ok", "dedup_key": dedup_key})
    )
    result = await pd.send(TriggerAlert("x", dedup_key=dedup_key))
    assert result.dedup_key == dedup_key


@pytest.mark.parametrize("shape", ["text", "json"])
async def test_key_echoed_by_the_server_is_redacted(
    pd: Client, server: LoopbackServer, shape: str
) -> None:
    """A proxy or gateway that quotes the request in its error must not leak the key through us."""

    def echo(received: Received) -> Answer:
        text = received.body.decode()
        if shape == "json":
            return Answer(400, {"errors": [f"bad event {text}"], "message": text})
        return Answer(400, f"rejected: {text}")

    server.respond_with(echo)
    exc = await pd.fails(TriggerAlert("x"))  # fails() checks str, repr, args, body, chain
    assert isinstance(exc, BadRequest)
    assert "…CDEF" in exc.body  # the rest of the echo is kept, the key shown as a Secret is
    assert all(KEY not in e for e in exc.errors)


def test_a_stopped_send_does_not_announce_a_retry(caplog: pytest.LogCaptureFixture) -> None:
    """Stopped (Ctrl-C in ``send_many`` or the CLI's ``send``), a failed try is the last:
    the WARNING "retrying in X s" came all the same, then the error was raised at once."""
    tries: list[Request] = []

    def handler(request: Request) -> Response:
        tries.append(request)
        return Response(503, {}, b'{"status":"unavailable"}')

    stop = threading.Event()
    stop.set()
    with (
        caplog.at_level(logging.INFO, logger="alertwire"),
        PagerDuty(KEY, http_client=MockTransport(handler)) as client,
        pytest.raises(ServerError) as raised,
    ):
        client._send_unless(stop, TriggerAlert("disk full", source="db1"))
    assert len(tries) == 1
    assert raised.value.attempts == 1
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]
