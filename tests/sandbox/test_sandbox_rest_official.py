"""PagerDuty's official ``RestApiV2Client`` (``pagerduty`` 7.2.0), unmodified, against the sandbox.

The client refuses ``http://`` base URLs, so it talks to the sandbox over its
TLS (``Sandbox(tls=True)``, the ``alertwire_sandbox_tls`` fixture) and trusts
the sandbox's CA through its documented ``verify`` argument (it is an
``httpx`` client underneath). Events go in through PagerDuty's own
``EventsApiV2Client`` too, so neither side of the loop is ours: page, list
across pages, find the service, read an incident, acknowledge it, and check
the state the sandbox is left in, exactly.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pagerduty
import pytest

from alertwire.sandbox import Sandbox
from tests.support.keys import REST_API_TOKEN as TOKEN
from tests.support.sandbox_http import KEY, OTHER_KEY

RESPONDER = "responder@example.com"


@pytest.fixture
def clients(
    alertwire_sandbox_tls: Sandbox,
) -> Iterator[tuple[pagerduty.RestApiV2Client, pagerduty.EventsApiV2Client]]:
    sb = alertwire_sandbox_tls
    assert sb.ca_file is not None
    context = ssl.create_default_context(cafile=sb.ca_file)
    rest = pagerduty.RestApiV2Client(TOKEN, default_from=RESPONDER, base_url=sb.url, verify=context)
    events = pagerduty.EventsApiV2Client(KEY, base_url=sb.url, verify=context)
    try:
        yield rest, events
    finally:
        rest.close()
        events.close()


def test_official_rest_client_pages_finds_reads_and_acknowledges(
    alertwire_sandbox_tls: Sandbox,
    clients: tuple[pagerduty.RestApiV2Client, pagerduty.EventsApiV2Client],
) -> None:
    sb = alertwire_sandbox_tls
    rest, events = clients
    sb.add_service("Checkout API", KEY)
    sb.add_service("Billing", OTHER_KEY)
    dedup_keys = [
        events.trigger(f"Disk full on db{n}", f"db{n}.example.com", severity="error")
        for n in range(23)
    ]

    listed = list(rest.iter_all("incidents", page_size=10))
    assert [i["incident_key"] for i in listed] == dedup_keys
    assert [i["incident_number"] for i in listed] == list(range(1, 24))
    assert rest.api_call_counts == {"GET /incidents": 3}  # three pages: 10, 10, 3

    service = rest.find("services", "checkout api")
    assert service is not None
    assert (service["name"], service["type"], service["status"]) == (
        "Checkout API",
        "service",
        "critical",
    )
    assert rest.find("services", "no such service") is None

    incident = rest.rget(f"/incidents/{listed[4]['id']}")
    assert isinstance(incident, dict)
    assert (incident["title"], incident["status"], incident["service"]["id"]) == (
        "Disk full on db4",
        "triggered",
        service["id"],
    )

    acknowledged = rest.rput(
        incident, json={"type": "incident_reference", "status": "acknowledged"}
    )
    assert isinstance(acknowledged, dict)
    assert acknowledged["status"] == "acknowledged"
    [ack] = acknowledged["acknowledgements"]
    assert (ack["acknowledger"]["type"], ack["acknowledger"]["summary"]) == (
        "user_reference",
        RESPONDER,
    )

    open_now = rest.list_all(
        "incidents", params={"statuses[]": ["acknowledged"], "service_ids[]": [service["id"]]}
    )
    assert [i["id"] for i in open_now] == [incident["id"]]

    # The state left behind, exactly: one acknowledged incident (and its alert), 22 triggered.
    state = sb.incidents()
    assert [(i["number"], i["status"]) for i in state] == [
        (n, "acknowledged" if n == 5 else "triggered") for n in range(1, 24)
    ]
    assert state[4]["log_entries"] == ["trigger", "acknowledge"]
    assert {i["service"] for i in state} == {"Checkout API"}
    assert [a["status"] for a in sb.alerts()] == [
        "acknowledged" if n == 4 else "triggered" for n in range(23)
    ]
    # And the Events API sees the acknowledged incident as open: a resolve closes it.
    events.resolve(dedup_keys[4])
    assert rest.rget(f"/incidents/{incident['id']}")["status"] == "resolved"


def test_official_rest_client_gets_pagerdutys_errors(
    alertwire_sandbox_tls: Sandbox,
    clients: tuple[pagerduty.RestApiV2Client, pagerduty.EventsApiV2Client],
) -> None:
    rest, _ = clients
    with pytest.raises(pagerduty.HttpError) as caught:
        rest.rget("/incidents/PNOSUCH")
    assert caught.value.response is not None
    assert caught.value.response.status_code == 404
    assert caught.value.response.json()["error"]["code"] == 2100
    with pytest.raises(pagerduty.HttpError) as caught:
        rest.rget("/incidents", params={"statuses[]": ["open"]})
    assert caught.value.response is not None
    assert caught.value.response.status_code == 400
    assert caught.value.response.json()["error"]["message"] == "Invalid Input Provided"
