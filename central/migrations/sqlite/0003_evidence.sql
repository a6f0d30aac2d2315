-- The evidence log: accepted envelopes, the log's size counter, and chain alerts.
--
-- `evidence` and `evidence_alerts` are write-once, enforced here and not only by the code above:
-- the triggers below refuse every UPDATE and DELETE, whoever sends it. HIPAA wants six years of
-- retention; nothing in central deletes evidence, and removing it takes dropping the triggers,
-- which is a deliberate act outside the application.

-- The number of entries in the Merkle log. Every evidence write transaction increments it first,
-- so writers queue on it and log indexes are given out and committed in order, with no holes:
-- the rows with index below the count are exactly the committed entries.
CREATE TABLE evidence_log (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL
);
INSERT INTO evidence_log (id, size) VALUES (1, 0);

-- One row per accepted envelope. `envelope` is the exact JSON text stored and exported; the
-- Merkle leaf is SHA-256(0x00 || envelope), kept in `leaf_hash` (hex) so that the tree is rebuilt
-- at start without rehashing every envelope. `public_key` is the appliance key the signature was
-- verified against (base64), so exports stay verifiable after the appliance is enrolled again.
-- The query columns are copies of bundle fields.
CREATE TABLE evidence (
    log_index INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    appliance TEXT NOT NULL,
    seq INTEGER NOT NULL,
    bundle_id TEXT NOT NULL UNIQUE,
    payload_hash TEXT NOT NULL,
    leaf_hash TEXT NOT NULL,
    public_key TEXT NOT NULL,
    host TEXT NOT NULL,
    runbook TEXT NOT NULL,
    outcome TEXT NOT NULL,
    timestamp_end_ms INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    envelope TEXT NOT NULL,
    UNIQUE (site, appliance, seq)
);
-- Queries and exports are per site: paging in log order, and time ranges.
CREATE INDEX evidence_by_site ON evidence (site, log_index);
CREATE INDEX evidence_by_site_time ON evidence (site, timestamp_end_ms);

-- One row per refused fork: different bytes under a seq or bundle id already stored.
CREATE TABLE evidence_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL,
    appliance TEXT NOT NULL,
    seq INTEGER NOT NULL,
    bundle_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    stored_payload_hash TEXT,
    received_payload_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX evidence_alerts_by_site ON evidence_alerts (site, id);

CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence
BEGIN SELECT RAISE(ABORT, 'evidence is write-once: UPDATE is refused'); END;
CREATE TRIGGER evidence_no_delete BEFORE DELETE ON evidence
BEGIN SELECT RAISE(ABORT, 'evidence is write-once: DELETE is refused'); END;
CREATE TRIGGER evidence_alerts_no_update BEFORE UPDATE ON evidence_alerts
BEGIN SELECT RAISE(ABORT, 'evidence alerts are write-once: UPDATE is refused'); END;
CREATE TRIGGER evidence_alerts_no_delete BEFORE DELETE ON evidence_alerts
BEGIN SELECT RAISE(ABORT, 'evidence alerts are write-once: DELETE is refused'); END;
