"""Planner statistics for an outbox filled faster than autovacuum looks at it.

Why: a relay started on a fresh outbox right after a bulk enqueue (``send
--queue`` of a big file, a burst after an outage) claims from a table the
planner knows nothing about, or knew when it was empty. Autovacuum analyzes
it within its nap (a minute by default, longer when its workers are busy
elsewhere), and until then the planner guesses. Measured on PostgreSQL 15
with 100,000 pending events over 100 routing keys (docs/several-relays.md,
"A table filled a second ago"): without statistics the oldest-heads claim
took 76 ms (a ``BitmapAnd`` of two partial indexes over the whole backlog,
5,330 buffers: linear in the backlog) against 0.46 ms after ``ANALYZE``, and
a relay cycle 73 ms against 6 ms. A table analyzed while nearly empty was
worse for producers: the enqueue's "no active row of this key" test was
planned as a sequential scan on a connection that then kept the plan, so
each batch of 2,000 took longer than the one before (0.6 s, 1.3 s, 2.0 s, 2.8
s, 3.8 s at 20,000 rows: quadratic).

What: compare the planner's estimate of the open rows (PENDING and LEASED)
with the exact count the trigger keeps in ``alertwire_counts``; when the
open rows are at least :data:`MIN_OPEN_ROWS` and more than twice the
estimate, run ``ANALYZE (SKIP_LOCKED)`` on the outbox's tables. An
overestimate is harmless (the claim reads the oldest heads' window by id
either way), so only an underestimate counts. ``ANALYZE`` invalidates every
session's cached plans of these tables, the producers' too.

Cost: the look is two small statements (the counters' sum and an
``EXPLAIN`` without execution), run by a relay at its first claim and then
at most every :data:`LOOK_INTERVAL` seconds, and by a producer after a batch
of at least :data:`BULK_EVENTS`. ``ANALYZE`` reads a sample of at most 30,000
rows (the default statistics target) whatever the table's size: 0.2 s at
100,000 rows here. It takes SHARE UPDATE EXCLUSIVE, which no INSERT, UPDATE,
SELECT or claim waits for; ``SKIP_LOCKED`` passes over a table autovacuum is
working on instead of waiting for it. After a try the server skipped, a
process tries again only once the open rows have doubled since, so a role
that may not analyze (not the tables' owner: the server skips them with a
WARNING in its log) does not try at every look; the estimate read again
after ``ANALYZE`` tells, and the process says so at WARNING
(``event=outbox_not_analyzed``). An ``ANALYZE`` that took holds back nothing:
the next burst after a drain (whose statistics, from autovacuum or from this
process, then say almost no row is open) is analyzed again however small it
is beside the one before.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from typing import Any, Final

from ..states import SQL_ACTIVE, SQL_PENDING

__all__ = ["BULK_EVENTS", "LOOK_INTERVAL", "MIN_OPEN_ROWS", "OPEN_ROWS", "StatisticsWatch"]

logger = logging.getLogger("alertwire.outbox")

#: Below this many open rows a wrong plan costs a claim a few milliseconds at most,
#: and autovacuum's next pass is soon enough.
MIN_OPEN_ROWS: Final = 5_000
#: Seconds between two looks by one relay (its first claim always looks).
LOOK_INTERVAL: Final = 5.0
#: A producer looks after storing a batch of at least this many events.
BULK_EVENTS: Final = 1_000

#: The open rows (PENDING and LEASED: the trigger counts them together, under state 0),
#: exact; ``open_counts`` reads the same.
OPEN_ROWS: Final = f"SELECT coalesce(sum(n), 0) FROM alertwire_counts WHERE state = {SQL_PENDING}"  # noqa: S608 - state numbers from states.py only
_PLANNED_OPEN: Final = (
    f"EXPLAIN (FORMAT JSON) SELECT 1 FROM alertwire_events WHERE state IN ({SQL_ACTIVE})"  # noqa: S608 - state numbers from states.py only
)
ANALYZE: Final = "ANALYZE (SKIP_LOCKED) alertwire_events, alertwire_counts, alertwire_routes"


def planned_rows(plan: Any) -> float:
    """The top node's row estimate from ``EXPLAIN (FORMAT JSON)`` (text or decoded)."""
    if isinstance(plan, str | bytes):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


def _planned(conn: Any) -> float:
    row = conn.execute(_PLANNED_OPEN).fetchone()
    return planned_rows(row[0]) if row is not None else 0.0


def is_stale(open_rows: int, planned: float, *, tried_at: int) -> bool:
    """Whether the planner underestimates the open rows enough to matter (see the module)."""
    return open_rows >= MIN_OPEN_ROWS and open_rows > 2 * max(planned, tried_at)


class StatisticsWatch:
    """One store's looks at its statistics: when to look, and what it last tried.

    Thread-safe: a look already running in another thread is not repeated.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_look = -math.inf
        self._tried_at = 0  # open rows at this process's last ANALYZE the server skipped

    def take_look(self, now: float) -> bool:
        """Whether a relay's look is due (the first, then every :data:`LOOK_INTERVAL`; a
        clock set back starts the interval again); if it is, the next one is not due
        for another interval, whether this one reaches the server or not. Taken before
        the look opens its connection: in an outage every claim fails to connect, and a
        look that was still due each time would make each cycle try to connect twice
        (twice the connect timeout against a server that drops packets, and a stop
        waiting as long). ``False`` while another thread's look is running."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._next_look - LOOK_INTERVAL <= now < self._next_look:
                return False
            self._next_look = now + LOOK_INTERVAL
            return True
        finally:
            self._lock.release()

    def keep_up(self, conn: Any) -> bool:
        """Look (and analyze if stale) in ``conn``'s transaction, its own (``ANALYZE`` may
        run in one; its lock lasts until the commit right after); returns whether it
        analyzed. A relay calls it when :meth:`take_look` says so, a producer after each
        bulk batch."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            row = conn.execute(OPEN_ROWS).fetchone()
            open_rows = int(row[0]) if row is not None else 0
            if open_rows < MIN_OPEN_ROWS:
                return False
            planned = _planned(conn)
            if not is_stale(open_rows, planned, tried_at=self._tried_at):
                return False
            self._tried_at = open_rows
            started = time.monotonic()
            conn.execute(ANALYZE)
            seconds = time.monotonic() - started
            after = _planned(conn)
            if is_stale(open_rows, after, tried_at=0):
                # The server skipped the tables (with a WARNING of its own, in its log).
                logger.warning(
                    "event=outbox_not_analyzed open=%d planned=%d note=%s",
                    open_rows,
                    round(after),
                    "\"this role may not analyze the outbox's tables (their owner may),"
                    " or autovacuum held them: claims may read the whole backlog until"
                    ' autovacuum analyzes them"',
                )
                return False
            self._tried_at = 0  # it took: a later underestimate is analyzed again at once
            logger.info(
                "event=outbox_analyzed open=%d planned=%d was=%d seconds=%.3f",
                open_rows,
                round(after),
                round(planned),
                seconds,
            )
            return True
        finally:
            self._lock.release()
