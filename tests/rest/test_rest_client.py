"""PagerDutyAPI and AsyncPagerDutyAPI against the real sandbox over loopback.

The alerting loop end to end (page with the Events API, find the incident by
its dedup key, acknowledge and resolve it through the REST API), pagination
across pages, filters, bulk updates in chunks, typed errors carrying
PagerDuty's own message, retries honouring PagerDuty's headers, and tokens
that never leak.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import alertwire
from alertwire import (
    BadRequest,
    ConfigurationError,
    Forbidden,
    NetworkError,
    NotFound,
    PagerDuty,
    RateLimited,
    RetryPolicy,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    ValidationError,
)
from alertwire.rest import AsyncPagerDutyAPI, PagerDutyAPI
from alertwire.sandbox import Sandbox
from alertwire.transport import AsyncioTransport, Request, Response, Urllib3Transport
from tests.support.keys import MIXED_CASE_ROUTING_KEY as KEY_A
from tests.support.keys import REST_API_TOKEN as TOKEN
from tests.support.loopback_server import Answer, LoopbackServer, Received
from tests.support.rest_answers import BULK_IDS, refuse_a_bulk_update_of_one

KEY_B = "SeCoNdKeY0123456789abcdefABCDEFx"[:32]
ME = "oncall@example.com"


@pytest.fixture(scope="module")
def _sandbox() -> Iterator[Sandbox]:
    with Sandbox(api_token=TOKEN) as sandbox:
        yield sandbox


@pytest.fixture
def sb(_sandbox: Sandbox) -> Sandbox:
    _sandbox.reset()
    return _sandbox


@pytest.fixture
def api(sb: Sandbox) -> Iterator[PagerDutyAPI]:
    with PagerDutyAPI(TOKEN, base_url=sb.url, default_from=ME) as client:
        yield client


def _page(sb: Sandbox, key: str, summary: str, dedup_key: str | None = None) -> str:
    with PagerDuty(key, base_url=sb.url) as events:
        result = events.trigger(summary, source="db-1", severity="critical", dedup_key=dedup_key)
    assert result.dedup_key is not None
    return result.dedup_key


class Counting:
    """A real transport that also counts what it sends (method, path and query)."""

    def __init__(self) -> None:
        self.inner = Urllib3Transport()
        self.sent: list[Request] = []
        self.timeouts: list[float] = []

    def send(self, request: Request, *, timeout: float) -> Response:
        self.sent.append(request)
        self.timeouts.append(timeout)
        return self.inner.send(request, timeout=timeout)

    def close(self) -> None:
        self.inner.close()


# --- the alerting loop ---------------------------------------------------------------


def test_page_then_find_and_acknowledge_the_incident(sb: Sandbox, api: PagerDutyAPI) -> None:
    key = _page(sb, KEY_A, "disk full on db-1", dedup_key="disk-db-1")

    incident = api.incident_for_dedup_key(key)
    assert incident is not None
    assert (incident["status"], incident["incident_key"]) == ("triggered", "disk-db-1")

    updated = api.acknowledge(incident)
    assert [(i["id"], i["status"]) for i in updated] == [(incident["id"], "acknowledged")]
    assert [(i["id"], i["status"]) for i in sb.incidents()] == [(incident["id"], "acknowledged")]
    assert [a["status"] for a in sb.alerts()] == ["acknowledged"]

    assert api.resolve(incident["id"])[0]["status"] == "resolved"
    assert api.rget(incident)["status"] == "resolved"
    assert api.open_incidents() == []


def test_a_key_paged_again_after_resolve_finds_the_new_incident(
    sb: Sandbox, api: PagerDutyAPI
) -> None:
    _page(sb, KEY_A, "first", dedup_key="k1")
    first = api.incident_for_dedup_key("k1")
    assert first is not None
    api.resolve(first)
    _page(sb, KEY_A, "again", dedup_key="k1")

    second = api.incident_for_dedup_key("k1")
    assert second is not None
    assert second["id"] != first["id"]
    assert second["status"] == "triggered"
    assert api.incident_for_dedup_key("never-paged") is None


def test_filters_reach_the_server(sb: Sandbox, api: PagerDutyAPI) -> None:
    _page(sb, KEY_A, "on a")
    _page(sb, KEY_B, "on b")
    a_service = next(s for s in api.list_all("/services") if s["name"].endswith(KEY_A[-4:]))

    mine = api.open_incidents(service_ids=[a_service["id"]])
    assert [i["title"] for i in mine] == ["on a"]
    api.acknowledge(mine[0])
    assert [i["title"] for i in api.incidents(["triggered"])] == ["on b"]
    assert [i["title"] for i in api.incidents(["acknowledged"])] == ["on a"]


def test_iter_all_walks_every_page_once(sb: Sandbox) -> None:
    for n in range(7):
        _page(sb, KEY_A, f"incident {n}")
    counting = Counting()
    with PagerDutyAPI(TOKEN, base_url=sb.url, http_client=counting) as api:
        seen = [i["id"] for i in api.iter_all("/incidents", page_size=3)]
    assert sorted(seen) == sorted(i["id"] for i in sb.incidents())
    assert len(set(seen)) == 7
    assert [r.url.split("?")[1] for r in counting.sent] == [
        "limit=3&offset=0",
        "limit=3&offset=3",
        "limit=3&offset=6",
    ]


@pytest.mark.parametrize(
    ("page_size", "params", "field"),
    [
        (True, None, "page_size"),  # went out as limit=true: PagerDuty's 400, naming no argument
        (2.5, None, "page_size"),  # went out as limit=2.5
        ("2", None, "page_size"),  # a bare TypeError from comparing str and int
        (None, {"limit": True}, "params.limit"),
        (None, {"offset": -3}, "params.offset"),  # went out as offset=-3
    ],
)
def test_a_page_size_or_offset_that_is_no_count_is_refused_before_sending(
    sb: Sandbox, page_size: Any, params: dict[str, Any] | None, field: str
) -> None:
    _page(sb, KEY_A, "one incident")
    counting = Counting()
    with (
        PagerDutyAPI(TOKEN, base_url=sb.url, http_client=counting) as api,
        pytest.raises(ValidationError) as caught,
    ):
        api.list_all("/incidents", params, page_size=page_size)
    assert caught.value.field == field
    assert "whole number" in str(caught.value) or "negative" in str(caught.value)
    assert counting.sent == []


def test_bulk_updates_go_in_chunks_of_250(sb: Sandbox) -> None:
    with PagerDuty(KEY_A, base_url=sb.url) as events:
        for n in range(260):
            events.trigger(f"incident {n}", source="h", severity="warning")
    counting = Counting()
    with PagerDutyAPI(TOKEN, base_url=sb.url, default_from=ME, http_client=counting) as api:
        ids = [i["id"] for i in api.open_incidents()]
        counting.sent.clear()
        updated = api.acknowledge(*ids)
    assert len(updated) == 260
    assert [r.method for r in counting.sent] == ["PUT", "PUT"]
    assert {i["status"] for i in sb.incidents()} == {"acknowledged"}


def test_find_dict_all_and_oncalls(sb: Sandbox, api: PagerDutyAPI) -> None:
    sb.add_service("Checkout", KEY_A)
    _page(sb, KEY_A, "checkout down")
    service = api.find("services", "checkout")
    assert service is not None
    assert service["name"] == "Checkout"
    assert api.find("services", "no such service") is None
    assert service["id"] in api.dict_all("/services")
    assert api.oncalls()[0]["user"]["summary"]
    assert api.jget("/services")["services"][0]["id"] == service["id"]


# --- errors ------------------------------------------------------------------------------


def test_not_found_carries_pagerdutys_message(api: PagerDutyAPI) -> None:
    with pytest.raises(NotFound) as caught:
        api.rget("/incidents/PNOSUCH")
    assert "Not Found" in str(caught.value)
    assert caught.value.http_status == 404
    response = api.get("/incidents/PNOSUCH")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Not Found"
    with pytest.raises(NotFound):
        response.raise_for_status()


def test_a_wrong_token_is_unauthorized_and_never_shown(sb: Sandbox) -> None:
    wrong = "z" * 20
    with PagerDutyAPI(wrong, base_url=sb.url) as api, pytest.raises(Unauthorized) as caught:
        api.list_all("/incidents")
    assert not isinstance(caught.value, Forbidden)
    assert wrong not in str(caught.value)
    assert wrong not in repr(api)


def test_an_update_without_from_gets_pagerdutys_refusal(sb: Sandbox) -> None:
    _page(sb, KEY_A, "x")
    with PagerDutyAPI(TOKEN, base_url=sb.url) as api:
        incident = api.open_incidents()[0]
        with pytest.raises(BadRequest) as caught:
            api.acknowledge(incident)
    assert "From" in str(caught.value)
    assert sb.incidents()[0]["status"] == "triggered"


def test_default_from_set_after_construction_is_sent(sb: Sandbox) -> None:
    """As on the official client's session, whose ``default_from`` code sets after
    ``PagerdutyHook().get_session()`` (the hook takes no ``From``): it was ignored."""
    _page(sb, KEY_A, "x")
    with PagerDutyAPI(TOKEN, base_url=sb.url) as api:
        api.default_from = ME
        assert api.default_from == ME
        [acknowledged] = api.acknowledge(api.open_incidents()[0])
        with pytest.raises(ValidationError) as caught:
            api.default_from = "not an address"
        assert api.default_from == ME  # a refused value changes nothing
    assert caught.value.field == "default_from"
    assert acknowledged["status"] == "acknowledged"
    assert sb.incidents()[0]["status"] == "acknowledged"


async def test_async_default_from_set_after_construction_is_sent(sb: Sandbox) -> None:
    _page(sb, KEY_A, "x")
    async with AsyncPagerDutyAPI(TOKEN, base_url=sb.url) as api:
        api.default_from = ME
        [acknowledged] = await api.acknowledge(*await api.open_incidents())
    assert acknowledged["status"] == "acknowledged"


def test_timeout_and_retry_set_after_construction_are_used(sb: Sandbox) -> None:
    """``session.timeout = 30`` works on the official client's session; here the senders
    kept the values given at construction, so such an assignment silently did nothing."""
    _page(sb, KEY_A, "x")
    counting = Counting()
    with PagerDutyAPI(TOKEN, base_url=sb.url, default_from=ME, http_client=counting) as api:
        api.timeout = 2.5
        api.retry = RetryPolicy.never()
        [incident] = api.open_incidents()
        api.acknowledge(incident)  # a PUT: the other sender
        sb.fail_next_rest(503)
        with pytest.raises(ServerError) as caught:
            api.list_all("/incidents")  # retried (and answered) with the default policy
        with pytest.raises(ValidationError) as refused:
            api.timeout = 0
        assert api.timeout == 2.5
        with pytest.raises(ValidationError) as not_a_policy:
            api.retry = {500: 3}  # the official client's form
    assert caught.value.attempts == 1
    assert refused.value.field == "timeout"
    assert not_a_policy.value.field == "retry"
    assert counting.timeouts == [2.5, 2.5, 2.5]


async def test_async_retry_set_after_the_first_request_is_used(sb: Sandbox) -> None:
    async with AsyncPagerDutyAPI(TOKEN, base_url=sb.url) as api:
        assert await api.open_incidents() == []  # the sender is made now, with the default
        api.retry = RetryPolicy.never()
        sb.fail_next_rest(503)
        with pytest.raises(ServerError) as caught:
            await api.open_incidents()
    assert caught.value.attempts == 1


def test_answer_headers_are_found_in_any_case(sb: Sandbox, api: PagerDutyAPI) -> None:
    """As on the official client's (httpx's) response: they were a dict of lower-case
    names, where ``headers["Content-Type"]`` was a KeyError and ``.get`` said None."""
    sb.faults(rest_rate_limit=100)
    headers = api.get("/incidents").headers
    assert headers["Content-Type"] == "application/json"
    assert headers.get("CONTENT-TYPE") == "application/json"
    assert headers["RateLimit-Limit"] == headers["ratelimit-limit"] == "100"
    assert "Content-Length" in headers
    assert headers.get("X-No-Such-Header") is None
    assert "content-type" in list(headers)  # iterated: the names as received, lower-case


def test_base_url_set_after_construction_is_checked_as_the_constructor_does(sb: Sandbox) -> None:
    """Assigned, it skipped the check that keeps the token off http:// beyond loopback."""
    _page(sb, KEY_A, "x")
    with PagerDutyAPI(TOKEN) as api:
        with pytest.raises(ConfigurationError, match="clear text"):
            api.base_url = "http://pagerduty.example.com"
        assert api.base_url == "https://api.pagerduty.com"
        api.base_url = sb.url  # loopback: a sandbox
        assert [i["title"] for i in api.open_incidents()] == ["x"]


def test_a_token_assigned_after_construction_is_checked_held_as_a_secret_and_sent(
    sb: Sandbox,
) -> None:
    """A plain string assigned as the token showed in full in repr() and failed every
    request with an AttributeError; oauth= assigned was never sent (headers made once)."""
    _page(sb, KEY_A, "x")
    with PagerDutyAPI("wrong-token-given-first", base_url=sb.url) as api:
        api.token = TOKEN
        assert TOKEN not in repr(api)
        assert [i["title"] for i in api.open_incidents()] == ["x"]
        with pytest.raises(ValidationError) as refused:
            api.token = KEY_A  # an integration key where the REST token belongs
        api.oauth = True  # Bearer: PagerDuty (and the sandbox) then need no From
        [acknowledged] = api.acknowledge(api.open_incidents()[0])
    assert refused.value.field == "token"
    assert acknowledged["status"] == "acknowledged"


def test_an_integration_key_as_token_is_caught_before_sending(sb: Sandbox) -> None:
    with pytest.raises(ValidationError, match="integration"):
        PagerDutyAPI(KEY_A, base_url=sb.url)


# --- retries ---------------------------------------------------------------------------------


def test_a_429_is_retried_and_reports_ratelimit_reset(sb: Sandbox) -> None:
    _page(sb, KEY_A, "x")
    sb.fail_next_rest(429)
    with PagerDutyAPI(TOKEN, base_url=sb.url, retry=RetryPolicy(max_attempts=2)) as api:
        assert len(api.open_incidents()) == 1
    sb.fail_next_rest(429, retry_after=7)
    never = RetryPolicy.never()
    with (
        PagerDutyAPI(TOKEN, base_url=sb.url, retry=never) as api,
        pytest.raises(RateLimited) as caught,
    ):
        api.open_incidents()
    assert caught.value.retry_after == 7.0
    assert "Rate Limit Exceeded" in str(caught.value)


def test_ratelimit_reset_alone_sets_the_wait(sb: Sandbox) -> None:
    sb.fail_next_rest(429)
    with PagerDutyAPI(TOKEN, base_url=sb.url, retry=RetryPolicy.never()) as api:
        response = api.get("/incidents")
        assert response.status == 429
        assert "retry-after" not in response.headers
        with pytest.raises(RateLimited) as caught:
            response.raise_for_status()
    assert caught.value.retry_after == float(response.headers["ratelimit-reset"])


def test_retries_are_bounded_and_get_returns_the_last_answer(sb: Sandbox) -> None:
    sb.fail_next_rest(503, 503, 503, 503)
    with PagerDutyAPI(TOKEN, base_url=sb.url, retry=RetryPolicy(max_attempts=2)) as api:
        assert api.get("/incidents").status == 503
        with pytest.raises(ServerError) as caught:
            api.rget("/incidents")
        assert caught.value.attempts == 2
        assert "Injected fault" in str(caught.value)
        assert api.get("/incidents").status == 200


def test_post_is_not_repeated_after_a_5xx_or_a_lost_answer() -> None:
    """A POST that failed may have created its object: only a 429 (not processed) is retried.

    The sandbox serves no POST route, so a scriptable loopback server stands in.
    """
    with LoopbackServer() as server:
        server.script(
            Answer(503, {"error": {"message": "boom"}}),
            Answer(action="reset"),
            Answer(429, {"error": {"message": "Rate Limit Exceeded"}}),
            Answer(201, {"note": {"id": "PN1"}}),
        )
        with PagerDutyAPI(TOKEN, base_url=server.url, retry=RetryPolicy(max_attempts=5)) as api:
            assert api.post("/incidents/P1/notes", json={"content": "x"}).status == 503
            assert len(server.received) == 1
            with pytest.raises(NetworkError):
                api.rpost("/incidents/P1/notes", json={"content": "x"})
            assert len(server.received) == 2
            assert api.rpost("/incidents/P1/notes", json={"content": "x"}) == {"id": "PN1"}
        assert len(server.received) == 4
        assert server.received[-1].json() == {"note": {"content": "x"}}


def test_headers_on_the_wire() -> None:
    with LoopbackServer() as server:
        server.script(Answer(201, {"note": {"id": "PN1"}}))
        with PagerDutyAPI(TOKEN, base_url=server.url, default_from=ME) as api:
            api.rpost("/incidents/P1/notes", json={"content": "x"})
        with PagerDutyAPI(TOKEN, base_url=server.url, oauth=True) as api:
            api.get("/incidents")
    first, second = server.received
    assert first.headers["authorization"] == f"Token token={TOKEN}"
    assert first.headers["accept"] == "application/vnd.pagerduty+json;version=2"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["user-agent"] == f"alertwire/{alertwire.__version__}"
    assert first.headers["from"] == ME
    assert second.headers["authorization"] == f"Bearer {TOKEN}"
    assert "from" not in second.headers


def test_cursor_paths_follow_next_cursor_over_http() -> None:
    pages: dict[str, dict[str, Any]] = {
        "": {"records": [{"id": "A"}, {"id": "B"}], "next_cursor": "c2", "limit": 2},
        "c2": {"records": [{"id": "C"}], "next_cursor": None, "limit": 2},
    }

    def answer(received: Received) -> Answer:
        cursor = received.path.partition("cursor=")[2].partition("&")[0]
        return Answer(200, pages[cursor])

    with LoopbackServer() as server:
        server.respond_with(answer)
        with PagerDutyAPI(TOKEN, base_url=server.url) as api:
            ids = [r["id"] for r in api.iter_all("/users/PUSER01/audit/records", page_size=2)]
    assert ids == ["A", "B", "C"]
    assert [r.path for r in server.received] == [
        "/users/PUSER01/audit/records?limit=2",
        "/users/PUSER01/audit/records?limit=2&cursor=c2",
    ]


@pytest.mark.parametrize("cursors", [["same"], ["c1", "c2"]], ids=["repeated", "alternating"])
def test_a_server_that_hands_back_a_cursor_already_walked_is_an_error_not_a_loop(
    cursors: list[str],
) -> None:
    """A cursor is a place in the list: one given twice would walk the same pages for ever."""
    served = 0

    def answer(received: Received) -> Answer:
        nonlocal served
        served += 1
        # The server gives up after a few pages, so that a client that loops ends too.
        next_cursor = cursors[served % len(cursors)] if served < 10 else None
        return Answer(200, {"records": [{"id": f"R{served}"}], "next_cursor": next_cursor})

    with LoopbackServer() as server:
        server.respond_with(answer)
        with (
            PagerDutyAPI(TOKEN, base_url=server.url) as api,
            pytest.raises(UnexpectedResponse, match=r"next_cursor .* already"),
        ):
            api.list_all("/audit/records")
    assert len(server.received) == len(cursors) + 1


@pytest.mark.parametrize(
    "incidents", [[1], [{"status": "triggered"}], {"P1": {}}], ids=["int", "no id", "object"]
)
async def test_the_alerting_loop_says_when_an_answer_holds_no_incidents(
    incidents: Any,
) -> None:
    """Not an AttributeError or KeyError from inside the client: an UnexpectedResponse."""
    with LoopbackServer() as server:
        server.respond_with(lambda _: Answer(200, {"incidents": incidents, "more": False}))
        with PagerDutyAPI(TOKEN, base_url=server.url, default_from=ME) as api:
            for call in (
                lambda: api.incident_for_dedup_key("k"),
                api.open_incidents,
                lambda: api.incidents(["resolved"]),
                lambda: api.acknowledge("P1"),
            ):
                with pytest.raises(UnexpectedResponse, match="PagerDuty REST API answered"):
                    call()
        async with AsyncPagerDutyAPI(TOKEN, base_url=server.url, default_from=ME) as aapi:
            with pytest.raises(UnexpectedResponse):
                await aapi.incident_for_dedup_key("k")
            with pytest.raises(UnexpectedResponse):
                await aapi.open_incidents()
            with pytest.raises(UnexpectedResponse):
                await aapi.resolve("P1")


async def test_a_bulk_update_that_fails_part_way_says_how_many_were_updated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """251 incidents are two requests: when the second is refused, the first 250 have
    changed already, and the error alone would say nothing of them."""
    with LoopbackServer() as server:
        server.respond_with(refuse_a_bulk_update_of_one)
        with (
            PagerDutyAPI(TOKEN, base_url=server.url, default_from=ME) as api,
            pytest.raises(NotFound),
        ):
            api.acknowledge(*BULK_IDS)
        async with AsyncPagerDutyAPI(TOKEN, base_url=server.url, default_from=ME) as aapi:
            with pytest.raises(NotFound):
                await aapi.resolve(*BULK_IDS)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"the first 250 incidents given were set to {status} before this failure;"
        " the others were not changed"
        for status in ("acknowledged", "resolved")
    ]


class _CancelledAtTheSecondPut:
    """A real transport whose caller is cancelled (its timeout struck) as the second PUT goes."""

    def __init__(self) -> None:
        self.inner = AsyncioTransport()
        self.puts = 0

    async def send(self, request: Request, *, timeout: float) -> Response:
        if request.method == "PUT":
            self.puts += 1
            if self.puts == 2:
                raise asyncio.CancelledError
        return await self.inner.send(request, timeout=timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_bulk_update_cancelled_part_way_says_how_many_were_updated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The WARNING came only for an alertwire error: a cancelled call said nothing of the
    250 incidents it had resolved already."""
    transport = _CancelledAtTheSecondPut()
    with LoopbackServer() as server:
        server.respond_with(refuse_a_bulk_update_of_one)
        async with AsyncPagerDutyAPI(
            TOKEN, base_url=server.url, default_from=ME, http_client=transport
        ) as api:
            with pytest.raises(asyncio.CancelledError):
                await api.resolve(*BULK_IDS)
        assert [len(r.json()["incidents"]) for r in server.received] == [250]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "the first 250 incidents given were set to resolved before this failure;"
        " the others were not confirmed (the request in flight may have applied)"
    ]


def _pagerdutys_window(received: Received) -> Answer:
    """``GET /incidents`` as PagerDuty answers it: without ``date_range=all`` (or
    ``since``/``until``), only incidents of the last 30 days, whatever their status."""
    query = parse_qs(urlsplit(received.path).query)
    old = {"id": "POLD001", "status": "acknowledged", "created_at": "2026-01-02T03:04:05Z"}
    new = {"id": "PNEW001", "status": "triggered", "created_at": "2026-12-01T00:00:00Z"}
    found = [old, new] if query.get("date_range") == ["all"] else [new]
    wanted = set(query.get("statuses[]", []))
    listed = [i for i in found if not wanted or i["status"] in wanted]
    return Answer(200, {"incidents": listed, "more": False, "offset": 0, "limit": 100})


async def test_open_incidents_include_those_opened_more_than_30_days_ago() -> None:
    """An incident acknowledged 40 days ago and still open was missing from
    open_incidents() (and ``alertwire incidents list``): PagerDuty's default window."""
    with LoopbackServer() as server:
        server.respond_with(_pagerdutys_window)
        with PagerDutyAPI(TOKEN, base_url=server.url) as api:
            assert [i["id"] for i in api.open_incidents()] == ["POLD001", "PNEW001"]
            assert [i["id"] for i in api.incidents(["acknowledged"])] == ["POLD001"]
            assert api.incidents(["resolved"]) == []  # resolved: PagerDuty's window bounds it
        async with AsyncPagerDutyAPI(TOKEN, base_url=server.url) as aapi:
            assert [i["id"] for i in await aapi.open_incidents()] == ["POLD001", "PNEW001"]


def test_a_server_that_always_says_more_is_walked_to_pagerdutys_bound_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def answer(received: Received) -> Answer:
        offset = int(received.path.partition("offset=")[2].partition("&")[0])
        items = [{"id": f"P{offset + n}"} for n in range(100)]
        return Answer(200, {"incidents": items, "more": True, "offset": offset, "limit": 100})

    with LoopbackServer() as server:
        server.respond_with(answer)
        with PagerDutyAPI(TOKEN, base_url=server.url) as api:
            found = api.list_all("/incidents", {"offset": 9_800})
    assert len(found) == 200
    assert len(server.received) == 2
    assert "stopped listing /incidents after 200 results" in caplog.text
    assert caplog.records[-1].levelno == logging.WARNING


def test_oauth_tokens_act_as_their_own_user(sb: Sandbox) -> None:
    _page(sb, KEY_A, "x", dedup_key="k")
    with PagerDutyAPI(TOKEN, base_url=sb.url, oauth=True) as api:
        incident = api.incident_for_dedup_key("k")
        assert incident is not None
        assert api.acknowledge(incident)[0]["status"] == "acknowledged"


def test_tls_sandbox_with_its_ca() -> None:
    with Sandbox(tls=True) as tls:
        assert tls.ca_file is not None
        with PagerDuty(KEY_A, base_url=tls.url, verify=tls.ca_file) as events:
            events.trigger("over tls", source="h", severity="info", dedup_key="tls")
        with PagerDutyAPI(TOKEN, base_url=tls.url, verify=tls.ca_file) as api:
            assert api.base_url.startswith("https://")
            incident = api.incident_for_dedup_key("tls")
            assert incident is not None
            assert incident["title"] == "over tls"


async def test_async_from_env(sb: Sandbox) -> None:
    _page(sb, KEY_A, "from env", dedup_key="env")
    env = {
        "ALERTWIRE_PAGERDUTY_API_TOKEN": TOKEN,
        "ALERTWIRE_PAGERDUTY_API_URL": sb.url,
        "ALERTWIRE_PAGERDUTY_FROM": ME,
    }
    async with AsyncPagerDutyAPI.from_env(env) as api:
        incident = await api.incident_for_dedup_key("env")
        assert incident is not None
        assert (await api.resolve(incident))[0]["status"] == "resolved"


def test_put_is_retried_after_a_lost_answer(
    sb: Sandbox, api: PagerDutyAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Setting a status twice changes nothing, so a bulk update survives a reset."""
    _page(sb, KEY_A, "x", dedup_key="k")
    incident = api.incident_for_dedup_key("k")
    assert incident is not None
    sb.fail_next_rest("reset", 503)
    assert api.acknowledge(incident)[0]["status"] == "acknowledged"
    assert sb.incidents()[0]["status"] == "acknowledged"
    assert "failed (NetworkError)" in caplog.text
    assert "failed (ServerError)" in caplog.text


def test_no_token_in_logs_at_debug(sb: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _page(sb, KEY_A, "x", dedup_key="k")
    sb.fail_next_rest(500, 429)
    with PagerDutyAPI(TOKEN, base_url=sb.url, default_from=ME) as api:
        api.acknowledge(api.incident_for_dedup_key("k") or {})
    with PagerDutyAPI("w" * 20, base_url=sb.url) as api, pytest.raises(Unauthorized):
        api.rget("/incidents")
    assert "GET" in caplog.text
    assert TOKEN not in caplog.text
    assert "w" * 20 not in caplog.text


# --- async ---------------------------------------------------------------------------------------


async def test_async_page_find_and_acknowledge(sb: Sandbox) -> None:
    for n in range(5):
        _page(sb, KEY_A, f"n{n}", dedup_key=f"key-{n}")
    async with AsyncPagerDutyAPI(TOKEN, base_url=sb.url, default_from=ME) as api:
        incident = await api.incident_for_dedup_key("key-3")
        assert incident is not None
        assert incident["title"] == "n3"
        await api.acknowledge(incident)
        seen = [i["id"] async for i in api.iter_all("/incidents", page_size=2)]
        assert len(seen) == len(set(seen)) == 5
        assert [i["title"] for i in await api.incidents(["acknowledged"])] == ["n3"]
        with pytest.raises(NotFound):
            await api.rget("/incidents/PNOSUCH")
        assert (await api.get("/incidents/PNOSUCH")).status == 404
        assert await api.find("services", "nothing like it") is None
        service = await api.find("services", incident["service"]["summary"].upper())
        assert service is not None
        assert service["id"] == incident["service"]["id"]
        assert len(await api.oncalls()) == 1
    assert [i["status"] for i in sb.incidents() if i["incident_key"] == "key-3"] == ["acknowledged"]


async def test_async_retries_a_429(sb: Sandbox) -> None:
    _page(sb, KEY_A, "x")
    sb.fail_next_rest(429, retry_after=0)
    api: Any
    async with AsyncPagerDutyAPI(TOKEN, base_url=sb.url, retry=RetryPolicy(max_attempts=2)) as api:
        assert len(await api.open_incidents()) == 1
