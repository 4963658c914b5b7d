"""PostgreSQL stops hard while relays drain; they wait, say so, and finish the job.

The cluster is this module's own (it is stopped and started again, which
would disturb every other test on the shared one). ``pg_ctl -m immediate``
is how a crash or a failover looks to a client: connections drop without a
goodbye, new ones are refused, and after the restart the server runs crash
recovery first ("the database system is starting up").

Synchronised on observable conditions only: the stop comes once the
upstream has accepted a number of events, the restart once both relays'
``/healthz`` answer 503 (one relay serves it on its ingest endpoint, the
other on ``--metrics-listen``), the end once every event arrived.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alertwire import AcknowledgeAlert, OutboxError, ResolveAlert, TriggerAlert
from alertwire.outbox import Outbox
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.pg_cluster import (
    ClusterUnavailable,
    PostgresCluster,
    restart_postgres,
    stop_postgres,
    throwaway_cluster,
)
from tests.support.relay_upstream import RANK, Upstream
from tests.support.sandbox_http import fetch
from tests.support.services import free_port
from tests.support.waiting import wait_while_alive

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

KEYS = 100  # x 3 actions = 300 events
CONCURRENCY = 4
SAFETY = 90.0  # seconds: a bound on a hang, never an expectation


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    try:
        with throwaway_cluster() as running:
            yield running
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def database(cluster: PostgresCluster) -> Iterator[str]:
    """A fresh database; its URL carries the password (which must never be shown)."""
    yield cluster.new_database()
    # The server is up again at the end of every test (or the test failed anyway).


def failed_tries(metrics_url: str) -> float:
    status, text, _ = fetch(metrics_url)
    assert status == 200, text
    found = re.search(r"^alertwire_relay_outbox_failures_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alertwire.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=SAFETY,
        check=False,
    )


def test_a_lost_connection_is_retryable_names_the_server_never_the_password_and_reconnects(
    cluster: PostgresCluster, database: str
) -> None:
    outbox = Outbox.open(database)
    try:
        outbox.enqueue(TriggerAlert("before"), routing_key=KEY)
        stop_postgres(cluster)
        try:
            errors = []
            for call in (outbox.stats, lambda: outbox.enqueue(TriggerAlert("x"), routing_key=KEY)):
                with pytest.raises(OutboxError) as caught:
                    call()
                errors.append(caught.value)
            env = {**os.environ, "ALERTWIRE_OUTBOX": database}
            result = cli("trigger", "--queue", "--routing-key", KEY, "during", env=env)
        finally:
            restart_postgres(cluster)
        for error in errors:
            assert error.retryable, error
            assert f"127.0.0.1:{cluster.port}/" in str(error) and cluster.password not in str(error)
        assert "NOT queued" in str(errors[1])
        # The CLI: "retry later" (5), never "bad input" (2); one line, no password.
        assert result.returncode == 5, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert cluster.password not in result.stderr + result.stdout
        # Back: the very next call reconnects (the lost pool was dropped).
        assert outbox.stats().pending == 1
        # Restarted while idle: the pooled connection is dead; the failure is passing,
        # and the call after it works.
        stop_postgres(cluster)
        restart_postgres(cluster)
        try:
            outbox.stats()
        except OutboxError as exc:
            assert exc.retryable, exc
        assert outbox.stats().pending == 1
    finally:
        outbox.close()
    # A server that answers "no" is not an outage: a wrong password needs a person.
    wrong = Outbox.open(database.replace(cluster.password, "wrong-password"))
    with pytest.raises(OutboxError, match="password authentication failed") as caught:
        wrong.stats()
    assert not caught.value.retryable
    wrong.close()


def test_a_connection_lost_while_committing_says_the_event_may_be_queued(
    database: str,
) -> None:
    """The server dies at COMMIT (a deferred trigger ends its own session there): the
    client cannot know whether the commit happened, and must not say "NOT queued"."""
    import psycopg

    outbox = Outbox.open(database)
    try:
        outbox.stats()  # the tables exist
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION die_at_commit() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$"
            )
            conn.execute(
                "CREATE CONSTRAINT TRIGGER die AFTER INSERT ON alertwire_events"
                " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION die_at_commit()"
            )
        with pytest.raises(OutboxError) as caught:
            outbox.enqueue(TriggerAlert("at commit"), routing_key=KEY)
        assert caught.value.retryable
        assert "may or may not be queued" in str(caught.value), caught.value
        assert "NOT queued" not in str(caught.value)
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("DROP TRIGGER die ON alertwire_events")
        # A new connection for the next call, which works.
        outbox.enqueue(TriggerAlert("after"), routing_key=KEY)
        assert outbox.stats().pending == 1
    finally:
        outbox.close()


def start_relay(
    database: str, upstream: Upstream, log: Path, out: Path, extra: list[str]
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ALERTWIRE_OUTBOX": database, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as err, out.open("wb") as stdout:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "alertwire.cli.main",
                "relay",
                "--pagerduty-url",
                upstream.url,
                "--rate-limit",
                "0",
                "--concurrency",
                str(CONCURRENCY),
                "--timeout",
                "2",
                # Longer than the outage: no lease lapses, so a duplicate can only be an
                # event whose outcome was committed as the server died (commit unknown).
                "--lease",
                "60",
                "--poll-interval",
                "0.05",
                *extra,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=err,
        )


def test_two_relays_survive_a_hard_database_restart_and_deliver_everything_in_order(
    cluster: PostgresCluster, database: str, tmp_path: Path
) -> None:
    outbox = Outbox.open(database)
    for make in (lambda k: TriggerAlert("problem", dedup_key=k), AcknowledgeAlert, ResolveAlert):
        outbox.enqueue_many([make(f"key-{i:03d}") for i in range(KEYS)], routing_key=KEY)
    outbox.close()
    total = KEYS * 3
    upstream = Upstream(delay=0.02).start()
    logs = [tmp_path / f"relay-{i}.err" for i in range(2)]
    outs = [tmp_path / f"relay-{i}.out" for i in range(2)]
    metrics_port = free_port()
    procs = [
        start_relay(database, upstream, logs[0], outs[0], ["--listen", "127.0.0.1:0"]),
        start_relay(
            database, upstream, logs[1], outs[1], ["--metrics-listen", f"127.0.0.1:{metrics_port}"]
        ),
    ]
    try:
        wait_while_alive("relay 0 to listen", lambda: "health:" in outs[0].read_text(), procs)
        ingest = re.search(r"listening on (\S+)", outs[0].read_text())
        assert ingest is not None
        health = [f"{ingest.group(1)}/healthz", f"http://127.0.0.1:{metrics_port}/healthz"]
        metrics_urls = [f"{ingest.group(1)}/metrics", f"http://127.0.0.1:{metrics_port}/metrics"]
        wait_while_alive(
            "relay 1's metrics", lambda: "metrics_listening" in logs[1].read_text(), procs
        )
        assert [fetch(url)[0] for url in health] == [200, 200]

        wait_while_alive("60 deliveries", lambda: upstream.accepted_count() >= 60, procs)
        stop_postgres(cluster)
        at_crash = upstream.accepted_count()
        try:
            wait_while_alive(
                "both /healthz 503", lambda: all(fetch(url)[0] == 503 for url in health), procs
            )
            answers = [fetch(url) for url in health]
            # During the outage: ingest refuses with 503 + Retry-After, the CLI exits 5.
            event = b'{"routing_key": "%s", "event_action": "trigger", "payload":' % KEY.encode()
            event += b' {"summary": "s", "source": "h", "severity": "info"}}'
            refused = fetch(f"{ingest.group(1)}/v2/enqueue", event)
            queued = cli(
                "trigger",
                "--queue",
                "--routing-key",
                KEY,
                "x",
                env={**os.environ, "ALERTWIRE_OUTBOX": database},
            )
            # Down long enough for the backoff to show: two failed tries each (0.5 s apart).
            # /metrics keeps answering meanwhile (the queue gauges are left out).
            wait_while_alive(
                "2 tries", lambda: all(failed_tries(url) >= 2 for url in metrics_urls), procs
            )
        finally:
            restart_postgres(cluster)

        def everything_arrived() -> bool:
            return len({(a.key, a.action) for a in upstream.accepted()}) == total

        wait_while_alive("every event", everything_arrived, procs)
        wait_while_alive(
            "both /healthz 200", lambda: all(fetch(url)[0] == 200 for url in health), procs
        )
        wait_while_alive(
            "both relays to log the end of the outage",
            lambda: all("event=outbox_available" in log.read_text() for log in logs),
            procs,
        )
        metrics_text = fetch(f"http://127.0.0.1:{metrics_port}/metrics")[1]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=SAFETY) for proc in procs]
        check = Outbox.open(database)
        stats = check.stats()
        check.close()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        upstream.stop()

    assert codes == [0, 0]
    assert (stats.pending, stats.leased, stats.dead, stats.delivered) == (0, 0, 0, total)
    for status, body, headers in answers:
        assert status == 503 and headers["retry-after"] == "10", body
        assert cluster.password not in body and "127.0.0.1" not in body, body
    assert "outbox" in answers[0][1] and "outbox" in answers[1][1]
    assert refused[0] == 503 and refused[2]["retry-after"] == "10", refused
    assert queued.returncode == 5, queued.stderr

    accepted = upstream.accepted()
    delivered = Counter((a.key, a.action) for a in accepted)
    history: dict[Any, list[int]] = defaultdict(list)
    for arrival in sorted(upstream.arrivals, key=lambda a: a.seq):
        history[arrival.key].append(RANK[str(arrival.action)])
    out_of_order = sum(1 for r in history.values() for x, y in itertools.pairwise(r) if y < x)
    assert out_of_order == 0
    assert upstream.overlapping_keys == 0
    duplicates = sum(n - 1 for n in delivered.values())
    # At least once: a duplicate can only be an event in flight when the server died.
    assert duplicates <= 2 * CONCURRENCY

    texts = [log.read_text() for log in logs]
    for text in texts:
        assert cluster.password not in text
        assert "Traceback" not in text
        assert text.count("event=outbox_unavailable") == 1, text
        assert text.count("event=outbox_available") == 1, text
        assert len([line for line in text.splitlines() if " ERROR " in line]) <= 3, text
    assert "alertwire_relay_outbox_outages_total 1.0" in metrics_text
    assert "alertwire_relay_outbox_available 1.0" in metrics_text
    ended = [re.search(r"lasted=([\d.]+)s failed_tries=(\d+)", text) for text in texts]
    print(
        f"\nPostgreSQL restart: 2 relays, {total} events, server stopped (immediate) after"
        f" {at_crash} accepted; outage seen for"
        f" {[m.group(1) + ' s' for m in ended if m]} with"
        f" {[m.group(2) for m in ended if m]} failed tries; {len(accepted)} accepted,"
        f" lost 0, out of order 0, duplicates {duplicates}, exit codes {codes}"
    )
