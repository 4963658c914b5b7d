"""Suite-wide test setup: instant retries, skips as failures, the server fixtures.

Why skips fail under ``ALERTWIRE_REQUIRE_ALL=1`` (set by ``scripts/test.sh``)
or ``CI=true``: that script installs every program a test needs, so a skip
there can only mean a test silently did not run, which must not look green.
Run plain ``pytest`` (without the variable) to allow skips while developing.
Expected failures (``xfail``) are left alone: they are reported as such, never
as passes.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest

from alertwire import _retry

# The shared fixtures, registered for every test module here rather than
# imported by each: real servers (PostgreSQL, Alertmanager, Chromium), the
# per-store ``outbox`` fixture, the relay tests' loopback ``upstream`` and the
# real-Airflow session.
pytest_plugins = (
    "tests.support.services",
    "tests.support.outbox_backends",
    "tests.support.relay_upstream",
    "tests.support.airflow_support",
)


def _require_all() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("ALERTWIRE_REQUIRE_ALL") == "1"


def pytest_configure(config: pytest.Config) -> None:
    # From the start, so session fixtures (servers, relays in threads) never sleep on backoff.
    _retry.set_instant_retries(True)


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    """Every retry delay is zero (attempt limits still hold), so no test sleeps on backoff."""
    _retry.set_instant_retries(True)
    yield
    _retry.set_instant_retries(True)


@pytest.fixture
def real_retry_delays() -> Iterator[None]:
    """For the few tests of the delay arithmetic itself: real delays during the test."""
    _retry.set_instant_retries(False)
    try:
        yield
    finally:
        _retry.set_instant_retries(True)


def _reason(longrepr: object) -> str:
    # A skip's longrepr is (path, line, "Skipped: reason").
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if _require_all() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"{_reason(report.longrepr)}\n"
            "A skip is a failure under CI=true / ALERTWIRE_REQUIRE_ALL=1: "
            "scripts/test.sh installs everything the tests need."
        )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Module-level skips (``pytest.importorskip``, ``skip(allow_module_level=True)``) too."""
    report = yield
    if _require_all() and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"{_reason(report.longrepr)}\n"
            "A skip is a failure under CI=true / ALERTWIRE_REQUIRE_ALL=1."
        )
    return report
