-- Daily usage per access key (and its user), without model, provider or path: what the top
-- users and top keys lists read for whole days. A person sends a few requests an hour, so the
-- hourly rollup holds about one row per request for them; a day folds those into one row.
-- Kept by the metering writer in the same transaction as the hourly rollups; rebuilt with them.
CREATE TABLE usage_daily_keys (
    day                  TIMESTAMPTZ NOT NULL,
    user_id              UUID NOT NULL,
    access_key_id        UUID NOT NULL,
    requests             BIGINT NOT NULL,
    failovers            BIGINT NOT NULL,          -- path plan_bedrock
    bedrock_direct       BIGINT NOT NULL,          -- path bedrock
    errors               BIGINT NOT NULL,
    requests_with_usage  BIGINT NOT NULL,
    input_tokens         BIGINT NOT NULL,
    output_tokens        BIGINT NOT NULL,
    cache_read_tokens    BIGINT NOT NULL,
    cache_write_tokens   BIGINT NOT NULL,
    cost_micro_usd       BIGINT NOT NULL,
    PRIMARY KEY (day, user_id, access_key_id)
);
-- One person's or one key's days (the user page, a filtered report).
CREATE INDEX usage_daily_keys_user_day_idx ON usage_daily_keys (user_id, day);
CREATE INDEX usage_daily_keys_key_day_idx ON usage_daily_keys (access_key_id, day);

INSERT INTO usage_daily_keys
SELECT date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', user_id, access_key_id,
       SUM(requests), SUM(failovers), SUM(CASE WHEN path = 'bedrock' THEN requests ELSE 0 END),
       SUM(errors), SUM(requests_with_usage), SUM(input_tokens), SUM(output_tokens),
       SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_micro_usd)
FROM usage_hourly
GROUP BY 1, 2, 3;
