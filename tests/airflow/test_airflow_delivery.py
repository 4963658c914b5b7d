"""alertwire.airflow without Airflow: settings, event mapping, and delivery that never loses a page.

The delivery rules (outbox first, then a direct send, else one ERROR line
and an exception) live in modules that do not import Airflow, so they are
tested here against the real sandbox and real SQLite outboxes; the glue
to Airflow itself is tested with real Airflow in tests/airflow/test_airflow_real.py.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alertwire import (
    AcknowledgeAlert,
    BigPandaAlert,
    BigPandaStatus,
    Change,
    ConfigurationError,
    NetworkError,
    PagerDutyEvent,
    ResolveAlert,
    RetryPolicy,
    Secret,
    TriggerAlert,
    ValidationError,
)
from alertwire.airflow import _deliver
from alertwire.airflow._events import (
    EVENT_ARGUMENTS,
    bigpanda_status,
    change_event_from,
    pagerduty_event_from,
)
from alertwire.airflow._settings import (
    EVENTS_EXTRAS,
    ConnectionFields,
    Destination,
    read_extras,
    region_of,
    resolve_outbox,
)
from alertwire.airflow.provider_info import get_provider_info
from alertwire.outbox import Outbox
from alertwire.sandbox import Sandbox
from tests.support.pg_cluster import PostgresCluster
from tests.support.services import free_port

KEY = "Rdelivery0test0key000000000cccc3"
TOKEN = "bigpanda-delivery-token-secret-9"
TWO_TRIES = RetryPolicy(max_attempts=2)


@pytest.fixture
def down_url() -> str:
    """The URL of a sandbox that was just stopped: connections are refused."""
    with Sandbox() as sb:
        return sb.url


def _dest(url: str, *, outbox: str | None = None, app_key: str | None = None) -> Destination:
    key = Secret(TOKEN if app_key else KEY)
    return Destination(
        key=key, region="us", base_url=url, outbox=outbox, retry=TWO_TRIES, app_key=app_key
    )


def _falls_back(
    sandbox: Sandbox, outbox: str, dedup_key: str, caplog: pytest.LogCaptureFixture
) -> list[logging.LogRecord]:
    """A page with an ``outbox`` that cannot store it: it is sent now all the same.
    Returns what was logged (the tests judge the lines)."""
    event = TriggerAlert("disk full", dedup_key=dedup_key)
    with caplog.at_level(logging.INFO, logger="alertwire.airflow"):
        outcome = _deliver.deliver_pagerduty("page", event, _dest(sandbox.url, outbox=outbox))
    assert not outcome.queued
    assert [a["dedup_key"] for a in sandbox.alerts()] == [dedup_key]
    return caplog.records


def _no_key_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert TOKEN not in record.getMessage()


# ---------------------------------------------------------------- the provider entry point


def test_provider_entry_point_names_this_distribution() -> None:
    [entry] = [
        e
        for e in importlib.metadata.entry_points(group="apache_airflow_provider")
        if e.value.startswith("alertwire.")
    ]
    assert entry.value == "alertwire.airflow.provider_info:get_provider_info"
    assert entry.dist is not None
    assert get_provider_info()["package-name"] == entry.dist.name == "alertwire"


def test_importing_the_package_and_provider_info_is_light() -> None:
    """Provider discovery and DAG parsing import these: no Airflow, HTTP stack or database."""
    code = (
        "import sys, json\n"
        "import alertwire.airflow, alertwire.airflow.provider_info\n"
        "alertwire.airflow.provider_info.get_provider_info()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = {m.split(".")[0] for m in json.loads(done.stdout)}
    assert loaded.isdisjoint({"airflow", "aiohttp", "urllib3", "sqlite3", "_sqlite3", "psycopg"})


# ---------------------------------------------------------------- settings


def test_extras_unknown_fields_are_named_in_a_warning_never_their_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fields = ConnectionFields(
        "pd", password=KEY, extra={"outobx": "/var/lib/x-secret-path", "region": "eu"}
    )
    with caplog.at_level(logging.WARNING, logger="alertwire.airflow"):
        extras = read_extras(fields, EVENTS_EXTRAS)
    assert extras == {"region": "eu"}
    [record] = caplog.records
    assert "'pd'" in record.getMessage()
    assert "outobx" in record.getMessage()
    assert "x-secret-path" not in record.getMessage()
    assert KEY not in repr(fields)


def test_extras_of_the_wrong_type_name_the_field() -> None:
    with pytest.raises(ConfigurationError, match="extra field 'region' must be a string, not int"):
        read_extras(ConnectionFields("pd", extra={"region": 5}), EVENTS_EXTRAS)


def test_an_outbox_extra_of_the_wrong_type_is_an_error_line_and_the_page_still_goes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``"extra": {"outbox": 5}`` stopped the hook from being made, so the page was not
    sent at all; an outbox that cannot be used falls back, as one that cannot be opened."""
    fields = ConnectionFields("pd", password=KEY, extra={"outbox": 5, "region": "eu"})
    with caplog.at_level(logging.WARNING, logger="alertwire.airflow"):
        extras = read_extras(fields, EVENTS_EXTRAS)
    assert extras == {"region": "eu"}
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert (
        "'pd'" in record.getMessage()
        and "'outbox' must be a string, not int" in record.getMessage()
    )
    assert resolve_outbox(None, extras, {}) is None  # sent directly


def test_outbox_argument_beats_the_connection_which_beats_the_environment() -> None:
    env = {"ALERTWIRE_OUTBOX": "/env.sqlite3"}
    assert resolve_outbox("/arg.sqlite3", {"outbox": "/conn.sqlite3"}, env) == "/arg.sqlite3"
    assert resolve_outbox(None, {"outbox": "/conn.sqlite3"}, env) == "/conn.sqlite3"
    assert resolve_outbox(None, {}, env) == "/env.sqlite3"
    assert resolve_outbox(None, {}, {}) is None


def test_region_from_the_connection_or_environment_and_its_url_goes_with_queued_pages() -> None:
    assert region_of({"region": "EU"}, "pd", {}) == "eu"
    assert region_of({}, "pd", {"ALERTWIRE_REGION": "eu"}) == "eu"
    assert region_of({}, "pd", {}) == "us"
    with pytest.raises(ConfigurationError, match="connection 'pd' extra field 'region'"):
        region_of({"region": "mars"}, "pd", {})
    eu = Destination(key=Secret(KEY), region="eu", base_url=None, outbox=None)
    assert eu.queued_base_url("pagerduty") == "https://events.eu.pagerduty.com"
    us = Destination(key=Secret(KEY), region="us", base_url=None, outbox="postgresql://u:pw@h/db")
    assert us.queued_base_url("pagerduty") is None  # the relay's own setting decides
    assert KEY not in repr(us)
    assert "pw" not in repr(us)


# ---------------------------------------------------------------- the official arguments

AIRFLOW_SRC = Path(_deliver.__file__).parent

#: Where alertwire takes the official ``send_event`` arguments (module: class.method).
OFFICIAL_SIGNATURES = (
    ("hooks", "PagerdutyEventsHook", "send_event"),
    ("hooks", "PagerdutyEventsHook", "create_event"),
    ("hooks", "PagerdutyHook", "create_event"),
    ("notifications", "PagerdutyNotifier", "__init__"),
)


def _arguments_of(module: str, cls: str, method: str) -> ast.arguments:
    """A method's parameters, read from the source: importing the hooks needs Airflow."""
    tree = ast.parse((AIRFLOW_SRC / f"{module}.py").read_text(encoding="utf-8"))
    [owner] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    [function] = [n for n in owner.body if isinstance(n, ast.FunctionDef) and n.name == method]
    return function.args


def _send_event_defaults() -> dict[str, Any]:
    """``send_event``'s parameters with their defaults (``None`` for the two required ones)."""
    args = _arguments_of("hooks", "PagerdutyEventsHook", "send_event")
    named = args.args[1:]  # without self
    defaults = [None] * (len(named) - len(args.defaults)) + list(args.defaults)
    return {
        a.arg: None if d is None else ast.literal_eval(d)
        for a, d in zip(named, defaults, strict=True)
    }


def pagerduty_event(summary: str, severity: str, **given: Any) -> PagerDutyEvent:
    """What the hooks build from ``send_event(summary, severity, **given)``."""
    arguments = {**_send_event_defaults(), "summary": summary, "severity": severity, **given}
    return pagerduty_event_from({**arguments, "self": object()})


def change_event(summary: str, **given: Any) -> Change:
    """What the hooks build from ``create_change_event(summary, **given)``."""
    defaults = {"source": "airflow", "custom_details": None, "timestamp": None, "links": None}
    return change_event_from({**defaults, "summary": summary, **given, "self": object()})


def test_official_send_event_arguments_become_the_same_event() -> None:
    event = pagerduty_event(
        "disk full",
        "critical",
        source="db1",
        dedup_key="k1",
        custom_details={"a": 1},
        group="g",
        component="c",
        class_type="cls",
        images=[{"src": "https://x/i.png", "alt": "graph"}],
        links=[{"href": "https://x", "text": "runbook"}],
    )
    assert isinstance(event, TriggerAlert)
    body = event.wire_body()
    assert body["payload"]["class"] == "cls"
    assert body["images"] == [{"src": "https://x/i.png", "alt": "graph"}]
    assert body["links"] == [{"href": "https://x", "text": "runbook"}]
    assert pagerduty_event("s", "info", action="resolve", dedup_key="k") == ResolveAlert("k")
    assert pagerduty_event("s", "info", action="acknowledge", dedup_key="k") == AcknowledgeAlert(
        "k"
    )


def test_event_arguments_passed_on_by_name_are_exactly_pagerduty_events_parameters() -> None:
    """The hooks and the notifier forward the official arguments by these names: none may drop."""
    for module, cls, method in OFFICIAL_SIGNATURES:
        args = _arguments_of(module, cls, method)
        spelled = [a.arg for a in (*args.args, *args.kwonlyargs) if a.arg in EVENT_ARGUMENTS]
        assert tuple(spelled) == EVENT_ARGUMENTS, f"{cls}.{method}"
    assert tuple(_send_event_defaults()) == EVENT_ARGUMENTS
    given: dict[str, Any] = {
        "summary": "disk full",
        "severity": "critical",
        "source": "db1",
        "action": "trigger",
        "dedup_key": "k1",
        "custom_details": {"a": 1},
        "group": "g",
        "component": "c",
        "class_type": "cls",
        "images": [{"src": "https://x/i.png", "alt": "graph"}],
        "links": [{"href": "https://x", "text": "runbook"}],
    }
    scope = {**given, "self": object(), "routing_key": "R" * 32}
    assert pagerduty_event_from(scope) == pagerduty_event(
        given.pop("summary"), given.pop("severity"), **given
    )
    for name in EVENT_ARGUMENTS:  # a trigger reads every one of them: none is dropped
        with pytest.raises(KeyError, match=name):
            pagerduty_event_from({k: v for k, v in scope.items() if k != name})


def test_official_arguments_that_cannot_be_sent_name_the_field() -> None:
    with pytest.raises(ValidationError, match="action: must be one of trigger"):
        pagerduty_event("s", "info", action="snooze", dedup_key="k")
    with pytest.raises(ValidationError, match="dedup_key: is required for action=resolve"):
        pagerduty_event("s", "info", action="resolve")
    with pytest.raises(ValidationError, match="severity"):
        pagerduty_event("s", "fatal")


def test_bigpanda_status_takes_bigpanda_spellings_or_levels() -> None:
    assert bigpanda_status("warning") is BigPandaStatus.WARNING
    assert bigpanda_status("crit") is BigPandaStatus.CRITICAL
    assert bigpanda_status("info") is BigPandaStatus.OK
    assert bigpanda_status("acknowledged") is BigPandaStatus.ACKNOWLEDGED
    assert bigpanda_status("fatal") is BigPandaStatus.CRITICAL  # unknown pages loudly


# ---------------------------------------------------------------- delivery


def test_no_outbox_sends_now(alertwire_sandbox: Sandbox) -> None:
    event = TriggerAlert("disk full", dedup_key="direct-1")
    outcome = _deliver.deliver_pagerduty("page", event, _dest(alertwire_sandbox.url))
    assert not outcome.queued
    assert outcome.dedup_key == "direct-1"
    assert [a["dedup_key"] for a in alertwire_sandbox.alerts()] == ["direct-1"]


def test_an_outbox_stores_the_page_with_its_destination_and_sends_nothing(
    alertwire_sandbox: Sandbox, tmp_path: Path
) -> None:
    outbox = str(tmp_path / "pages.sqlite3")
    event = TriggerAlert("disk full")
    outcome = _deliver.deliver_pagerduty("page", event, _dest(alertwire_sandbox.url, outbox=outbox))
    assert outcome.queued
    assert outcome.dedup_key is not None
    assert len(outcome.dedup_key) == 32  # assigned at enqueue: a replay lands on the same alert
    assert alertwire_sandbox.alerts() == []
    with Outbox(outbox) as box:
        assert box.stats().pending == 1
        from alertwire.relay import Relay

        Relay(box).run(drain=True)  # the row carries the sandbox URL
    assert [a["dedup_key"] for a in alertwire_sandbox.alerts()] == [outcome.dedup_key]


@pytest.mark.parametrize("what", ["under a file", "not an outbox", "damaged"])
def test_an_outbox_that_can_never_store_is_an_error_line_and_the_page_goes_out(
    alertwire_sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    """A path that no retry can make work (the CLI exits 2 for it): an ERROR a person
    must act on, since every page skips the outbox until the setting is changed; the
    page is sent now all the same."""
    (tmp_path / "a-file").write_text("")
    (tmp_path / "damaged.sqlite3").write_bytes(b"not SQLite at all " * 64)
    other = sqlite3.connect(tmp_path / "other-app.db")
    other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    other.commit()
    other.close()
    unusable = {
        "under a file": tmp_path / "a-file" / "pages.sqlite3",
        "not an outbox": tmp_path / "other-app.db",
        "damaged": tmp_path / "damaged.sqlite3",
    }[what]
    records = _falls_back(alertwire_sandbox, str(unusable), f"never-{what}", caplog)
    assert [r for r in records if r.levelno == logging.WARNING] == []
    [error] = [r for r in records if r.levelno == logging.ERROR]
    assert "the outbox cannot store pages" in error.getMessage()
    assert str(unusable) in error.getMessage()
    _no_key_logged(caplog)


def test_a_misconfigured_outbox_is_an_error_line_but_the_page_still_goes_out(
    alertwire_sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    event = TriggerAlert("disk full", dedup_key="fallback-2")
    with caplog.at_level(logging.INFO, logger="alertwire.airflow"):
        _deliver.deliver_pagerduty(
            "page", event, _dest(alertwire_sandbox.url, outbox="ftp://example/outbox")
        )
    assert [a["dedup_key"] for a in alertwire_sandbox.alerts()] == ["fallback-2"]
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "the outbox setting is unusable" in error.getMessage()


def test_neither_stored_nor_delivered_logs_one_error_with_both_reasons_and_raises(
    down_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The store fails for a passing reason (its database is down: a WARNING alone)
    and so does the send: one ERROR line with both reasons."""
    unusable = f"postgresql://aw:pw@127.0.0.1:{free_port()}/alertwire"
    with caplog.at_level(logging.INFO, logger="alertwire.airflow"), pytest.raises(NetworkError):
        _deliver.deliver_pagerduty(
            "PagerDuty page", TriggerAlert("disk full"), _dest(down_url, outbox=unusable)
        )
    # The failed store is said at WARNING (a database that is down passes), not ERROR.
    [warning] = [r for r in caplog.records if "sending directly" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "could not store it in the outbox" in warning.getMessage()
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = error.getMessage()
    assert message.startswith("PagerDuty page was NOT delivered and NOT stored: not stored (")
    assert "OutboxError" in message
    assert "not delivered (NetworkError" in message
    _no_key_logged(caplog)


def test_without_an_outbox_a_failed_send_logs_an_error_and_raises(
    down_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="alertwire.airflow"), pytest.raises(NetworkError):
        _deliver.deliver_pagerduty("PagerDuty page", TriggerAlert("disk full"), _dest(down_url))
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "NOT delivered and NOT stored: not delivered (NetworkError" in error.getMessage()
    _no_key_logged(caplog)


def test_a_key_the_outbox_refuses_is_an_error_line_and_raises(
    alertwire_sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = Destination(
        key=Secret("too-short"),
        region="us",
        base_url=alertwire_sandbox.url,
        outbox=str(tmp_path / "pages.sqlite3"),
    )
    with caplog.at_level(logging.INFO, logger="alertwire.airflow"), pytest.raises(ValidationError):
        _deliver.deliver_pagerduty("PagerDuty page", TriggerAlert("disk full"), bad)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].startswith("PagerDuty page: the outbox refused it (routing_key:")
    assert "NOT delivered and NOT stored: not stored (ValidationError" in errors[1]
    assert all("too-short" not in r.getMessage() for r in caplog.records)
    assert alertwire_sandbox.alerts() == []


def test_an_event_that_cannot_be_built_is_an_error_line_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="alertwire.airflow"), pytest.raises(ValidationError):
        _deliver.send_now("PagerDuty page", lambda: pagerduty_event("s", "fatal"))
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "not delivered (ValidationError: severity" in error.getMessage()


def test_bigpanda_sends_now_or_stores(alertwire_sandbox: Sandbox, tmp_path: Path) -> None:
    alert = BigPandaAlert("critical", host="etl", check="load")
    direct = _deliver.deliver_bigpanda("alert", alert, _dest(alertwire_sandbox.url, app_key="app"))
    assert not direct.queued
    assert [b["body"]["host"] for b in alertwire_sandbox.bigpanda()] == ["etl"]

    outbox = str(tmp_path / "bp.sqlite3")
    stored = _deliver.deliver_bigpanda(
        "alert", alert, _dest(alertwire_sandbox.url, outbox=outbox, app_key="app")
    )
    assert stored.queued
    with Outbox(outbox) as box:
        assert box.stats().pending == 1
    with pytest.raises(ConfigurationError, match="no BigPanda app key"):
        _deliver.deliver_bigpanda("alert", alert, _dest(alertwire_sandbox.url))


# ---------------------------------------------------------------- a PostgreSQL outbox


@pytest.mark.postgres
def test_a_postgresql_outbox_stores_the_page_for_one_relay(
    alertwire_sandbox: Sandbox, postgres_cluster: PostgresCluster
) -> None:
    """The deployment with one relay beside the scheduler: workers store, the relay delivers."""
    url = postgres_cluster.new_database()
    event = TriggerAlert("disk full", dedup_key="pg-1")
    outcome = _deliver.deliver_pagerduty("page", event, _dest(alertwire_sandbox.url, outbox=url))
    assert outcome.queued
    assert alertwire_sandbox.alerts() == []
    with Outbox.open(url) as box:
        assert box.stats().pending == 1
        from alertwire.relay import Relay

        Relay(box).run(drain=True)
    assert [a["dedup_key"] for a in alertwire_sandbox.alerts()] == ["pg-1"]


@pytest.mark.postgres
def test_a_postgresql_outbox_that_is_down_falls_back_without_showing_its_password(
    alertwire_sandbox: Sandbox, postgres_cluster: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgres_cluster.dsn.replace(f":{postgres_cluster.port}/", f":{free_port()}/")
    records = _falls_back(alertwire_sandbox, url, "pg-down-1", caplog)
    [warning] = [r for r in records if r.levelno == logging.WARNING]
    assert "could not store it in the outbox" in warning.getMessage()
    for record in records:
        assert postgres_cluster.password not in record.getMessage()


@pytest.mark.postgres
def test_a_wrong_postgresql_password_is_an_error_line_without_it_and_the_page_goes_out(
    alertwire_sandbox: Sandbox, postgres_cluster: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """The server refuses the password: no retry helps, so an ERROR (not the WARNING
    of a database that is down), and neither password is in it."""
    wrong = "wrong-" + postgres_cluster.password[::-1]
    url = postgres_cluster.dsn.replace(f":{postgres_cluster.password}@", f":{wrong}@")
    assert url != postgres_cluster.dsn
    records = _falls_back(alertwire_sandbox, url, "pg-password-1", caplog)
    assert [r for r in records if r.levelno == logging.WARNING] == []
    [error] = [r for r in records if r.levelno == logging.ERROR]
    assert "the outbox cannot store pages" in error.getMessage()
    assert "password authentication failed" in error.getMessage()
    for record in records:
        assert postgres_cluster.password not in record.getMessage()
        assert wrong not in record.getMessage()
    _no_key_logged(caplog)


def test_a_postgresql_outbox_url_libpq_refuses_is_an_error_line_and_the_page_goes_out(
    alertwire_sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """No server needed: libpq refuses ``sslmode=bogus`` before it connects. That is a
    configuration mistake (an ERROR a person must act on), not a store that is down."""
    password = "pw-" + TOKEN[::-1]
    url = f"postgresql://aw:{password}@127.0.0.1:{free_port()}/alertwire?sslmode=bogus"
    records = _falls_back(alertwire_sandbox, url, "pg-sslmode-1", caplog)
    assert [r for r in records if r.levelno == logging.WARNING] == []
    [error] = [r for r in records if r.levelno == logging.ERROR]
    assert "the outbox setting is unusable" in error.getMessage()
    assert 'invalid sslmode value: "bogus"' in error.getMessage()
    for record in caplog.records:
        assert password not in record.getMessage()
    _no_key_logged(caplog)


# ---------------------------------------------------------------- images and links the models refuse


def test_an_image_or_link_the_models_refuse_is_dropped_with_a_warning_and_the_page_goes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The official provider sent an http:// image; a DAG moved over must still page."""
    with caplog.at_level(logging.WARNING, logger="alertwire.airflow"):
        event = pagerduty_event(
            "disk full",
            "critical",
            images=[
                {"src": "http://grafana.internal/render/d1.png?api_key=do-not-log", "alt": "cpu"},
                {"src": "https://grafana.example.com/d2.png"},
                "",
            ],
            links=[{"href": " ", "text": "blank"}, "https://runbook.example.com"],
        )
    body = event.wire_body()
    assert body["images"] == [{"src": "https://grafana.example.com/d2.png"}]
    assert body["links"] == [{"href": "https://runbook.example.com"}]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines == [
        "images[0] left out of the page (images.src: must be an https:// URL)",
        "images[2] left out of the page (images.src: is required and must not be blank)",
        "links[0] left out of the page (links.href: is required and must not be blank)",
    ]
    assert "do-not-log" not in caplog.text  # a URL may carry a key: never logged


def test_images_or_links_that_are_not_a_list_are_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="alertwire.airflow"):
        event = pagerduty_event("s", "info", images="https://x/i.png", links=5)
    assert "images" not in event.wire_body()
    assert "links" not in event.wire_body()
    assert [r.getMessage() for r in caplog.records] == [
        "images left out of the page (images: must be a sequence of images)",
        "links left out of the page (links: must be a sequence of links)",
    ]


def test_a_change_event_keeps_only_the_links_the_model_accepts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="alertwire.airflow"):
        change = change_event("deployed", links=["", "https://ci.example.com/run/1"])
    assert change.wire_body()["links"] == [{"href": "https://ci.example.com/run/1"}]
    assert [r.getMessage() for r in caplog.records] == [
        "links[0] left out of the change event (links.href: is required and must not be blank)"
    ]
