"""Real Apache Airflow for the tests, driven through its own venv (``.venv-airflow``).

``scripts/test.sh`` makes that venv (``scripts/_airflow_venv.sh``): Airflow
and alertwire, editable, with none of our dev tools. The suite never imports
Airflow; it runs ``.venv-airflow/bin/airflow`` and ``.venv-airflow/bin/python``
as subprocesses with ``AIRFLOW_HOME`` in a temporary directory and SQLite
metadata, migrated once per session. A missing venv is a skip, so a failure
under ``scripts/test.sh`` (which makes it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["AIRFLOW_TIMEOUT", "ALERTWIRE_CLI", "AirflowEnv", "airflow", "connection"]

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("ALERTWIRE_AIRFLOW_VENV", ROOT / ".venv-airflow"))
DAGS = Path(__file__).resolve().parents[1] / "airflow" / "dags"
#: Our own venv's CLI (the relay the tests run beside Airflow).
ALERTWIRE_CLI = str(Path(sys.executable).with_name("alertwire"))
#: One Airflow command (``dags test`` takes about 10 s here); far above, so only a hang trips it.
AIRFLOW_TIMEOUT = 300.0


def connection(conn_type: str, *, password: str, login: str | None = None, **extra: str) -> str:
    """An ``AIRFLOW_CONN_*`` value in Airflow's JSON form."""
    conn: dict[str, object] = {"conn_type": conn_type, "password": password, "extra": extra}
    if login is not None:
        conn["login"] = login
    return json.dumps(conn)


@dataclass(frozen=True)
class AirflowEnv:
    """A migrated ``AIRFLOW_HOME`` and the commands of the Airflow venv."""

    home: Path
    env: Mapping[str, str]

    @property
    def airflow_bin(self) -> str:
        return str(VENV / "bin" / "airflow")

    @property
    def python(self) -> str:
        return str(VENV / "bin" / "python")

    def run(
        self, args: list[str], *, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command with the Airflow environment (plus ``extra_env``); output merged."""
        return subprocess.run(
            args,
            env={**self.env, **(extra_env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=AIRFLOW_TIMEOUT,
            check=False,
        )

    def airflow(
        self, *args: str, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run([self.airflow_bin, *args], extra_env=extra_env)

    def python_script(
        self, code: str, *, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run([self.python, "-c", code], extra_env=extra_env)


def _clean_environment() -> dict[str, str]:
    """This process's environment without anything that could steer Airflow or alertwire."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "ALERTWIRE_")) and k not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowEnv]:
    """Airflow with a fresh SQLite metadata database, migrated once per session."""
    if not (VENV / "bin" / "airflow").exists():
        pytest.skip(f"no Airflow venv at {VENV}: scripts/test.sh makes it")
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **_clean_environment(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        # The tests' own loopback servers: never through a proxy a CI machine may set.
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    af = AirflowEnv(home=home, env=env)
    done = af.airflow("db", "migrate")
    assert done.returncode == 0, done.stdout[-4000:]
    yield af
