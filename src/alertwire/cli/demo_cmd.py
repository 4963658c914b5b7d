"""``alertwire demo``: the whole story in two seconds, against an embedded sandbox.

Nothing leaves the machine: a sandbox starts on a free loopback port, and
alertwire's own clients walk through what on-call tooling does (trigger,
acknowledge, resolve, the incident found through the REST API, a change
event, a BigPanda alert, a 503 that is retried, a validation error),
printing each step and the sandbox's final state as a table. Exit 0 when every step behaved as expected, 1 otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from . import _exit
from ._options import Command

__all__ = ["COMMAND", "register"]

#: Demo credentials: 32 alphanumeric characters, as PagerDuty requires. Not a real key.
DEMO_ROUTING_KEY = "DEMO0routing0key0for0the0sandbox"
DEMO_BIGPANDA_TOKEN = "demo-bigpanda-token-0000"  # noqa: S105 - a demo value, not a secret
DEMO_APP_KEY = "demo-app-key"
#: The sandbox's REST API takes any token; a real key is never needed for the demo.
DEMO_REST_TOKEN = "demo-rest-api-token-0000"  # noqa: S105 - a demo value, not a secret


COMMAND = Command(
    "demo",
    help="walk through alertwire against an embedded sandbox (no account needed)",
    description="Start a local sandbox and send a trigger, acknowledge, resolve (then"
    " find the incident through the REST API), a change event, a BigPanda alert, a retried failure and an invalid event to it,"
    " printing what happens and the sandbox's final state.",
    epilog=_exit.epilog(
        _exit.OK,
        _exit.DEMO_STEP_FAILED,
        _exit.BAD_INPUT,
        say={
            _exit.OK: "every step behaved as expected",
            _exit.DEMO_STEP_FAILED: "a step did not behave as expected (a bug: please"
            " report it with the output)",
            _exit.BAD_INPUT: "bad option",
        },
    ),
)


def register(subparsers: Any, only: str | None = None) -> None:
    """Adds this module's one command (``only``, the command invoked, cannot leave it out)."""
    COMMAND.add_to(subparsers).set_defaults(handler=_demo)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class _Steps:
    def __init__(self) -> None:
        self.number = 0
        self.failures = 0

    def step(self, title: str) -> None:
        self.number += 1
        print(f"\n{self.number}. {title}")

    def say(self, text: str) -> None:
        print(f"   {text}")

    def check(self, ok: bool, text: str) -> None:
        if not ok:
            self.failures += 1
        print(f"   {'ok' if ok else 'UNEXPECTED'}: {text}")


def _demo(args: argparse.Namespace) -> int:
    import logging
    import sys

    # The clients log each retry; show those lines inside the step they belong to.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("   log: %(message)s"))
    library_logger = logging.getLogger("alertwire")
    library_logger.addHandler(handler)
    propagate, library_logger.propagate = library_logger.propagate, False
    try:
        return _walk_through()
    finally:
        library_logger.removeHandler(handler)
        library_logger.propagate = propagate


def _walk_through() -> int:
    import urllib3

    from .. import BigPanda, PagerDuty, RetryPolicy, TriggerAlert, ValidationError
    from .._json import loads
    from ..rest import PagerDutyAPI
    from ..sandbox import Sandbox

    steps = _Steps()
    quick_retry = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.1, max_elapsed=5)
    with Sandbox() as sb:
        print(f"alertwire demo: a sandbox is running at {sb.url} (dashboard at {sb.url}/)")
        pd = PagerDuty(DEMO_ROUTING_KEY, base_url=sb.url, retry=quick_retry)
        bp = BigPanda(DEMO_BIGPANDA_TOKEN, DEMO_APP_KEY, base_url=sb.url, retry=quick_retry)
        with pd, bp:

            def status_of(dedup_key: str) -> str:
                found = [a["status"] for a in sb.alerts() if a["dedup_key"] == dedup_key]
                return found[-1] if found else "(none)"

            steps.step("Trigger an alert")
            result = pd.trigger(
                "Disk 91% full on db1", source="db1.example.com", severity="warning"
            )
            key = result.dedup_key or ""
            steps.say(f"HTTP {result.http_status} {result.message!r}, dedup key {key}")
            steps.check(status_of(key) == "triggered", f"the sandbox shows it {status_of(key)}")

            steps.step("Acknowledge it")
            result = pd.acknowledge(key)
            steps.say(f"HTTP {result.http_status} {result.message!r}")
            steps.check(status_of(key) == "acknowledged", f"now {status_of(key)}")

            steps.step("Resolve it")
            result = pd.resolve(key)
            steps.say(f"HTTP {result.http_status} {result.message!r}")
            steps.check(status_of(key) == "resolved", f"now {status_of(key)}")

            steps.step("Find its incident through the REST API")
            with PagerDutyAPI(
                DEMO_REST_TOKEN, base_url=sb.url, default_from="demo@example.com"
            ) as api:
                incident = api.incident_for_dedup_key(key) or {}
                entries = api.list_all(f"/incidents/{incident.get('id', '-')}/log_entries")
                kinds = [entry["type"].removesuffix("_log_entry") for entry in entries]
                steps.say(f"incident {incident.get('id')} {incident.get('status')!r}")
                steps.say(f"its log entries: {', '.join(kinds)}")
                steps.check(
                    incident.get("status") == "resolved" and api.open_incidents() == [],
                    "the incident is resolved and nothing is left open",
                )

            steps.step("Send a change event (a deploy)")
            result = pd.change("Deployed api v2.4.1", source="ci")
            steps.say(f"HTTP {result.http_status} {result.message!r}")
            steps.check(len(sb.changes()) == 1, "the sandbox kept the change event")

            steps.step("Send a BigPanda alert")
            result = bp.alert("critical", host="web3", check="http", description="5xx rate 12%")
            steps.say(f"HTTP {result.http_status} {result.status!r}")
            steps.check(len(sb.bigpanda()) == 1, "the sandbox kept the BigPanda alert")

            steps.step("A failure that is retried: the sandbox answers the next request 503")
            sb.fail_next(503)
            result = pd.trigger(
                "Replica lag 40s on db2", source="db2.example.com", severity="error"
            )
            steps.say(f"after the retry: HTTP {result.http_status} {result.message!r}")
            steps.check(
                status_of(result.dedup_key or "") == "triggered" and not sb.faults()["fail_next"],
                "the 503 was answered, and the retry delivered it",
            )

            steps.step("A validation error, caught before anything is sent")
            try:
                TriggerAlert("Checkout is down", source="shop", severity="fatal")
            except ValidationError as exc:
                steps.check(exc.field == "severity", f"ValidationError: {exc}")
            else:
                steps.check(False, "the invalid event was accepted")
            steps.say(
                "and what PagerDuty (here the sandbox) answers a client that sends one anyway:"
            )
            raw = urllib3.request(
                "POST",
                sb.url + "/v2/enqueue",
                body=b'{"routing_key":"%s","event_action":"trigger","payload":{"summary":"x","severity":"fatal"}}'
                % DEMO_ROUTING_KEY.encode(),
                retries=False,
            )
            answer = loads(raw.data)
            steps.say(f"HTTP {raw.status} {answer['message']!r}")
            for error in answer["errors"]:
                steps.say(f"  - {error}")
            steps.check(raw.status == 400, "refused with PagerDuty's 400 body")

        print("\nThe sandbox's final state\n")
        rows = [
            [a["id"], a["routing_key"], a["dedup_key"], a["status"], a["severity"], a["summary"]]
            for a in sb.alerts()
        ]
        print(_table(["alert", "key", "dedup key", "status", "severity", "summary"], rows))
        print()
        rows = [
            [e["seq"], e["api"], e.get("event_action") or "", e.get("outcome") or ""]
            for e in sb.events()
        ]
        print(_table(["#", "api", "action", "outcome"], rows))
    if steps.failures:
        print(f"\n{steps.failures} step(s) did not behave as expected")
        return _exit.DEMO_STEP_FAILED
    print("\nEvery step behaved as expected. Run `alertwire sandbox` to keep one running.")
    return _exit.OK
