"""PagerDuty's official Python client (``pagerduty`` 7.2.0), unmodified, against the sandbox over TLS.

The client refuses ``http://`` base URLs, so this is also the test of
``--tls``: the sandbox runs as the ``alertwire sandbox --tls`` command (a real
subprocess) and the client trusts the CA file it printed. The client's
``base_url`` and ``verify`` (an ``ssl.SSLContext``: it is an ``httpx2.Client``)
are its documented constructor arguments; nothing is patched.

Its ``submit()`` without a timestamp raises ``AttributeError`` before sending
(docs/protocol.md), so the change event passes one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pagerduty
import pytest
import urllib3

from tests.support.sandbox_http import KEY


@dataclass
class Running:
    url: str
    ca_file: str
    process: subprocess.Popen[str]

    def get(self, path: str) -> Any:
        with urllib3.PoolManager(ca_certs=self.ca_file) as pool:
            return json.loads(pool.request("GET", self.url + path, retries=False).data)


@pytest.fixture(scope="module")
def sandbox_tls_command(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    ca_file = tmp_path_factory.mktemp("ca") / "sandbox-ca.pem"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alertwire.cli.main",
            "sandbox",
            "--tls",
            "--port",
            "0",
            "--ca-file",
            str(ca_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = ca = None
        for line in process.stdout:
            if m := re.search(r"listening on (https://\S+)", line):
                url = m.group(1)
            if m := re.search(r"CA certificate: (\S+)", line):
                ca = m.group(1)
            if "Stop with" in line:
                break
        assert url and ca == str(ca_file), "the sandbox did not say where it listens"
        yield Running(url, ca, process)
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=20)
    assert process.returncode == 0, rest
    assert "alertwire sandbox stopped" in rest


def test_official_client_trigger_ack_resolve_change(sandbox_tls_command: Running) -> None:
    sb = sandbox_tls_command
    context = ssl.create_default_context(cafile=sb.ca_file)
    client = pagerduty.EventsApiV2Client(KEY, base_url=sb.url, verify=context)
    try:
        dedup_key = client.trigger(
            "Disk full on db1", "db1.example.com", severity="error", custom_details={"free": "3%"}
        )
        assert re.fullmatch(r"[0-9a-f]{32}", dedup_key)
        assert [(a["dedup_key"], a["status"]) for a in sb.get("/sandbox/alerts")] == [
            (dedup_key, "triggered")
        ]

        assert client.acknowledge(dedup_key) == dedup_key
        assert [a["status"] for a in sb.get("/sandbox/alerts")] == ["acknowledged"]

        assert client.resolve(dedup_key) == dedup_key
        assert [a["status"] for a in sb.get("/sandbox/alerts")] == ["resolved"]

        client.trigger("Disk full on db1 again", "db1.example.com", dedup_key=dedup_key)
        client.submit(
            "Deployed api v2", source="ci", timestamp=datetime.now(timezone.utc).isoformat()
        )
    finally:
        client.close()

    alerts = sb.get("/sandbox/alerts")
    assert [(a["dedup_key"], a["status"]) for a in alerts] == [
        (dedup_key, "resolved"),
        (dedup_key, "triggered"),
    ]
    assert alerts[0]["custom_details"] == {"free": "3%"}
    [change] = sb.get("/sandbox/changes")
    assert change["body"]["payload"]["summary"] == "Deployed api v2"
    events = sb.get("/sandbox/events")
    assert [e["outcome"] for e in events] == [
        "opened",
        "acknowledged",
        "resolved",
        "opened",
        "recorded",
    ]
    assert KEY not in json.dumps(events, ensure_ascii=False)


def test_official_client_gets_pagerdutys_400_body(sandbox_tls_command: Running) -> None:
    context = ssl.create_default_context(cafile=sandbox_tls_command.ca_file)
    client = pagerduty.EventsApiV2Client(
        "too-short", base_url=sandbox_tls_command.url, verify=context
    )
    try:
        with pytest.raises(pagerduty.HttpError) as caught:
            client.trigger("x", "h")
    finally:
        client.close()
    assert caught.value.response is not None
    assert caught.value.response.status_code == 400
    assert (
        caught.value.response.json()["errors"][0]
        == "Length of 'routing_key' is incorrect (should be 32 characters)"
    )


def test_official_client_refuses_plain_http() -> None:
    """Why --tls exists: the client will not even try an http:// sandbox."""
    with pytest.raises(pagerduty.UrlError):
        pagerduty.EventsApiV2Client(KEY, base_url="http://127.0.0.1:9")


def test_ca_file_named_by_the_caller_stays(sandbox_tls_command: Running) -> None:
    assert Path(sandbox_tls_command.ca_file).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert os.stat(sandbox_tls_command.ca_file).st_size > 0
