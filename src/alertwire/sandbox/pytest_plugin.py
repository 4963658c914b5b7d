"""pytest plugin (entry point ``alertwire``): the ``alertwire_sandbox`` fixture.

Installed with alertwire, so any test suite can write::

    def test_pages_on_failure(alertwire_sandbox):
        client = alertwire.PagerDuty(KEY, base_url=alertwire_sandbox.url)
        client.trigger("disk full", source="db1")
        assert alertwire_sandbox.alerts()[0]["status"] == "triggered"
        [incident] = alertwire_sandbox.incidents()   # the incident that trigger opened
        assert incident["title"] == "disk full" and incident["urgency"] == "high"

One sandbox server runs per test session (starting one costs an event
loop and a socket), and every test gets it freshly reset: no alerts, no
events, no incidents or services, no faults, no rate limit. The REST API
(``/incidents``, ``/services``, ``/oncalls``) is at the same ``url``.
``alertwire_sandbox_tls`` is the same over https, with ``ca_file`` set. Nothing is imported until a fixture is used, so
the plugin costs other test suites nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from . import Sandbox

__all__ = ["alertwire_sandbox", "alertwire_sandbox_tls"]


@pytest.fixture(scope="session")
def _alertwire_sandbox_server() -> Iterator[Sandbox]:
    from . import Sandbox

    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def _alertwire_sandbox_tls_server() -> Iterator[Sandbox]:
    from . import Sandbox

    with Sandbox(tls=True) as sandbox:
        yield sandbox


@pytest.fixture
def alertwire_sandbox(_alertwire_sandbox_server: Sandbox) -> Sandbox:
    """A running sandbox (plain http on loopback), reset for this test."""
    _alertwire_sandbox_server.reset()
    return _alertwire_sandbox_server


@pytest.fixture
def alertwire_sandbox_tls(_alertwire_sandbox_tls_server: Sandbox) -> Sandbox:
    """A running sandbox over https; trust ``alertwire_sandbox_tls.ca_file``."""
    _alertwire_sandbox_tls_server.reset()
    return _alertwire_sandbox_tls_server
