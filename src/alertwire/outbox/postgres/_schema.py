"""The PostgreSQL outbox's schema: tables, partial indexes, trigger and migrations.

Each version is a tuple of statements applied once, under an advisory lock,
by the first connection (:class:`~._connection.PostgresConnections`); the
database records its version in ``alertwire_schema``. The text of a released
version never changes: existing databases were built from it. Every state
number comes from :mod:`alertwire.outbox.states`, so the trigger below is the
state diagram's "head of key" rule, written with its names.
"""

from __future__ import annotations

import hashlib
from typing import Final

from ..states import SQL_ACTIVE, SQL_FINISHED, SQL_LEASED, SQL_PENDING, State

__all__ = ["LOCK_CLASS", "MIGRATIONS", "SCHEMA_VERSION", "lock_key"]

SCHEMA_VERSION: Final = 3
#: The first key of every advisory lock we take: our locks never collide with an application's.
LOCK_CLASS: Final = 0x61_77_6F_62  # "awob"


def lock_key(order_key: str) -> int:
    """A stable int4 per order key, for ``pg_advisory_xact_lock(class, key)``."""
    return int.from_bytes(hashlib.sha256(order_key.encode()).digest()[:4], "big", signed=True)


#: The counter buckets: LEASED is counted with PENDING, as "open" (see version 2).
_COUNTED_BUCKETS: Final = ", ".join(
    f"({int(state)})" for state in (State.PENDING, State.DELIVERED, State.DEAD)
)

#: The trigger function's first half in every version: the counters (the head hand-over
#: follows it). One text, so versions 2 and 3 cannot count differently.
_TRACK_COUNTS: Final = f"""\
        LANGUAGE plpgsql AS $fn$
        DECLARE
            my_shard smallint := pg_backend_pid() % 16;
            old_bucket smallint := CASE WHEN TG_OP = 'INSERT' THEN NULL
                                        WHEN OLD.state = {SQL_LEASED} THEN {SQL_PENDING} ELSE OLD.state END;
            new_bucket smallint := CASE WHEN TG_OP = 'DELETE' THEN NULL
                                        WHEN NEW.state = {SQL_LEASED} THEN {SQL_PENDING} ELSE NEW.state END;
            was_active boolean := TG_OP <> 'INSERT' AND OLD.state IN ({SQL_ACTIVE});
            is_active boolean := TG_OP <> 'DELETE' AND NEW.state IN ({SQL_ACTIVE});
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO alertwire_counts AS c (state, shard, n) VALUES (old_bucket, my_shard, -1)
                ON CONFLICT (state, shard) DO UPDATE SET n = c.n - 1;
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN NULL;
            END IF;
            INSERT INTO alertwire_counts AS c (state, shard, n) VALUES (new_bucket, my_shard, 1)
            ON CONFLICT (state, shard) DO UPDATE SET n = c.n + 1;
"""  # noqa: S608 - state numbers from states.py only

#: Its last part in every version: a row that left the active states hands its key's
#: head to the key's next active row.
_TRACK_HAND_ON: Final = f"""\
                UPDATE alertwire_events SET head = false WHERE id = NEW.id AND head;
                UPDATE alertwire_events SET head = true
                WHERE NOT head AND id = (
                    SELECT min(x.id) FROM alertwire_events x
                    WHERE x.order_key = NEW.order_key AND x.state IN ({SQL_ACTIVE})
                );
            END IF;
            RETURN NULL;
        END
        $fn$
"""  # noqa: S608 - state numbers from states.py only

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        f"""
        CREATE TABLE alertwire_events (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            state         smallint NOT NULL DEFAULT {SQL_PENDING},
            kind          text     NOT NULL,
            route         text     NOT NULL,
            order_key     text     NOT NULL,
            dedup_key     text,
            base_url      text,
            credential    text     NOT NULL,
            body          bytea    NOT NULL,
            created_at    double precision NOT NULL,
            age_from      double precision NOT NULL,
            not_before    double precision NOT NULL,
            attempts      integer  NOT NULL DEFAULT {SQL_PENDING},
            lease_owner   text,
            lease_expires double precision,
            finished_at   double precision,
            http_status   integer,
            last_error    text,
            error_body    text
        )
        """,
        # Finds every key's head ("no earlier active row of my key").
        "CREATE INDEX alertwire_events_active ON alertwire_events (order_key, id)"
        f" WHERE state IN ({SQL_ACTIVE})",
        # The claim scan: pending rows in id order.
        f"CREATE INDEX alertwire_events_pending ON alertwire_events (id) WHERE state = {SQL_PENDING}",
        # Two relays can never hold two events of one key at once.
        "CREATE UNIQUE INDEX alertwire_events_inflight ON alertwire_events (order_key)"
        f" WHERE state = {SQL_LEASED}",
        "CREATE INDEX alertwire_events_finished ON alertwire_events (state, finished_at)"
        f" WHERE state IN ({SQL_FINISHED})",
        """
        CREATE TABLE alertwire_routes (
            route        text PRIMARY KEY,
            next_allowed double precision NOT NULL
        )
        """,
    ),
    # Version 2: every query a relay runs per cycle costs the same at 100 or 100,000
    # pending events (version 1's next_due and paced claim read every active row:
    # 0.9 s and 0.15 s at 100,000). The head of each key is a flag and the rows per
    # state are counters, both kept by a trigger, so no INSERT or UPDATE has to know:
    # * ``head`` is true exactly on the smallest-id PENDING/LEASED row of its key; a
    #   row that enters or leaves those states moves it, under the key's advisory
    #   lock (the one enqueue takes), so an enqueue and a settle of one key never
    #   both miss the hand-over;
    # * ``alertwire_counts`` holds rows per state, with PENDING and LEASED counted
    #   together as "open" (under state 0): a claim, a rescue and a reschedule then
    #   fire no trigger at all, and the leased rows (a few per relay) are counted
    #   from their unique index. Sharded by backend, so concurrent relays do not
    #   queue on one counter row; ``queue status`` sums at most 3 x 16 rows.
    2: (
        # The same int4 as lock_key() computes in Python (first 4 bytes of SHA-256).
        """
        CREATE FUNCTION alertwire_lock_key(k text) RETURNS integer
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $fn$ SELECT ('x' || left(encode(sha256(convert_to(k, 'UTF8')), 'hex'), 8))::bit(32)::integer $fn$
        """,
        "ALTER TABLE alertwire_events ADD COLUMN head boolean NOT NULL DEFAULT false",
        f"""
        UPDATE alertwire_events SET head = true
        WHERE id IN (
            SELECT min(id) FROM alertwire_events WHERE state IN ({SQL_ACTIVE}) GROUP BY order_key
        )
        """,  # noqa: S608 - state numbers from states.py only
        "CREATE INDEX alertwire_events_heads ON alertwire_events (route, id)"
        f" WHERE head AND state = {SQL_PENDING}",
        # The claim's first try: the oldest heads, whatever their route.
        f"CREATE INDEX alertwire_events_head_ids ON alertwire_events (id) WHERE head AND state = {SQL_PENDING}",
        "CREATE INDEX alertwire_events_heads_due ON alertwire_events (route, not_before)"
        f" WHERE head AND state = {SQL_PENDING}",
        "CREATE INDEX alertwire_events_key_head ON alertwire_events (order_key) WHERE head",
        f"CREATE INDEX alertwire_events_leased ON alertwire_events (lease_expires) WHERE state = {SQL_LEASED}",
        f"CREATE INDEX alertwire_events_open ON alertwire_events (created_at) WHERE state IN ({SQL_ACTIVE})",
        # The claim scan is per route now (alertwire_events_heads).
        "DROP INDEX IF EXISTS alertwire_events_pending",
        """
        CREATE TABLE alertwire_counts (
            state smallint NOT NULL,
            shard smallint NOT NULL,
            n     bigint   NOT NULL,
            PRIMARY KEY (state, shard)
        )
        """,
        f"""
        INSERT INTO alertwire_counts (state, shard, n)
        SELECT s, 0, (SELECT count(*) FROM alertwire_events e
                      WHERE e.state = s OR (s = {SQL_PENDING} AND e.state = {SQL_LEASED}))
        FROM (VALUES {_COUNTED_BUCKETS}) AS v (s)
        """,  # noqa: S608 - state numbers from states.py only
        f"""
        CREATE FUNCTION alertwire_events_track() RETURNS trigger
{_TRACK_COUNTS}            IF was_active = is_active THEN
                RETURN NULL;
            END IF;
            PERFORM pg_advisory_xact_lock({LOCK_CLASS}, alertwire_lock_key(NEW.order_key));
            IF is_active THEN
                -- inserted (always last of its key), or made active again by queue retry
                UPDATE alertwire_events SET head = false
                WHERE order_key = NEW.order_key AND head AND id > NEW.id;
                UPDATE alertwire_events SET head = true
                WHERE id = NEW.id AND NOT EXISTS (
                    SELECT 1 FROM alertwire_events x
                    WHERE x.order_key = NEW.order_key AND x.state IN ({SQL_ACTIVE}) AND x.id < NEW.id
                );
            ELSE
{_TRACK_HAND_ON}        """,  # noqa: S608 - a module constant, no value
        "CREATE TRIGGER alertwire_events_added AFTER INSERT OR DELETE ON alertwire_events"
        " FOR EACH ROW EXECUTE FUNCTION alertwire_events_track()",
        "CREATE TRIGGER alertwire_events_moved AFTER UPDATE OF state ON alertwire_events"
        f" FOR EACH ROW WHEN ((OLD.state IN ({SQL_ACTIVE})) IS DISTINCT FROM (NEW.state IN ({SQL_ACTIVE})))"
        " EXECUTE FUNCTION alertwire_events_track()",
    ),
    # Version 3: a relay writes each event once per state move, and a backlog adds
    # nothing a relay has to write around (docs/several-relays.md, "Heads on
    # PostgreSQL"). With version 2 an enqueue wrote every row twice (inserted
    # unflagged, then flagged by the trigger) and a delivery twice (finished, then
    # unflagged by the trigger): every extra version is one more entry in each index
    # the row belongs to, and 100,000 queued events left 100,000 dead rows for
    # autovacuum to clear from every index while the relay drains them.
    # * An enqueue decides the flag in its own INSERT (under the key's advisory lock,
    #   which it already holds), and a settle that finishes a row clears it in its own
    #   UPDATE; the trigger skips an insert that arrives flagged and finds nothing to
    #   clear on a finished row. A row written by an alertwire of version 2 (still
    #   running while another process migrates) is flagged and handed on by the
    #   trigger as before: both versions keep the rule, only the old one writes more.
    # * ``alertwire_events_key_head`` is gone: it served one statement of the trigger
    #   (a key's later head, taken back on ``queue retry``), and every head is active,
    #   so ``alertwire_events_active`` (order_key, id) finds it once that statement says
    #   so. It took an entry at a random place (order keys are digests) at every
    #   enqueue and every claim, and held one per pending event.
    # Both statements are idempotent (IF EXISTS, OR REPLACE), so a database migrated by
    # hand, or a re-run of this step, ends in the same place.
    3: (
        "DROP INDEX IF EXISTS alertwire_events_key_head",
        f"""
        CREATE OR REPLACE FUNCTION alertwire_events_track() RETURNS trigger
{_TRACK_COUNTS}            IF was_active = is_active OR (TG_OP = 'INSERT' AND NEW.head) THEN
                -- no move in or out of the active states, or an enqueue that flagged its
                -- row itself (under this lock): no head to hand over
                RETURN NULL;
            END IF;
            PERFORM pg_advisory_xact_lock({LOCK_CLASS}, alertwire_lock_key(NEW.order_key));
            IF is_active THEN
                -- inserted unflagged (always last of its key), or made active again by
                -- queue retry: a later head of its key (always active) gives way
                UPDATE alertwire_events SET head = false
                WHERE order_key = NEW.order_key AND state IN ({SQL_ACTIVE}) AND head AND id > NEW.id;
                UPDATE alertwire_events SET head = true
                WHERE id = NEW.id AND NOT head AND NOT EXISTS (
                    SELECT 1 FROM alertwire_events x
                    WHERE x.order_key = NEW.order_key AND x.state IN ({SQL_ACTIVE}) AND x.id < NEW.id
                );
            ELSE
                -- finished: cleared by the settle itself (a writer of version 2 did not)
{_TRACK_HAND_ON}        """,  # noqa: S608 - a module constant, no value
    ),
}
