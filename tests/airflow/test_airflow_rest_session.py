"""PagerdutyHook.get_session() / client(): an alertwire.rest.PagerDutyAPI built with the token.

Meant as tests/airflow/test_airflow_rest_session.py once alertwire.rest (the REST API
session) is merged beside alertwire.airflow; runs in the Airflow venv like the
other tests/airflow/test_airflow_real.py checks.
"""

from __future__ import annotations

import json

from tests.support.airflow_support import AirflowEnv, connection

TOKEN = "u+airflowRestTokenSecret0001"

SCRIPT = """
import json
from alertwire import ConfigurationError
from alertwire.airflow import PagerdutyHook
from alertwire.rest import PagerDutyAPI

out = {}
by_argument = PagerdutyHook(token=TOKEN)  # no connection needed when the token is given
session = by_argument.get_session()
out["session"] = type(session).__name__
out["client"] = type(by_argument.client()).__name__
out["is_api"] = isinstance(session, PagerDutyAPI)
out["repr_has_token"] = TOKEN in repr(session)
# The hook's retry= bounds the session's requests too (it was the default policy).
from alertwire import RetryPolicy
once = PagerdutyHook(token=TOKEN, retry=RetryPolicy.never()).get_session()
out["session_retry_attempts"] = once.retry.max_attempts
out["default_retry_attempts"] = session.retry.max_attempts

from_connection = PagerdutyHook()  # pagerduty_default: the token in the password
out["from_connection"] = isinstance(from_connection.get_session(), PagerDutyAPI)

try:
    PagerdutyHook(token="", pagerduty_conn_id="no_token").get_session()
except ConfigurationError as exc:
    out["no_token"] = str(exc)
print("RESULT " + json.dumps(out))
"""


def test_get_session_and_client_return_the_rest_session(airflow: AirflowEnv) -> None:
    env = {
        "AIRFLOW_CONN_PAGERDUTY_DEFAULT": connection("pagerduty", password=TOKEN),
        "AIRFLOW_CONN_NO_TOKEN": connection("pagerduty", password=""),
    }
    done = airflow.python_script(f"TOKEN = {TOKEN!r}\n" + SCRIPT, extra_env=env)
    assert done.returncode == 0, done.stdout[-5000:]
    [line] = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    out = json.loads(line.removeprefix("RESULT "))
    assert out == {
        "session": "PagerDutyAPI",
        "client": "PagerDutyAPI",
        "is_api": True,
        "repr_has_token": False,
        "session_retry_attempts": 1,
        "default_retry_attempts": 5,
        "from_connection": True,
        "no_token": "no PagerDuty REST API token: pass token= or set the password of"
        " connection 'no_token'",
    }
    assert TOKEN not in done.stdout
