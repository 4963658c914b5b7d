"""BigPanda clients against the sandbox: our requests pass the server-side rules end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alertwire import (
    AsyncBigPanda,
    BadRequest,
    BigPanda,
    BigPandaAlert,
    Unauthorized,
)
from alertwire.sandbox import Sandbox

TOKEN = "sandbox-org-token-5678"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    sandbox.reset()
    return sandbox


def test_single_and_batch_are_accepted_and_kept(sb: Sandbox) -> None:
    with BigPanda(TOKEN, "app", base_url=sb.url) as bp:
        assert bp.alert("crit", host="web-1", tags={"team": ["a", "b"]}).http_status == 201
        batch = [
            BigPandaAlert("ok", host="web-1", timestamp=1_700_000_200),
            BigPandaAlert("warning", service="api", timestamp=1_700_000_100),
        ]
        assert bp.send(batch).http_status == 201
    kept = sb.bigpanda()
    assert [(r["batch"], r["body"]["status"]) for r in kept] == [
        (False, "critical"),
        (True, "warning"),
        (True, "ok"),
    ]
    assert all(r["body"]["app_key"] == "app" for r in kept)
    assert kept[0]["body"]["team"] == ["a", "b"]
    assert TOKEN not in repr(kept)


async def test_async_client_and_faults(sb: Sandbox) -> None:
    async with AsyncBigPanda(TOKEN, "app", base_url=sb.url) as bp:
        sb.fail_next(503, 429)
        assert (await bp.alert("warn", device="sw-1")).http_status == 201
        sb.fail_next(401)
        with pytest.raises(Unauthorized, match="BigPanda rejected the token"):
            await bp.alert("ok", device="sw-1")
        sb.fail_next(400)
        with pytest.raises(BadRequest):
            await bp.alert("ok", device="sw-1")
    assert len(sb.bigpanda()) == 1
