//! Metering rows: `request_logs` and `token_usage`, written in batches by the metering
//! writer. Multi-row inserts in one transaction, idempotent on the request id, so a retried
//! batch never duplicates a row. (`QueryBuilder` adds one placeholder per value; no value is
//! ever spliced into the SQL text.)

use super::{Store, StoreResult, on_pool};
use crate::metering::RequestRecord;

/// Rows per INSERT statement: 500 × 19 placeholders stays well inside SQLite's 32 766.
pub const ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Writes a batch in one transaction: statements of at most [`ROWS_PER_STATEMENT`] rows
    /// (SQLite allows 32 766 placeholders a statement), one commit. One commit for many rows
    /// is what makes the embedded default cheap: each commit writes every index page it
    /// touched to SQLite's WAL again.
    pub async fn insert_request_records(&self, records: &[RequestRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in records.chunks(ROWS_PER_STATEMENT) {
                let mut logs = sqlx::QueryBuilder::new(
                    "INSERT INTO request_logs (request_id, access_key_id, user_id, model, stream, route, upstream, \
                     status, error_type, plan_status, outcome, auth_ms, plan_ttfb_ms, bedrock_ttfb_ms, total_ms, \
                     request_bytes, response_bytes, started_at, finished_at) ",
                );
                logs.push_values(chunk, |mut row, r| {
                    row.push_bind(r.request_id.as_str())
                        .push_bind(r.access_key_id)
                        .push_bind(r.user_id)
                        .push_bind(r.model.as_deref())
                        .push_bind(r.stream)
                        .push_bind(r.route)
                        .push_bind(r.upstream)
                        .push_bind(i32::from(r.status))
                        .push_bind(r.error_type)
                        .push_bind(r.plan_status.map(i32::from))
                        .push_bind(r.outcome.as_str())
                        .push_bind(r.auth_ms)
                        .push_bind(r.plan_ttfb_ms)
                        .push_bind(r.bedrock_ttfb_ms)
                        .push_bind(r.total_ms)
                        .push_bind(i64::try_from(r.request_bytes).unwrap_or(i64::MAX))
                        .push_bind(i64::try_from(r.response_bytes).unwrap_or(i64::MAX))
                        .push_bind(r.started_at)
                        .push_bind(r.finished_at);
                });
                logs.push(" ON CONFLICT (request_id) DO NOTHING");
                logs.build().execute(&mut *tx).await?;
                let with_usage: Vec<_> = chunk
                    .iter()
                    .filter_map(|r| r.usage.as_ref().map(|u| (r, u)))
                    .collect();
                if with_usage.is_empty() {
                    continue;
                }
                let mut usage = sqlx::QueryBuilder::new(
                    "INSERT INTO token_usage (request_id, access_key_id, user_id, model, provider, input_tokens, \
                     output_tokens, cache_read_tokens, cache_write_tokens, cost_micro_usd, created_at) ",
                );
                usage.push_values(with_usage, |mut row, (r, u)| {
                    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                    row.push_bind(r.request_id.as_str())
                        .push_bind(r.access_key_id)
                        .push_bind(r.user_id)
                        .push_bind(u.model.as_str())
                        .push_bind(u.provider.as_str())
                        .push_bind(n(u.tokens.input))
                        .push_bind(n(u.tokens.output))
                        .push_bind(n(u.tokens.cache_read))
                        .push_bind(n(u.tokens.cache_write_5m.saturating_add(u.tokens.cache_write_1h)))
                        .push_bind(u.cost_micro_usd)
                        .push_bind(r.finished_at);
                });
                usage.push(" ON CONFLICT (request_id) DO NOTHING");
                usage.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// Rows in `request_logs` (tests and operational checks).
    pub async fn count_request_logs(&self) -> StoreResult<i64> {
        let (n,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM request_logs").fetch_one(pool).await
        })?;
        Ok(n)
    }
}

/// Totals over a time range (the admin usage endpoint's summary line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UsageTotals {
    pub requests: i64,
    /// Requests Plan failed and Bedrock answered or was tried for.
    pub failovers: i64,
    pub bedrock_direct: i64,
    pub requests_with_usage: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micro_usd: i64,
}

impl Store {
    /// Requests started and tokens recorded in `[from, to)`.
    pub async fn usage_totals(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<UsageTotals> {
        let (requests, failovers, bedrock_direct): (i64, i64, i64) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT COUNT(*),
                        CAST(COALESCE(SUM(CASE WHEN route = 'plan_bedrock' THEN 1 ELSE 0 END), 0) AS BIGINT),
                        CAST(COALESCE(SUM(CASE WHEN route = 'bedrock' THEN 1 ELSE 0 END), 0) AS BIGINT)
                 FROM request_logs WHERE started_at >= $1 AND started_at < $2",
            )
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await
        })?;
        let (
            requests_with_usage,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cost_micro_usd,
        ): (i64, i64, i64, i64, i64, i64) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT COUNT(*),
                        CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT),
                        CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT),
                        CAST(COALESCE(SUM(cache_read_tokens), 0) AS BIGINT),
                        CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT),
                        CAST(COALESCE(SUM(cost_micro_usd), 0) AS BIGINT)
                 FROM token_usage WHERE created_at >= $1 AND created_at < $2",
            )
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await
        })?;
        Ok(UsageTotals {
            requests,
            failovers,
            bedrock_direct,
            requests_with_usage,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cost_micro_usd,
        })
    }
}

/// One `request_logs` row joined with its `token_usage` row, as reports read it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct RequestLogView {
    pub request_id: String,
    pub access_key_id: uuid::Uuid,
    pub model: Option<String>,
    pub stream: bool,
    pub route: String,
    pub upstream: Option<String>,
    pub status: i32,
    pub error_type: Option<String>,
    pub plan_status: Option<i32>,
    pub outcome: String,
    pub request_bytes: i64,
    pub response_bytes: i64,
    pub provider: Option<String>,
    pub usage_model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub cost_micro_usd: Option<i64>,
}

impl Store {
    pub async fn request_log(&self, request_id: &str) -> StoreResult<Option<RequestLogView>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT r.request_id, r.access_key_id, r.model, r.stream, r.route, r.upstream, r.status,
                        r.error_type, r.plan_status, r.outcome, r.request_bytes, r.response_bytes,
                        t.provider, t.model AS usage_model, t.input_tokens, t.output_tokens,
                        t.cache_read_tokens, t.cache_write_tokens, t.cost_micro_usd
                 FROM request_logs r LEFT JOIN token_usage t ON t.request_id = r.request_id
                 WHERE r.request_id = $1",
            )
            .bind(request_id)
            .fetch_optional(pool)
            .await
        })?)
    }
}

/// How usage is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Hour,
    Day,
    Month,
}

/// Which requests a usage report covers; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    pub user_id: Option<uuid::Uuid>,
    pub access_key_id: Option<uuid::Uuid>,
    /// The model the client asked for.
    pub model: Option<String>,
    /// `plan` or `bedrock`: who answered.
    pub provider: Option<String>,
}

/// One bucket of a usage series.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct UsageBucket {
    /// Bucket start, RFC 3339 in UTC (`2026-11-26T13:00:00Z`).
    pub bucket: String,
    pub requests: i64,
    pub failovers: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micro_usd: i64,
}

/// The aggregate columns, shared by both engines' queries.
macro_rules! usage_columns {
    () => {
        "COUNT(*) AS requests,
         CAST(COALESCE(SUM(CASE WHEN r.route = 'plan_bedrock' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failovers,
         CAST(COALESCE(SUM(t.input_tokens), 0) AS BIGINT) AS input_tokens,
         CAST(COALESCE(SUM(t.output_tokens), 0) AS BIGINT) AS output_tokens,
         CAST(COALESCE(SUM(t.cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
         CAST(COALESCE(SUM(t.cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens,
         CAST(COALESCE(SUM(t.cost_micro_usd), 0) AS BIGINT) AS cost_micro_usd"
    };
}

impl Store {
    /// Requests, failovers, tokens and cost per bucket over the filter's range, oldest first.
    /// Served by the `(started_at)`, `(user_id, started_at)` and `(access_key_id,
    /// started_at)` indexes of `request_logs` and the `token_usage` primary key.
    pub async fn usage_series(
        &self,
        filter: &UsageFilter,
        granularity: Granularity,
    ) -> StoreResult<Vec<UsageBucket>> {
        let from = filter.from.unwrap_or(chrono::DateTime::UNIX_EPOCH);
        let to = filter
            .to
            .unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::days(1));
        // Each engine buckets its own way: PostgreSQL truncates the timestamp; SQLite stores
        // RFC 3339 text, so a bucket is a strftime prefix of it.
        let (sql, bucket): (&'static str, &'static str) = match self.pool {
            super::Pool::Postgres(_) => (
                concat!(
                    "SELECT to_char(date_trunc($1, r.started_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS bucket, ",
                    usage_columns!(),
                    " FROM request_logs r LEFT JOIN token_usage t ON t.request_id = r.request_id
                     WHERE r.started_at >= $2 AND r.started_at < $3
                       AND ($4::uuid IS NULL OR r.user_id = $4)
                       AND ($5::uuid IS NULL OR r.access_key_id = $5)
                       AND ($6::text IS NULL OR r.model = $6)
                       AND ($7::text IS NULL OR r.upstream = $7)
                     GROUP BY 1 ORDER BY 1"
                ),
                match granularity {
                    Granularity::Hour => "hour",
                    Granularity::Day => "day",
                    Granularity::Month => "month",
                },
            ),
            super::Pool::Sqlite(_) => (
                concat!(
                    "SELECT strftime($1, r.started_at) AS bucket, ",
                    usage_columns!(),
                    " FROM request_logs r LEFT JOIN token_usage t ON t.request_id = r.request_id
                     WHERE r.started_at >= $2 AND r.started_at < $3
                       AND ($4 IS NULL OR r.user_id = $4)
                       AND ($5 IS NULL OR r.access_key_id = $5)
                       AND ($6 IS NULL OR r.model = $6)
                       AND ($7 IS NULL OR r.upstream = $7)
                     GROUP BY 1 ORDER BY 1"
                ),
                match granularity {
                    Granularity::Hour => "%Y-%m-%dT%H:00:00Z",
                    Granularity::Day => "%Y-%m-%dT00:00:00Z",
                    Granularity::Month => "%Y-%m-01T00:00:00Z",
                },
            ),
        };
        let rows = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(bucket)
                .bind(from)
                .bind(to)
                .bind(filter.user_id)
                .bind(filter.access_key_id)
                .bind(filter.model.as_deref())
                .bind(filter.provider.as_deref())
                .fetch_all(pool)
                .await
        })?;
        Ok(rows)
    }
}
