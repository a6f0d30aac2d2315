-- The controller's durable outbox: what must reach central (evidence, status patches) or a
-- notification target, in order per kind, and the head of the appliance's evidence chain.

CREATE TABLE entries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT, -- order of enqueueing; never reused
    kind         TEXT    NOT NULL CHECK (kind IN ('evidence', 'status', 'notification')),
    seq          INTEGER UNIQUE,                    -- the chain seq of an evidence envelope
    body         BLOB    NOT NULL,                  -- what is sent, exactly
    created_ms   INTEGER NOT NULL,                  -- enqueued at (Unix milliseconds)
    delivered_ms INTEGER,                           -- NULL while undelivered
    attempts     INTEGER NOT NULL DEFAULT 0,        -- failed deliveries so far
    CHECK ((kind = 'evidence') = (seq IS NOT NULL))
);

CREATE INDEX entries_pending ON entries (kind, id) WHERE delivered_ms IS NULL;
CREATE INDEX entries_delivered ON entries (id) WHERE delivered_ms IS NOT NULL;

-- One row once the first bundle is appended: the chain head, written in the transaction that
-- inserts its envelope, so that a crash can never fork the chain.
CREATE TABLE chain_head (
    only         INTEGER PRIMARY KEY CHECK (only = 1),
    seq          INTEGER NOT NULL,
    payload_hash BLOB    NOT NULL
);
