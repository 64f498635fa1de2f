-- Usage policies per user. routing: plan_first (Plan, failing over to Bedrock), bedrock_only
-- (every request to Bedrock with the key's Bedrock key), plan_only (never Bedrock).
-- monthly_budget_micro_usd: the estimated Bedrock cost a calendar month (UTC) may reach, in
-- millionths of a dollar like the cost column; NULL for no budget.
ALTER TABLE users ADD COLUMN routing TEXT NOT NULL DEFAULT 'plan_first';
ALTER TABLE users ADD COLUMN monthly_budget_micro_usd INTEGER;
ALTER TABLE users ADD COLUMN budget_warning_percent INTEGER NOT NULL DEFAULT 80;
-- The policy the request was routed under.
ALTER TABLE request_logs ADD COLUMN routing TEXT;
