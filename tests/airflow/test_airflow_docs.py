"""docs/airflow.md's example DAG file, run in real Airflow as a reader would deploy it.

The page's ```python block is written to a DAG folder as it stands. Its DAG has
no task (``...``: the reader's own work goes there), so the test adds one DAG
below it whose only task fails, using the page's two notifiers as its
``on_failure_callback``: what the page promises is that those notifiers page
PagerDuty and BigPanda with the templates rendered. Connections in Airflow's
environment form point both at the sandbox (the page's ``AIRFLOW_CONN_*``
form, with ``base_url``). The page's block runs as the file's first part, so
an error in it (its DAG included) fails the file and the run. One ``airflow
dags test`` run (about 10 s here).
"""

from __future__ import annotations

from pathlib import Path

from alertwire.sandbox import Sandbox
from tests.support.airflow_support import AirflowEnv, connection
from tests.support.doc_examples import python_blocks

PAGE = Path(__file__).resolve().parents[2] / "docs" / "airflow.md"
PD_KEY = "Rairflow0docs0key000000000000cc3"
BP_TOKEN = "bigpanda-airflow-docs-token-99"
#: A DAG beside the page's, failing at once, paged through the page's notifiers.
FAILING_DAG = """

with DAG("nightly_load_fails", schedule=None,
         default_args={"on_failure_callback": [page, bigpanda]}):
    task(task_id="extract")(lambda: 1 / 0)()
"""


def _example() -> str:
    [block] = [b for b in python_blocks(PAGE) if "PagerdutyNotifier(" in b]
    return block


def test_the_page_example_dag_pages_with_its_templates_rendered(
    airflow: AirflowEnv, tmp_path: Path
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "nightly_load.py").write_text(_example() + FAILING_DAG, encoding="utf-8")
    with Sandbox() as sb:
        env = {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW_CONN_PAGERDUTY_EVENTS_DEFAULT": connection(
                "alertwire_pagerduty_events", password=PD_KEY, base_url=sb.url
            ),
            "AIRFLOW_CONN_BIGPANDA_DEFAULT": connection(
                "alertwire_bigpanda", password=BP_TOKEN, login="nightly", base_url=sb.url
            ),
        }
        done = airflow.airflow("dags", "test", "nightly_load_fails", extra_env=env)
        alerts = sb.alerts()
        bigpanda = sb.bigpanda()
    assert "DagRun Finished: dag_id=nightly_load_fails" in done.stdout, done.stdout[-5000:]
    [alert] = alerts
    assert alert["summary"] == "nightly_load_fails.extract failed"
    assert alert["dedup_key"] == "nightly_load_fails-extract"
    assert alert["severity"] == "critical"
    assert alert["class"] == "airflow.task_failure"
    assert alert["custom_details"]["try"] == "1"
    assert alert["custom_details"]["run_id"].startswith("manual__")
    [bp] = bigpanda
    assert bp["body"] == {
        "app_key": "nightly",
        "status": "critical",
        "host": "nightly_load_fails",
        "check": "extract",
    }
    assert "Failed to run task callback" not in done.stdout
    assert PD_KEY not in done.stdout
    assert BP_TOKEN not in done.stdout
