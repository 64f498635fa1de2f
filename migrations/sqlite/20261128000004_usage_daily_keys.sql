-- Daily usage per access key (and its user), without model, provider or path: what the top
-- users and top keys lists read for whole days. A person sends a few requests an hour, so the
-- hourly rollup holds about one row per request for them; a day folds those into one row.
-- Kept by the metering writer in the same transaction as the hourly rollups; rebuilt with them.
-- `day` is RFC 3339 text like `usage_hourly.hour` (2026-11-28T00:00:00+00:00).
CREATE TABLE usage_daily_keys (
    day                  TEXT NOT NULL,
    user_id              BLOB NOT NULL,
    access_key_id        BLOB NOT NULL,
    requests             INTEGER NOT NULL,
    failovers            INTEGER NOT NULL,         -- path plan_bedrock
    bedrock_direct       INTEGER NOT NULL,         -- path bedrock
    errors               INTEGER NOT NULL,
    requests_with_usage  INTEGER NOT NULL,
    input_tokens         INTEGER NOT NULL,
    output_tokens        INTEGER NOT NULL,
    cache_read_tokens    INTEGER NOT NULL,
    cache_write_tokens   INTEGER NOT NULL,
    cost_micro_usd       INTEGER NOT NULL,
    PRIMARY KEY (day, user_id, access_key_id)
) WITHOUT ROWID;
-- One person's or one key's days (the user page, a filtered report).
CREATE INDEX usage_daily_keys_user_day_idx ON usage_daily_keys (user_id, day);
CREATE INDEX usage_daily_keys_key_day_idx ON usage_daily_keys (access_key_id, day);

INSERT INTO usage_daily_keys
SELECT strftime('%Y-%m-%dT00:00:00+00:00', hour), user_id, access_key_id,
       SUM(requests), SUM(failovers), SUM(CASE WHEN path = 'bedrock' THEN requests ELSE 0 END),
       SUM(errors), SUM(requests_with_usage), SUM(input_tokens), SUM(output_tokens),
       SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_micro_usd)
FROM usage_hourly
GROUP BY 1, 2, 3;
