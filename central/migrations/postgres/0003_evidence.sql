-- The evidence log: accepted envelopes, the log's size counter, and chain alerts.
--
-- `evidence` and `evidence_alerts` are write-once, enforced here and not only by the code above:
-- the triggers below refuse every UPDATE, DELETE and TRUNCATE, whoever sends it. HIPAA wants six
-- years of retention; nothing in central deletes evidence, and removing it takes dropping the
-- triggers, which is a deliberate act outside the application.

-- The number of entries in the Merkle log. Every evidence write transaction increments it first;
-- the row lock makes writers on every replica queue on it, so log indexes are given out and
-- committed in order, with no holes (a sequence would let index 11 commit before 10, and a
-- replica catching up from the table would skip 10).
CREATE TABLE evidence_log (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL
);
INSERT INTO evidence_log (id, size) VALUES (1, 0);

-- One row per accepted envelope. `envelope` is the exact JSON text stored and exported; the
-- Merkle leaf is SHA-256(0x00 || envelope), kept in `leaf_hash` (hex) so that the tree is rebuilt
-- at start without rehashing every envelope. `public_key` is the appliance key the signature was
-- verified against (base64), so exports stay verifiable after the appliance is enrolled again.
-- The query columns are copies of bundle fields.
CREATE TABLE evidence (
    log_index BIGINT PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL,
    appliance TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    bundle_id TEXT COLLATE "C" NOT NULL UNIQUE,
    payload_hash TEXT NOT NULL,
    leaf_hash TEXT NOT NULL,
    public_key TEXT NOT NULL,
    host TEXT COLLATE "C" NOT NULL,
    runbook TEXT COLLATE "C" NOT NULL,
    outcome TEXT NOT NULL,
    timestamp_end_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    envelope TEXT NOT NULL,
    UNIQUE (site, appliance, seq)
);
-- Queries and exports are per site: paging in log order, and time ranges.
CREATE INDEX evidence_by_site ON evidence (site, log_index);
CREATE INDEX evidence_by_site_time ON evidence (site, timestamp_end_ms);

-- One row per refused fork: different bytes under a seq or bundle id already stored.
CREATE TABLE evidence_alerts (
    id BIGSERIAL PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL,
    appliance TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    bundle_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    stored_payload_hash TEXT,
    received_payload_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX evidence_alerts_by_site ON evidence_alerts (site, id);

CREATE FUNCTION osc_write_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is write-once: % is refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER evidence_write_once BEFORE UPDATE OR DELETE ON evidence
    FOR EACH ROW EXECUTE FUNCTION osc_write_once();
CREATE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON evidence
    FOR EACH STATEMENT EXECUTE FUNCTION osc_write_once();
CREATE TRIGGER evidence_alerts_write_once BEFORE UPDATE OR DELETE ON evidence_alerts
    FOR EACH ROW EXECUTE FUNCTION osc_write_once();
CREATE TRIGGER evidence_alerts_no_truncate BEFORE TRUNCATE ON evidence_alerts
    FOR EACH STATEMENT EXECUTE FUNCTION osc_write_once();
