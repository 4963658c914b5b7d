"""Scenario 1: sequential sends over one keep-alive connection.

Contenders, each sending the same events one after another:

- ``alertwire``: ``PagerDuty.trigger`` (builds and validates a
  :class:`~alertwire.TriggerAlert`, generates a dedup key, sends on its
  default transport: pooled ``http.client``, head and body in one write).
- ``pagerduty (official)``: ``pagerduty.EventsApiV2Client.trigger`` (7.2.0,
  httpx2 underneath). Its ``url`` setter refuses ``http://``, so the bench
  sets the private ``_url`` after construction to reach the local endpoint;
  nothing else is changed.
- ``pdpyras``: ``pdpyras.EventsAPISession.trigger`` (requests underneath;
  deprecated, still widely installed). It accepts an http:// base URL.
- ``bare urllib3``: ``HTTPConnectionPool.urlopen`` with retries off and
  orjson, building the same JSON by hand and reading the dedup key back: no
  validation, no retry policy, no error mapping: what a caller gets from
  urllib3 with none of alertwire's checks. alertwire's goal is at least 1.0x
  of it. alertwire does more per event (the model, the key, the retry
  bookkeeping) and wins only through its leaner transport; the bare loop is
  left as a user of urllib3 would write it (urllib3's own send path, two
  writes per request).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ._harness import ROUTING_KEY, Goal, Runner, ScenarioResult, measure_rounds

__all__ = ["CONTENDERS", "run_sequential"]

SUBJECT = "alertwire"
OFFICIAL = "pagerduty (official)"
PDPYRAS = "pdpyras"
BARE = "bare urllib3"
CONTENDERS = (SUBJECT, OFFICIAL, PDPYRAS, BARE)
GOALS = [Goal(OFFICIAL, ">=", 2.0), Goal(BARE, ">=", 1.0)]


class AlertwireRunner:
    def __init__(self, base_url: str) -> None:
        import alertwire

        self._client = alertwire.PagerDuty(ROUTING_KEY, base_url=base_url)

    def run(self, specs: Sequence[dict[str, Any]]) -> None:
        trigger = self._client.trigger
        for spec in specs:
            trigger(**spec)

    def close(self) -> None:
        self._client.close()


class OfficialRunner:
    def __init__(self, base_url: str) -> None:
        import pagerduty

        self._client = pagerduty.EventsApiV2Client(ROUTING_KEY)
        # The url setter insists on https://; the local endpoint is plain http.
        self._client._url = base_url

    def run(self, specs: Sequence[dict[str, Any]]) -> None:
        trigger = self._client.trigger
        for spec in specs:
            trigger(**spec)

    def close(self) -> None:
        self._client.close()


def _import_pdpyras() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "pdpyras is deprecated"
        import pdpyras  # type: ignore[import-untyped]
    return pdpyras


class PdpyrasRunner:
    def __init__(self, base_url: str) -> None:
        self._session = _import_pdpyras().EventsAPISession(ROUTING_KEY)
        self._session.url = base_url

    def run(self, specs: Sequence[dict[str, Any]]) -> None:
        trigger = self._session.trigger
        for spec in specs:
            trigger(**spec)

    def close(self) -> None:
        self._session.close()


def bare_body(spec: dict[str, Any]) -> dict[str, Any]:
    """The Events API body for a spec, built by hand (no validation)."""
    return {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "payload": {
            "summary": spec["summary"],
            "source": spec["source"],
            "severity": spec["severity"],
            "custom_details": spec["custom_details"],
        },
    }


class BareUrllib3Runner:
    def __init__(self, base_url: str) -> None:
        from urllib.parse import urlsplit

        import urllib3

        parts = urlsplit(base_url)
        self._pool = urllib3.HTTPConnectionPool(
            parts.hostname or "127.0.0.1", parts.port, maxsize=1, retries=False
        )

    def run(self, specs: Sequence[dict[str, Any]]) -> None:
        import orjson

        urlopen = self._pool.urlopen
        dumps = orjson.dumps
        loads = orjson.loads
        headers = {"Content-Type": "application/json"}
        for spec in specs:
            answer = urlopen(
                "POST", "/v2/enqueue", body=dumps(bare_body(spec)), headers=headers, retries=False
            )
            if answer.status != 202:
                raise RuntimeError(f"bare urllib3 got HTTP {answer.status}")
            loads(answer.data)["dedup_key"]

    def close(self) -> None:
        self._pool.close()


def factories(base_url: str) -> dict[str, Callable[[], Runner]]:
    return {
        SUBJECT: lambda: AlertwireRunner(base_url),
        OFFICIAL: lambda: OfficialRunner(base_url),
        PDPYRAS: lambda: PdpyrasRunner(base_url),
        BARE: lambda: BareUrllib3Runner(base_url),
    }


def run_sequential(
    base_url: str,
    specs: Sequence[dict[str, Any]],
    *,
    rounds: int,
    warmup: int = 20,
    check: Callable[[int], None] | None = None,
) -> ScenarioResult:
    result = ScenarioResult(
        key="sequential",
        title="Sequential sends, one connection",
        unit="events/s",
        subject=SUBJECT,
        contenders=list(CONTENDERS),
        goals=GOALS,
        notes=[
            "The official client refuses http:// base URLs; the bench sets its private"
            " `_url` after construction to reach the local endpoint.",
            "alertwire's figure includes building and validating a TriggerAlert and"
            " generating a dedup key for every event.",
            "alertwire sends on its default transport (StdlibTransport: HTTP/1.1 written and"
            " read on pooled sockets, head and body in one write); the bare loop uses urllib3's own send path (two writes per request),"
            " as a user of urllib3 would.",
        ],
    )
    return measure_rounds(
        result, factories(base_url), specs, rounds=rounds, warmup=warmup, check=check
    )
