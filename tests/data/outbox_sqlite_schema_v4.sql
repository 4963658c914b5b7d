-- index events_finished
CREATE INDEX events_finished ON events (state, finished_at) WHERE state IN (2, 3);

-- index events_head_ids
CREATE INDEX events_head_ids ON events (id) WHERE head = 1 AND state = 0;

-- index events_heads
CREATE INDEX events_heads ON events (route, id) WHERE head = 1 AND state = 0;

-- index events_heads_due
CREATE INDEX events_heads_due ON events (route, not_before) WHERE head = 1 AND state = 0;

-- index events_in_flight_behind
CREATE INDEX events_in_flight_behind ON events (order_key) WHERE state = 1 AND head = 0;

-- index events_leased
CREATE INDEX events_leased ON events (lease_expires) WHERE state = 1;

-- index events_open_since
CREATE INDEX events_open_since ON events (created_at) WHERE finished_at IS NULL;

-- index events_unfinished
CREATE INDEX events_unfinished ON events (order_key, id) WHERE finished_at IS NULL;

-- table alertwire_schema
CREATE TABLE alertwire_schema (version INTEGER NOT NULL);

-- table counts
CREATE TABLE counts (state INTEGER PRIMARY KEY, n INTEGER NOT NULL);

-- table events
CREATE TABLE events (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        state         INTEGER NOT NULL DEFAULT 0,
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
        attempts      INTEGER NOT NULL DEFAULT 0,
        lease_owner   TEXT,
        lease_expires REAL,
        finished_at   REAL,
        http_status   INTEGER,
        last_error    TEXT,
        error_body    TEXT
    , head INTEGER NOT NULL DEFAULT 0);

-- table routes
CREATE TABLE routes (
        route        TEXT PRIMARY KEY,
        next_allowed REAL NOT NULL
    ) WITHOUT ROWID
    ;

-- table sqlite_sequence
CREATE TABLE sqlite_sequence(name,seq);

-- trigger events_inserted
CREATE TRIGGER events_inserted AFTER INSERT ON events BEGIN
        UPDATE counts SET n = n + 1 WHERE state = new.state;
        UPDATE events SET head = 1
        WHERE id = new.id AND new.state IN (0, 1)
          AND NOT EXISTS (SELECT 1 FROM events x
                          WHERE x.order_key = new.order_key AND x.finished_at IS NULL
                            AND x.id < new.id);
    END;

-- trigger events_moved
CREATE TRIGGER events_moved AFTER UPDATE OF state ON events
    WHEN (old.state IN (2, 3)) <> (new.state IN (2, 3)) BEGIN
        -- Finished rows clear their head flag and set finished_at in the same write,
        -- and active ones have none: a row that does otherwise was written by other
        -- rules than this schema's (an older alertwire, or a hand-written statement).
        SELECT RAISE(ABORT, 'the outbox was upgraded to a newer schema: restart this process')
        WHERE (new.state IN (2, 3) AND new.head = 1)
           OR (new.state IN (2, 3)) = (new.finished_at IS NULL);
        -- Left the active states (its own flag cleared by the statement that finished
        -- it): the next unfinished row of its key is the head.
        UPDATE events SET head = 1
        WHERE new.state IN (2, 3)
          AND id = (SELECT min(x.id) FROM events x
                    WHERE x.order_key = new.order_key AND x.finished_at IS NULL);
        -- Active again (queue retry): the head if nothing earlier of its key is
        -- unfinished (a head always is: the later one is found through events_unfinished).
        UPDATE events SET head = 0
        WHERE new.state IN (0, 1)
          AND order_key = new.order_key AND finished_at IS NULL AND head = 1
          AND id > new.id;
        UPDATE events SET head = 1
        WHERE new.state IN (0, 1) AND id = new.id
          AND NOT EXISTS (SELECT 1 FROM events x
                          WHERE x.order_key = new.order_key AND x.finished_at IS NULL
                            AND x.id < new.id);
    END;
