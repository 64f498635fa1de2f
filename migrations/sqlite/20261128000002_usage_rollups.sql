-- Hourly usage rollups: one row per hour (of the request's start, UTC), user, access key,
-- model, provider and path. The metering writer keeps them current in the transaction that
-- inserts the rows they summarise; `ccp-admin usage rebuild-rollups` recomputes them. Usage
-- reports read these instead of every request row, and they outlive raw-row retention.
-- `hour` is RFC 3339 text in the form the driver writes timestamps (2026-11-28T13:00:00+00:00).
CREATE TABLE usage_hourly (
    hour                 TEXT NOT NULL,
    user_id              BLOB NOT NULL,
    access_key_id        BLOB NOT NULL,
    model                TEXT NOT NULL,            -- the model asked for; '' when none was named
    provider             TEXT NOT NULL,            -- who answered: plan | bedrock | gateway
    path                 TEXT NOT NULL,            -- plan | plan_bedrock | bedrock
    requests             INTEGER NOT NULL,
    failovers            INTEGER NOT NULL,         -- path plan_bedrock
    errors               INTEGER NOT NULL,         -- status >= 400
    requests_with_usage  INTEGER NOT NULL,
    input_tokens         INTEGER NOT NULL,
    output_tokens        INTEGER NOT NULL,
    cache_read_tokens    INTEGER NOT NULL,
    cache_write_tokens   INTEGER NOT NULL,
    cost_micro_usd       INTEGER NOT NULL,
    PRIMARY KEY (hour, user_id, access_key_id, model, provider, path)
) WITHOUT ROWID;
-- Also covers the budget check (a user's Bedrock cost of a month) without a table lookup.
CREATE INDEX usage_hourly_user_hour_idx ON usage_hourly (user_id, hour, provider, cost_micro_usd);
CREATE INDEX usage_hourly_key_hour_idx ON usage_hourly (access_key_id, hour);

INSERT INTO usage_hourly
SELECT strftime('%Y-%m-%dT%H:00:00+00:00', r.started_at), r.user_id, r.access_key_id,
       COALESCE(r.model, ''), COALESCE(r.upstream, ''), r.route, COUNT(*),
       SUM(CASE WHEN r.route = 'plan_bedrock' THEN 1 ELSE 0 END),
       SUM(CASE WHEN r.status >= 400 THEN 1 ELSE 0 END),
       COUNT(t.request_id),
       COALESCE(SUM(t.input_tokens), 0), COALESCE(SUM(t.output_tokens), 0),
       COALESCE(SUM(t.cache_read_tokens), 0), COALESCE(SUM(t.cache_write_tokens), 0),
       COALESCE(SUM(t.cost_micro_usd), 0)
FROM request_logs r LEFT JOIN token_usage t ON t.request_id = r.request_id
GROUP BY 1, 2, 3, 4, 5, 6;

-- The same sums without the user and the key: what reports over all users read (a few
-- thousand rows a month however many people there are).
CREATE TABLE usage_hourly_all (
    hour                 TEXT NOT NULL,
    model                TEXT NOT NULL,
    provider             TEXT NOT NULL,
    path                 TEXT NOT NULL,
    requests             INTEGER NOT NULL,
    failovers            INTEGER NOT NULL,
    errors               INTEGER NOT NULL,
    requests_with_usage  INTEGER NOT NULL,
    input_tokens         INTEGER NOT NULL,
    output_tokens        INTEGER NOT NULL,
    cache_read_tokens    INTEGER NOT NULL,
    cache_write_tokens   INTEGER NOT NULL,
    cost_micro_usd       INTEGER NOT NULL,
    PRIMARY KEY (hour, model, provider, path)
) WITHOUT ROWID;

INSERT INTO usage_hourly_all
SELECT hour, model, provider, path, SUM(requests), SUM(failovers), SUM(errors),
       SUM(requests_with_usage), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),
       SUM(cache_write_tokens), SUM(cost_micro_usd)
FROM usage_hourly
GROUP BY 1, 2, 3, 4;
