"""BigPanda and AsyncBigPanda against a real HTTP server on loopback.

Every test runs for the sync and the async client. The server
(``tests/support/loopback_server.py``, stdlib, port 0) answers from a script, so each
status path (201, 204, 400, 401, 429, 5xx) and a dropped connection can be
staged, and it records what arrived: headers, path and body.
"""

from __future__ import annotations

import inspect
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import alertwire
from alertwire import (
    AsyncBigPanda,
    BadRequest,
    BigPanda,
    BigPandaAlert,
    ConfigurationError,
    NetworkError,
    RateLimited,
    RetryPolicy,
    Secret,
    ServerError,
    Unauthorized,
    ValidationError,
)
from alertwire.models.bigpanda_rules import check_batch, check_body, error_body
from tests.support.loopback_server import Answer, LoopbackServer, Received, serve

TOKEN = "bp-org-token-0123456789abcdef"
APP_KEY = "app-key-42"
CREATED = Answer(201, body={"status": "created"})

_shared_server = pytest.fixture(scope="module")(serve)


class FreshServer:
    """One server per module (stopping one costs 0.5 s), seen fresh by each test."""

    def __init__(self, shared: LoopbackServer) -> None:
        self._shared = shared
        self._seen = len(shared.received)
        with shared._server._lock:
            shared._server.script.clear()

    @property
    def url(self) -> str:
        return self._shared.url

    def script(self, *answers: Answer) -> None:
        self._shared.script(*answers)

    @property
    def received(self) -> list[Received]:
        return self._shared.received[self._seen :]


@pytest.fixture
def server(_shared_server: LoopbackServer) -> FreshServer:
    return FreshServer(_shared_server)


Client = BigPanda | AsyncBigPanda


@pytest.fixture(params=["sync", "async"])
async def make(
    request: pytest.FixtureRequest, server: FreshServer
) -> AsyncIterator[Callable[..., Client]]:
    made: list[Client] = []

    def factory(**kwargs: Any) -> Client:
        kwargs.setdefault("base_url", server.url)
        cls = BigPanda if request.param == "sync" else AsyncBigPanda
        client = cls(TOKEN, APP_KEY, **kwargs)
        made.append(client)
        return client

    yield factory
    for client in made:
        if isinstance(client, AsyncBigPanda):
            await client.aclose()
        else:
            client.close()


async def call(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def send(client: Client, alerts: Any) -> Any:
    return await call(client.send(alerts))


def alert(ts: int | None = None, host: str = "web-1", **fields: Any) -> BigPandaAlert:
    return BigPandaAlert("critical", host=host, timestamp=ts, **fields)


async def test_single_alert(make: Callable[..., Client], server: FreshServer) -> None:
    server.script(CREATED)
    result = await send(make(), alert(1_700_000_000, check="cpu", tags={"team": ["a", "b"]}))
    assert result.http_status == 201
    assert result.ok
    assert result.dedup_key is None
    assert result.status == "created"
    (got,) = server.received
    assert got.method == "POST"
    assert got.path == "/data/v2/alerts"
    assert got.headers["authorization"] == f"Bearer {TOKEN}"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == f"alertwire/{alertwire.__version__}"
    assert got.json() == {
        "app_key": APP_KEY,
        "status": "critical",
        "host": "web-1",
        "check": "cpu",
        "timestamp": 1_700_000_000,
        "team": ["a", "b"],
    }
    assert check_body(got.json()) == []


async def test_alert_shortcut(make: Callable[..., Client], server: FreshServer) -> None:
    server.script(CREATED)
    result = await call(make().alert("WARN", service="checkout", description="slow"))
    assert result.http_status == 201
    body = server.received[0].json()
    assert body["status"] == "warning"
    assert body["service"] == "checkout"


async def test_batch_is_one_request_oldest_first(
    make: Callable[..., Client], server: FreshServer
) -> None:
    server.script(CREATED)
    alerts = [
        alert(300, host="c"),
        alert(None, host="late-1"),
        alert(100, host="a"),
        alert(200, host="b"),
        alert(100, host="a2"),
        alert(None, host="late-2"),
    ]
    result = await send(make(), alerts)
    assert result.http_status == 201
    (got,) = server.received
    body = got.json()
    assert body["app_key"] == APP_KEY
    assert [item["host"] for item in body["alerts"]] == ["a", "a2", "b", "c", "late-1", "late-2"]
    assert all("app_key" not in item for item in body["alerts"])
    assert check_batch(body) == []


async def test_batch_of_tuple_and_refusals(make: Callable[..., Client]) -> None:
    client = make()
    with pytest.raises(ValidationError) as info:
        await send(client, [])
    assert info.value.field == "alerts"
    with pytest.raises(TypeError):
        await send(client, [alert(), {"status": "ok"}])
    with pytest.raises(TypeError):
        await send(client, {"status": "ok", "host": "h"})


async def test_204_duplicate_with_empty_body_is_success(
    make: Callable[..., Client], server: FreshServer
) -> None:
    server.script(Answer(204, body=b""))
    result = await send(make(), alert())
    assert result.http_status == 204
    assert result.status == "success"
    assert len(server.received) == 1


async def test_2xx_with_non_json_body_is_success(
    make: Callable[..., Client], server: FreshServer
) -> None:
    server.script(Answer(200, body="accepted"))
    result = await send(make(), alert())
    assert result.http_status == 200


async def test_400_is_not_retried_and_keeps_the_service_text(
    make: Callable[..., Client], server: FreshServer
) -> None:
    problems = check_body({"app_key": APP_KEY, "status": "nope"})
    server.script(Answer(400, body=error_body(problems)))
    with pytest.raises(BadRequest) as info:
        await send(make(), alert())
    err = info.value
    assert err.http_status == 400
    assert not err.retryable
    assert err.errors == tuple(p.wire_text for p in problems)
    assert "'status' is invalid" in str(err)
    assert len(server.received) == 1


async def test_400_plain_text_body(make: Callable[..., Client], server: FreshServer) -> None:
    server.script(Answer(400, body="bad alert payload"))
    with pytest.raises(BadRequest, match="bad alert payload"):
        await send(make(), alert())


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_token(
    make: Callable[..., Client], server: FreshServer, status: int
) -> None:
    # A server that echoes the credential back must not get it into our error.
    server.script(Answer(status, body=f'{{"error":"invalid token Bearer {TOKEN}"}}'))
    with pytest.raises(Unauthorized) as info:
        await send(make(), alert())
    err = info.value
    assert str(err).startswith(f"BigPanda rejected the token (HTTP {status})")
    assert not err.retryable
    assert TOKEN not in str(err)
    assert TOKEN not in err.body
    assert TOKEN not in repr(err)
    assert "…cdef" in err.body
    assert len(server.received) == 1


async def test_token_echoed_in_an_accepted_answer_is_redacted_in_the_result(
    make: Callable[..., Client], server: FreshServer
) -> None:
    server.script(Answer(201, body=f'{{"status":"created","message":"Bearer {TOKEN}"}}'))
    result = await send(make(), alert())
    assert TOKEN not in repr(result) and TOKEN not in result.message
    assert result.message == "Bearer Secret('…cdef')"


async def test_429_retry_after_then_success(
    make: Callable[..., Client], server: FreshServer
) -> None:
    server.script(Answer(429, body="slow down", headers={"Retry-After": "7"}), CREATED)
    result = await send(make(), alert())
    assert result.http_status == 201
    assert len(server.received) == 2
    assert server.received[0].body == server.received[1].body


async def test_429_carries_retry_after(make: Callable[..., Client], server: FreshServer) -> None:
    server.script(Answer(429, body="", headers={"Retry-After": "7"}))
    with pytest.raises(RateLimited) as info:
        await send(make(retry=RetryPolicy.never()), alert())
    assert info.value.retry_after == 7.0
    assert info.value.retryable


async def test_5xx_retried_then_success(make: Callable[..., Client], server: FreshServer) -> None:
    server.script(Answer(503, body="busy"), Answer(500, body="oops"), CREATED)
    result = await send(make(), [alert(2), alert(1)])
    assert result.http_status == 201
    assert len(server.received) == 3
    assert len({r.body for r in server.received}) == 1


async def test_5xx_gives_up_after_max_attempts(
    make: Callable[..., Client], server: FreshServer
) -> None:
    server.script(*[Answer(502, body="bad gateway")] * 3)
    with pytest.raises(ServerError) as info:
        await send(make(retry=RetryPolicy(max_attempts=3)), alert())
    assert info.value.attempts == 3
    assert info.value.http_status == 502
    assert len(server.received) == 3


async def test_connection_reset_is_retried(
    make: Callable[..., Client], server: FreshServer
) -> None:
    server.script(Answer(action="reset"), CREATED)
    result = await send(make(), alert())
    assert result.http_status == 201
    assert len(server.received) == 2


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


async def test_network_error(make: Callable[..., Client], closed_port: int) -> None:
    client = make(base_url=f"http://127.0.0.1:{closed_port}", retry=RetryPolicy(max_attempts=2))
    with pytest.raises(NetworkError) as info:
        await send(client, alert())
    assert info.value.retryable
    assert info.value.attempts == 2
    assert TOKEN not in str(info.value)


async def test_token_never_in_repr_errors_or_debug_logs(
    make: Callable[..., Client], server: FreshServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Answer(500, body="x"), CREATED, Answer(401, body="no"))
    with caplog.at_level(logging.DEBUG):
        client = make()
        assert TOKEN not in repr(client)
        assert TOKEN not in str(client.token)
        await send(client, alert())
        with pytest.raises(Unauthorized) as info:
            await send(client, alert())
    assert caplog.records, "DEBUG logging captured nothing: the check below would be vacuous"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    assert TOKEN not in caplog.text
    assert TOKEN not in str(info.value)


def test_bad_token_errors_never_quote_it() -> None:
    for token in ["", "   ", "has space-secret-value", "line\nbreak-secret-value"]:
        with pytest.raises(ValidationError) as info:
            BigPanda(token, APP_KEY)
        assert info.value.field == "token"
        if token.strip():
            assert "secret-value" not in str(info.value)


def test_settings() -> None:
    assert BigPanda(TOKEN, APP_KEY).base_url == "https://api.bigpanda.io"
    assert BigPanda(TOKEN, APP_KEY, region="eu").base_url == "https://eu-api.bigpanda.io"
    assert AsyncBigPanda(Secret(TOKEN), APP_KEY, region="EU").base_url == (
        "https://eu-api.bigpanda.io"
    )
    with pytest.raises(ConfigurationError, match="region"):
        BigPanda(TOKEN, APP_KEY, region="apac")
    with pytest.raises(ConfigurationError, match="clear text"):
        BigPanda(TOKEN, APP_KEY, base_url="http://bigpanda.example.com")
    with pytest.raises(ValidationError) as info:
        BigPanda(TOKEN, " ")
    assert info.value.field == "app_key"


def test_from_env(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = {
        "ALERTWIRE_BIGPANDA_TOKEN_FILE": str(token_file),
        "ALERTWIRE_BIGPANDA_APP_KEY": APP_KEY,
        "ALERTWIRE_REGION": "eu",
    }
    with BigPanda.from_env(env) as client:
        assert client.token.reveal() == TOKEN
        assert client.app_key == APP_KEY
        assert client.base_url == "https://eu-api.bigpanda.io"
    env2 = {
        "ALERTWIRE_BIGPANDA_TOKEN": "other-token-1234",
        "ALERTWIRE_BIGPANDA_APP_KEY": APP_KEY,
        "ALERTWIRE_BIGPANDA_URL": "http://127.0.0.1:9/",
    }
    client2 = AsyncBigPanda.from_env(env2, app_key="override")
    assert client2.token.reveal() == "other-token-1234"
    assert client2.app_key == "override"
    assert client2.base_url == "http://127.0.0.1:9"
    with pytest.raises(ConfigurationError, match="ALERTWIRE_BIGPANDA_APP_KEY"):
        BigPanda.from_env({"ALERTWIRE_BIGPANDA_TOKEN": TOKEN})
    with pytest.raises(ConfigurationError, match="ALERTWIRE_BIGPANDA_TOKEN"):
        BigPanda.from_env({"ALERTWIRE_BIGPANDA_APP_KEY": APP_KEY})


async def test_httpx_client_is_accepted(server: FreshServer) -> None:
    import httpx

    server.script(CREATED, CREATED)
    with (
        httpx.Client() as http,
        BigPanda(TOKEN, APP_KEY, base_url=server.url, http_client=http) as bp,
    ):
        assert bp.send(alert()).http_status == 201
    async with (
        httpx.AsyncClient() as ahttp,
        AsyncBigPanda(TOKEN, APP_KEY, base_url=server.url, http_client=ahttp) as abp,
    ):
        assert (await abp.send(alert())).http_status == 201
    assert [r.headers["authorization"] for r in server.received] == [f"Bearer {TOKEN}"] * 2
