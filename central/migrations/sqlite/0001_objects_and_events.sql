-- Objects, the global resourceVersion counter and the watch history.
--
-- The counter is a single row that every write transaction increments first. Writers therefore
-- queue on it, so resourceVersions are given out and committed in the same order, with no holes:
-- a watcher that has seen version N knows that N + 1 is the next one to wait for.
CREATE TABLE resource_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO resource_version (id, value) VALUES (1, 0);

-- One row per object; `object` is the whole JSON object, resourceVersion included. Text compares
-- bytewise (SQLite's BINARY collation), the same order as PostgreSQL's "C" collation.
CREATE TABLE objects (
    resource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    resource_version INTEGER NOT NULL,
    object TEXT NOT NULL,
    PRIMARY KEY (resource, namespace, name)
);

-- One row per write, appended in the write's transaction; compaction deletes the oldest.
CREATE TABLE events (
    resource_version INTEGER PRIMARY KEY,
    event_type TEXT NOT NULL CHECK (event_type IN ('ADDED', 'MODIFIED', 'DELETED')),
    resource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    object TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX events_created_at ON events (created_at_ms);
