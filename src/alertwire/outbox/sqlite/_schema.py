"""The SQLite outbox's schema: tables, partial indexes and triggers, version by version.

Each version is a tuple of statements applied in one transaction on open
(:class:`~._connection.SQLiteConnections`); a file records the version it is at in
``alertwire_schema``. The text of a released version never changes: existing
files were built from it. Every state number comes from
:mod:`alertwire.outbox.states`, so the triggers below are the state diagram's
"head of key" rules, written with its names.
"""

from __future__ import annotations

from typing import Final

from ..states import SQL_ACTIVE, SQL_FINISHED, SQL_LEASED, SQL_PENDING, State

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

SCHEMA_VERSION: Final = 4

#: One counter row per state, all zero: ``(0, 0), (1, 0), ...``.
_ZERO_COUNTS: Final = ", ".join(f"({int(state)}, 0)" for state in State)


def _inserted_trigger(x_is_active: str) -> str:
    """The insert trigger: counts the row, and flags it its key's head when no earlier
    row ``x`` of its key is active (``x_is_active`` says how a version tells that:
    version 2 by the state, version 4 by ``finished_at``). One text for both, so
    the rule is written once; each version's text is pinned by tests/data."""
    return f"""
    CREATE TRIGGER events_inserted AFTER INSERT ON events BEGIN
        UPDATE counts SET n = n + 1 WHERE state = new.state;
        UPDATE events SET head = 1
        WHERE id = new.id AND new.state IN ({SQL_ACTIVE})
          AND NOT EXISTS (SELECT 1 FROM events x
                          WHERE x.order_key = new.order_key AND {x_is_active}
                            AND x.id < new.id);
    END
    """  # noqa: S608 - state numbers from states.py and a condition from this module only


_EVENTS_V1: Final = (
    f"""
    CREATE TABLE events (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        state         INTEGER NOT NULL DEFAULT {SQL_PENDING},
        kind          TEXT    NOT NULL,
        route         TEXT    NOT NULL,
        order_key     TEXT    NOT NULL,
        dedup_key     TEXT,
        base_url      TEXT,
        credential    TEXT    NOT NULL,
        body          BLOB    NOT NULL,
        created_at    REAL    NOT NULL,
        age_from      REAL    NOT NULL,
        not_before    REAL    NOT NULL,
        attempts      INTEGER NOT NULL DEFAULT {SQL_PENDING},
        lease_owner   TEXT,
        lease_expires REAL,
        finished_at   REAL,
        http_status   INTEGER,
        last_error    TEXT,
        error_body    TEXT
    )
    """,
    # The active rows of each key, in id order: "is there an earlier active row of my key?"
    f"CREATE INDEX events_active ON events (order_key, id) WHERE state IN ({SQL_ACTIVE})",
    f"CREATE INDEX events_finished ON events (state, finished_at) WHERE state IN ({SQL_FINISHED})",
    """
    CREATE TABLE routes (
        route        TEXT PRIMARY KEY,
        next_allowed REAL NOT NULL
    ) WITHOUT ROWID
    """,
)

# Version 2: every query the relay runs per cycle costs the same at 100 or 100,000
# pending events. Version 1 found each key's head with "min(id) GROUP BY order_key"
# over every active row (a claim took 0.76 s at 100,000 pending). Now the head is a
# flag kept by triggers, so no INSERT or UPDATE in this module has to know about it:
#
# * ``head = 1`` exactly on the smallest-id PENDING/LEASED row of its key. Set on
#   insert when the key has no active row (ids only grow, so the new row is last);
#   moved to the next active row when the head is delivered or dead; taken back by
#   a row that ``queue retry`` makes active again below the current head.
# * ``counts`` holds the number of rows per state (``queue status`` without counting).
# * Partial indexes over heads only, per route: the claim walks routes (a handful)
#   and reads the first heads of each in id order; next_due reads each route's
#   earliest ``not_before``. A route paused by a 429 is skipped whole, however many
#   events it holds.
_V2: Final = (
    "ALTER TABLE events ADD COLUMN head INTEGER NOT NULL DEFAULT 0",
    f"""
    UPDATE events SET head = 1
    WHERE id IN (SELECT min(id) FROM events WHERE state IN ({SQL_ACTIVE}) GROUP BY order_key)
    """,  # noqa: S608 - state numbers from states.py only
    f"CREATE INDEX events_heads ON events (route, id) WHERE head = 1 AND state = {SQL_PENDING}",
    f"CREATE INDEX events_head_ids ON events (id) WHERE head = 1 AND state = {SQL_PENDING}",
    f"CREATE INDEX events_heads_due ON events (route, not_before) WHERE head = 1 AND state = {SQL_PENDING}",
    "CREATE INDEX events_key_head ON events (order_key) WHERE head = 1",
    f"CREATE INDEX events_leased ON events (lease_expires) WHERE state = {SQL_LEASED}",
    f"CREATE INDEX events_inflight ON events (order_key) WHERE state = {SQL_LEASED}",
    f"CREATE INDEX events_open ON events (created_at) WHERE state IN ({SQL_ACTIVE})",
    "CREATE TABLE counts (state INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    f"INSERT INTO counts (state, n) VALUES {_ZERO_COUNTS}",  # noqa: S608 - state numbers from states.py only
    """
    UPDATE counts SET n = (SELECT count(*) FROM events e WHERE e.state = counts.state)
    """,
    _inserted_trigger(f"x.state IN ({SQL_ACTIVE})"),
    """
    CREATE TRIGGER events_deleted AFTER DELETE ON events BEGIN
        UPDATE counts SET n = n - 1 WHERE state = old.state;
    END
    """,
    f"""
    CREATE TRIGGER events_moved AFTER UPDATE OF state ON events
    WHEN old.state <> new.state BEGIN
        UPDATE counts SET n = n - 1 WHERE state = old.state;
        UPDATE counts SET n = n + 1 WHERE state = new.state;
        -- Left the active states: no longer the head; the next active row of its key is.
        UPDATE events SET head = 0 WHERE id = new.id AND new.state IN ({SQL_FINISHED}) AND head = 1;
        UPDATE events SET head = 1
        WHERE old.state IN ({SQL_ACTIVE}) AND new.state IN ({SQL_FINISHED})
          AND id = (SELECT min(x.id) FROM events x
                    WHERE x.order_key = new.order_key AND x.state IN ({SQL_ACTIVE}));
        -- Active again (queue retry): the head if nothing earlier of its key is active.
        UPDATE events SET head = 0
        WHERE old.state IN ({SQL_FINISHED}) AND new.state IN ({SQL_ACTIVE})
          AND order_key = new.order_key AND head = 1 AND id > new.id;
        UPDATE events SET head = 1
        WHERE old.state IN ({SQL_FINISHED}) AND new.state IN ({SQL_ACTIVE}) AND id = new.id
          AND NOT EXISTS (SELECT 1 FROM events x
                          WHERE x.order_key = new.order_key AND x.state IN ({SQL_ACTIVE})
                            AND x.id < new.id);
    END
    """,  # noqa: S608 - state numbers from states.py only
)

# Version 3: a relay cycle writes less. Together the changes below took a relay
# cycle (settle 16 + claim 16 in one transaction, 3,000 events over 100 keys) from
# about 71 to 54 us of SQLite CPU per event, a quarter less:
#
# * A state move is counted by the store's statements, one ``UPDATE`` per state a
#   transaction changed (``store._count``), not by two ``UPDATE``\ s per row in a
#   trigger (a claim or a settle of 16 rows ran 32 counter statements). Inserts
#   are still counted by their trigger, so that a producer of an older version
#   still running when the file is migrated (a service using the library) counts
#   the events it adds; only relays and the queue commands move or delete rows.
# * The trigger runs only when a row enters or leaves the active states (a
#   delivery, a dead letter, ``queue retry``), not on a claim, a retry or a
#   release, which move a row between PENDING and LEASED and never move a head.
# * The statements that finish a row (deliver, bury) clear its head flag in their
#   own write instead of the trigger writing the row a second time.
# * ``events_key_head`` (the head of each key, by key) is gone. It served one
#   statement only, the trigger taking the head back on ``queue retry``; every head
#   is active, so that statement finds it in ``events_active`` (order_key, id) once
#   it says ``state IN (active)``. It was written at nearly every insert and
#   delivery, at a random place (order keys are digests).
#
# An older alertwire that opened the file before the migration keeps running with
# its own SQL, which leaves moves uncounted and finished rows flagged, so it is
# stopped rather than let write: ``events_inflight`` is renamed ``events_in_flight``
# (every claim of version 2 names it: "no such index", an outage it reports and
# waits out), and a row finished with its head flag still set (a version-2 settle)
# is refused by the trigger. Such a relay's events are claimed again once their
# lease runs out: sent twice, never lost.
_V3: Final = (
    "DROP INDEX events_key_head",
    "DROP INDEX events_inflight",
    f"CREATE INDEX events_in_flight ON events (order_key) WHERE state = {SQL_LEASED}",
    "DROP TRIGGER events_deleted",
    "DROP TRIGGER events_moved",
    f"""
    CREATE TRIGGER events_moved AFTER UPDATE OF state ON events
    WHEN (old.state IN ({SQL_FINISHED})) <> (new.state IN ({SQL_FINISHED})) BEGIN
        -- Finished rows clear their head flag in the same write: one that did not was
        -- written by an older alertwire, which counts and flags by the old rules.
        SELECT RAISE(ABORT, 'the outbox was upgraded to a newer schema: restart this process')
        WHERE new.state IN ({SQL_FINISHED}) AND new.head = 1;
        -- Left the active states (its own flag cleared by the statement that finished
        -- it): the next active row of its key is the head.
        UPDATE events SET head = 1
        WHERE new.state IN ({SQL_FINISHED})
          AND id = (SELECT min(x.id) FROM events x
                    WHERE x.order_key = new.order_key AND x.state IN ({SQL_ACTIVE}));
        -- Active again (queue retry): the head if nothing earlier of its key is active
        -- (a head is always active: the later one is found through events_active).
        UPDATE events SET head = 0
        WHERE new.state IN ({SQL_ACTIVE})
          AND order_key = new.order_key AND state IN ({SQL_ACTIVE}) AND head = 1
          AND id > new.id;
        UPDATE events SET head = 1
        WHERE new.state IN ({SQL_ACTIVE}) AND id = new.id
          AND NOT EXISTS (SELECT 1 FROM events x
                          WHERE x.order_key = new.order_key AND x.state IN ({SQL_ACTIVE})
                            AND x.id < new.id);
    END
    """,  # noqa: S608 - state numbers from states.py only
)

# Version 4: a claim rewrites fewer index entries. SQLite rewrites an index entry
# whenever an UPDATE assigns a column the index holds *or its WHERE names*, even when
# the entry stays where it was; a claim assigns ``state`` (PENDING to LEASED), so it
# rewrote every index whose condition names the state, though a claimed row stays
# active: ``events_active`` (order_key, id) and ``events_open`` (created_at), besides
# the head and lease indexes it really leaves and enters. The active-rows entries lie
# at random places (order keys are digests), so each claimed row dirtied an index page
# of its own, which the settle of the same row dirtied again a cycle later.
#
# * A row is unfinished exactly while ``finished_at`` is NULL: every statement that
#   delivers or buries a row has set it from the first version on, and ``queue
#   retry`` clears it (the migration makes hand-written rows agree: an active row's is
#   cleared, a finished row without one gets its ``created_at``). The two indexes
#   of active rows are now over ``finished_at IS NULL``, which a claim, a retry and
#   a release never assign: ``events_unfinished`` (order_key, id) and
#   ``events_open_since`` (created_at). The trigger and the store's queries say
#   ``finished_at IS NULL`` where they said ``state IN (active)``, and the trigger
#   refuses a row that enters or leaves the finished states without the column
#   following it (no statement of this or of version 3 does that).
# * ``events_in_flight_behind`` (order_key) holds the leased rows that are *not*
#   their key's head, where ``events_in_flight`` held every leased row. A head may be
#   blocked only by a leased row of its key other than itself, which is never a head
#   (a key has one), so the claim's ``NOT EXISTS`` reads the same rows; but a claimed
#   head does not enter this index, nor leave it when it is settled. It is almost
#   always empty: a row gets there only when ``queue retry`` puts an earlier row back
#   in front of an in-flight one.
#
# Measured on a store-side loop (3,000 events over 100 routes, each its own key;
# enqueue_many of 100, then settle and claim of 32 in one transaction until empty;
# checkpoints off), against version 3 back to back: WAL pages per relayed event 1.67
# to 1.43 (-14%; at 20,000 events 2.53 to 1.78, -30%), user-space instructions of the
# relay cycle per event 205.3k to 192.1k (-6%, callgrind); enqueue writes the same
# pages (0.54 per event) and runs 55.8k to 56.5k instructions per event (the head
# flag's UPDATE in the insert trigger checks one more partial index's condition).
# With 30 events per key the relay's gain is small (2.42 to 2.36 pages): there the
# trigger handing each key's head on writes most pages. docs/relay.md, "Schema
# version 4", has the figures and what was measured and left.
#
# A process of version 3 still running after the migration cannot claim (the
# ``events_in_flight`` index its claim names is gone: "no such index") nor read
# ``queue status`` (``events_open``): it reports a store outage. A relay records a
# cycle's outcomes in its next claim's transaction, which fails with it, so the
# events it holds are claimed again once their lease runs out (sent twice, never
# lost). Its other writes (inserts, outcomes recorded alone, retries, purges) keep
# the rules above (they set and clear ``finished_at`` as version 4 does), so a
# producer of version 3 keeps working.
_V4: Final = (
    f"""
    UPDATE events SET finished_at = NULL
    WHERE state IN ({SQL_ACTIVE}) AND finished_at IS NOT NULL
    """,  # noqa: S608 - state numbers from states.py only
    f"""
    UPDATE events SET finished_at = created_at
    WHERE state IN ({SQL_FINISHED}) AND finished_at IS NULL
    """,  # noqa: S608 - state numbers from states.py only
    "DROP INDEX events_active",
    "CREATE INDEX events_unfinished ON events (order_key, id) WHERE finished_at IS NULL",
    "DROP INDEX events_open",
    "CREATE INDEX events_open_since ON events (created_at) WHERE finished_at IS NULL",
    "DROP INDEX events_in_flight",
    f"CREATE INDEX events_in_flight_behind ON events (order_key) WHERE state = {SQL_LEASED} AND head = 0",
    "DROP TRIGGER events_inserted",
    "DROP TRIGGER events_moved",
    _inserted_trigger("x.finished_at IS NULL"),
    f"""
    CREATE TRIGGER events_moved AFTER UPDATE OF state ON events
    WHEN (old.state IN ({SQL_FINISHED})) <> (new.state IN ({SQL_FINISHED})) BEGIN
        -- Finished rows clear their head flag and set finished_at in the same write,
        -- and active ones have none: a row that does otherwise was written by other
        -- rules than this schema's (an older alertwire, or a hand-written statement).
        SELECT RAISE(ABORT, 'the outbox was upgraded to a newer schema: restart this process')
        WHERE (new.state IN ({SQL_FINISHED}) AND new.head = 1)
           OR (new.state IN ({SQL_FINISHED})) = (new.finished_at IS NULL);
        -- Left the active states (its own flag cleared by the statement that finished
        -- it): the next unfinished row of its key is the head.
        UPDATE events SET head = 1
        WHERE new.state IN ({SQL_FINISHED})
          AND id = (SELECT min(x.id) FROM events x
                    WHERE x.order_key = new.order_key AND x.finished_at IS NULL);
        -- Active again (queue retry): the head if nothing earlier of its key is
        -- unfinished (a head always is: the later one is found through events_unfinished).
        UPDATE events SET head = 0
        WHERE new.state IN ({SQL_ACTIVE})
          AND order_key = new.order_key AND finished_at IS NULL AND head = 1
          AND id > new.id;
        UPDATE events SET head = 1
        WHERE new.state IN ({SQL_ACTIVE}) AND id = new.id
          AND NOT EXISTS (SELECT 1 FROM events x
                          WHERE x.order_key = new.order_key AND x.finished_at IS NULL
                            AND x.id < new.id);
    END
    """,  # noqa: S608 - state numbers from states.py only
)

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {1: _EVENTS_V1, 2: _V2, 3: _V3, 4: _V4}
#: The whole current schema, from nothing (the benchmarks' bare-SQLite baseline uses it).
_SCHEMA: Final = _EVENTS_V1 + _V2 + _V3 + _V4
