-- A request's token usage moves into its own request_logs row. Every read of token_usage was
-- a LEFT JOIN on request_id, and writing it cost each metered request a second row and a
-- second primary-key index entry: with one row, SQLite's work for a metered request falls by
-- about a third (docs/benchmarks.md, round sixteen). The usage columns are NULL for a request
-- with no usage read (usage_provider is set whenever there is usage).
ALTER TABLE request_logs ADD COLUMN usage_model TEXT;
ALTER TABLE request_logs ADD COLUMN usage_provider TEXT;           -- plan | bedrock
ALTER TABLE request_logs ADD COLUMN input_tokens INTEGER;
ALTER TABLE request_logs ADD COLUMN output_tokens INTEGER;
ALTER TABLE request_logs ADD COLUMN cache_read_tokens INTEGER;
ALTER TABLE request_logs ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE request_logs ADD COLUMN cost_micro_usd INTEGER;      -- millionths of a dollar

UPDATE request_logs
SET usage_model = t.model,
    usage_provider = t.provider,
    input_tokens = t.input_tokens,
    output_tokens = t.output_tokens,
    cache_read_tokens = t.cache_read_tokens,
    cache_write_tokens = t.cache_write_tokens,
    cost_micro_usd = t.cost_micro_usd
FROM token_usage t
WHERE t.request_id = request_logs.request_id;

DROP TABLE token_usage;
