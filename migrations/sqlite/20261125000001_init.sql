-- ClaudeCodeProxy schema, SQLite dialect. The PostgreSQL twin lives in ../postgres/.
-- Times are RFC 3339 text written by sqlx; ids are 16-byte UUID blobs (v7, time-ordered).

CREATE TABLE users (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL UNIQUE,        -- stored lower-cased
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE access_keys (
    id             BLOB PRIMARY KEY,
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT,
    display_prefix TEXT NOT NULL,            -- masked form, e.g. ccp_ab12…wxyz
    digest         BLOB NOT NULL UNIQUE,    -- HMAC-SHA256(pepper, key); the key itself is never stored
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at     TEXT NOT NULL,
    revoked_at     TEXT,
    expires_at     TEXT,
    last_used_at   TEXT
);
CREATE INDEX access_keys_user_idx ON access_keys (user_id);

CREATE TABLE bedrock_keys (
    id             BLOB PRIMARY KEY,
    access_key_id  BLOB NOT NULL UNIQUE REFERENCES access_keys (id) ON DELETE CASCADE,
    ciphertext     BLOB NOT NULL,           -- wrapped by KMS or the local AES-GCM wrapper
    wrapper        TEXT NOT NULL,            -- which wrapper made the ciphertext: 'kms' or 'local'
    region         TEXT NOT NULL,
    last4          TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE model_mappings (
    id                BLOB PRIMARY KEY,
    anthropic_model   TEXT NOT NULL UNIQUE,
    bedrock_model_id  TEXT NOT NULL,
    max_output_tokens INTEGER,
    enabled           INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

-- One row per authenticated request. No prompt or response text, ever.
CREATE TABLE request_logs (
    request_id       TEXT PRIMARY KEY,        -- the gateway's x-ccp-request-id
    access_key_id    BLOB NOT NULL,
    user_id          BLOB NOT NULL,
    model            TEXT,
    stream           INTEGER NOT NULL DEFAULT 0,
    route            TEXT NOT NULL,           -- plan | plan_bedrock | bedrock
    upstream         TEXT,                    -- who answered: plan | bedrock | gateway
    status           INTEGER NOT NULL,
    error_type       TEXT,
    plan_status      INTEGER,                 -- the Plan status that caused a failover
    outcome          TEXT NOT NULL,           -- complete | client_disconnect | partial | error
    auth_ms          REAL,
    plan_ttfb_ms     REAL,
    bedrock_ttfb_ms  REAL,
    total_ms         REAL NOT NULL,
    request_bytes    INTEGER NOT NULL DEFAULT 0,
    response_bytes   INTEGER NOT NULL DEFAULT 0,
    started_at       TEXT NOT NULL,
    finished_at      TEXT NOT NULL
);
CREATE INDEX request_logs_started_idx ON request_logs (started_at);
CREATE INDEX request_logs_user_started_idx ON request_logs (user_id, started_at);
CREATE INDEX request_logs_key_started_idx ON request_logs (access_key_id, started_at);

CREATE TABLE token_usage (
    request_id          TEXT PRIMARY KEY,
    access_key_id       BLOB NOT NULL,
    user_id             BLOB NOT NULL,
    model               TEXT NOT NULL,
    provider            TEXT NOT NULL,        -- plan | bedrock
    input_tokens        INTEGER NOT NULL DEFAULT 0,
    output_tokens       INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens   INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_micro_usd      INTEGER NOT NULL DEFAULT 0,  -- millionths of a dollar; exact sums
    created_at          TEXT NOT NULL
);
CREATE INDEX token_usage_created_idx ON token_usage (created_at);
CREATE INDEX token_usage_user_created_idx ON token_usage (user_id, created_at);

CREATE TABLE admins (
    id             BLOB PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,     -- stored lower-cased
    password_hash  TEXT NOT NULL,             -- argon2id PHC string
    token_version  INTEGER NOT NULL DEFAULT 0, -- bumped on logout/password change to revoke JWTs
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    last_login_at  TEXT
);

CREATE TABLE audit_log (
    id           BLOB PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,               -- 'cli', 'admin:<id>', 'system'
    action       TEXT NOT NULL,               -- e.g. access_key.issue
    target_type  TEXT,
    target_id    TEXT,
    detail       TEXT                         -- JSON; never a secret
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
