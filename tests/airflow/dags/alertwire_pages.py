"""DAGs that page through alertwire's notifiers; run by tests/airflow/test_airflow_real.py.

Each DAG has one task that fails, so its on_failure_callback runs under
``airflow dags test``. Where the pages go comes from the connections the test
puts in the environment (AIRFLOW_CONN_*), never from this file.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG, task

from alertwire import RetryPolicy
from alertwire.airflow import BigPandaNotifier, PagerdutyNotifier

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEDUP = "{{ dag.dag_id }}-{{ ti.task_id }}"


def _failing() -> None:
    raise RuntimeError("the task failed on purpose")


def _pagerduty(**overrides: object) -> PagerdutyNotifier:
    fields: dict[str, object] = {
        "summary": "{{ dag.dag_id }}.{{ ti.task_id }} failed",
        "severity": "critical",
        "source": "airflow-{{ dag.dag_id }}",
        "dedup_key": DEDUP,
        "custom_details": {"dag": "{{ dag.dag_id }}", "task": "{{ ti.task_id }}"},
        "class_type": "airflow.{{ ti.task_id }}",
        "component": "{{ ti.task_id }}",
        "group": "{{ dag.dag_id }}",
    }
    fields.update(overrides)
    return PagerdutyNotifier(**fields)  # type: ignore[arg-type]


with DAG("aw_pages", schedule=None, start_date=START, catchup=False):
    task(
        task_id="boom",
        on_failure_callback=[
            _pagerduty(),
            BigPandaNotifier(
                status="crit",
                host="{{ dag.dag_id }}",
                check="{{ ti.task_id }}",
                description="{{ ti.task_id }} failed",
                tags={"dag": "{{ dag.dag_id }}"},
            ),
        ],
    )(_failing)()

with DAG("aw_outage", schedule=None, start_date=START, catchup=False):
    task(
        task_id="boom",
        on_failure_callback=[
            # stored: its connection names an outbox
            _pagerduty(pagerduty_events_conn_id="pd_outbox"),
            # lost: nothing configured, the service is down; short retries keep the test quick
            _pagerduty(
                dedup_key="{{ dag.dag_id }}-lost",
                retry=RetryPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.05),
            ),
            # lost before it starts: a connection that does not exist, and no key given
            _pagerduty(pagerduty_events_conn_id="no_such_connection"),
        ],
    )(_failing)()

with DAG("aw_http_image", schedule=None, start_date=START, catchup=False):
    task(
        task_id="boom",
        on_failure_callback=[
            # PagerDuty shows only https:// images: this one is left out (a WARNING), the page goes
            _pagerduty(
                images=[
                    {"src": "http://grafana.internal/{{ ti.task_id }}.png", "alt": "cpu"},
                    {"src": "https://grafana.example.com/{{ ti.task_id }}.png", "alt": "mem"},
                ],
                links=[{"href": "https://runbook.example.com/{{ dag.dag_id }}"}],
            ),
        ],
    )(_failing)()
