"""Schemathesis against the sandbox's own OpenAPI description: no 5xx, only documented statuses.

The description is the one the sandbox serves at ``/sandbox/openapi.json``;
schemathesis generates valid and invalid requests for every operation in it
(bounded per operation) and sends them to the real server on a loopback
port. State is reset after each case, so an injected fault from a generated
``POST /sandbox/faults`` never turns into a 5xx for the next case.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, status_code_conformance

from alertwire.sandbox import Sandbox
from alertwire.sandbox.openapi import openapi_document

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@schema.parametrize()
@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_without_5xx(
    sandbox: Sandbox, case: schemathesis.Case[Any]
) -> None:
    try:
        response = case.call(base_url=sandbox.url, timeout=10)
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance])
    finally:
        sandbox.reset()


def test_the_sandbox_serves_its_description(sandbox: Sandbox) -> None:
    with urllib.request.urlopen(sandbox.url + "/sandbox/openapi.json") as r:
        served = json.loads(r.read())
    assert served == json.loads(json.dumps(openapi_document()))
    assert {"/v2/enqueue", "/v2/change/enqueue", "/data/v2/alerts"} <= set(served["paths"])
