"""alertwire.airflow in real Apache Airflow 3: provider discovery, DAG callbacks, hooks.

Airflow runs from its own venv as subprocesses (tests/support/airflow_support.py);
pages go to the sandbox, served from this process on a loopback port, and
the assertions read its inspection API. The DAGs are in
tests/airflow/dags/alertwire_pages.py. Cost: one ``db migrate`` and two
``dags test`` runs (about 10 s each here), a few short scripts.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from alertwire.outbox import Outbox
from alertwire.sandbox import Sandbox
from tests.support.airflow_support import AIRFLOW_TIMEOUT, ALERTWIRE_CLI, AirflowEnv, connection

PD_KEY = "Rairflow0test0key0000000000aaaa1"
PD_KEY_2 = "Rairflow0test0key0000000000bbbb2"
BP_TOKEN = "bigpanda-airflow-token-secret-77"
BP_APP_KEY = "airflowapp"


def _no_secret_in(output: str) -> None:
    for secret in (PD_KEY, PD_KEY_2, BP_TOKEN):
        assert secret not in output


def test_providers_list_shows_alertwire_and_its_connection_types(airflow: AirflowEnv) -> None:
    providers = airflow.airflow("providers", "list", "-o", "json")
    assert providers.returncode == 0, providers.stdout[-3000:]
    listed = json.loads(providers.stdout[providers.stdout.index("[") :])
    [ours] = [p for p in listed if p["package_name"] == "alertwire"]
    assert ours["version"] == "0.1.0"

    hooks = airflow.airflow("providers", "hooks", "-o", "json")
    assert hooks.returncode == 0, hooks.stdout[-3000:]
    by_type = {h["connection_type"]: h for h in json.loads(hooks.stdout[hooks.stdout.index("[") :])}
    assert (
        by_type["alertwire_pagerduty_events"]["class"]
        == "alertwire.airflow.hooks.PagerdutyEventsHook"
    )
    assert by_type["alertwire_pagerduty"]["class"] == "alertwire.airflow.hooks.PagerdutyHook"
    assert by_type["alertwire_bigpanda"]["class"] == "alertwire.airflow.hooks.BigPandaHook"
    assert "already registered" not in hooks.stdout

    # Airflow's own schema accepts the provider description as it stands.
    check = airflow.python_script(
        "import json, pathlib, airflow, jsonschema\n"
        "from alertwire.airflow.provider_info import get_provider_info\n"
        "schema = json.loads((pathlib.Path(airflow.__file__).parent"
        " / 'provider_info.schema.json').read_text())\n"
        "jsonschema.validate(get_provider_info(), schema)\n"
        "print('valid')\n"
    )
    assert check.stdout.strip().endswith("valid"), check.stdout[-3000:]


def test_importing_the_notifiers_in_a_dag_file_stays_light(airflow: AirflowEnv) -> None:
    """What a DAG file's import adds on top of Airflow's own: no HTTP stack, no database driver."""
    done = airflow.python_script(
        "import sys, json\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        "from alertwire.airflow import (BigPandaHook, BigPandaNotifier, PagerdutyEventsHook,\n"
        "    PagerdutyHook, PagerdutyNotifier, send_pagerduty_notification)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    assert done.returncode == 0, done.stdout[-3000:]
    added = json.loads(done.stdout.strip().splitlines()[-1])
    assert "alertwire.airflow.notifications" in added  # the import did happen
    heavy = ("aiohttp", "urllib3", "sqlite3", "_sqlite3", "psycopg", "requests", "ssl")
    assert [m for m in added if m.split(".")[0] in heavy] == []


def test_failed_task_pages_pagerduty_and_bigpanda_with_the_rendered_templates(
    airflow: AirflowEnv,
) -> None:
    with Sandbox() as sb:
        env = {
            # The official provider's connection type and id: existing connections keep working.
            "AIRFLOW_CONN_PAGERDUTY_EVENTS_DEFAULT": connection(
                "pagerduty_events", password=PD_KEY, base_url=sb.url
            ),
            "AIRFLOW_CONN_BIGPANDA_DEFAULT": connection(
                "alertwire_bigpanda", password=BP_TOKEN, login=BP_APP_KEY, base_url=sb.url
            ),
        }
        done = airflow.airflow("dags", "test", "aw_pages", extra_env=env)
        assert "DagRun Finished: dag_id=aw_pages" in done.stdout, done.stdout[-5000:]
        [alert] = sb.alerts()
        bigpanda = sb.bigpanda()
    assert alert["dedup_key"] == "aw_pages-boom"
    assert alert["status"] == "triggered"
    assert alert["summary"] == "aw_pages.boom failed"
    assert alert["severity"] == "critical"
    assert alert["source"] == "airflow-aw_pages"
    assert alert["class"] == "airflow.boom"
    assert alert["component"] == "boom"
    assert alert["group"] == "aw_pages"
    assert alert["custom_details"] == {"dag": "aw_pages", "task": "boom"}
    assert alert["routing_key"] == "…aaa1"
    [bp] = bigpanda
    assert bp["body"] == {
        "app_key": BP_APP_KEY,
        "status": "critical",  # from the level "crit"
        "host": "aw_pages",
        "check": "boom",
        "description": "boom failed",
        "dag": "aw_pages",
    }
    assert "Failed to run task callback" not in done.stdout
    _no_secret_in(done.stdout)


def test_outage_stores_the_page_for_the_relay_and_fails_loudly_without_an_outbox(
    airflow: AirflowEnv, tmp_path: Path
) -> None:
    with Sandbox() as down:  # a port that was ours a moment ago: nothing listens there now
        port = int(down.url.rsplit(":", 1)[1])
        url = down.url
    outbox = tmp_path / "outbox" / "pages.sqlite3"
    env = {
        "AIRFLOW_CONN_PAGERDUTY_EVENTS_DEFAULT": connection(
            "pagerduty_events", password=PD_KEY_2, base_url=url
        ),
        "AIRFLOW_CONN_PD_OUTBOX": connection(
            "alertwire_pagerduty_events", password=PD_KEY, base_url=url, outbox=str(outbox)
        ),
    }
    done = airflow.airflow("dags", "test", "aw_outage", extra_env=env)
    out = done.stdout
    assert "DagRun Finished: dag_id=aw_outage" in out, out[-5000:]

    # The page with an outbox: stored, and said so.
    assert "stored in the outbox (id 1, dedup key aw_outage-boom)" in out, out[-5000:]
    with Outbox(outbox) as box:
        assert box.stats().pending == 1

    # The page without one, and the page whose connection is undefined: an ERROR line each
    # with the reason, and Airflow saw both callbacks fail.
    lost, unconfigured = [
        line for line in out.splitlines() if "was NOT delivered and NOT stored" in line
    ]
    assert "[error" in lost
    assert "PagerDuty trigger 'aw_outage.boom failed'" in lost
    assert "NetworkError" in lost
    assert "Connection refused" in lost
    assert "[error" in unconfigured
    assert "AirflowNotFoundException" in unconfigured
    assert "no_such_connection" in unconfigured
    failed = [line for line in out.splitlines() if "Failed to run task callback" in line]
    assert ["index=1" in failed[0], "index=2" in failed[1]] == [True, True], failed
    _no_secret_in(out)

    # The service is back: our relay delivers the stored page, rendered as queued.
    with Sandbox(port=port) as sb:
        relay = subprocess.run(
            [ALERTWIRE_CLI, "relay", "--drain", "--outbox", str(outbox)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=AIRFLOW_TIMEOUT,
            check=False,
        )
        assert relay.returncode == 0, relay.stderr[-3000:]
        alerts = sb.alerts()
    assert [(a["dedup_key"], a["summary"], a["routing_key"]) for a in alerts] == [
        ("aw_outage-boom", "aw_outage.boom failed", "…aaa1")
    ]
    assert alerts[0]["custom_details"] == {"dag": "aw_outage", "task": "boom"}
    with Outbox(outbox) as box:
        assert box.stats().pending == 0
        assert box.stats().delivered == 1


def test_an_http_image_is_left_out_with_a_warning_and_the_page_still_goes(
    airflow: AirflowEnv,
) -> None:
    with Sandbox() as sb:
        env = {
            "AIRFLOW_CONN_PAGERDUTY_EVENTS_DEFAULT": connection(
                "pagerduty_events", password=PD_KEY, base_url=sb.url
            ),
        }
        done = airflow.airflow("dags", "test", "aw_http_image", extra_env=env)
        assert "DagRun Finished: dag_id=aw_http_image" in done.stdout, done.stdout[-5000:]
        [event] = sb.events()
    body = event["body"]
    assert body["dedup_key"] == "aw_http_image-boom"
    assert body["images"] == [{"src": "https://grafana.example.com/boom.png", "alt": "mem"}]
    assert body["links"] == [{"href": "https://runbook.example.com/aw_http_image"}]
    [warning] = [line for line in done.stdout.splitlines() if "left out of the page" in line]
    assert "[warning" in warning
    assert "images[0] left out of the page (images.src: must be an https:// URL)" in warning
    assert "grafana.internal" not in done.stdout
    assert "Failed to run task callback" not in done.stdout
    _no_secret_in(done.stdout)


HOOKS_SCRIPT = """
import json, os
from alertwire.airflow import PagerdutyEventsHook, PagerdutyHook
from airflow.sdk.exceptions import AirflowNotFoundException

out = {}
events = PagerdutyEventsHook()  # pagerduty_events_default, the official default id
out["create_event"] = events.create_event(
    "legacy create_event", "error", dedup_key="legacy-1", class_type="legacy",
    custom_details={"n": 1},
)
out["send_event"] = events.send_event("today's send_event", "warning")
# An http:// image (PagerDuty shows only https://): left out, the event still goes.
out["http_image"] = events.create_event(
    "with an http image", "info", dedup_key="img-1", images=["http://grafana.internal/i.png"]
)
out["change"] = events.create_change_event("deployed v2", custom_details={"v": 2})
out["test_connection"] = list(events.test_connection())
out["test_connection_down"] = list(PagerdutyEventsHook(pagerduty_events_conn_id="pd_down")
                                   .test_connection())

# integration_key= and no connection at all: just works (the official hook raised).
bare = PagerdutyEventsHook(integration_key=os.environ["SECOND_KEY"],
                           pagerduty_events_conn_id="no_such_connection")
out["bare_send_event"] = bare.send_event("no connection needed", "info", dedup_key="bare-1")

rest = PagerdutyHook()  # pagerduty_default: token in password, routing_key in extra
out["rest_create_event"] = rest.create_event("via the REST hook", "critical", dedup_key="rest-1")

try:
    PagerdutyEventsHook(integration_key="too-short", pagerduty_events_conn_id=None)
except ValueError as exc:
    out["short_key"] = str(exc)
try:
    PagerdutyEventsHook(pagerduty_events_conn_id="no_such_connection")
except AirflowNotFoundException as exc:
    out["missing"] = type(exc).__name__
print("RESULT " + json.dumps(out))
"""


def test_hooks_return_what_the_official_hooks_returned(airflow: AirflowEnv) -> None:
    with Sandbox() as down:
        down_url = down.url
    with Sandbox() as sb:
        env = {
            "AIRFLOW_CONN_PAGERDUTY_EVENTS_DEFAULT": connection(
                "pagerduty_events", password=PD_KEY, base_url=sb.url
            ),
            "AIRFLOW_CONN_PAGERDUTY_DEFAULT": connection(
                "pagerduty",
                password="rest-api-token-not-used-here",
                routing_key=PD_KEY_2,
                events_base_url=sb.url,
            ),
            "AIRFLOW_CONN_PD_DOWN": connection(
                "pagerduty_events", password=PD_KEY, base_url=down_url
            ),
            # What the bare hook, which has no connection, reads instead.
            "ALERTWIRE_PAGERDUTY_URL": sb.url,
            "SECOND_KEY": PD_KEY_2,
        }
        done = airflow.python_script(HOOKS_SCRIPT, extra_env=env)
        assert done.returncode == 0, done.stdout[-5000:]
        [line] = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        out = json.loads(line.removeprefix("RESULT "))
        alerts = {a["dedup_key"]: a for a in sb.alerts()}
        changes = sb.changes()

    assert out["create_event"] == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "legacy-1",
    }
    assert alerts["legacy-1"]["class"] == "legacy"
    assert alerts["legacy-1"]["custom_details"] == {"n": 1}
    assert alerts["legacy-1"]["source"] == "airflow"

    assert out["http_image"]["dedup_key"] == "img-1"
    assert "images[0] left out of the page (images.src: must be an https:// URL)" in done.stdout

    generated = out["send_event"]
    assert len(generated) == 32
    assert alerts[generated]["summary"] == "today's send_event"
    assert alerts[generated]["severity"] == "warning"

    assert out["change"] == {"status": "success", "message": "Change event processed"}
    [change] = changes
    assert change["body"]["payload"]["summary"] == "deployed v2"

    assert out["test_connection"] == [True, "connection tested successfully"]
    ok, why = out["test_connection_down"]
    assert not ok
    assert why.startswith("connection test failed: NetworkError: no answer from 127.0.0.1:")

    assert out["bare_send_event"] == "bare-1"
    assert alerts["bare-1"]["routing_key"] == "…bbb2"
    assert out["rest_create_event"]["dedup_key"] == "rest-1"
    assert alerts["rest-1"]["routing_key"] == "…bbb2"
    assert out["missing"] == "AirflowNotFoundException"
    assert out["short_key"].startswith("routing_key: must be the 32-character integration key")
    _no_secret_in(done.stdout)
