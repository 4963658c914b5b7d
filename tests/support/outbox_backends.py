"""One parametrised outbox fixture over both stores: SQLite (a temp file) and PostgreSQL.

Every test that takes ``outbox`` (or ``outbox_target``) from here runs twice,
``[sqlite]`` and ``[postgres]``, against the real thing: a file, and the
throwaway cluster of ``tests/support/services.py``.

PostgreSQL isolation is a fresh schema per test (``CREATE SCHEMA``, then
``search_path`` through the URL's ``options``): milliseconds, where a fresh
database would cost a template copy. The URL carries *no password*: it comes
from a ``PGPASSFILE`` (mode 0600) set in the environment for the test, the
way an operator would keep it out of command lines. That also makes
``outbox.location`` (which never shows a password) a URL that works, so the
behaviour tests can hand it to the CLI and to relay subprocesses unchanged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from alertwire.outbox import Outbox
from tests.support.services import PostgresCluster

__all__ = ["BACKENDS", "fresh_pg_target", "outbox", "outbox_target", "pg_passfile"]

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_passfile(
    postgres_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A libpq password file for the test cluster's role (owner-only, as libpq insists)."""
    path = tmp_path_factory.mktemp("pgpass") / "pgpass"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(
            f"127.0.0.1:{postgres_cluster.port}:*:{postgres_cluster.user}:"
            f"{postgres_cluster.password}\n"
        )
    return path


def fresh_pg_target(cluster: PostgresCluster) -> tuple[str, str]:
    """A new empty schema; returns (password-less URL selecting it, schema name)."""
    import psycopg

    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = (
        f"postgresql://{cluster.user}@127.0.0.1:{cluster.port}/{cluster.database}"
        f"?options=-csearch_path%3D{schema}"
    )
    return url, schema


def drop_schema(cluster: PostgresCluster, schema: str) -> None:
    import psycopg

    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def outbox_target(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A path (SQLite) or URL (PostgreSQL) naming a fresh, empty outbox."""
    if request.param == "sqlite":
        yield str(tmp_path / "outbox.sqlite3")
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    passfile: Path = request.getfixturevalue("pg_passfile")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    url, schema = fresh_pg_target(cluster)
    try:
        yield url
    finally:
        drop_schema(cluster, schema)


@pytest.fixture
def outbox(outbox_target: str) -> Iterator[Outbox]:
    ob = Outbox.open(outbox_target)
    yield ob
    ob.close()
