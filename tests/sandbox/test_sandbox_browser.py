"""The dashboard in a real browser (Debian's headless Chromium).

The page is JavaScript that polls the inspection API, so only a browser can
show that alerts and incidents actually appear; the DOM dump after the
scripts ran is checked for them and for the absence of any full key or token.

``ALERTWIRE_UPDATE_SCREENSHOTS=1`` also writes the screenshot kept in the
docs (``docs/img/sandbox-dashboard.png``); otherwise it goes to a temporary
directory and is only checked to be a real PNG.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import alertwire
from alertwire.sandbox import Sandbox
from alertwire.sandbox._dashboard import SHOWN
from tests.support.sandbox_http import KEY, OTHER_KEY, TOKEN
from tests.support.services import Chromium

pytestmark = pytest.mark.browser

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "sandbox-dashboard.png"


def populate(sb: Sandbox) -> dict[str, str]:
    keys: dict[str, str] = {}
    with (
        alertwire.PagerDuty(KEY, base_url=sb.url) as pd,
        alertwire.PagerDuty(OTHER_KEY, base_url=sb.url) as other,
    ):
        keys["disk"] = (
            pd.trigger(
                "Disk 91% full on db1", source="db1.example.com", severity="warning"
            ).dedup_key
            or ""
        )
        keys["lag"] = (
            pd.trigger(
                "Replica lag 40s on db2", source="db2.example.com", severity="error"
            ).dedup_key
            or ""
        )
        keys["cpu"] = (
            other.trigger(
                "CPU 99% on web3 <script>alert(1)</script>", source="web3", severity="critical"
            ).dedup_key
            or ""
        )
        keys["cert"] = (
            other.trigger(
                "TLS certificate expires in 6 days", source="lb1", severity="info"
            ).dedup_key
            or ""
        )
        pd.acknowledge(keys["lag"])
        pd.resolve(keys["disk"])
        pd.change("Deployed api v2.4.1", source="ci")
    with alertwire.BigPanda(TOKEN, "billing-app", base_url=sb.url) as bp:
        bp.alert("critical", host="pay1", check="http", description="5xx rate 12%")
        bp.alert("ok", host="pay2", check="queue depth", description="back to normal")
    return keys


def test_dashboard_shows_alerts_and_no_full_key(
    alertwire_sandbox: Sandbox, chromium: Chromium, tmp_path: Path
) -> None:
    keys = populate(alertwire_sandbox)
    dom = chromium.dump_dom(alertwire_sandbox.url + "/", virtual_time_budget_ms=3000)
    for dedup_key in keys.values():
        assert dedup_key in dom
    for text in (
        "Disk 91% full on db1",
        "Replica lag 40s on db2",
        "Deployed api v2.4.1",
        "5xx rate 12%",
        "billing-app",
    ):
        assert text in dom
    for status in ("triggered", "acknowledged", "resolved"):
        assert f'class="badge {status}">{status}<' in dom
    assert "…WXYZ" in dom and "…QRST" in dom and "…TKN9" in dom
    for secret in (KEY, OTHER_KEY, TOKEN):
        assert secret not in dom
    # Incidents: one row per incident (number, id, title, status, service, alert count).
    incidents = alertwire_sandbox.incidents()
    assert len(incidents) == 4
    for incident in incidents:
        row = re.search(rf'<tr id="incident-{incident["id"]}">(.*?)</tr>', dom)
        assert row is not None, incident["id"]
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
        assert cells[0] == str(incident["number"])
        assert cells[1] == incident["id"]
        assert f'class="badge {incident["status"]}">{incident["status"]}<' in cells[3]
        assert cells[5] == incident["service"]
        assert cells[6] == "1"
    assert "Service …WXYZ" in dom and "Service …QRST" in dom
    assert dom.count("TLS certificate expires in 6 days") == 2  # its incident and its alert
    # The summary was inserted as text, not markup.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert '<span id="status">updated ' in dom  # the script's last refresh succeeded

    out = (
        DOCS_SCREENSHOT
        if os.environ.get("ALERTWIRE_UPDATE_SCREENSHOTS") == "1"
        else tmp_path / "dashboard.png"
    )
    chromium.screenshot(alertwire_sandbox.url + "/", out, 1280, 840, virtual_time_budget_ms=3000)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_dashboard_counts_everything_but_lists_only_the_newest(
    alertwire_sandbox: Sandbox, chromium: Chromium
) -> None:
    """It fetched every alert, incident and event each second to count and list them;
    now the counters come from /sandbox/summary and each table from ?last=."""
    total = SHOWN + 20
    with alertwire.PagerDuty(KEY, base_url=alertwire_sandbox.url) as pd:
        for n in range(total):
            pd.trigger(f"alert number {n:03d}", source="db1", severity="warning")
    dom = chromium.dump_dom(alertwire_sandbox.url + "/", virtual_time_budget_ms=3000)
    assert f'id="n-triggered">{total}<' in dom
    assert f'id="n-events">{total}<' in dom
    assert dom.count(f"the newest {SHOWN} of {total}") == 2  # the incidents and the alerts
    assert dom.count('<tr id="incident-') == SHOWN
    assert f"alert number {total - 1:03d}" in dom  # the newest are shown ...
    assert "alert number 000" not in dom  # ... the oldest are not
    assert '<span id="status">updated ' in dom


def test_dashboard_says_so_when_empty(alertwire_sandbox: Sandbox, chromium: Chromium) -> None:
    dom = chromium.dump_dom(alertwire_sandbox.url + "/", virtual_time_budget_ms=2000)
    assert dom.count('class="empty">nothing yet<') == 4
    assert 'id="n-events">0<' in dom
