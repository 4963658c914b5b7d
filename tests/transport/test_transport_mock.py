"""``alertwire.transport.MockTransport``: a handler in place of the network, for users' unit tests.

Unit tests of pure logic (no socket): every public client takes the same
mock through ``http_client=``, sync or async, and the client around it
stays real (request built, answer classified, retries as in production).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from alertwire import (
    AsyncBigPanda,
    AsyncPagerDuty,
    BigPanda,
    NetworkError,
    PagerDuty,
    RateLimited,
    RetryPolicy,
    Unauthorized,
)
from alertwire.rest import AsyncPagerDutyAPI, PagerDutyAPI
from alertwire.transport import (
    AsyncTransport,
    MockTransport,
    Request,
    Response,
    Transport,
)

KEY = "R0uT1nGkEy0123456789abcdefABCDEF"
TOKEN = "bp-token-0123456789"
APP_KEY = "app-key-1"
REST_TOKEN = "y_NbAkKc66ryYTWUXYEu"
ACCEPTED = b'{"status":"success","message":"Event processed","dedup_key":"disk-web-1"}'


def accepted(request: Request) -> Response:
    return Response(202, {"content-type": "application/json"}, ACCEPTED)


class Recorder:
    """A handler that keeps every request and answers from a list (the last one repeats)."""

    def __init__(self, *answers: Response) -> None:
        self.answers = list(answers)
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_a_mock_transport_is_a_transport_and_its_async_view_an_async_one() -> None:
    mock = MockTransport(accepted)
    assert isinstance(mock, Transport)
    assert isinstance(mock.as_async(), AsyncTransport)


def test_pagerduty_sends_through_the_mock() -> None:
    handler = Recorder(Response(202, {}, ACCEPTED))
    with PagerDuty(KEY, http_client=MockTransport(handler)) as pd:
        result = pd.trigger("disk full on web-1", source="web-1", dedup_key="disk-web-1")
    assert (result.status, result.dedup_key, result.http_status) == ("success", "disk-web-1", 202)
    [request] = handler.requests
    assert (request.method, request.url) == ("POST", "https://events.pagerduty.com/v2/enqueue")
    body = json.loads(request.body)
    assert body["routing_key"] == KEY
    assert body["payload"]["summary"] == "disk full on web-1"


def test_async_pagerduty_takes_the_same_mock_with_a_plain_handler() -> None:
    handler = Recorder(Response(202, {}, ACCEPTED))
    mock = MockTransport(handler)

    async def run() -> Any:
        async with AsyncPagerDuty(KEY, http_client=mock) as pd:
            return await pd.resolve("disk-web-1")

    result = asyncio.run(run())
    assert result.status == "success"
    assert json.loads(handler.requests[0].body)["event_action"] == "resolve"


def test_async_clients_await_an_async_handler() -> None:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        await asyncio.sleep(0)
        return Response(201, {}, b'{"status":"created"}')

    async def run() -> Any:
        async with AsyncBigPanda(TOKEN, APP_KEY, http_client=MockTransport(handler)) as bp:
            return await bp.alert("critical", host="web-1", check="cpu")

    result = asyncio.run(run())
    assert (result.status, result.http_status) == ("created", 201)
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_bigpanda_sends_through_the_mock() -> None:
    handler = Recorder(Response(201, {}, b'{"status":"created"}'))
    with BigPanda(TOKEN, APP_KEY, http_client=MockTransport(handler)) as bp:
        result = bp.alert("critical", host="web-1", check="cpu")
    assert result.http_status == 201
    [request] = handler.requests
    assert request.url == "https://api.bigpanda.io/data/v2/alerts"
    assert json.loads(request.body)["app_key"] == APP_KEY


def test_the_rest_api_session_sends_through_the_mock() -> None:
    incident = {"id": "PABC123", "status": "triggered", "title": "disk full"}
    handler = Recorder(Response(200, {}, json.dumps({"incident": incident}).encode()))
    with PagerDutyAPI(REST_TOKEN, http_client=MockTransport(handler)) as api:
        assert api.rget("/incidents/PABC123") == incident
    [request] = handler.requests
    assert (request.method, request.url) == ("GET", "https://api.pagerduty.com/incidents/PABC123")
    assert request.headers["Authorization"] == f"Token token={REST_TOKEN}"


def test_the_async_rest_api_session_sends_through_the_mock() -> None:
    handler = Recorder(Response(200, {}, b'{"incident":{"id":"PABC123"}}'))

    async def run() -> Any:
        async with AsyncPagerDutyAPI(REST_TOKEN, http_client=MockTransport(handler)) as api:
            return await api.rget("/incidents/PABC123")

    assert asyncio.run(run()) == {"id": "PABC123"}


def test_retries_call_the_handler_again_until_it_answers() -> None:
    """A NetworkError from the handler is retried like a real one; the request is the same."""
    calls: list[Request] = []

    def flaky(request: Request) -> Response:
        calls.append(request)
        if len(calls) < 3:
            raise NetworkError("no answer from events.pagerduty.com: connection reset")
        return accepted(request)

    with PagerDuty(KEY, http_client=MockTransport(flaky)) as pd:
        assert pd.trigger("x", source="h", dedup_key="disk-web-1").dedup_key == "disk-web-1"
    assert len(calls) == 3
    assert calls[0] is calls[2]


def test_header_names_from_the_handler_are_looked_up_in_any_case() -> None:
    """``{"Retry-After": "7"}`` is honoured, as a real transport's case-insensitive headers are."""
    throttled = Response(429, {"Retry-After": "7"}, b'{"status":"throttle event"}')
    mock = MockTransport(lambda r: throttled)
    pd = PagerDuty(KEY, retry=RetryPolicy(max_attempts=1), http_client=mock)
    with pd, pytest.raises(RateLimited) as caught:
        pd.trigger("x", source="h")
    assert caught.value.retry_after == 7


def test_an_error_answer_is_classified_as_from_the_service() -> None:
    refused = Response(401, {}, b"Unauthorized: bad routing key")
    pd = PagerDuty(KEY, http_client=MockTransport(lambda r: refused))
    with pd, pytest.raises(Unauthorized, match="HTTP 401"):
        pd.trigger("x", source="h")


def test_a_handler_that_returns_something_else_is_a_clear_type_error() -> None:
    def wrong(request: Request) -> Any:
        return {"status": 202}

    pd = PagerDuty(KEY, http_client=MockTransport(wrong))
    with pd, pytest.raises(TypeError, match=r"return an alertwire\.transport\.Response, got dict"):
        pd.trigger("x", source="h")


def test_an_async_handler_with_a_sync_client_says_so() -> None:
    """And leaves no "coroutine was never awaited" warning behind (warnings are errors here)."""

    async def handler(request: Request) -> Response:
        return accepted(request)

    pd = PagerDuty(KEY, http_client=MockTransport(handler))
    with pd, pytest.raises(TypeError, match=r"handler is async.*async client"):
        pd.trigger("x", source="h")


def test_a_wrong_http_client_names_what_is_accepted() -> None:
    with pytest.raises(TypeError, match=r"httpx\.Client or an alertwire\.transport\.Transport"):
        PagerDuty(KEY, http_client=object())
