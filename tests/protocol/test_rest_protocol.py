"""The REST API's sans-IO rules: headers, URLs, queries, wrappers, errors, pages, chunks.

Pure logic, no sockets: every decision the sync and async clients share is
made in :mod:`alertwire.protocol.rest` and checked here on plain values.
"""

from __future__ import annotations

from typing import Any

import pytest

import alertwire
from alertwire import (
    BadRequest,
    ConfigurationError,
    Forbidden,
    NotFound,
    RateLimited,
    RetryPolicy,
    Secret,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    ValidationError,
)
from alertwire._errors import NetworkError
from alertwire.protocol import rest
from alertwire.rest import PagerDutyAPI
from alertwire.rest._base import post_policy
from alertwire.transport import Response
from tests.support.keys import MIXED_CASE_ROUTING_KEY as INTEGRATION_KEY
from tests.support.keys import REST_API_TOKEN as TOKEN

BASE = "https://api.pagerduty.com"


def _response(status: int, body: bytes = b"", **headers: str) -> Response:
    return Response(status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


# --- token and headers -------------------------------------------------------------


def test_an_integration_key_given_as_token_gets_a_hint() -> None:
    with pytest.raises(ValidationError) as caught:
        rest.check_token(INTEGRATION_KEY, oauth=False)
    assert caught.value.field == "token"
    assert "integration" in str(caught.value)
    assert INTEGRATION_KEY not in str(caught.value)


def test_oauth_tokens_are_not_length_checked() -> None:
    assert rest.check_token(INTEGRATION_KEY, oauth=True).reveal() == INTEGRATION_KEY


@pytest.mark.parametrize("bad", ["", "   ", "abc def ghi jkl", "token\nInjected: yes"])
def test_blank_or_spaced_tokens_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rest.check_token(bad, oauth=False)
    assert caught.value.field == "token"


def test_headers_carry_token_accept_and_from() -> None:
    headers = rest.build_headers(Secret(TOKEN), oauth=False, default_from="me@example.com")
    assert headers == {
        "Accept": "application/vnd.pagerduty+json;version=2",
        "Content-Type": "application/json",
        "User-Agent": f"alertwire/{alertwire.__version__}",
        "From": "me@example.com",
        "Authorization": f"Token token={TOKEN}",
    }


def test_oauth_headers_use_bearer_and_no_from_unless_given() -> None:
    headers = rest.build_headers(Secret(TOKEN), oauth=True, default_from=None)
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert "From" not in headers


def test_a_call_may_replace_from_but_never_authorization() -> None:
    headers = rest.build_headers(
        Secret(TOKEN),
        oauth=False,
        default_from="me@example.com",
        extra={"From": "other@example.com", "authorization": "Token token=stolen"},
    )
    assert headers["From"] == "other@example.com"
    assert headers["Authorization"] == f"Token token={TOKEN}"
    assert "authorization" not in headers


# --- URLs and queries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("/incidents", f"{BASE}/incidents"),
        ("incidents", f"{BASE}/incidents"),
        (f"{BASE}/incidents/PABC123", f"{BASE}/incidents/PABC123"),
        ({"self": f"{BASE}/services/PSVC1"}, f"{BASE}/services/PSVC1"),
    ],
)
def test_paths_resolve_under_the_base_url(path: Any, url: str) -> None:
    assert rest.resolve_path(BASE, path) == url


@pytest.mark.parametrize(
    "path",
    [
        "https://evil.example.com/incidents",
        "https://api.pagerduty.com.evil.example/incidents",
        {"self": "https://api.eu.pagerduty.com/incidents/P1"},
    ],
)
def test_the_token_never_goes_to_another_host(path: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        rest.resolve_path(BASE, path)
    assert caught.value.field == "path"


def test_a_query_string_in_the_path_is_refused_with_the_way_out() -> None:
    with pytest.raises(ValidationError, match="params="):
        rest.resolve_path(BASE, "/incidents?statuses[]=triggered")


def test_lists_are_sent_as_name_brackets_repeated() -> None:
    query = rest.encode_params(
        {
            "statuses": ["triggered", "acknowledged"],
            "service_ids[]": ("PSVC1",),
            "incident_key": "disk/full on db-1",
            "total": True,
            "until": None,
        }
    )
    assert query == (
        "statuses[]=triggered&statuses[]=acknowledged&service_ids[]=PSVC1"
        "&incident_key=disk%2Ffull%20on%20db-1&total=true"
    )


def test_build_request_appends_the_query_and_encodes_json() -> None:
    request = rest.build_request(
        "put", f"{BASE}/incidents", {"A": "b"}, params={"limit": 1}, json={"x": 1}
    )
    assert (request.method, request.url, request.body) == (
        "PUT",
        f"{BASE}/incidents?limit=1",
        b'{"x":1}',
    )


# --- entity wrappers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (f"{BASE}/incidents", "/incidents"),
        (f"{BASE}/incidents/Q0RIJJZL24RC6W/log_entries", "/incidents/{id}/log_entries"),
        (f"{BASE}/users/me", "/users/me"),
        (f"{BASE}/v3/schedules/PSCH1/audit/records", "/v3/schedules/{id}/audit/records"),
    ],
)
def test_canonical_paths_replace_ids(url: str, canonical: str) -> None:
    assert rest.canonical_path(BASE, url) == canonical


@pytest.mark.parametrize(
    ("method", "path", "wrappers"),
    [
        ("GET", "/incidents", ("incidents", "incidents")),
        ("PUT", "/incidents", ("incidents", "incidents")),
        ("POST", "/incidents", ("incident", "incident")),
        ("GET", "/incidents/{id}", ("incident", "incident")),
        ("PUT", "/incidents/{id}", ("incident", "incident")),
        ("GET", "/escalation_policies/{id}", ("escalation_policy", "escalation_policy")),
        ("POST", "/incidents/{id}/notes", ("note", "note")),
        ("GET", "/incidents/{id}/alerts", ("alerts", "alerts")),
        ("POST", "/incidents/{id}/snooze", (None, "incident")),
        ("GET", "/users/me", ("user", "user")),
    ],
)
def test_entity_wrappers_follow_pagerdutys_naming(
    method: str, path: str, wrappers: tuple[str | None, str | None]
) -> None:
    assert rest.entity_wrappers(method, path) == wrappers


def test_wrap_leaves_an_already_wrapped_body_alone() -> None:
    assert rest.wrap({"status": "resolved"}, "incident") == {"incident": {"status": "resolved"}}
    assert rest.wrap({"incident": {"status": "resolved"}}, "incident") == {
        "incident": {"status": "resolved"}
    }


def test_unwrap_falls_back_to_the_only_content_key() -> None:
    body = {"records": [1, 2], "limit": 2, "next_cursor": None}
    assert rest.unwrap(body, "audit_records", what="GET /x") == [1, 2]


def test_unwrap_without_the_wrapper_names_what_came() -> None:
    with pytest.raises(UnexpectedResponse, match="keys a, b"):
        rest.unwrap({"a": 1, "b": 2}, "incident", what="GET /incidents/{id}")


# --- errors ------------------------------------------------------------------------------


def _error(status: int, body: bytes = b"", **headers: str) -> Exception:
    return rest.error_for_rest_response(
        _response(status, body, **headers), method="GET", url=f"{BASE}/incidents/P1?x=1"
    )


def test_400_carries_pagerdutys_message_code_and_errors() -> None:
    error = _error(
        400, b'{"error":{"message":"Invalid Input Provided","code":2001,"errors":["Bad date"]}}'
    )
    assert isinstance(error, BadRequest)
    assert error.errors == ("Bad date",)
    assert "Invalid Input Provided (code 2001)" in str(error)
    assert "Bad date" in str(error)
    assert "GET /incidents/P1" in str(error)
    assert not error.retryable


def test_401_is_unauthorized_with_a_token_hint() -> None:
    error = _error(401, b'{"error":{"message":"Authentication Required","code":2006}}')
    assert type(error) is Unauthorized
    assert "Authentication Required" in str(error)
    assert "integration key is not one" in str(error)


def test_403_is_forbidden_and_still_unauthorized() -> None:
    error = _error(403, b'{"error":{"message":"Access Denied","code":2010}}')
    assert isinstance(error, Forbidden)
    assert isinstance(error, Unauthorized)
    assert "Access Denied" in str(error)


def test_404_is_not_found() -> None:
    error = _error(404, b'{"error":{"message":"Not Found","code":2100}}')
    assert isinstance(error, NotFound)
    assert error.http_status == 404
    assert not error.retryable


def test_429_waits_for_ratelimit_reset() -> None:
    error = _error(429, b"", ratelimit_reset="17", ratelimit_remaining="0")
    assert isinstance(error, RateLimited)
    assert error.retry_after == 17.0
    assert error.retryable


def test_retry_after_wins_over_ratelimit_reset() -> None:
    error = _error(429, b"", retry_after="3", ratelimit_reset="17")
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3.0


def test_408_is_a_retryable_timeout() -> None:
    error = _error(408, b"Request Timeout")
    assert isinstance(error, ServerError) and error.retryable and error.http_status == 408
    assert "(HTTP 408)" in str(error)


def test_5xx_is_a_retryable_server_error_and_plain_text_is_kept() -> None:
    error = _error(503, b"upstream unavailable")
    assert isinstance(error, ServerError)
    assert error.retryable
    assert "upstream unavailable" in str(error)


def test_an_echoed_token_is_cut_out_of_errors() -> None:
    error = rest.error_for_rest_response(
        _response(401, f"bad token {TOKEN}".encode()),
        method="GET",
        url=f"{BASE}/incidents",
        token=Secret(TOKEN),
    )
    assert TOKEN not in str(error)
    assert TOKEN not in error.body


def test_post_is_retried_only_after_a_429() -> None:
    policy = post_policy(RetryPolicy(max_attempts=3))
    assert policy.next_delay(RateLimited("slow down", retry_after=0), 1, 0.0) is not None
    assert policy.next_delay(ServerError("boom"), 1, 0.0) is None
    assert policy.next_delay(NetworkError("reset"), 1, 0.0) is None
    assert RetryPolicy(max_attempts=3).next_delay(ServerError("boom"), 1, 0.0) is not None


# --- pagination ----------------------------------------------------------------------------


def test_classic_pages_advance_by_what_came_and_stop_when_no_more() -> None:
    pager = rest.Pager.for_path("/incidents", {"statuses[]": ["triggered"]}, 2)
    assert not pager.cursor_based
    assert pager.next_query() == {"statuses[]": ["triggered"], "limit": 2, "offset": 0}
    assert pager.take({"incidents": [1], "more": True, "limit": 2, "offset": 0}) == [1]
    assert pager.next_query() == {"statuses[]": ["triggered"], "limit": 2, "offset": 1}
    assert pager.take({"incidents": [2, 3], "more": False}) == [2, 3]
    assert pager.next_query() is None


def test_an_empty_page_ends_the_walk_even_if_more_says_otherwise() -> None:
    pager = rest.Pager.for_path("/services", None, None)
    assert pager.next_query() == {"limit": 100, "offset": 0}
    assert pager.take({"services": [], "more": True}) == []
    assert pager.next_query() is None


def test_classic_pagination_stops_at_pagerdutys_bound() -> None:
    pager = rest.Pager.for_path("/incidents", {"offset": 9_950}, 100)
    assert pager.next_query() is None
    assert pager.truncated


def test_cursor_paths_follow_next_cursor() -> None:
    pager = rest.Pager.for_path("/users/{id}/audit/records", {"offset": 5}, None)
    assert pager.cursor_based
    assert pager.next_query() == {"limit": 100}
    assert pager.take({"records": ["a"], "next_cursor": "c2"}) == ["a"]
    assert pager.next_query() == {"limit": 100, "cursor": "c2"}
    assert pager.take({"records": ["b"], "next_cursor": None}) == ["b"]
    assert pager.next_query() is None


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/audit/records", True),
        ("/workflows/integrations/{id}/connections", True),
        ("/incidents", False),
        ("/oncalls", False),
    ],
)
def test_which_paths_use_cursors(path: str, cursor: bool) -> None:
    assert rest.is_cursor_path(path) is cursor


def test_one_object_is_not_a_list() -> None:
    with pytest.raises(ValidationError, match="rget"):
        rest.Pager.for_path("/incidents/{id}", None, None)


@pytest.mark.parametrize("size", [0, 101])
def test_page_size_is_bounded(size: int) -> None:
    with pytest.raises(ValidationError) as caught:
        rest.Pager.for_path("/incidents", None, size)
    assert caught.value.field == "page_size"


@pytest.mark.parametrize("size", [0, 101, 500])
def test_a_limit_given_in_params_is_named_as_given(size: int) -> None:
    """``params={"limit": 500}`` was refused as ``page_size``, an argument not given."""
    with pytest.raises(ValidationError) as caught:
        rest.Pager.for_path("/incidents", {"limit": size}, None)
    assert caught.value.field == "params.limit"


def test_a_page_that_is_not_a_list_is_an_error() -> None:
    pager = rest.Pager.for_path("/incidents", None, None)
    with pytest.raises(UnexpectedResponse):
        pager.take({"incidents": {"id": "P1"}, "more": False})


# --- the alerting loop ----------------------------------------------------------------------


def test_bulk_updates_are_cut_at_250_and_deduplicated() -> None:
    ids = [f"P{i}" for i in range(600)] + ["P0"]
    sizes = [len(batch) for batch in rest.chunks(ids)]
    assert sizes == [250, 250, 100]
    body = rest.status_updates(["P1"], "acknowledged")
    assert body == {
        "incidents": [{"id": "P1", "type": "incident_reference", "status": "acknowledged"}]
    }


def test_the_open_incident_of_a_key_wins_else_the_newest() -> None:
    old = {"id": "P1", "status": "resolved", "created_at": "2026-01-01T00:00:00Z"}
    new = {"id": "P2", "status": "resolved", "created_at": "2026-02-01T00:00:00Z"}
    live = {"id": "P0", "status": "acknowledged", "created_at": "2025-12-01T00:00:00Z"}
    assert rest.pick_incident([old, new]) == new
    assert rest.pick_incident([old, live, new]) == live
    assert rest.pick_incident([]) is None


# --- client construction (no request made) ----------------------------------------------------


def test_client_repr_and_errors_never_show_the_token() -> None:
    with PagerDutyAPI(TOKEN, base_url="http://127.0.0.1:9") as api:
        assert TOKEN not in repr(api)
        assert TOKEN not in str(api.token)
        assert api.token.reveal() == TOKEN


def test_http_is_refused_off_loopback() -> None:
    with pytest.raises(ConfigurationError, match="loopback"):
        PagerDutyAPI(TOKEN, base_url="http://api.example.com")


def test_regions_pick_pagerdutys_hosts() -> None:
    with PagerDutyAPI(TOKEN) as us, PagerDutyAPI(TOKEN, region="EU") as eu:
        assert us.base_url == "https://api.pagerduty.com"
        assert eu.base_url == "https://api.eu.pagerduty.com"
    with pytest.raises(ConfigurationError, match="region"):
        PagerDutyAPI(TOKEN, region="mars")


def test_from_must_be_an_email() -> None:
    with pytest.raises(ValidationError) as caught:
        PagerDutyAPI(TOKEN, default_from="not an email")
    assert caught.value.field == "default_from"


def test_from_env_reads_the_token_file_url_and_from(tmp_path: Any) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    env = {
        "ALERTWIRE_PAGERDUTY_API_TOKEN_FILE": str(token_file),
        "ALERTWIRE_PAGERDUTY_API_URL": "http://127.0.0.1:9",
        "ALERTWIRE_PAGERDUTY_FROM": "oncall@example.com",
    }
    with PagerDutyAPI.from_env(env) as api:
        assert api.token.reveal() == TOKEN
        assert api.base_url == "http://127.0.0.1:9"
        assert api.default_from == "oncall@example.com"


def test_from_env_without_a_token_names_both_variables() -> None:
    with pytest.raises(ConfigurationError) as caught:
        PagerDutyAPI.from_env({})
    assert "ALERTWIRE_PAGERDUTY_API_TOKEN" in str(caught.value)
    assert "ALERTWIRE_PAGERDUTY_API_TOKEN_FILE" in str(caught.value)


def test_importing_the_rest_package_stays_light() -> None:
    """As for ``import alertwire``: the HTTP libraries load when a client first needs one."""
    import subprocess
    import sys

    probe = (
        "import sys, alertwire.rest\n"
        "alertwire.rest.AsyncPagerDutyAPI('y_NbAkKc66ryYTWUXYEu')\n"
        "print(' '.join(m for m in ('aiohttp', 'urllib3', 'httpx') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == []


@pytest.mark.usefixtures("real_retry_delays")
def test_the_wait_after_a_429_is_pagerdutys_and_stays_bounded() -> None:
    policy = RetryPolicy(max_attempts=5, max_elapsed=120)
    soon = _error(429, b"", ratelimit_reset="17")
    assert isinstance(soon, RateLimited)
    assert policy.next_delay(soon, 1, 0.0) == 17.0
    # A wait that would end past the elapsed bound is not made: the error is raised now.
    late = _error(429, b"", ratelimit_reset="3600")
    assert isinstance(late, RateLimited)
    assert policy.next_delay(late, 1, 0.0) is None
    assert post_policy(policy).next_delay(soon, 1, 0.0) == 17.0


def test_an_answer_without_paging_keys_is_one_page() -> None:
    pager = rest.Pager.for_path("/incidents", None, None)
    assert pager.take({"incidents": [1, 2]}) == [1, 2]
    assert pager.next_query() is None
