"""``alertwire send --queue``: streamed in short chunks, bounded memory, honest when it stops.

Everything runs the CLI as a user would (a process of its own). Nothing
waits on a sleep: the tests poll the outbox (a reader never blocks the
writer in WAL mode) for an observable state, bounded by a deadline that is
a guard against a hang, never an expectation.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from alertwire import OutboxError
from alertwire.outbox import Outbox
from alertwire.outbox.machine import Machine
from alertwire.sandbox import Sandbox
from tests.support.keys import ROUTING_KEY as KEY
from tests.support.outbox_backends import drop_schema, fresh_pg_target
from tests.support.pg_cluster import PostgresCluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

LINES = 30_000
#: Peak RSS allowed for ``send --queue`` of LINES lines: generous (it measures about
#: 70 MB, a fixed cost; holding the whole file as before took about 175 MB for 30,000 lines).
RSS_LIMIT_MB = 100
GUARD = 60.0  # seconds: a bound on a hang, never an expectation


def cli_env(outbox: Path | str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTWIRE_")}
    env.update(ALERTWIRE_ROUTING_KEY=KEY, ALERTWIRE_OUTBOX=str(outbox), **extra)
    return env


def alertwire(
    *args: str, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alertwire.cli.main", *args],
        input=None if stdin is None else stdin.decode(),
        capture_output=True,
        text=True,
        timeout=GUARD,
        check=False,
        env=env,
    )


SEND_STDIN = ("send", "--queue", "-")


def piped_send(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``alertwire send --queue -`` reading a pipe the test writes and keeps open."""
    return subprocess.Popen(
        [sys.executable, "-m", "alertwire.cli.main", "send", "--queue", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def trigger_line(n: int) -> bytes:
    return json.dumps({"type": "trigger", "summary": f"line {n}"}).encode() + b"\n"


def big_file(path: Path, lines: int = LINES) -> Path:
    with path.open("w") as out:
        for i in range(lines):
            line = {"type": "trigger", "summary": f"disk {i} full", "dedup_key": f"k{i % 500}"}
            out.write(json.dumps(line) + "\n")
    return path


def pending(outbox: Path) -> int:
    """Events stored so far; 0 while the outbox does not exist or is being created."""
    try:
        with Outbox.open(outbox, create=False) as ob:
            return ob.stats().pending
    except OutboxError as exc:
        if exc.retryable or "no outbox at" in str(exc):
            return 0
        raise


# A parent of its own, so that RUSAGE_CHILDREN's peak is the send process's alone.
_MEASURED = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(done.stderr)
sys.stdout.write(done.stdout)
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(done.returncode)
"""


def test_a_big_input_is_stored_in_chunks_in_bounded_memory_while_others_queue(
    tmp_path: Path,
) -> None:
    """The input comes through a pipe the test holds open, two thirds first: what is
    visible half way then does not depend on how fast the machine stores."""
    outbox = tmp_path / "outbox.sqlite3"
    lines = big_file(tmp_path / "events.jsonl").read_text().splitlines(keepends=True)
    first_part = 2 * LINES // 3
    env = cli_env(outbox)
    send = subprocess.Popen(
        [sys.executable, "-c", _MEASURED, sys.executable, "-m", "alertwire.cli.main", *SEND_STDIN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert send.stdin is not None
    send.stdin.write("".join(lines[:first_part]))
    send.stdin.flush()
    # Chunks: a part of the input is visible to others while the rest is still to come.
    wait_for("a first chunk", lambda: pending(outbox) > 0 or send.poll() is not None)
    seen_part = 0 < pending(outbox) <= first_part and send.poll() is None
    # Other producers meanwhile, with a busy timeout far below what one transaction
    # for the whole input took: none may be refused.
    producers = 8
    codes: list[int] = []
    short_wait = cli_env(outbox, ALERTWIRE_OUTBOX_BUSY_TIMEOUT="2")

    def produce(n: int) -> None:
        done = alertwire("trigger", "--queue", f"other {n}", "--dedup-key", f"o{n}", env=short_wait)
        codes.append(done.returncode)
        assert done.returncode == 0, done.stderr

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
    for thread in threads:
        thread.start()
    out, err = send.communicate("".join(lines[first_part:]), timeout=GUARD)
    for thread in threads:
        thread.join(GUARD)
    assert seen_part, "the input was stored in one transaction (nothing visible half way)"
    assert codes == [0] * producers
    assert send.returncode == 0, err
    assert f"{LINES} events: 0 delivered, {LINES} queued in the outbox" in out
    peak_mb = int(out.split("MAXRSS_KB")[1]) / 1024
    assert peak_mb < RSS_LIMIT_MB, f"send --queue peaked at {peak_mb:.0f} MB"
    # Every line stored once, in file order per dedup key.
    with Outbox(outbox) as ob:
        assert ob.stats().pending == LINES + producers
        machine = Machine(ob.store, rate_limit_per_minute=0)
        claimed, _ = machine.claim(1000)
        firsts = {c.dedup_key: json.loads(c.body)["payload"]["summary"] for c in claimed}
    assert all(firsts[f"k{i}"] == f"disk {i} full" for i in range(500))


def test_stopping_half_way_says_which_lines_were_stored_and_resuming_completes(
    tmp_path: Path,
) -> None:
    """Two thirds of the input come first through a pipe held open, so the run cannot
    end before the test takes the outbox's lock, however fast the machine stores."""
    outbox = tmp_path / "outbox.sqlite3"
    events = big_file(tmp_path / "events.jsonl")
    lines = events.read_text().splitlines(keepends=True)
    env = cli_env(outbox, ALERTWIRE_OUTBOX_BUSY_TIMEOUT="0.3")
    send = subprocess.Popen(
        [sys.executable, "-m", "alertwire.cli.main", *SEND_STDIN, "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert send.stdin is not None and send.stdout is not None and send.stderr is not None
    # Its output is read from the start: --json writes a record per stored line as it
    # goes, and a pipe nobody reads would stop it (and this test's writes) for good.
    said: dict[str, str] = {}
    stdout, stderr = send.stdout, send.stderr
    readers = [
        threading.Thread(target=lambda: said.update(out=stdout.read())),
        threading.Thread(target=lambda: said.update(err=stderr.read())),
    ]
    for reader in readers:
        reader.start()
    send.stdin.write("".join(lines[: 2 * LINES // 3]))
    send.stdin.flush()
    wait_for("a first chunk", lambda: pending(outbox) > 0 or send.poll() is not None)
    holder = sqlite3.connect(outbox, isolation_level=None, timeout=GUARD)
    holder.execute("BEGIN IMMEDIATE")  # held until send gives up
    try:
        with contextlib.suppress(BrokenPipeError):  # it may stop before reading the rest
            send.stdin.write("".join(lines[2 * LINES // 3 :]))
            send.stdin.close()
        send.wait(timeout=GUARD)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for reader in readers:
        reader.join(GUARD)
    stdout.close()
    stderr.close()
    with contextlib.suppress(BrokenPipeError):
        send.stdin.close()
    out, err = said["out"], said["err"]
    assert send.returncode == 5, err
    report = json.loads(out)
    stored, first = report["stored_through_line"], report["stopped_at_line"]
    assert 0 < stored < LINES and first == stored + 1
    assert report["summary"]["queued"] == stored and report["exit_code"] == 5
    # (A chunk is 500 lines, or fewer when reading them took longer than its time.)
    assert re.fullmatch(
        rf"alertwire: error: the outbox {re.escape(str(outbox))} stayed locked by another"
        rf" process for 0\.3 s: cannot store \d+ events?; NOT queued;"
        rf" lines up to {stored} are queued; from line {first} on NOT queued",
        err.splitlines()[-1],
    ), err.splitlines()[-1]
    assert pending(outbox) == stored
    rest = b"".join(events.read_bytes().splitlines(keepends=True)[first - 1 :])
    resumed = alertwire("send", "--queue", "-", env=cli_env(outbox), stdin=rest)
    assert resumed.returncode == 0, resumed.stderr
    assert pending(outbox) == LINES


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_a_run_whose_first_chunk_fails_counts_the_lines_it_did_not_store(
    json_output: bool, tmp_path: Path
) -> None:
    """The outbox refuses the first chunk (its lock held past the busy timeout): the
    summary said "0 events: 0 delivered", as for an empty input. It counts the lines
    read and not stored."""
    outbox = tmp_path / "outbox.sqlite3"
    Outbox(outbox).close()  # an outbox that exists: opening it takes no write lock
    events = big_file(tmp_path / "events.jsonl", lines=50)
    extra = ("--json",) if json_output else ()
    holder = sqlite3.connect(outbox, isolation_level=None, timeout=GUARD)
    holder.execute("BEGIN IMMEDIATE")
    try:
        done = alertwire(
            "send",
            "--queue",
            str(events),
            *extra,
            env=cli_env(outbox, ALERTWIRE_OUTBOX_BUSY_TIMEOUT="0.3"),
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 5, done.stderr
    assert done.stderr.splitlines()[-1].endswith("nothing was queued (from line 1 on NOT queued)")
    if json_output:
        summary = json.loads(done.stdout)["summary"]
        assert (summary["events"], summary["not_sent"], summary["queued"]) == (50, 50, 0)
    else:
        assert done.stdout == "50 events: 0 delivered, 50 not sent\n"
    assert pending(outbox) == 0


def test_a_json_report_on_a_full_disk_still_stores_every_line(tmp_path: Path) -> None:
    """``send --queue --json ... > /dev/full``: the report's first write failed and the
    run stopped there, storing nothing, and exit 141 said nothing about the events.
    Every line is stored; the report is what is lost, and said so once."""
    outbox = tmp_path / "outbox.sqlite3"
    events = big_file(tmp_path / "events.jsonl", lines=3000)
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "alertwire.cli.main", "send", "--queue", "--json", str(events)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=GUARD,
            check=False,
            env=cli_env(outbox),
        )
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("alertwire: error: could not write to standard output")
    assert pending(outbox) == 3000


def test_a_json_reader_that_stops_early_does_not_stop_the_storing(tmp_path: Path) -> None:
    """``send --queue --json FILE | head -c 10``: the run stopped with the reader and left
    most lines unstored, with nothing said. Every line is stored, quietly (as SIGPIPE)."""
    outbox = tmp_path / "outbox.sqlite3"
    events = big_file(tmp_path / "events.jsonl")
    send = subprocess.Popen(
        [sys.executable, "-m", "alertwire.cli.main", "send", "--queue", "--json", str(events)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(outbox),
    )
    assert send.stdout is not None and send.stderr is not None
    with send.stdout, send.stderr:
        assert send.stdout.read(10) == b'{"results"'
        send.stdout.close()  # far more than a pipe's buffer is still to come
        errors = send.stderr.read().decode()
    assert send.wait(timeout=GUARD) == 141, errors
    assert errors == ""
    assert pending(outbox) == LINES


def test_a_slow_pipe_has_each_line_stored_without_waiting_for_more(tmp_path: Path) -> None:
    """``tail -f log | ... | alertwire send --queue -``: a line is stored within the
    chunk's time even though the pipe stays open and quiet."""
    outbox = tmp_path / "outbox.sqlite3"
    send = piped_send(cli_env(outbox))
    assert send.stdin is not None
    for n in (1, 2):
        send.stdin.write(json.dumps({"type": "trigger", "summary": f"line {n}"}).encode() + b"\n")
        send.stdin.flush()
        wait_for(
            f"line {n} stored while the pipe is open",
            lambda n=n: pending(outbox) == n,  # type: ignore[misc]  # mypy cannot type a default
        )
    out, err = send.communicate(timeout=GUARD)
    assert send.returncode == 0, err
    assert out.decode() == "2 events: 0 delivered, 2 queued in the outbox\n"


def test_ctrl_c_on_sqlite_waits_for_the_chunk_being_stored_and_counts_what_landed(
    tmp_path: Path,
) -> None:
    """A chunk is stored on a thread of its own while the next is prepared: after
    Ctrl-C the command waits for the write in progress, if any, so the line it
    prints counts what landed, and the counts add up whatever was in flight. The
    input is a pipe left open, so the run cannot end before the interrupt. (The
    lock taken here may or may not hold a write up; the exact counts are pinned on
    PostgreSQL, below, where a waiting write shows.)"""
    outbox = tmp_path / "outbox.sqlite3"
    lines = big_file(tmp_path / "events.jsonl").read_bytes()
    env = cli_env(outbox, ALERTWIRE_OUTBOX_BUSY_TIMEOUT=str(GUARD))
    send = piped_send(env)
    assert send.stdin is not None
    send.stdin.write(lines)
    send.stdin.flush()
    wait_for("a first chunk", lambda: pending(outbox) > 0 or send.poll() is not None)
    holder = sqlite3.connect(outbox, isolation_level=None, timeout=GUARD)
    holder.execute("BEGIN IMMEDIATE")  # the next write waits for this lock
    try:
        send.send_signal(signal.SIGINT)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    out, err = send.communicate(timeout=GUARD)
    assert send.returncode == 130, err
    last = err.decode().splitlines()[-1]
    found = re.fullmatch(
        r"alertwire: interrupted; lines up to (\d+) are queued; from line (\d+) on NOT queued",
        last,
    )
    assert found, last
    stored, first = int(found[1]), int(found[2])
    assert pending(outbox) == stored > 0 and first == stored + 1
    # Lines read after the stored ones are counted as not sent (they are not queued).
    summary = re.fullmatch(
        rf"(\d+) events: 0 delivered, {stored} queued in the outbox(?:, (\d+) not sent)?\n",
        out.decode(),
    )
    assert summary, out
    assert int(summary[1]) == stored + int(summary[2] or 0)


@pytest.mark.postgres
def test_ctrl_c_waits_for_the_chunk_being_stored_and_says_exactly_what_is_queued(
    postgres_cluster: PostgresCluster, pg_passfile: Path
) -> None:
    """A chunk is stored on a thread of its own while the next is prepared: after
    Ctrl-C the command waits for that write, so the line it prints counts what
    landed, and nothing read after it.

    Every step waits on something the test can see, so the numbers are exact: the
    first chunk's rows in the outbox; then the second chunk's INSERT waiting for the
    test's table lock (PostgreSQL shows it in ``pg_locks``; an SQLite writer waiting
    for a lock shows nowhere), so at Ctrl-C that chunk is in flight and the lines
    after it are read but never made part of a chunk. The input is a pipe left
    open, so the run cannot end before the interrupt, and it is still open when the
    command exits: the thread reading it is blocked in a read then, which made the
    interpreter abort at exit (SIGABRT) when it read ``sys.stdin`` itself."""
    import psycopg

    url, schema = fresh_pg_target(postgres_cluster)
    events = f"{schema}.alertwire_events"
    try:
        with (
            psycopg.connect(postgres_cluster.dsn, autocommit=True) as watcher,
            piped_send(cli_env(url, PGPASSFILE=str(pg_passfile))) as send,
        ):

            def stored() -> int:
                """Rows in the outbox; 0 until the command has created its tables."""
                exists = watcher.execute("SELECT to_regclass(%s)", (events,)).fetchone()
                if not exists or exists[0] is None:
                    return 0
                row = watcher.execute(f"SELECT count(*) FROM {events}").fetchone()  # noqa: S608
                return int(row[0]) if row else 0

            def chunk_waiting_for_the_lock() -> bool:
                row = watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                    (events,),
                ).fetchone()
                return bool(row and row[0])

            def feed(first: int, last: int) -> None:
                assert send.stdin is not None
                send.stdin.write(b"".join(trigger_line(n) for n in range(first, last + 1)))
                send.stdin.flush()

            try:
                feed(1, 3)
                wait_for("lines 1-3 stored", lambda: stored() == 3)
                with psycopg.connect(postgres_cluster.dsn) as holder:
                    holder.execute(f"LOCK TABLE {events} IN SHARE MODE")  # no INSERT until rollback
                    feed(4, 7)
                    wait_for(
                        "lines 4-7 being stored, held up by the lock", chunk_waiting_for_the_lock
                    )
                    feed(8, 9)  # in the pipe: the command is waiting for the chunk before them
                    send.send_signal(signal.SIGINT)
                    holder.rollback()  # the chunk in flight lands
                # It ends with its input still open, its reading thread blocked in a read.
                send.wait(timeout=GUARD)
                out, err = send.communicate(timeout=GUARD)
            finally:
                send.kill()  # only if a step above failed: it has ended otherwise
            assert stored() == 7
    finally:
        drop_schema(postgres_cluster, schema)
    assert send.returncode == 130, err
    assert err.decode().splitlines()[-1] == (
        "alertwire: interrupted; lines up to 7 are queued; from line 8 on NOT queued"
    )
    assert out.decode() == "7 events: 0 delivered, 7 queued in the outbox\n"


def test_a_slow_pipe_has_a_bad_line_said_without_waiting_for_more(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    send = piped_send(cli_env(outbox))
    assert send.stdin is not None and send.stderr is not None
    said: list[bytes] = []
    stderr = send.stderr
    reading = threading.Thread(target=lambda: said.extend(iter(stderr.readline, b"")), daemon=True)
    reading.start()
    try:
        send.stdin.write(b'{"type": "trigger"}\n')  # no summary
        send.stdin.flush()
        wait_for("the bad line said while the pipe is open", lambda: said)
        assert said == [
            b"alertwire: line 1: invalid input: summary: is required for a trigger event\n"
        ]
        assert send.poll() is None
        send.communicate(timeout=GUARD)
    finally:
        send.kill()
        send.wait(GUARD)
    reading.join(GUARD)
    assert send.returncode == 2


@pytest.mark.parametrize("queue", [True, False])
def test_a_utf8_byte_order_mark_does_not_spoil_line_1(queue: bool, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    lines = [{"type": "trigger", "summary": "first", "dedup_key": "bom-1"}, {"type": "change"}]
    lines[1]["summary"] = "deployed"
    data = b"\xef\xbb\xbf" + b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    path = tmp_path / "events.jsonl"
    path.write_bytes(data)
    with Sandbox() as sandbox:
        env = cli_env(outbox, ALERTWIRE_PAGERDUTY_URL=sandbox.url)
        done = alertwire("send", *(["--queue"] if queue else []), str(path), env=env)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        if queue:
            assert pending(outbox) == 2
        else:
            assert [a["dedup_key"] for a in sandbox.alerts()] == ["bom-1"]


@pytest.mark.parametrize("strict", [False, True], ids=["send-queue", "strict"])
def test_a_destination_without_settings_is_said_once_and_its_lines_counted(
    strict: bool, tmp_path: Path
) -> None:
    """No routing key: every PagerDuty line is refused for the same reason. That reason
    was said once per line (a million-line file, a million copies); now at the first
    line, with the count of the later ones at the end. A line's own error is still said
    at its line; the BigPanda lines around them (configured) are stored."""
    outbox = tmp_path / "outbox.sqlite3"
    bigpanda: dict[str, object] = {"type": "bigpanda", "host": "db-1", "status": "critical"}
    later: list[dict[str, object]] = [{"type": "trigger", "summary": f"{i}"} for i in range(4)]
    lines: list[dict[str, object]] = [
        {"type": "trigger", "summary": "first"},
        bigpanda,
        {"type": "trigger", "nope": 1},
        *later,
        bigpanda,
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
    env = cli_env(outbox, ALERTWIRE_BIGPANDA_TOKEN="t" * 32, ALERTWIRE_BIGPANDA_APP_KEY="app")
    del env["ALERTWIRE_ROUTING_KEY"]
    done = alertwire("send", "--queue", *(["--strict"] if strict else []), str(path), env=env)
    assert done.returncode == 2, done.stderr
    missing = "no PagerDuty routing key: pass --routing-key-file PATH"
    said = done.stderr.splitlines()
    assert said[0].startswith(f"alertwire: line 1: {missing}")
    assert said[1].startswith("alertwire: line 3: invalid input: nope: is not a field")
    assert said[2].startswith(f"alertwire: 4 more lines not queued: {missing}")
    if strict:
        assert said[3:] == ["alertwire: nothing sent: 6 invalid lines and --strict"]
        assert done.stdout == ""
    else:
        assert said[3:] == []
        assert done.stdout == "8 events: 0 delivered, 2 queued in the outbox, 6 invalid\n"
    assert pending(outbox) == (0 if strict else 2)


def test_send_queue_shows_a_bar_with_rate_and_eta_only_on_a_terminal(tmp_path: Path) -> None:
    import pty
    import select

    outbox = tmp_path / "outbox.sqlite3"
    events = big_file(tmp_path / "events.jsonl", lines=2000)
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "alertwire.cli.main", "send", "--queue", str(events)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=cli_env(outbox),
    ) as proc:
        os.close(follower)
        terminal = b""
        while True:  # read until the child closes the terminal (EOF or EIO)
            ready, _, _ = select.select([leader], [], [], GUARD)
            assert ready, "no output and no end"
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            terminal += chunk
        stdout = proc.stdout.read() if proc.stdout is not None else b""
    os.close(leader)
    assert proc.returncode == 0
    size = events.stat().st_size
    assert b"100%" in terminal and b"B/s]" in terminal and b"<00:00" in terminal, terminal[-300:]
    assert str(size).encode() not in stdout and b"B/s" not in stdout
    assert stdout == b"2000 events: 0 delivered, 2000 queued in the outbox\n"
    piped = alertwire("send", "--queue", str(events), env=cli_env(tmp_path / "other.sqlite3"))
    assert piped.returncode == 0 and piped.stderr == ""


def test_tqdm_is_imported_only_when_a_bar_is_drawn(tmp_path: Path) -> None:
    events = big_file(tmp_path / "events.jsonl", lines=3)
    probe = (
        "import sys\n"
        "from alertwire.cli.main import main\n"
        "codes = [main(['trigger', '--dry-run', 'x']), main(['send', '--queue', sys.argv[1]])]\n"
        "print(codes, 'tqdm' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(events)],
        capture_output=True,
        text=True,
        timeout=GUARD,
        check=False,
        env=cli_env(tmp_path / "outbox.sqlite3"),
    )
    assert done.stdout.splitlines()[-1] == "[0, 0] False", done.stdout + done.stderr
