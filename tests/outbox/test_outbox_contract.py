"""The outbox contract on BOTH stores: what only shows with several writers, and PostgreSQL's own.

The behaviour tests live in the outbox's own modules (rules in
``test_outbox_machine``, the enqueue API in ``test_outbox_sqlite``, delivery in
``test_relay_delivery``) and take the parametrised
:func:`tests.support.outbox_backends.outbox` fixture there, so each runs once as
``[sqlite]`` and once as ``[postgres]``. Here: the contract tests that only make
sense with several writers (concurrent claims, pacing across relays, the
in-flight index), also on both stores, and a few PostgreSQL-only ones (URLs,
credentials, redaction, migration).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from alertwire import BadRequest, ConfigurationError, OutboxError, TriggerAlert
from alertwire.cli.main import main as cli_main
from alertwire.outbox import Outbox
from alertwire.outbox.machine import Claimed, Delivered, Machine, Outcome, Release
from tests.support import outbox_rules as _rules
from tests.support.outbox_backends import fresh_pg_target
from tests.support.outbox_rules import KEY_A, KEY_B
from tests.support.services import PostgresCluster


class FixedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _claim_concurrently(
    outbox: Outbox, relays: int, clock: FixedClock, **kw: object
) -> list[list[Claimed]]:
    """``relays`` machines claim at once (a barrier), each from its own thread."""
    machines = [
        Machine(outbox.store, owner=f"relay-{i}", clock=clock, **kw)  # type: ignore[arg-type]
        for i in range(relays)
    ]
    barrier = threading.Barrier(relays)
    results: list[list[Claimed]] = [[] for _ in machines]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = machines[i].claim(50)[0]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(relays)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


# ---------------------------------------------------------------- several writers, both stores


def test_concurrent_claims_never_share_a_row_or_a_key(outbox: Outbox) -> None:
    for i in range(40):
        _rules.lifecycle(outbox, f"k{i}", KEY_A if i % 2 else KEY_B)
    clock = FixedClock(_rules.Clock().now)
    for _round in range(4):
        results = _claim_concurrently(outbox, 4, clock, rate_limit_per_minute=0)
        rows = [row for got in results for row in got]
        assert len({r.id for r in rows}) == len(rows), "a row was claimed twice"
        assert len({r.order_key for r in rows}) == len(rows), "a key was held twice"
        if _round == 0:
            assert len(rows) == 40  # every head, no matter which relay got it
        refused = outbox.store.settle(
            [Delivered(r.id, clock.now, 202) for r in rows], owner="someone-else"
        )
        assert not any(refused)  # outcomes are owner-checked
        for i, got in enumerate(results):
            owner = Machine(outbox.store, owner=f"relay-{i}", clock=clock)
            assert all(owner.settle([owner.delivered(r, 202) for r in got]))
    assert outbox.stats().delivered == 120


def test_pacing_holds_across_concurrent_relays(outbox: Outbox) -> None:
    for i in range(10):
        _rules.lifecycle(outbox, f"a{i}", KEY_A)
        _rules.lifecycle(outbox, f"b{i}", KEY_B)
    clock = FixedClock(_rules.Clock().now)
    results = _claim_concurrently(outbox, 4, clock, rate_limit_per_minute=60)
    per_route = Counter(r.route for got in results for r in got)
    # One claim per routing key per second, however many relays asked at once.
    assert sorted(per_route.values()) == [1, 1]
    again = _claim_concurrently(outbox, 4, clock, rate_limit_per_minute=60)
    assert [r for got in again for r in got] == []
    clock.now += 1.0
    later = _claim_concurrently(outbox, 4, clock, rate_limit_per_minute=60)
    assert sorted(Counter(r.route for got in later for r in got).values()) == [1, 1]


def test_a_key_with_an_event_in_flight_waits_even_for_a_retried_earlier_one(
    outbox: Outbox, request: pytest.FixtureRequest
) -> None:
    """``queue retry --superseded`` of an earlier dead event while a later one of its key
    is in flight (without it, the in-flight one supersedes the dead one: it stays dead)."""
    clock = _rules.Clock()
    ids = _rules.lifecycle(outbox, "k1")
    m = _rules.machine(outbox, clock, owner="relay-1")
    (first,), _ = m.claim(1)
    m.settle([m.failed(first, BadRequest("no"))])  # dead; the key moves on
    (second,), _ = m.claim(1)
    assert second.id == ids[1]
    assert [(d.id, d.superseded) for d in outbox.dead()] == [(first.id, True)]
    assert outbox.retry([first.id]) == 0  # it would go out after the one being sent
    # Asked for anyway: an earlier event of the key is pending again.
    assert outbox.retry([first.id], superseded=True) == 1
    other = _rules.machine(outbox, clock, owner="relay-2")
    assert other.claim(5) == ([], [])  # the key is busy: never two of it in flight
    m.settle([m.delivered(second, 202)])
    (retried,), _ = other.claim(5)
    assert retried.id == first.id


def test_a_batch_a_store_cannot_record_a_kind_at_a_time_is_refused_whole(
    outbox: Outbox,
) -> None:
    """Two outcomes for one event, or an outcome of a type no statement records, are
    refused before anything is written (each store records a kind at a time)."""
    clock = FixedClock(_rules.Clock().now)
    _rules.lifecycle(outbox, "k1", KEY_A)
    _rules.lifecycle(outbox, "k2", KEY_B)
    m = Machine(outbox.store, owner="relay-1", clock=clock)
    rows, _ = m.claim(2)
    assert len(rows) == 2
    one, other = rows
    twice: list[Outcome] = [Delivered(one.id, clock.now, 202), Release(other.id), Release(one.id)]
    with pytest.raises(ValueError, match=f"two outcomes for event {one.id}"):
        outbox.store.settle(twice, owner="relay-1")

    @dataclasses.dataclass(frozen=True)
    class Sent(Delivered):
        pass

    with pytest.raises(TypeError, match="outcome of type Sent"):
        outbox.store.settle([Sent(one.id, clock.now, 202)], owner="relay-1")
    # Nothing was written: both rows are still leased by relay-1, and settle as usual.
    assert outbox.stats().leased == 2
    assert m.settle([m.delivered(r, 202) for r in rows]) == [True, True]
    assert outbox.stats().delivered == 2


# ---------------------------------------------------------------- PostgreSQL only


pg = pytest.mark.postgres


@pg
def test_unique_index_refuses_two_events_of_one_key_in_flight(
    postgres_cluster: PostgresCluster, pg_passfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.setenv("PGPASSFILE", str(pg_passfile))
    url, _schema = fresh_pg_target(postgres_cluster)
    with Outbox.open(url) as ob:
        _rules.lifecycle(ob, "k1")
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("UPDATE alertwire_events SET state = 1, lease_owner = 'x'")


@pg
def test_a_claim_that_loses_the_in_flight_index_race_gets_nothing_not_an_error(
    postgres_cluster: PostgresCluster, pg_passfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another relay leases a later event of the key in a transaction our claim cannot see
    yet: our claim waits on the unique index, loses, tries again, and takes nothing."""
    import psycopg

    monkeypatch.setenv("PGPASSFILE", str(pg_passfile))
    url, _schema = fresh_pg_target(postgres_cluster)
    with Outbox.open(url) as ob, psycopg.connect(url) as other:
        first, second, _ = _rules.lifecycle(ob, "k1")
        clock = _rules.Clock()
        m = _rules.machine(ob, clock, owner="relay-1")
        # The other relay (its snapshot saw the first event dead) leases the second one...
        other.execute(
            "UPDATE alertwire_events SET state = 1, lease_owner = 'relay-2',"
            " lease_expires = %(until)s WHERE id = %(id)s",
            {"until": clock.now + 60, "id": second},
        )
        got: list[object] = []
        claimer = threading.Thread(target=lambda: got.append(m.claim(5)))
        claimer.start()
        # ...and commits only once our claim is blocked on the unique index.
        with psycopg.connect(url, autocommit=True) as watch:
            for _ in range(10_000):
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                ).fetchone()
                if waiting and waiting[0]:
                    break
                claimer.join(0.005)
            else:
                raise AssertionError("the claim never waited on the index")
        other.commit()
        claimer.join(30)
        assert got == [([], [])]  # someone else has the key: nothing, and no error
        other.execute(
            "UPDATE alertwire_events SET state = 2, lease_owner = NULL WHERE id = %(id)s",
            {"id": second},
        )
        other.commit()
        (head,), _ = m.claim(5)
        assert head.id == first


@pg
def test_password_never_shown_and_libpq_credentials_work(
    postgres_cluster: PostgresCluster,
    pg_passfile: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    password = postgres_cluster.password
    url, _schema = fresh_pg_target(postgres_cluster)
    with_password = url.replace("alertwire@", f"alertwire:{password}@")
    with Outbox.open(with_password) as ob:
        ob.enqueue(TriggerAlert("x", dedup_key="k"), routing_key=KEY_A)
        assert password not in repr(ob) and password not in ob.location
        assert password not in repr(ob.store) and ":***@" in ob.location
    # A wrong password: a clear OutboxError naming the outbox, without the password.
    wrong = with_password.replace(password, password[::-1] + "x")
    with pytest.raises(OutboxError) as caught:
        Outbox.open(wrong).stats()
    assert "password authentication failed" in str(caught.value)
    assert password[::-1] not in str(caught.value) and password not in str(caught.value)
    # The CLI: queue status shows the redacted URL only.
    assert cli_main(["queue", "status", "--json", "--outbox", with_password]) == 0
    out = capsys.readouterr().out
    assert password not in out and json.loads(out)["pending"] == 1
    # Credentials from libpq's environment: PGPASSWORD for a URL without one, and
    # ALERTWIRE_OUTBOX selecting PostgreSQL.
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PGPASSWORD": password,
        "ALERTWIRE_OUTBOX": url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "alertwire.cli.main", "queue", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pending"] == 1 and password not in done.stdout + done.stderr
    # A relay given the password in the URL logs (INFO) without it, and so does a failure.
    for target in (with_password, wrong):
        relay = subprocess.run(
            [
                sys.executable,
                "-m",
                "alertwire.cli.main",
                "relay",
                "--drain",
                "--outbox",
                target,
                "--pagerduty-url",
                "http://127.0.0.1:9",
                "--max-age",
                "0.001",
            ],
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        logged = relay.stdout + relay.stderr
        if target == with_password:
            # Connected and read the event: it is too old (--max-age), so dead, exit 7.
            assert relay.returncode == 7 and "event=relay_stopped" in logged, logged
        else:
            assert relay.returncode != 0 and "password authentication failed" in logged, logged
        assert password not in logged and password[::-1] not in logged


@pg
def test_migrate_is_idempotent_and_records_the_version(
    postgres_cluster: PostgresCluster,
    pg_passfile: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    import psycopg

    monkeypatch.setenv("PGPASSFILE", str(pg_passfile))
    url, _schema = fresh_pg_target(postgres_cluster)
    for _ in range(2):
        assert cli_main(["queue", "migrate", "--outbox", url]) == 0
        assert "schema version 3" in capsys.readouterr().out
    with psycopg.connect(url) as conn:
        versions = conn.execute("SELECT version FROM alertwire_schema ORDER BY version")
        assert versions.fetchall() == [(1,), (2,), (3,)]  # one row per step applied
        conn.execute("INSERT INTO alertwire_schema VALUES (99)")
    with pytest.raises(OutboxError, match="schema version 99, newer"):
        Outbox.open(url).stats()
    sqlite_path = str(tmp_path / "o.sqlite3")
    assert cli_main(["queue", "migrate", "--outbox", sqlite_path]) == 0
    assert "schema version 4" in capsys.readouterr().out


@pg
def test_postgres_and_postgresql_schemes_select_the_postgres_store(
    postgres_cluster: PostgresCluster, pg_passfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alertwire.outbox.postgres import PostgresStore

    monkeypatch.setenv("PGPASSFILE", str(pg_passfile))
    url, _schema = fresh_pg_target(postgres_cluster)
    for target in (url, url.replace("postgresql://", "postgres://", 1)):
        with Outbox.open(target) as ob:
            assert isinstance(ob.store, PostgresStore)
            ob.enqueue(TriggerAlert("x"), routing_key=KEY_A)
    with Outbox.open(url) as ob:
        assert ob.stats().pending == 2


@pytest.mark.parametrize(
    "dsn",
    [
        "host=127.0.0.1 dbname=alerts password=hunter2-in-dsn",
        " PASSWORD = hunter2-in-dsn",
        "keepalives=1 sslrootcert=/ca.pem host=db password=hunter2-in-dsn",
        "client_encoding=UTF8 password=hunter2-in-dsn",
    ],
)
def test_a_keyword_connection_string_is_refused_not_made_a_file_named_after_it(
    dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Taken as a path, it became a file named after the password in the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALERTWIRE_OUTBOX", dsn)
    monkeypatch.setenv("ALERTWIRE_ROUTING_KEY", KEY_A)
    assert cli_main(["trigger", "x", "--queue"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "keyword/value connection string" in line and "hunter2" not in line
    with pytest.raises(ConfigurationError):
        Outbox.open(dsn)
    assert list(tmp_path.iterdir()) == []
    with Outbox.open(str(tmp_path / "host=x")) as outbox:  # a path that says so is a path
        assert outbox.stats().pending == 0


@pg
def test_the_tls_key_passphrase_in_the_url_is_never_shown(
    postgres_cluster: PostgresCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sslpassword`` (the client key's passphrase) is a secret like ``password``:
    it was shown whole in the location, every error and the relay's log lines."""
    url, _schema = fresh_pg_target(postgres_cluster)
    passphrase = "k3y-Passphrase-9f"
    wrong = url.replace("alertwire@", "alertwire:not-the-password@")
    for target in (
        f"{wrong}&sslpassword={passphrase}&sslmode=disable",
        f"{wrong}&ssl%70assword={passphrase}&sslmode=disable",  # libpq decodes the name
    ):
        with Outbox.open(target) as ob, pytest.raises(OutboxError) as caught:
            ob.stats()
        assert "password authentication failed" in str(caught.value)
        assert passphrase not in str(caught.value) + ob.location + repr(ob)
        assert cli_main(["queue", "status", "--outbox", target]) == 2
        assert passphrase not in "".join(capsys.readouterr())


def test_redact_url_removes_every_password_form() -> None:
    from alertwire.outbox.postgres import redact_url

    assert redact_url("postgresql://u:p4ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgres://h/db?password=p4ss&sslmode=require") == (
        "postgres://h/db?password=***&sslmode=require"
    )
    assert "p@ss" not in redact_url("postgresql://u:p@ss@h/db")
    # A URL pasted into the database name, or a parameter, brings its password again.
    doubled = "postgresql://u:p4ss@h:5432/postgresql://u:p4ss@h:5432/db?application_name=p4ss"
    assert "p4ss" not in redact_url(doubled)
    assert "p4ss" not in redact_url("postgres://h/p4ss?password=p4ss")
    assert redact_url("postgresql://h/db?sslmode=require&sslpassword=p4ss") == (
        "postgresql://h/db?sslmode=require&sslpassword=***"
    )
    assert "p4ss" not in redact_url("postgresql://h/db?ssl%70assword=p4ss")
    # A password with an unencoded "/" or "@" does not end the userinfo early.
    for url in (
        "postgresql://u:pa/ss@host/db",
        "postgresql://u:pa@ss/x@host:5432/db?sslmode=require",
    ):
        shown = redact_url(url)
        assert "pa/ss" not in shown and "ss/x" not in shown, shown
        assert shown.startswith("postgresql://u:***@host") and shown.endswith(
            "/db" if "?" not in url else "require"
        )
    # libpq reads a "?" before the "@" as part of the password: so must we.
    for url in (
        "postgresql://u:pa?ss-w0rd@host:5432/db",
        "postgresql://u:pa?ss&w0rd=x@host/db?sslmode=require",
    ):
        shown = redact_url(url)
        assert "ss-w0rd" not in shown and "w0rd" not in shown, shown
        assert shown.startswith("postgresql://u:***@host"), shown


# ---------------------------------------------------------------- the CLI, both stores


def test_cli_queue_relay_and_status_work_the_same_on_both_stores(
    outbox_target: str, upstream: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``trigger --queue``, ``send --queue FILE``, ``relay --drain``, ``queue status``."""
    assert cli_main(["queue", "migrate", "--outbox", outbox_target]) == 0
    base = ["--queue", "--outbox", outbox_target, "--routing-key", KEY_A]
    assert cli_main(["trigger", "disk full", "--source", "db1", "--dedup-key", "d1", *base]) == 0
    lines = tmp_path / "events.jsonl"
    lines.write_text(
        json.dumps({"type": "acknowledge", "dedup_key": "d1"})
        + "\n"
        + json.dumps({"type": "resolve", "dedup_key": "d1"})
        + "\n"
    )
    assert cli_main(["send", str(lines), *base]) == 0
    capsys.readouterr()
    assert cli_main(["queue", "status", "--json", "--outbox", outbox_target]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == 3
    argv = ["relay", "--drain", "--quiet", "--rate-limit", "0", "--poll-interval", "0.02"]
    assert cli_main([*argv, "--outbox", outbox_target, "--pagerduty-url", upstream.url]) == 0
    assert [a.action for a in sorted(upstream.accepted(), key=lambda a: a.seq)] == [
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert cli_main(["queue", "status", "--json", "--outbox", outbox_target]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["pending"], status["delivered"]) == (0, 3)
    assert KEY_A not in json.dumps(status)
