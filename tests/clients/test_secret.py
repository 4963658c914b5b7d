"""Secret: a key shows only its last four characters, wherever it is rendered."""

from __future__ import annotations

import copy
import logging
import pickle
from collections.abc import Callable
from typing import Any

import pytest

import alertwire
from alertwire import Secret, ValidationError
from alertwire._secret import redact
from alertwire.sandbox import Sandbox
from tests.support.keys import MIXED_CASE_ROUTING_KEY as KEY


def test_renderings_show_only_last_four() -> None:
    secret = Secret(KEY)
    for text in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>50}",
        "%s" % (secret,),  # noqa: UP031 (the logging-style rendering)
    ):
        assert KEY not in text
        assert KEY[:-4] not in text
        assert "CDEF" in text
    assert repr(secret) == "Secret('…CDEF')"


def test_reveal_and_wrap() -> None:
    secret = Secret(KEY)
    assert secret.reveal() == KEY
    assert Secret(secret).reveal() == KEY
    assert len(secret) == 32


def test_short_values_show_nothing() -> None:
    # Four characters of an eight-character secret would be half of it.
    assert repr(Secret("abcdefgh")) == "Secret('…')"
    assert "abcd" not in repr(Secret("abcd"))
    assert redact("abcdefgh") == "…"
    assert redact(KEY) == "…CDEF"


def test_equality_and_hash() -> None:
    assert Secret(KEY) == Secret(KEY)
    assert Secret(KEY) != Secret(KEY.lower())
    assert Secret(KEY) != KEY  # never equal to the bare string: no accidental comparisons
    assert len({Secret(KEY), Secret(KEY)}) == 1


def test_not_a_str() -> None:
    with pytest.raises(TypeError):
        Secret(1234)  # type: ignore[arg-type]


def test_not_picklable() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(KEY))


def test_containers_and_copies_stay_redacted() -> None:
    secret = Secret(KEY)
    assert KEY not in repr([secret, {"key": secret}])
    # Immutable, so a copy is the same object (deepcopy of a settings object must work).
    assert copy.copy(secret) is secret
    assert copy.deepcopy({"k": secret})["k"] is secret


def test_logging_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").debug("key is %s / %r", Secret(KEY), Secret(KEY))
    assert KEY not in caplog.text
    assert "CDEF" in caplog.text


def test_no_dict_to_leak_through() -> None:
    secret = Secret(KEY)
    assert not hasattr(secret, "__dict__")
    assert KEY not in str(vars(type(secret)))


def test_scrub() -> None:
    secret = Secret(KEY)
    assert secret.scrub(f'{{"routing_key":"{KEY}"}} and {KEY}') == (
        "{\"routing_key\":\"Secret('…CDEF')\"} and Secret('…CDEF')"
    )
    assert secret.scrub("nothing here") == "nothing here"
    assert Secret("").scrub("abc") == "abc"


def test_keys_assigned_after_construction_are_checked_held_as_secrets_and_used(
    alertwire_sandbox: Sandbox,
) -> None:
    """A plain string assigned as a client's key once showed in full in repr() and failed
    every send with an AttributeError ('str' object has no attribute 'reveal')."""
    sb = alertwire_sandbox
    new_key = "NewKey0123456789abcdefABCDEFWXYZ"
    with alertwire.PagerDuty("OldKey0123456789abcdefABCDEFQRST", base_url=sb.url) as pd:
        pd.routing_key = new_key
        assert new_key not in repr(pd)
        with pytest.raises(ValidationError) as refused:
            pd.routing_key = "too-short"
        pd.trigger("disk full", source="db1")
    assert refused.value.field == "routing_key"
    assert [a["routing_key"] for a in sb.alerts()] == ["…WXYZ"]

    new_token = "bp-token-assigned-later-0000TKN7"
    with alertwire.BigPanda("bp-token-given-first-00000000AAAA", "app", base_url=sb.url) as bp:
        bp.token = new_token
        assert new_token not in repr(bp)
        bp.alert("critical", host="web-1")
    assert [a["token"] for a in sb.bigpanda()] == ["…TKN7"]


def _credential_takers() -> list[tuple[str, Callable[[Any], object]]]:
    from alertwire.outbox import Outbox
    from alertwire.rest import PagerDutyAPI

    return [
        ("routing_key", alertwire.PagerDuty),
        ("routing_key", alertwire.AsyncPagerDuty),
        ("token", lambda v: alertwire.BigPanda(v, "app")),
        ("token", PagerDutyAPI),
        (
            "routing_key",
            lambda v: Outbox.prepare_pagerduty(alertwire.TriggerAlert("x"), routing_key=v),
        ),
    ]


@pytest.mark.parametrize("given", [None, 1234, b"R0123456789ABCDEF0123456789ABCDE"])
def test_a_credential_that_is_not_a_string_is_a_validation_error_naming_it(given: object) -> None:
    """``PagerDuty(os.environ.get("PD_KEY"))`` with the variable unset: the error names
    the setting and the rule, not Secret's own "a Secret holds a str"."""
    for field, take in _credential_takers():
        with pytest.raises(ValidationError) as caught:
            take(given)
        assert caught.value.field == field
        wanted = "is required" if given is None else f"must be a string, not {type(given).__name__}"
        assert wanted in caught.value.rule


def test_a_key_assigned_after_construction_is_checked_the_same_way() -> None:
    with alertwire.PagerDuty(KEY) as pd, pytest.raises(ValidationError) as caught:
        pd.routing_key = None
    assert caught.value.field == "routing_key"
