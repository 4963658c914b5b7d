"""A retryable failure that is not retried says which bound stopped it.

A 429 whose ``Retry-After`` is longer than the retry budget is never waited
for: the message must say so, with both numbers, instead of a bare
"retries exhausted" that sends the reader looking for retries that never
happened. Run against the real sandbox over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from alertwire import (
    AsyncPagerDuty,
    BigPanda,
    BigPandaAlert,
    PagerDuty,
    RateLimited,
    RetryPolicy,
    TriggerAlert,
)
from alertwire.rest import PagerDutyAPI
from alertwire.sandbox import Sandbox

ALERTWIRE = str(Path(sys.executable).with_name("alertwire"))
KEY = "0123456789abcdef0123456789abcdef"


def run(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(ALERTWIRE_ROUTING_KEY=KEY, ALERTWIRE_PAGERDUTY_URL=sandbox.url)
    return subprocess.run(
        [ALERTWIRE, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.usefixtures("real_retry_delays")  # the Retry-After is not waited for: no sleep
def test_library_error_names_the_retry_after_and_the_budget(alertwire_sandbox: Sandbox) -> None:
    alertwire_sandbox.fail_next(429, retry_after=600)
    client = PagerDuty(KEY, base_url=alertwire_sandbox.url, retry=RetryPolicy(max_elapsed=60))
    with client, pytest.raises(RateLimited) as caught:
        client.send(TriggerAlert("disk full", source="db1"))
    assert caught.value.attempts == 1
    gave_up = caught.value.gave_up
    assert gave_up is not None and gave_up.retry_after == 600 and gave_up.max_elapsed == 60
    assert gave_up.describe() == (
        "the service asked to wait 600 s (Retry-After), longer than the retry budget"
        " of 60 s (max_elapsed); not retried"
    )


WAITED_TOO_LONG = (
    "the service asked to wait 600 s (Retry-After), longer than the retry budget"
    " of 60 s (max_elapsed); not retried"
)
BP_TOKEN = "bigpanda-retry-budget-token-0001"
REST_TOKEN = "rest-retry-budget-token-0002"
BUDGET = RetryPolicy(max_elapsed=60)


def _events(sb: Sandbox) -> None:
    with PagerDuty(KEY, base_url=sb.url, retry=BUDGET) as client:
        client.send(TriggerAlert("disk full", source="db1"))


def _async_events(sb: Sandbox) -> None:
    async def send() -> None:
        async with AsyncPagerDuty(KEY, base_url=sb.url, retry=BUDGET) as client:
            await client.send(TriggerAlert("disk full", source="db1"))

    asyncio.run(send())


def _bigpanda(sb: Sandbox) -> None:
    with BigPanda(BP_TOKEN, "app", base_url=sb.url, retry=BUDGET) as client:
        client.send(BigPandaAlert("critical", host="db1"))


def _rest(sb: Sandbox) -> None:
    with PagerDutyAPI(REST_TOKEN, base_url=sb.url, retry=BUDGET) as api:
        api.incidents()


@pytest.mark.usefixtures("real_retry_delays")
@pytest.mark.parametrize(
    ("fail", "send"),
    [
        ("fail_next", _events),
        ("fail_next", _async_events),
        ("fail_next", _bigpanda),
        ("fail_next_rest", _rest),
    ],
)
def test_every_clients_error_text_says_why_it_was_not_retried(
    alertwire_sandbox: Sandbox, fail: str, send: Callable[[Sandbox], None]
) -> None:
    """str(error) is what a script's log or an Airflow task's traceback shows: the reason too."""
    getattr(alertwire_sandbox, fail)(429, retry_after=600)
    with pytest.raises(RateLimited) as caught:
        send(alertwire_sandbox)
    text = str(caught.value)
    assert text.endswith(f"; {WAITED_TOO_LONG}"), text
    assert "HTTP 429" in text
    for secret in (KEY, BP_TOKEN, REST_TOKEN):
        assert secret not in text


@pytest.mark.parametrize(("options", "budget"), [((), "120"), (("--max-time", "60"), "60")])
def test_cli_names_the_budget_and_its_option_when_retry_after_exceeds_it(
    alertwire_sandbox: Sandbox, options: tuple[str, ...], budget: str
) -> None:
    alertwire_sandbox.fail_next(429, retry_after=600)
    done = run(alertwire_sandbox, "trigger", "disk full", *options)
    assert done.returncode == 4, done
    [line] = done.stderr.splitlines()
    assert line.startswith(
        "alertwire: error: the service asked to wait 600 s (Retry-After), longer than the retry"
        f" budget of {budget} s (--max-time); not retried: PagerDuty rate-limited the event"
        " (HTTP 429)"
    ), line
    assert "retries exhausted" not in line
    assert len(alertwire_sandbox.events()) == 0


def test_cli_names_the_attempt_limit_when_that_stopped_it(alertwire_sandbox: Sandbox) -> None:
    alertwire_sandbox.fail_next(503, 503)
    done = run(
        alertwire_sandbox, "trigger", "disk full", "--max-attempts", "2", "--max-backoff", "0"
    )
    assert done.returncode == 4, done
    assert done.stderr.splitlines()[-1].startswith(
        "alertwire: error: retries exhausted after 2 attempts (the limit, --max-attempts 2): PagerDuty"
    )
