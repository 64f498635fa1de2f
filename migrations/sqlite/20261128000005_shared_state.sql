-- State every gateway and admin server shares through the database (issue: many gateways,
-- one truth). Times are Unix milliseconds, compared the same way on both engines.

-- The circuit breaker of each access key that has failed on Plan: gateways record Plan
-- failures here while the circuit is closed, open it when the threshold is reached, claim the
-- one half-open probe, and record its result; PostgreSQL NOTIFY tells the others (payload:
-- the access key id). A key's row is written only while its circuit is closed or on a
-- transition, so a storm of Plan errors is bounded by the threshold per open period.
CREATE TABLE circuit_states (
    access_key_id    BLOB PRIMARY KEY,
    state            TEXT NOT NULL,             -- closed | open | half_open
    failures_ms      TEXT NOT NULL,             -- JSON array: recent Plan failures while closed
    open_until_ms    INTEGER,                   -- open: when a probe may go
    probe_owner      BLOB,                      -- half_open: the gateway instance probing
    probe_until_ms   INTEGER,                   -- half_open: until when its claim holds
    last_failure_ms  INTEGER,
    opened_count     INTEGER NOT NULL DEFAULT 0,-- times opened or re-opened
    writes           INTEGER NOT NULL DEFAULT 0,-- statements that changed the row
    updated_ms       INTEGER NOT NULL
) WITHOUT ROWID;

-- Failed admin logins per subject (`user:<normalized name>` or `addr:<client address>`),
-- so every admin server counts against one limit.
CREATE TABLE login_failures (
    subject          TEXT PRIMARY KEY,
    failures         INTEGER NOT NULL,
    last_failure_ms  INTEGER NOT NULL
) WITHOUT ROWID;
