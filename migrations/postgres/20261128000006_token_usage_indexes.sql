-- token_usage is read only through its request row (joined on request_id, its primary key):
-- the usage reports read the rollups, the raw-row fallback and the rollup rebuild filter on
-- request_logs.started_at, and retention deletes by request_id. Its two time indexes served
-- no query and cost each metered request two more index writes.
DROP INDEX IF EXISTS token_usage_created_idx;
DROP INDEX IF EXISTS token_usage_user_created_idx;
