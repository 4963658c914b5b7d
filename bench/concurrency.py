"""Scenario 2: concurrent sends, 32 in flight.

- ``alertwire``: ``AsyncPagerDuty.send_many(events, concurrency=32)``; the
  timed work includes building the :class:`~alertwire.TriggerAlert` models.
- ``bare aiohttp``: one ``ClientSession``, 32 workers pulling from one
  iterator, orjson bodies built by hand, dedup key read back. The limit for
  aiohttp; alertwire's goal is 0.8x of it.
- ``pagerduty (official, 32 threads)``: the official client is sync only, so
  a user who wants concurrency shares one ``EventsApiV2Client`` between 32
  threads (``ThreadPoolExecutor.map``); that is what is measured (its base
  URL set after construction, as in scenario 1).

Async contenders own an event loop for their whole life; the session (and
its connections) is opened during warm-up, outside the timed window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._harness import ROUTING_KEY, Goal, Runner, ScenarioResult, measure_rounds
from .sequential import OfficialRunner, bare_body

__all__ = ["CONCURRENCY", "run_concurrent"]

CONCURRENCY = 32
SUBJECT = "alertwire"
BARE = "bare aiohttp"
OFFICIAL = "pagerduty (official, 32 threads)"
CONTENDERS = (SUBJECT, BARE, OFFICIAL)
GOALS = [Goal(OFFICIAL, ">=", 3.0), Goal(BARE, ">=", 0.8)]


class AlertwireAsyncRunner:
    def __init__(self, base_url: str) -> None:
        import alertwire

        self._loop = asyncio.new_event_loop()
        self._client = alertwire.AsyncPagerDuty(ROUTING_KEY, base_url=base_url)

    async def _send(self, specs: Sequence[dict[str, Any]]) -> None:
        from alertwire import DeliveryError, TriggerAlert

        events = [TriggerAlert(**spec) for spec in specs]
        outcomes = await self._client.send_many(events, concurrency=CONCURRENCY)
        for outcome in outcomes:
            if isinstance(outcome, DeliveryError):
                raise outcome

    def run(self, specs: Sequence[dict[str, Any]]) -> None:
        self._loop.run_until_complete(self._send(specs))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


class BareAiohttpRunner:
    def __init__(self, base_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._url = base_url + "/v2/enqueue"
        self._session: Any = None

    async def _send(self, specs: Sequence[dict[str, Any]]) -> None:
        import aiohttp
        import orjson

        if self._session is None:
            self._session = aiohttp.ClientSession()
        session = self._session
        url = self._url
        headers = {"Content-Type": "application/json"}
        todo = iter(specs)

        async def worker() -> None:
            for spec in todo:
                async with session.post(
                    url, data=orjson.dumps(bare_body(spec)), headers=headers
                ) as answer:
                    body = await answer.read()
                    if answer.status != 202:
                        raise RuntimeError(f"bare aiohttp got HTTP {answer.status}")
                    orjson.loads(body)["dedup_key"]

        await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, len(specs)))))

    def run(self, specs: Sequence[dict[str, Any]]) -> None:
        self._loop.run_until_complete(self._send(specs))

    def close(self) -> None:
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
        self._loop.close()


class OfficialThreadsRunner:
    def __init__(self, base_url: str) -> None:
        self._runner = OfficialRunner(base_url)
        self._pool = ThreadPoolExecutor(max_workers=CONCURRENCY)

    def run(self, specs: Sequence[dict[str, Any]]) -> None:
        trigger = self._runner._client.trigger
        for _ in self._pool.map(lambda spec: trigger(**spec), specs):
            pass

    def close(self) -> None:
        self._pool.shutdown()
        self._runner.close()


def factories(base_url: str) -> dict[str, Callable[[], Runner]]:
    return {
        SUBJECT: lambda: AlertwireAsyncRunner(base_url),
        BARE: lambda: BareAiohttpRunner(base_url),
        OFFICIAL: lambda: OfficialThreadsRunner(base_url),
    }


def run_concurrent(
    base_url: str,
    specs: Sequence[dict[str, Any]],
    *,
    rounds: int,
    warmup: int = 64,
    check: Callable[[int], None] | None = None,
) -> ScenarioResult:
    result = ScenarioResult(
        key="concurrent",
        title=f"Concurrent sends, {CONCURRENCY} in flight",
        unit="events/s",
        subject=SUBJECT,
        contenders=list(CONTENDERS),
        goals=GOALS,
        notes=[
            "The official client is sync only: it is measured as one shared client"
            f" driven by {CONCURRENCY} threads (ThreadPoolExecutor.map).",
            "alertwire's timed work includes building and validating every TriggerAlert"
            " (about 20 µs each), generating its dedup key and returning one result object"
            " per event; bare aiohttp builds plain dicts and keeps nothing.",
        ],
    )
    return measure_rounds(
        result, factories(base_url), specs, rounds=rounds, warmup=warmup, check=check
    )
