"""``import alertwire`` stays light: the transports' libraries load on first use only."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("aiohttp", "urllib3", "httpx")


def _imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_import_alertwire_imports_no_http_library() -> None:
    assert _imported_after("import alertwire") == set()


def test_building_events_and_clients_stays_light() -> None:
    code = (
        "import alertwire\n"
        "e = alertwire.TriggerAlert('x', severity='crit')\n"
        "c = alertwire.AsyncPagerDuty('R0uT1nGkEy0123456789abcdefABCDEF')\n"
    )
    assert _imported_after(code) == set()


def test_the_probe_can_see_a_heavy_import() -> None:
    """Guard against a probe that can never fail."""
    assert "aiohttp" in _imported_after("import aiohttp")
