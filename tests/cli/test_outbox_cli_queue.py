"""``--queue`` on the sending commands: store, print the dedup key, let the relay deliver.

The commands are invoked through the real entry point; the relay runs as a
subprocess (``alertwire relay --drain``) against a loopback server.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from alertwire.cli.main import main as cli_main
from alertwire.outbox import Outbox
from tests.support.keys import BIGPANDA_TOKEN as TOKEN
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.relay_upstream import Upstream


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "outbox.sqlite3"
    monkeypatch.setenv("ALERTWIRE_OUTBOX", str(path))
    monkeypatch.setenv("ALERTWIRE_ROUTING_KEY", KEY)
    monkeypatch.setenv("ALERTWIRE_BIGPANDA_TOKEN", TOKEN)
    monkeypatch.setenv("ALERTWIRE_BIGPANDA_APP_KEY", "app1")
    for name in ("ALERTWIRE_PAGERDUTY_URL", "ALERTWIRE_BIGPANDA_URL", "ALERTWIRE_REGION"):
        monkeypatch.delenv(name, raising=False)
    return path


def drain(path: Path, upstream: Upstream) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "alertwire.cli.main",
            "relay",
            "--drain",
            "--outbox",
            str(path),
            "--pagerduty-url",
            upstream.url,
            "--bigpanda-url",
            upstream.url,
            "--rate-limit",
            "0",
            "--poll-interval",
            "0.05",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert KEY not in done.stderr and TOKEN not in done.stderr


def test_trigger_queue_prints_the_dedup_key_and_the_relay_delivers_it(
    env: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["trigger", "--queue", "disk full on db1"]) == 0
    dedup_key = capsys.readouterr().out.strip()
    assert len(dedup_key) == 32
    assert cli_main(["resolve", "--queue", dedup_key]) == 0
    assert capsys.readouterr().out.strip() == dedup_key
    assert upstream.arrivals == []  # nothing sent yet: only stored
    with Outbox(env) as ob:
        assert ob.stats().pending == 2
    drain(env, upstream)
    arrivals = sorted(upstream.accepted(), key=lambda a: a.seq)
    assert [(a.action, a.key) for a in arrivals] == [
        ("trigger", dedup_key),
        ("resolve", dedup_key),
    ]
    assert arrivals[0].body["routing_key"] == KEY
    assert "timestamp" in arrivals[0].body["payload"]  # stamped at enqueue


def test_queue_json_output(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["trigger", "--queue", "--json", "x", "--dedup-key", "k1"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["ok"] is True and record["status"] == "queued"
    assert record["dedup_key"] == "k1" and record["http_status"] == 0


def test_send_queue_file_is_one_transaction(
    env: Path, tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        {"type": "trigger", "summary": "a", "dedup_key": "k1"},
        {"type": "acknowledge", "dedup_key": "k1"},
        {"type": "bigpanda", "status": "critical", "host": "db1", "check": "disk"},
        {"type": "resolve", "dedup_key": "k1"},
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert cli_main(["send", "--queue", str(events)]) == 0
    assert "4 events: 0 delivered, 4 queued in the outbox" in capsys.readouterr().out
    with Outbox(env) as ob:
        assert ob.stats().pending == 4
    drain(env, upstream)
    arrivals = sorted(upstream.accepted(), key=lambda a: a.seq)
    pd = [a.action for a in arrivals if a.path == "/v2/enqueue"]
    assert pd == ["trigger", "acknowledge", "resolve"]
    (bp,) = [a for a in arrivals if a.path == "/data/v2/alerts"]
    assert bp.headers["Authorization"] == f"Bearer {TOKEN}" and bp.body["app_key"] == "app1"


def test_queue_into_an_unusable_outbox_is_exit_2_and_says_so(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = cli_main(["trigger", "--queue", "--outbox", str(blocker / "o.sqlite3"), "x"])
    assert code == 2
    err = capsys.readouterr().err
    assert "outbox" in err and "NOT queued" in err and KEY not in err


def alertwire(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: a process of its own, stdout and stderr captured."""
    return subprocess.run(
        [sys.executable, "-m", "alertwire.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.fixture
def cli_env(env: Path) -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "ALERTWIRE_OUTBOX_BUSY_TIMEOUT"}


def test_trigger_queue_under_a_lock_held_too_long_is_exit_5_with_the_truth(
    env: Path, cli_env: dict[str, str]
) -> None:
    import sqlite3

    with Outbox(env) as ob:
        ob.stats()
    holder = sqlite3.connect(env, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, holding on
    try:
        done = alertwire(
            "trigger",
            "--queue",
            "disk full",
            env={**cli_env, "ALERTWIRE_OUTBOX_BUSY_TIMEOUT": "0.3"},
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 5, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line == (
        f"alertwire: error: the outbox {env} stayed locked by another process for 0.3 s:"
        " cannot store the event; NOT queued"
    )
    with Outbox(env) as ob:
        assert ob.stats().pending == 0
    # The lock is gone: the same command, retried as exit 5 asks, is stored.
    assert alertwire("trigger", "--queue", "disk full", env=cli_env).returncode == 0


@pytest.mark.parametrize(
    "command",
    [
        ["queue", "status"],
        ["queue", "status", "--json"],
        ["queue", "dead"],
        ["queue", "retry", "--all"],
        ["queue", "purge", "--delivered-before", "1d"],
    ],
)
def test_reading_commands_on_a_missing_outbox_fail_and_create_nothing(
    command: list[str], tmp_path: Path, cli_env: dict[str, str]
) -> None:
    missing = tmp_path / "typo" / "outbox.sqlite3"
    done = alertwire(*command, "--outbox", str(missing), env=cli_env)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert f"there is no outbox at {missing}" in line and "nothing was created" in line
    assert not (tmp_path / "typo").exists()


def test_queue_migrate_creates_an_outbox_and_status_then_reads_it(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = tmp_path / "new" / "outbox.sqlite3"
    created = alertwire("queue", "migrate", "--outbox", str(path), env=cli_env)
    assert created.returncode == 0, created.stderr
    status = alertwire("queue", "status", "--json", "--outbox", str(path), env=cli_env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["pending"] == 0


def test_a_directory_or_a_foreign_database_as_outbox_is_refused_untouched(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    import os
    import sqlite3
    import stat

    directory = tmp_path / "state"
    directory.mkdir()
    os.chmod(directory, 0o755)  # noqa: S103 - a mode that is not ours to change
    for command in (["queue", "status"], ["trigger", "--queue", "x"]):
        done = alertwire(*command, "--outbox", str(directory), env=cli_env)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.splitlines()
        assert "is a directory" in line
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755
        assert list(directory.iterdir()) == []

    foreign = tmp_path / "app.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    for command in (["queue", "status"], ["trigger", "--queue", "x"], ["queue", "migrate"]):
        done = alertwire(*command, "--outbox", str(foreign), env=cli_env)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.splitlines()
        assert "is not an alertwire outbox" in line, line
    assert foreign.read_bytes() == before


def test_queue_dead_limit_is_a_count_and_a_negative_one_is_refused(
    env: Path, cli_env: dict[str, str]
) -> None:
    # "--limit -1" reached SQLite's LIMIT as "no limit" and listed every dead letter.
    from alertwire import TriggerAlert
    from alertwire.relay import Relay

    with Outbox(env) as outbox:
        for n in range(3):
            outbox.enqueue(TriggerAlert(f"old {n}", dedup_key=f"old-{n}"), routing_key=KEY)
        Relay(outbox, max_age=0.000001, rate_limit_per_minute=0).run(drain=True)
        assert outbox.stats().dead == 3
    listed = alertwire("queue", "dead", "--limit", "2", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 2
    refused = alertwire("queue", "dead", "--limit", "-1", env=cli_env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        "alertwire: error: argument --limit: must be at least 0, got '-1'"
        " (see alertwire queue dead --help)"
    ]


def test_a_limit_or_an_age_beyond_any_count_or_date_means_all_or_none(
    env: Path, cli_env: dict[str, str]
) -> None:
    """Both ended in an OverflowError traceback and exit 1: a limit past a 64-bit
    integer (SQLite would not bind it) and an age older than year 1."""
    from alertwire import TriggerAlert
    from alertwire.relay import Relay

    with Outbox(env) as outbox:
        outbox.enqueue(TriggerAlert("delivered", dedup_key="d-1"), routing_key=KEY)
        outbox.enqueue(TriggerAlert("old", dedup_key="d-2"), routing_key=KEY)
        Relay(outbox, max_age=0.000001, rate_limit_per_minute=0).run(drain=True)
        assert outbox.stats().dead == 2
    listed = alertwire("queue", "dead", "--limit", str(10**30), env=cli_env)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 2
    for age in ("99999999999d", "800000d"):
        purged = alertwire("queue", "purge", "--delivered-before", age, env=cli_env)
        assert purged.returncode == 0, purged.stderr
        assert purged.stdout == "0 delivered events purged\n" and purged.stderr == ""


def test_an_empty_outbox_option_counts_as_not_given(
    env: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """``--outbox "$OUTBOX"`` with the variable unset: $ALERTWIRE_OUTBOX (or the
    default) is used, as for every empty flag; it was refused as the directory '.'."""
    stored = alertwire("trigger", "x", "--queue", "--outbox", "", env=cli_env)
    assert stored.returncode == 0, stored.stderr
    status = alertwire("queue", "status", "--json", "--outbox", "", env=cli_env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["pending"] == 1 and json.loads(status.stdout)["outbox"] == str(
        env
    )
    home = tmp_path / "home"
    default = {k: v for k, v in cli_env.items() if k not in ("ALERTWIRE_OUTBOX", "XDG_STATE_HOME")}
    drained = alertwire(
        "relay", "--drain", "--quiet", "--outbox", "", env={**default, "HOME": str(home)}
    )
    assert drained.returncode == 0, drained.stderr
    assert (home / ".local/state/alertwire/outbox.sqlite3").is_file()


def test_queue_status_says_the_oldest_age_counts_events_in_flight(
    env: Path, cli_env: dict[str, str]
) -> None:
    """``pending`` counts waiting events only; the age beside it counts the one a relay is
    sending too (stuck in a send is what it should show), and the line says so: it
    read "oldest pending" next to "pending: 0"."""
    from alertwire.outbox.machine import Machine

    assert alertwire("queue", "migrate", env=cli_env).returncode == 0
    status = alertwire("queue", "status", env=cli_env)
    assert status.returncode == 0, status.stderr
    assert "oldest:    -\n" in status.stdout
    assert alertwire("trigger", "--queue", "disk full", env=cli_env).returncode == 0
    with Outbox(env) as ob:
        [claimed] = Machine(ob.store, rate_limit_per_minute=0).claim(1)[0]
        assert claimed.id
    status = alertwire("queue", "status", env=cli_env)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert "pending:   0" in lines and "in flight: 1" in lines
    [oldest] = [line for line in lines if line.startswith("oldest")]
    assert oldest.startswith("oldest:    ") and oldest.endswith(" s ago (pending or in flight)")


@pytest.mark.parametrize(
    ("args", "printed"),
    [
        (["trigger", "disk full"], r"[0-9a-f]{32}"),
        (["resolve", "disk-db1"], r"disk-db1"),
        (["change", "deployed"], r"queued in the outbox as event \d+"),
        (["bigpanda", "critical", "--host", "db1"], r"queued in the outbox as event \d+"),
    ],
)
def test_what_queue_prints_is_what_its_help_says(
    args: list[str], printed: str, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A change or a BigPanda alert has no dedup key: ``--queue`` prints its outbox id,
    and the option's help says so (it promised a dedup key on every command)."""
    assert cli_main([*args, "--queue"]) == 0
    out = capsys.readouterr().out.strip()
    assert re.fullmatch(printed, out), out
    with pytest.raises(SystemExit):
        cli_main([args[0], "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    promise = re.search(
        r"--queue store in the durable outbox and return at once \(printing (.*?)\);", help_text
    )
    assert promise, help_text
    if "dedup key" in promise.group(1):
        assert re.fullmatch(r"[0-9a-f]{32}|disk-db1", out)
    else:
        assert promise.group(1) == "'queued in the outbox as event N'"
