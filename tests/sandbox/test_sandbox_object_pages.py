"""Every ``html_url`` the sandbox's REST API gives leads to a page showing that object.

They pointed at anchors on the dashboard (``/#service-P123ABC``) that no
element had: the dashboard lists no services, users or escalation policies,
and only the newest incidents. Each URL is followed here over real HTTP (and
one in headless Chromium), as a person clicking it from a client's output would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from alertwire.sandbox import Sandbox
from alertwire.sandbox._dashboard import SHOWN
from tests.support.sandbox_http import KEY, OTHER_KEY, action, post, request, trigger
from tests.support.services import Chromium

HEADERS = {"Authorization": "Token token=u+sandbox-page-token-4R7Z", "From": "ops@example.com"}


def send(sb: Sandbox, body: dict[str, Any]) -> None:
    answer = post(sb.url + "/v2/enqueue", body)
    assert answer.status == 202, answer.body


def rest(sb: Sandbox, path: str) -> Any:
    answer = request("GET", sb.url + path, headers=HEADERS)
    assert answer.status == 200, answer.body
    return answer.json


def linked(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in a REST answer that has an ``html_url``, nested ones included."""
    if isinstance(value, dict):
        if "html_url" in value:
            yield value
        for item in value.values():
            yield from linked(item)
    elif isinstance(value, list):
        for item in value:
            yield from linked(item)


def page(url: str) -> str:
    answer = request("GET", url)
    assert answer.status == 200, (url, answer.status)
    assert answer.headers["content-type"].startswith("text/html")
    text = answer.body.decode()
    assert KEY not in text and OTHER_KEY not in text
    return text


def shows(text: str, element_id: str) -> bool:
    return re.search(rf'\sid="{re.escape(element_id)}"', text) is not None


def test_every_html_url_in_the_rest_answers_leads_to_a_page_of_that_object(
    alertwire_sandbox: Sandbox,
) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("disk", summary="Disk full on db1 <script>alert(1)</script>"))
    send(sb, trigger("disk"))  # the same alert again
    send(sb, trigger("lag", summary="Replica lag on db2"))
    send(sb, trigger("cpu", key=OTHER_KEY, summary="CPU 99% on web3"))
    send(sb, action("acknowledge", "lag"))
    incidents = rest(sb, "/incidents")["incidents"]
    disk = next(i for i in incidents if i["incident_key"] == "disk")
    acked = request(
        "PUT",
        f"{sb.url}/incidents/{disk['id']}",
        {"incident": {"type": "incident_reference", "status": "acknowledged"}},
        headers=HEADERS,
    )
    assert acked.status == 200, acked.body  # by a user: a user reference in the answers
    answers = [rest(sb, "/incidents"), rest(sb, "/services"), rest(sb, "/oncalls")]
    for incident in incidents:
        answers.append(rest(sb, f"/incidents/{incident['id']}"))
        answers.append(rest(sb, f"/incidents/{incident['id']}/alerts"))
        answers.append(rest(sb, f"/incidents/{incident['id']}/log_entries"))
    objects = [o for answer in answers for o in linked(answer)]
    kinds = {o["type"].removesuffix("_reference") for o in objects}
    assert {"incident", "service", "escalation_policy", "user", "alert"} <= kinds

    pages: dict[str, str] = {}
    for obj in objects:
        url = obj["html_url"]
        where = urlsplit(url)
        assert where.path.startswith("/dashboard/"), url
        if where.path not in pages:
            pages[where.path] = page(f"{sb.url}{where.path}")
        text = pages[where.path]
        kind = obj["type"].removesuffix("_reference")
        if kind == "alert":  # on its incident's page, under its own anchor
            assert where.fragment == f"alert-{obj['id']}", url
            assert shows(text, where.fragment)
            assert where.path == urlsplit(obj["incident"]["html_url"]).path
        elif kind.endswith("log_entry"):  # shown on its incident's page
            assert where.path.startswith("/dashboard/incidents/"), url
            if "incident" in obj:
                assert url == obj["incident"]["html_url"]
        elif obj["type"] == "generic_events_api_inbound_integration_reference":
            assert obj["id"] in text  # on its service's page
        else:
            assert shows(text, f"{kind}-{obj['id']}"), url
            assert not where.fragment
    disk_page = pages[urlsplit(disk["html_url"]).path]
    assert "Disk full on db1 &lt;script&gt;alert(1)&lt;/script&gt;" in disk_page
    assert "<script" not in disk_page


def test_an_incident_older_than_the_dashboard_shows_has_its_page(
    alertwire_sandbox: Sandbox,
) -> None:
    sb = alertwire_sandbox
    for n in range(SHOWN + 1):
        send(sb, trigger(f"k{n}", summary=f"incident {n}"))
    oldest = sb.incidents()[0]
    assert oldest["title"] == "incident 0"
    url = rest(sb, f"/incidents/{oldest['id']}")["incident"]["html_url"]
    text = page(url)
    assert shows(text, f"incident-{oldest['id']}")
    assert "incident 0" in text


@pytest.mark.parametrize("path", ["incidents/PNOSUCH", "services/PNOSUCH", "widgets/P1"])
def test_a_page_of_no_object_is_not_found(alertwire_sandbox: Sandbox, path: str) -> None:
    answer = request("GET", f"{alertwire_sandbox.url}/dashboard/{path}")
    assert answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")


@pytest.mark.browser
def test_a_browser_opening_an_alerts_html_url_sees_the_alert(
    alertwire_sandbox: Sandbox, chromium: Chromium
) -> None:
    sb = alertwire_sandbox
    send(sb, trigger("disk", summary="Disk full on db1", source="db1.example.com"))
    [incident] = rest(sb, "/incidents")["incidents"]
    [alert] = rest(sb, f"/incidents/{incident['id']}/alerts")["alerts"]
    dom = chromium.dump_dom(alert["html_url"])
    assert f'id="alert-{alert["id"]}"' in dom
    assert f'id="incident-{incident["id"]}"' in dom
    assert "Disk full on db1" in dom and "db1.example.com" in dom
