"""A child process that closes an SQLite outbox while another thread's write waits.

``python -m tests.support.close_while_busy PATH`` (from the repository root),
run by a test as a subprocess so that a crash fails the test instead of
killing pytest. The steps, each started on an observable condition:

1. a raw sqlite3 connection holds the write lock (``BEGIN IMMEDIATE``);
2. a writer thread enqueues and waits in SQLite's busy handler (its frame in
   the store, its OS thread asleep in the kernel);
3. a closer thread calls ``Outbox.close()`` and blocks (in the kernel too);
4. the write lock is let go: the writer's statement goes on, the closer ends.

Prints one line per outcome: ``stored <id>`` or ``writer <error>``, ``closed``,
and what an operation on the closed outbox answered.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from alertwire import OutboxError, TriggerAlert
from alertwire.outbox import Outbox
from alertwire.outbox.sqlite import SQLiteStore
from tests.support.keys import ROUTING_KEY
from tests.support.thread_state import in_syscall, innermost_file, innermost_function
from tests.support.waiting import wait_for

#: Where the store calls into SQLite (its statements run there).
STORE_FILE = str(Path("outbox", "sqlite", "_connection.py"))


def blocked_in_close(closer: threading.Thread) -> bool:
    """``closer`` waits in the kernel inside ``close()`` (a lock, SQLite's mutex), or is done."""
    if not closer.is_alive():
        return True
    return in_syscall(closer, "futex") and innermost_function(closer) == "close"


def twice_in_a_row(condition: Callable[[], bool]) -> Callable[[], bool]:
    """``condition`` held at two polls in a row: a thread seen in a futex once may only
    be waiting for the GIL this poll holds; between polls it gets it and moves on."""
    seen = [False]

    def check() -> bool:
        now = condition()
        held, seen[0] = now and seen[0], now
        return held

    return check


def main(path: str) -> None:
    # A long busy timeout: the writer must still be waiting when the outbox is closed.
    box = Outbox(store=SQLiteStore(path, busy_timeout=120))
    box.enqueue(TriggerAlert("opens the file"), routing_key=ROUTING_KEY)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    answers: list[str] = []

    # More rows than one INSERT holds: a transaction (BEGIN IMMEDIATE waits for the
    # lock, then more statements run on the connection), as a relay's cycle is.
    rows = [
        box.prepare_pagerduty(TriggerAlert(f"waits {i}"), routing_key=ROUTING_KEY)
        for i in range(200)
    ]

    def write() -> None:
        try:
            answers.append(f"stored {len(box.put(rows))}")
        except OutboxError as exc:
            answers.append(f"writer {exc}")

    writer = threading.Thread(target=write, name="writer")
    writer.start()
    wait_for(
        "the writer asleep in SQLite's busy handler",
        lambda: (
            in_syscall(writer, "nanosleep", "clock_nanosleep")
            and innermost_file(writer).endswith(STORE_FILE)
        ),
    )
    closer = threading.Thread(target=box.close, name="closer")
    closer.start()
    wait_for("close() blocked (or done)", twice_in_a_row(lambda: blocked_in_close(closer)))
    holder.execute("COMMIT")
    holder.close()
    writer.join()
    closer.join()
    print(*answers, sep="\n")
    print("closed")
    try:
        box.stats()
    except OutboxError as exc:
        print(f"after close: {exc}")
    else:
        print("after close: answered")


if __name__ == "__main__":
    main(sys.argv[1])
    sys.stdout.flush()
