-- Objects, the global resourceVersion counter and the watch history.
--
-- The counter is a single row that every write transaction increments first. The row lock makes
-- writers, on every replica, queue on it, so resourceVersions are given out and committed in the
-- same order, with no holes: a watcher that has seen version N knows that N + 1 is the next one
-- to wait for. (A sequence would not do: a transaction that took 10 may commit after the one that
-- took 11, and a reader that already moved past 11 would never see 10.)
CREATE TABLE resource_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO resource_version (id, value) VALUES (1, 0);

-- One row per object; `object` is the whole JSON object, resourceVersion included, kept as text
-- so that both backends return the bytes they were given. The "C" collation orders keys bytewise,
-- as SQLite does, so lists page in the same order on both.
CREATE TABLE objects (
    resource TEXT COLLATE "C" NOT NULL,
    namespace TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    resource_version BIGINT NOT NULL,
    object TEXT NOT NULL,
    PRIMARY KEY (resource, namespace, name)
);

-- One row per write, appended in the write's transaction; compaction deletes the oldest.
CREATE TABLE events (
    resource_version BIGINT PRIMARY KEY,
    event_type TEXT NOT NULL CHECK (event_type IN ('ADDED', 'MODIFIED', 'DELETED')),
    resource TEXT COLLATE "C" NOT NULL,
    namespace TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    object TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX events_created_at ON events (created_at_ms);
