"""What keeps a reachable ingest endpoint from being filled by strangers.

* a non-loopback listen without an allow-list is refused unless opted in;
* pending events are bounded in total and per key: 429 + ``Retry-After`` in
  each service's own error shape, counted in metrics, logged, nothing stored;
* ``Store.open_counts`` on both stores (SQLite and PostgreSQL).

Real loopback HTTP and a real SQLite outbox; the ingest server runs without a
relay, so nothing is delivered and the pending figures only grow.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from alertwire import ConfigurationError, Secret
from alertwire.cli import _ingest_options
from alertwire.ingest import IngestConfig, IngestServer, _limits, load_allowlist
from alertwire.ingest._limits import PendingBound
from alertwire.outbox import Outbox
from alertwire.outbox.machine import Delivered, Machine, route_key
from alertwire.relay import Relay
from alertwire.sandbox import Sandbox
from tests.support.sandbox_http import KEY, OTHER_KEY, TOKEN, trigger

BOUND = 30.0


def relay_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alertwire.cli.main", "relay", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# ---------------------------------------------------------------- who may listen where


def test_a_non_loopback_listen_without_an_allow_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="--allow-any-client"):
        IngestConfig(host="0.0.0.0", tls=True).check()
    with pytest.raises(ConfigurationError, match="without an allow-list"):
        Relay(Outbox(tmp_path / "o.sqlite3"), listen=IngestConfig(host="192.0.2.1", tls=True))
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY}\n")
    allow = load_allowlist(keys, routing_keys=True)
    IngestConfig(host="0.0.0.0", tls=True, allow_routing_keys=allow).check()
    IngestConfig(host="0.0.0.0", tls=True, allow_any_client=True).check()  # said knowingly
    IngestConfig(host="127.0.0.1").check()  # loopback needs neither


def test_an_allow_list_larger_than_any_real_one_is_refused_by_name(tmp_path: Path) -> None:
    """Read whole, a device given by mistake (``--allow-routing-keys /dev/zero``) was read
    for ever at start; now only up to the bound, and the file is named, not quoted."""
    from alertwire.ingest._allow import MAX_ALLOWLIST_CHARS

    huge = tmp_path / "keys.txt"
    huge.write_text((KEY + "\n") * (MAX_ALLOWLIST_CHARS // (len(KEY) + 1) + 1))
    with pytest.raises(ConfigurationError, match="is larger than an allow-list") as caught:
        load_allowlist(huge, routing_keys=True)
    assert str(huge) in str(caught.value) and KEY not in str(caught.value)


def test_the_cli_refuses_it_in_one_line_with_exit_2_naming_the_opt_in(tmp_path: Path) -> None:
    result = relay_cli("--listen", "0.0.0.0:0", "--tls", "--outbox", str(tmp_path / "o.sqlite3"))
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--allow-any-client" in lines[0] and "allow-list" in lines[0]
    assert not (tmp_path / "o.sqlite3").exists()  # refused before anything was opened


def test_allow_any_client_and_bounds_only_go_with_listen(tmp_path: Path) -> None:
    for extra in (["--allow-any-client"], ["--max-pending", "5"]):
        result = relay_cli("--outbox", str(tmp_path / "o.sqlite3"), "--drain", *extra)
        assert result.returncode == 2, result
        assert "only make sense with --listen" in result.stderr


def test_bad_bounds_are_refused_naming_the_option(tmp_path: Path) -> None:
    result = relay_cli(
        "--listen", "127.0.0.1:0", "--outbox", str(tmp_path / "o"), "--max-pending", "-1"
    )
    assert result.returncode == 2
    assert "--max-pending" in result.stderr and "0 (no bound) or more" in result.stderr
    with pytest.raises(ConfigurationError, match="max_pending_per_key must be at least 1"):
        IngestConfig(max_pending_per_key=0).check()


@pytest.mark.parametrize("value", [True, 2.5, "100"])
def test_a_pending_bound_that_is_no_whole_number_is_refused_by_name(value: object) -> None:
    """Checked for sign only, ``True`` was a bound of 1 and ``"100"`` a bare TypeError."""
    for name in ("max_pending", "max_pending_per_key"):
        with pytest.raises(ConfigurationError, match=f"^{name} must be at least 1 \\(a whole"):
            IngestConfig(**{name: value}).check()  # type: ignore[arg-type]


@pytest.mark.parametrize("port", [True, "8080", 65536, -1])
def test_a_listen_port_that_is_no_whole_number_in_range_is_refused_by_name(port: object) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^port must be a whole number between 0 and 65535"
    ):
        IngestConfig(port=port).check()  # type: ignore[arg-type]


def test_the_cli_defaults_are_the_librarys() -> None:
    assert _ingest_options.DEFAULT_MAX_PENDING == _limits.DEFAULT_MAX_PENDING
    assert _ingest_options.DEFAULT_MAX_PENDING_PER_KEY == _limits.DEFAULT_MAX_PENDING_PER_KEY
    assert IngestConfig().max_pending == _limits.DEFAULT_MAX_PENDING
    assert IngestConfig().max_pending_per_key == _limits.DEFAULT_MAX_PENDING_PER_KEY


# ---------------------------------------------------------------- the pending bound, over HTTP

Start = Callable[..., "Ingest"]


class Ingest:
    def __init__(self, server: IngestServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    async def post(self, path: str, body: Any, **headers: str) -> tuple[int, Any, Any]:
        async with self.session.post(self.server.url + path, json=body, headers=headers) as r:
            return r.status, r.headers, await r.json()

    async def metrics(self) -> str:
        async with self.session.get(self.server.url + "/metrics") as r:
            return await r.text()


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    servers: list[IngestServer] = []
    session = aiohttp.ClientSession()

    async def make(**config: Any) -> Ingest:
        server = IngestServer(
            Outbox(tmp_path / "outbox.sqlite3"), IngestConfig(host="127.0.0.1", port=0, **config)
        )
        await server.start()
        servers.append(server)
        return Ingest(server, session)

    yield make
    await session.close()
    for server in servers:
        await server.stop()


def pending(path: Path) -> int:
    with Outbox(path) as ob:
        return ob.stats().pending


async def test_a_full_key_is_answered_429_while_other_keys_still_get_in(
    start: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ingest: Ingest = await start(max_pending=5, max_pending_per_key=3)
    for n in range(3):
        assert (await ingest.post("/v2/enqueue", trigger(f"a-{n}")))[0] == 202
    caplog.set_level(logging.WARNING, logger="alertwire.ingest")
    status, headers, body = await ingest.post("/v2/enqueue", trigger("a-3"))
    assert status == 429
    assert headers["Retry-After"] == "30"
    assert body["status"] == "throttled"
    assert "too many undelivered events for this key" in body["message"]
    assert body["errors"] == [body["message"]]
    assert KEY not in str(body)
    # Another key is not held back by the full one...
    for n in range(2):
        assert (await ingest.post("/v2/enqueue", trigger(f"b-{n}", key=OTHER_KEY)))[0] == 202
    # ...until the total is reached.
    status, headers, body = await ingest.post("/v2/enqueue", trigger("b-2", key=OTHER_KEY))
    assert status == 429 and headers["Retry-After"] == "30"
    assert "too many undelivered events (at most 5)" in body["message"]
    assert pending(tmp_path / "outbox.sqlite3") == 5
    metrics = await ingest.metrics()
    assert 'alertwire_outbox_refused_total{destination="pagerduty",reason="pending_key"} 1.0' in (
        metrics
    )
    assert (
        'alertwire_outbox_refused_total{destination="pagerduty",reason="pending_total"} 1.0'
        in metrics
    )
    assert "throttled" not in metrics  # counted once, with its reason
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("reason=pending_key" in w for w in warnings), warnings
    assert any("reason=pending_total" in w for w in warnings), warnings
    assert not any(KEY in w or OTHER_KEY in w for w in warnings)


async def test_bigpanda_gets_429_in_bigpandas_shape_and_a_batch_counts_each_alert(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    ingest: Ingest = await start(max_pending=10, max_pending_per_key=4)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    batch = {
        "app_key": "app",
        "alerts": [{"status": "critical", "host": f"h{n}"} for n in range(3)],
    }
    assert (await ingest.post("/data/v2/alerts", batch, **auth))[0] == 201
    status, headers, body = await ingest.post("/data/v2/alerts", batch, **auth)  # 3 + 3 > 4
    assert status == 429 and headers["Retry-After"] == "30"
    assert body["status"] == "failure"
    assert body["errors"] == [body["message"]] and "for this key" in body["message"]
    assert TOKEN not in str(body)
    # One alert still fits under this token and app key; another app key is another key.
    single = {"app_key": "app", "status": "critical", "host": "h9"}
    assert (await ingest.post("/data/v2/alerts", single, **auth))[0] == 201
    other_app = {**batch, "app_key": "other-app"}
    assert (await ingest.post("/data/v2/alerts", other_app, **auth))[0] == 201
    assert pending(tmp_path / "outbox.sqlite3") == 7
    metrics = await ingest.metrics()
    # Counted per refused alert, by destination and reason.
    assert 'alertwire_outbox_refused_total{destination="bigpanda",reason="pending_key"} 3.0' in (
        metrics
    )


async def test_strangers_get_403_not_429_and_are_not_counted(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY}\n")
    ingest: Ingest = await start(
        max_pending=1, allow_routing_keys=load_allowlist(keys, routing_keys=True)
    )
    assert (await ingest.post("/v2/enqueue", trigger("a-0")))[0] == 202
    assert (await ingest.post("/v2/enqueue", trigger("a-1")))[0] == 429
    assert (await ingest.post("/v2/enqueue", trigger("x-0", key=OTHER_KEY)))[0] == 403


async def test_no_bound_when_both_are_none(start: Callable[..., Any], tmp_path: Path) -> None:
    ingest: Ingest = await start(max_pending=None, max_pending_per_key=None)
    for n in range(5):
        assert (await ingest.post("/v2/enqueue", trigger(f"n-{n}")))[0] == 202


def test_room_comes_back_once_events_are_delivered(tmp_path: Path) -> None:
    """A real relay process: a full key gets 429 while the upstream is down, and 202
    again once the relay has delivered (a sender retrying after Retry-After)."""
    from tests.support.ingest_process import RelayProcess
    from tests.support.sandbox_http import post

    with socket.socket() as probe:  # a port nobody listens on yet: the upstream is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    relay = RelayProcess(
        tmp_path,
        outbox=tmp_path / "outbox.sqlite3",
        pagerduty_url=f"http://127.0.0.1:{port}",
        extra=["--max-pending-per-key", "2"],
    ).start()
    try:
        url = f"{relay.url}/v2/enqueue"
        assert post(url, trigger("r-0")).status == 202
        assert post(url, trigger("r-1")).status == 202
        assert post(url, trigger("r-2")).status == 429
        with Sandbox(port=port) as upstream:  # the upstream comes back
            deadline = time.monotonic() + 60
            while (status := post(url, trigger("r-2")).status) == 429:
                assert time.monotonic() < deadline, "never accepted again"
                time.sleep(0.2)  # a sender coming back, bounded by the deadline above
            assert status == 202
            # Room came back because one of the two was delivered.
            assert {a["dedup_key"] for a in upstream.alerts(KEY)} & {"r-0", "r-1"}
    finally:
        assert relay.terminate() == 0


# ---------------------------------------------------------------- the bound's own logic


class _Counts:
    """A store stand-in for the bound's caching rules (pure logic): counts reads."""

    def __init__(self) -> None:
        self.total = 0
        self.routes: dict[str, int] = {}
        self.reads: list[bool] = []

    def open_counts(self, *, per_route: bool) -> tuple[int, dict[str, int]]:
        self.reads.append(per_route)
        return self.total, (dict(self.routes) if per_route else {})


async def _run(fn: Callable[[], Any]) -> Any:
    return fn()


async def test_per_key_figures_are_read_only_when_the_total_could_exceed_a_key_bound() -> None:
    store = _Counts()
    now = [0.0]
    bound = PendingBound(
        store,  # type: ignore[arg-type]
        max_total=100,
        max_per_key=10,
        run=_run,
        clock=lambda: now[0],
    )
    route = route_key("pagerduty.alert", Secret(KEY))
    for _ in range(9):
        assert await bound.reserve(route, 1) is None
    assert store.reads == [False]  # one cheap read of the total, then counted locally
    assert await bound.reserve(route, 1) is None  # the total reaches 10: keys may be full
    store.total, store.routes = 10, {route: 10}
    now[0] += _limits.ROUTE_REFRESH
    assert await bound.reserve(route, 1) == "pending_key"
    assert store.reads[-1] is True
    assert await bound.reserve("another-route", 1) is None
    reads = len(store.reads)
    assert await bound.reserve(route, 1) == "pending_key"  # cached: no new read
    assert len(store.reads) == reads
    # Delivered meanwhile: seen at the next refresh.
    store.total, store.routes = 3, {route: 2}
    now[0] += _limits.ROUTE_REFRESH
    assert await bound.reserve(route, 1) is None
    # A reservation whose commit failed is given back.
    bound.release(route, 1)


def test_a_store_without_open_counts_is_refused_at_start_unless_unbounded() -> None:
    class _OldStore:
        location = "somewhere"

    with pytest.raises(ConfigurationError, match=r"no open_counts.*max_pending=None"):
        PendingBound(_OldStore(), max_total=10, max_per_key=None, run=_run)  # type: ignore[arg-type]
    PendingBound(_OldStore(), max_total=None, max_per_key=None, run=_run)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the store method, both stores


def test_open_counts_in_total_and_per_route(outbox: Outbox) -> None:
    store = outbox.store
    assert store.open_counts(per_route=True) == (0, {})
    rows = [
        *(outbox.prepare_pagerduty_raw(_body(KEY, n)) for n in range(3)),
        *(outbox.prepare_pagerduty_raw(_body(OTHER_KEY, n)) for n in range(2)),
    ]
    outbox.put(rows)
    mine, other = (
        route_key("pagerduty.alert", Secret(KEY)),
        route_key("pagerduty.alert", Secret(OTHER_KEY)),
    )
    assert store.open_counts(per_route=False) == (5, {})
    assert store.open_counts(per_route=True) == (5, {mine: 3, other: 2})
    machine = Machine(store, rate_limit_per_minute=0)
    claimed, _ = machine.claim(1)
    assert store.open_counts(per_route=True) == (5, {mine: 3, other: 2})  # leased: still open
    machine.settle([Delivered(id=claimed[0].id, at=time.time(), http_status=202)])
    assert store.open_counts(per_route=True) == (4, {mine: 2, other: 2})


def _body(key: str, n: int) -> bytes:
    return (
        b'{"routing_key":"%s","event_action":"trigger","dedup_key":"d-%d",'
        b'"payload":{"summary":"s","source":"h","severity":"info"}}' % (key.encode(), n)
    )
