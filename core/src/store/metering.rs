//! Metering rows: `request_logs` and `token_usage`, written in batches by the metering
//! writer. Multi-row inserts in one transaction, idempotent on the request id, so a retried
//! batch never duplicates a row. (`QueryBuilder` adds one placeholder per value; no value is
//! ever spliced into the SQL text.)

use super::{Store, StoreResult, on_pool};
use crate::metering::record::RequestRecord;

/// Rows per INSERT statement: 500 × 20 placeholders stays well inside SQLite's 32 766.
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
                     status, error_type, plan_status, failover_skip, outcome, auth_ms, plan_ttfb_ms, bedrock_ttfb_ms, total_ms, \
                     request_bytes, response_bytes, started_at, finished_at) ",
                );
                logs.push_values(chunk, |mut row, r| {
                    row.push_bind(r.request_id.as_str())
                        .push_bind(r.access_key_id)
                        .push_bind(r.user_id)
                        .push_bind(r.model.as_deref())
                        .push_bind(r.stream)
                        .push_bind(r.route.as_str())
                        .push_bind(r.upstream.as_str())
                        .push_bind(i32::from(r.status))
                        .push_bind(r.error_type)
                        .push_bind(r.plan_status.map(i32::from))
                        .push_bind(r.failover_skip)
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

/// A model name clients sent, with how often since a given time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ModelSeen {
    pub model: String,
    pub requests: i64,
    /// Requests that needed Bedrock and could not go there because the model has no mapping.
    pub missed_failovers: i64,
    pub last_seen: chrono::DateTime<chrono::Utc>,
}

impl Store {
    /// Every model name in `request_logs` since `since`, most requested first (at most 500).
    pub async fn models_seen(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<ModelSeen>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT model,
                        COUNT(*) AS requests,
                        CAST(COALESCE(SUM(CASE WHEN failover_skip = 'unmapped_model' THEN 1 ELSE 0 END), 0) AS BIGINT)
                            AS missed_failovers,
                        MAX(started_at) AS last_seen
                 FROM request_logs
                 WHERE started_at >= $1 AND model IS NOT NULL
                 GROUP BY model
                 ORDER BY requests DESC, model
                 LIMIT 500",
            )
            .bind(since)
            .fetch_all(pool)
            .await
        })?)
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
    pub failover_skip: Option<String>,
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
                        r.error_type, r.plan_status, r.failover_skip, r.outcome, r.request_bytes, r.response_bytes,
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

/// What a grouped usage report is broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    User,
    Key,
    /// The model the client asked for.
    Model,
}

/// One bucket of a usage series (or, for [`Store::usage_top`], one group's totals).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct UsageBucket {
    /// Bucket start, RFC 3339 in UTC (`2026-11-26T13:00:00Z`); empty in a top list.
    pub bucket: String,
    /// The user or access key of a grouped row.
    pub group_id: Option<uuid::Uuid>,
    /// The model of a row grouped by model (`None`: requests that named none).
    pub group_name: Option<String>,
    pub requests: i64,
    /// Requests Plan failed and Bedrock was tried for (`plan_bedrock`).
    pub failovers: i64,
    /// Requests sent straight to Bedrock (open circuit): `bedrock`.
    pub bedrock_direct: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micro_usd: i64,
}

/// The aggregate columns, shared by both engines' queries.
const USAGE_COLUMNS: &str = "COUNT(*) AS requests,
     CAST(COALESCE(SUM(CASE WHEN r.route = 'plan_bedrock' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failovers,
     CAST(COALESCE(SUM(CASE WHEN r.route = 'bedrock' THEN 1 ELSE 0 END), 0) AS BIGINT) AS bedrock_direct,
     CAST(COALESCE(SUM(t.input_tokens), 0) AS BIGINT) AS input_tokens,
     CAST(COALESCE(SUM(t.output_tokens), 0) AS BIGINT) AS output_tokens,
     CAST(COALESCE(SUM(t.cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
     CAST(COALESCE(SUM(t.cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens,
     CAST(COALESCE(SUM(t.cost_micro_usd), 0) AS BIGINT) AS cost_micro_usd";

/// The shape of a usage query: bucketed over time or not, grouped or not.
#[derive(Debug, Clone, Copy)]
struct UsageShape {
    granularity: Option<Granularity>,
    group: Option<UsageGroup>,
    /// Largest groups first, at most this many (a top list).
    top: Option<i64>,
}

impl UsageShape {
    /// The query text for `postgres` or SQLite. Built only from the fixed pieces below:
    /// every value is a bind parameter.
    fn sql(self, postgres: bool) -> String {
        // Each engine buckets its own way: PostgreSQL truncates the timestamp; SQLite stores
        // RFC 3339 text, so a bucket is a strftime prefix of it. `$1` is the unit or format.
        let bucket = match (self.granularity, postgres) {
            (None, _) => "CAST($1 AS TEXT)",
            (Some(_), true) => {
                "to_char(date_trunc($1, r.started_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            }
            (Some(_), false) => "strftime($1, r.started_at)",
        };
        let no_id = if postgres {
            "CAST(NULL AS uuid)"
        } else {
            "NULL"
        };
        let (group_id, group_name) = match self.group {
            None => (no_id, "CAST(NULL AS TEXT)"),
            Some(UsageGroup::User) => ("r.user_id", "CAST(NULL AS TEXT)"),
            Some(UsageGroup::Key) => ("r.access_key_id", "CAST(NULL AS TEXT)"),
            Some(UsageGroup::Model) => (no_id, "r.model"),
        };
        let (uuid, text) = if postgres {
            ("::uuid", "::text")
        } else {
            ("", "")
        };
        let order = match self.top {
            Some(_) => "ORDER BY requests DESC, 2, 3 LIMIT $8",
            None => "ORDER BY 1, 2, 3",
        };
        format!(
            "SELECT {bucket} AS bucket, {group_id} AS group_id, {group_name} AS group_name, {USAGE_COLUMNS}
             FROM request_logs r LEFT JOIN token_usage t ON t.request_id = r.request_id
             WHERE r.started_at >= $2 AND r.started_at < $3
               AND ($4{uuid} IS NULL OR r.user_id = $4)
               AND ($5{uuid} IS NULL OR r.access_key_id = $5)
               AND ($6{text} IS NULL OR r.model = $6)
               AND ($7{text} IS NULL OR r.upstream = $7)
             GROUP BY 1, 2, 3 {order}"
        )
    }

    fn bucket_param(self, postgres: bool) -> &'static str {
        match (self.granularity, postgres) {
            (None, _) => "",
            (Some(Granularity::Hour), true) => "hour",
            (Some(Granularity::Day), true) => "day",
            (Some(Granularity::Month), true) => "month",
            (Some(Granularity::Hour), false) => "%Y-%m-%dT%H:00:00Z",
            (Some(Granularity::Day), false) => "%Y-%m-%dT00:00:00Z",
            (Some(Granularity::Month), false) => "%Y-%m-01T00:00:00Z",
        }
    }
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
        let shape = UsageShape {
            granularity: Some(granularity),
            group: None,
            top: None,
        };
        self.usage_query(filter, shape).await
    }

    /// The series with one row per bucket and group (e.g. per access key of one user), oldest
    /// bucket first. Unbounded in the number of groups: callers narrow the filter.
    pub async fn usage_series_by(
        &self,
        filter: &UsageFilter,
        granularity: Granularity,
        group: UsageGroup,
    ) -> StoreResult<Vec<UsageBucket>> {
        let shape = UsageShape {
            granularity: Some(granularity),
            group: Some(group),
            top: None,
        };
        self.usage_query(filter, shape).await
    }

    /// The `limit` groups with the most requests in the filter's range, largest first.
    pub async fn usage_top(
        &self,
        filter: &UsageFilter,
        group: UsageGroup,
        limit: i64,
    ) -> StoreResult<Vec<UsageBucket>> {
        let shape = UsageShape {
            granularity: None,
            group: Some(group),
            top: Some(limit),
        };
        self.usage_query(filter, shape).await
    }

    async fn usage_query(
        &self,
        filter: &UsageFilter,
        shape: UsageShape,
    ) -> StoreResult<Vec<UsageBucket>> {
        let from = filter.from.unwrap_or(chrono::DateTime::UNIX_EPOCH);
        let to = filter
            .to
            .unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::days(1));
        let postgres = matches!(self.pool, super::Pool::Postgres(_));
        let sql = shape.sql(postgres);
        let rows = on_pool!(self, pool => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(shape.bucket_param(postgres))
                .bind(from)
                .bind(to)
                .bind(filter.user_id)
                .bind(filter.access_key_id)
                .bind(filter.model.as_deref())
                .bind(filter.provider.as_deref());
            if let Some(limit) = shape.top {
                query = query.bind(limit);
            }
            query.fetch_all(pool).await
        })?;
        Ok(rows)
    }
}
