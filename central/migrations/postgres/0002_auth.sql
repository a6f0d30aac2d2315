-- Bearer tokens, one-time enrollment tokens and the audit log.
--
-- Tokens are stored hashed: `secret_sha256` is the hex SHA-256 of the token's secret part, which
-- is 256 random bits, so a fast hash is enough (nothing to brute-force). `role` is the JSON of
-- `auth::Role`. A token is revoked by setting `revoked_at_ms`; rows are kept for the audit trail.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    revoked_at_ms BIGINT
);

-- One row per enrollment token. `used_at_ms`, `appliance` and `public_key` are set once, by the
-- enrollment that consumes the token; a retry with the same key finds them and gets the same
-- Appliance back.
CREATE TABLE enrollment_tokens (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    site TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms BIGINT,
    appliance TEXT,
    public_key TEXT,
    appliance_token TEXT
);

-- Every mutating request: who, what, when, and how it ended.
CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    principal TEXT NOT NULL,
    token_id TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    code BIGINT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_ms);
