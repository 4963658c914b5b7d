"""The models and the wire hold events to the same limits, defined once.

Every limit the wire (sandbox, relay ingest) refuses a body for is a
constant in :mod:`alertwire.models.limits`, and the models enforce it too:
an event the models accept, which ``--dry-run`` shows and ``--queue``
stores, is never refused later by our own ingest or sandbox (and so never
dead-lettered for it). Each limit is checked on both sides of its boundary,
against the real sandbox over loopback HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertwire import BigPandaAlert, Change, Secret, TriggerAlert, ValidationError
from alertwire.models.limits import BIGPANDA_APP_KEY_ROOM, EVENT_MAX_BYTES, MAX_NESTING_DEPTH
from alertwire.models.nesting import nested_deeper_than
from alertwire.protocol import bigpanda as bigpanda_protocol
from alertwire.sandbox import Sandbox
from alertwire.wire import MAX_DEPTH
from tests.support.sandbox_http import KEY, TOKEN, post

ALERTWIRE = str(Path(sys.executable).with_name("alertwire"))
#: ``payload.custom_details`` is level 3 of an event: {"payload": {"custom_details": {...}}}.
DETAILS_LEVEL = 3


def details_nesting(event_depth: int) -> dict[str, Any]:
    """custom_details that make the whole event nest exactly ``event_depth`` levels."""
    value: dict[str, Any] = {"leaf": "x"}
    for _ in range(event_depth - DETAILS_LEVEL):
        value = {"d": value}
    return value


def depth_of(value: Any) -> int:
    """The reference measure: levels of objects/arrays, a top-level container being 1."""
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def test_the_wire_uses_the_models_constant() -> None:
    assert MAX_DEPTH is MAX_NESTING_DEPTH


@pytest.mark.parametrize("model", [TriggerAlert, Change])
def test_the_model_refuses_one_level_past_the_limit_naming_the_field_and_rule(model: Any) -> None:
    accepted = model("disk full", source="db1", custom_details=details_nesting(MAX_NESTING_DEPTH))
    assert depth_of(json.loads(accepted.wire_bytes)) == MAX_NESTING_DEPTH
    with pytest.raises(ValidationError) as caught:
        model("disk full", source="db1", custom_details=details_nesting(MAX_NESTING_DEPTH + 1))
    assert caught.value.field == "custom_details"
    assert caught.value.rule == (
        "must nest at most 62 levels of objects and arrays, itself included"
        " (the whole event may nest 64, counted from its top level)"
    )


def test_past_the_serialisers_own_cap_the_rule_is_the_same() -> None:
    with pytest.raises(ValidationError) as caught:
        TriggerAlert("disk full", source="db1", custom_details=details_nesting(400))
    assert caught.value.field == "custom_details"
    assert "must nest at most 62 levels" in caught.value.rule


def test_nesting_boundary_model_and_wire_agree(alertwire_sandbox: Sandbox) -> None:
    url = alertwire_sandbox.url + "/v2/enqueue"
    at_limit = TriggerAlert(
        "at the limit", source="db1", custom_details=details_nesting(MAX_NESTING_DEPTH)
    )
    body = {"routing_key": KEY, **json.loads(at_limit.wire_bytes)}
    assert post(url, body).status == 202

    past = details_nesting(MAX_NESTING_DEPTH + 1)
    with pytest.raises(ValidationError):
        TriggerAlert("past the limit", source="db1", custom_details=past)
    body["payload"]["custom_details"] = past
    answer = post(url, body)
    assert answer.status == 400
    assert answer.json["errors"] == ["Event object is nested too deeply"]
    assert len(alertwire_sandbox.alerts()) == 1


def _bigpanda_body(tags: dict[str, str]) -> bytes:
    """The single-alert request body, with an app key as long as the room the model keeps."""
    alert = {"app_key": "k" * BIGPANDA_APP_KEY_ROOM, "status": "critical", "host": "db1", **tags}
    return json.dumps(alert, separators=(",", ":")).encode()


def _tags_for(size: int) -> dict[str, str]:
    """Tags (each within BigPanda's 512-character value limit) making the body ``size`` bytes."""
    tags: dict[str, str] = {}
    while size - len(_bigpanda_body(tags)) > 520:
        tags[f"t{len(tags):04d}"] = "x" * 500
    tags["last"] = ""
    tags["last"] = "x" * (size - len(_bigpanda_body(tags)))
    assert len(_bigpanda_body(tags)) == size and len(tags["last"]) <= 512
    return tags


def test_bigpanda_size_boundary_model_and_wire_agree(alertwire_sandbox: Sandbox) -> None:
    url = alertwire_sandbox.url + "/data/v2/alerts"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    alert = BigPandaAlert("critical", host="db1", tags=_tags_for(EVENT_MAX_BYTES))
    request = bigpanda_protocol.build_request(
        alertwire_sandbox.url, Secret(TOKEN), "k" * BIGPANDA_APP_KEY_ROOM, alert
    )
    assert len(request.body) == EVENT_MAX_BYTES
    assert post(url, request.body, headers=headers).status == 201

    over = _tags_for(EVENT_MAX_BYTES + 1)
    with pytest.raises(ValidationError) as caught:
        BigPandaAlert("critical", host="db1", tags=over)
    assert caught.value.field == "alert"
    assert f"at most {EVENT_MAX_BYTES} bytes" in caught.value.rule
    answer = post(url, _bigpanda_body(over), headers=headers)
    assert answer.status == 400
    assert "too large" in json.dumps(answer.json)


def test_pagerduty_size_boundary_model_and_wire_agree(alertwire_sandbox: Sandbox) -> None:
    """The model keeps room for the routing key and a generated dedup key; the wire takes the rest."""
    url = alertwire_sandbox.url + "/v2/enqueue"
    low, high = 0, EVENT_MAX_BYTES
    while low < high:  # the largest blob the model accepts
        mid = (low + high + 1) // 2
        try:
            TriggerAlert("s", source="db1", custom_details={"blob": "x" * mid})
        except ValidationError:
            high = mid - 1
        else:
            low = mid
    largest = TriggerAlert("s", source="db1", custom_details={"blob": "x" * low})
    body = {"routing_key": KEY, "dedup_key": "d" * 32, **json.loads(largest.wire_bytes)}
    raw = json.dumps(body, separators=(",", ":")).encode()
    assert len(raw) <= EVENT_MAX_BYTES
    assert post(url, raw).status == 202
    with pytest.raises(ValidationError) as caught:
        TriggerAlert("s", source="db1", custom_details={"blob": "x" * (low + 1)})
    assert caught.value.field == "event"


@pytest.mark.parametrize("flag", ["--dry-run", "--queue"])
def test_cli_refuses_too_deep_details_in_one_line_with_exit_2(tmp_path: Path, flag: str) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(ALERTWIRE_ROUTING_KEY=KEY, ALERTWIRE_OUTBOX=str(outbox))
    details = json.dumps(details_nesting(MAX_NESTING_DEPTH + 1))
    done = subprocess.run(
        [ALERTWIRE, "trigger", "disk full", flag, "--details-json", details],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "custom_details: must nest at most 62 levels" in done.stderr
    assert not outbox.exists() or _stored(outbox) == 0


def _stored(path: Path) -> int:
    from alertwire.outbox import Outbox

    with Outbox(path) as ob:
        s = ob.stats()
        return s.pending + s.leased + s.delivered + s.dead


# ---------------------------------------------------------------- the depth rule itself

_text = st.text(alphabet=st.sampled_from('ab[]{}"\\/é\n'), max_size=6)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=60,
)


@settings(max_examples=400, deadline=None)
@given(value=_json_values, limit=st.integers(min_value=0, max_value=12))
def test_nested_deeper_than_matches_a_walk_of_the_parsed_value(value: Any, limit: int) -> None:
    """Brackets, quotes and backslashes inside strings never count as structure."""
    for data in (json.dumps(value).encode(), json.dumps(value, ensure_ascii=False).encode()):
        assert nested_deeper_than(data, limit) == (depth_of(value) > limit), data
