//! Usage reports: totals, series by time bucket (optionally split by user, key or model) and
//! top lists, for the admin API and console. Whole hours are read from the hourly rollups,
//! the partial hours at a range's edges from the raw rows, so the answer is exact for any
//! range and costs about the same for a year as for a day. Reports per user or key that
//! need neither model nor provider (the top lists) read whole days from the daily per-key
//! rollup.
//!
//! (Over 400 lines: one query builder serves every report on both engines and every source,
//! and reading it whole is how its bind positions and column sets are checked; with its
//! source-planning tests beside it.)

use super::rollups::{day_of, hour_of};
use super::{Store, StoreResult, on_pool};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

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
    /// Requests started in `[from, to)` and their tokens and cost, from the rollups (and the
    /// raw rows of partial hours at the edges).
    pub async fn usage_totals(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<UsageTotals> {
        let filter = UsageFilter {
            from: Some(from),
            to: Some(to),
            ..UsageFilter::default()
        };
        let shape = UsageShape {
            granularity: None,
            group: None,
            top: None,
            counts_only: false,
            only: 0,
        };
        // Not bucketed and not grouped: one merged row at most.
        let b = self
            .usage_query(&filter, shape)
            .await?
            .pop()
            .unwrap_or_default();
        Ok(UsageTotals {
            requests: b.requests,
            failovers: b.failovers,
            bedrock_direct: b.bedrock_direct,
            requests_with_usage: b.requests_with_usage,
            input_tokens: b.input_tokens,
            output_tokens: b.output_tokens,
            cache_read_tokens: b.cache_read_tokens,
            cache_write_tokens: b.cache_write_tokens,
            cost_micro_usd: b.cost_micro_usd,
        })
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
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
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
    /// Requests answered with a status of 400 or more.
    pub errors: i64,
    pub requests_with_usage: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micro_usd: i64,
}

impl UsageBucket {
    fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.failovers += other.failovers;
        self.bedrock_direct += other.bedrock_direct;
        self.errors += other.errors;
        self.requests_with_usage += other.requests_with_usage;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.cost_micro_usd += other.cost_micro_usd;
    }
}

/// Where a usage query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `request_logs`: exact to the instant.
    Raw,
    /// `usage_hourly`: whole hours only.
    Rollups,
    /// `usage_hourly_all`: whole hours, all users and keys together (reports that neither
    /// filter nor group by user or key).
    RollupsAll,
    /// `usage_daily_keys`: whole days per user and key (no model, provider or path).
    DailyKeys,
}

/// One piece of a report's range and where it is read.
type Piece = (
    Source,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
);

/// The aggregate columns, shared by both engines' queries.
const RAW_COLUMNS: &str = "COUNT(*) AS requests,
     CAST(COALESCE(SUM(CASE WHEN r.route = 'plan_bedrock' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failovers,
     CAST(COALESCE(SUM(CASE WHEN r.route = 'bedrock' THEN 1 ELSE 0 END), 0) AS BIGINT) AS bedrock_direct,
     CAST(COALESCE(SUM(CASE WHEN r.status >= 400 THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors,
     COUNT(r.usage_provider) AS requests_with_usage,
     CAST(COALESCE(SUM(r.input_tokens), 0) AS BIGINT) AS input_tokens,
     CAST(COALESCE(SUM(r.output_tokens), 0) AS BIGINT) AS output_tokens,
     CAST(COALESCE(SUM(r.cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
     CAST(COALESCE(SUM(r.cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens,
     CAST(COALESCE(SUM(r.cost_micro_usd), 0) AS BIGINT) AS cost_micro_usd";

/// The same columns summed from a rollup table (`u`); `bedrock_direct` is how that table
/// tells the requests sent straight to Bedrock.
fn summed_columns(bedrock_direct: &str) -> String {
    const SUMMED: [&str; 10] = [
        "requests",
        "failovers",
        "bedrock_direct",
        "errors",
        "requests_with_usage",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_micro_usd",
    ];
    SUMMED
        .iter()
        .map(|column| {
            let summed = match *column {
                "bedrock_direct" => bedrock_direct.to_owned(),
                other => format!("u.{other}"),
            };
            format!("CAST(COALESCE(SUM({summed}), 0) AS BIGINT) AS {column}")
        })
        .collect::<Vec<_>>()
        .join(",\n     ")
}

/// The shape of a usage query: bucketed over time or not, grouped or not.
#[derive(Debug, Clone, Copy)]
struct UsageShape {
    granularity: Option<Granularity>,
    group: Option<UsageGroup>,
    /// Largest groups first, at most this many (a top list).
    top: Option<i64>,
    /// Only the request count (the other sums read as 0): ranking a top list.
    counts_only: bool,
    /// Only these groups (user or key ids, bound from `$8` on): a top list's winners.
    only: usize,
}

impl UsageShape {
    /// The query text for `postgres` or SQLite over `source`. Built only from the fixed
    /// pieces below: every value is a bind parameter. Unordered: [`Store::usage_query`]
    /// merges and orders the rows.
    fn sql(self, postgres: bool, source: Source, filter: &UsageFilter) -> String {
        let (time, uid, kid, model, provider, columns, from) = match source {
            Source::Raw => (
                "r.started_at",
                "r.user_id",
                "r.access_key_id",
                "r.model",
                "r.upstream",
                RAW_COLUMNS.to_owned(),
                "request_logs r",
            ),
            Source::Rollups => (
                "u.hour",
                "u.user_id",
                "u.access_key_id",
                "NULLIF(u.model, '')",
                "u.provider",
                summed_columns("CASE WHEN u.path = 'bedrock' THEN u.requests ELSE 0 END"),
                "usage_hourly u",
            ),
            // No user or key columns: the filters on them compare the parameter with itself
            // (both are NULL whenever this source is chosen).
            Source::RollupsAll => (
                "u.hour",
                "$4",
                "$5",
                "NULLIF(u.model, '')",
                "u.provider",
                summed_columns("CASE WHEN u.path = 'bedrock' THEN u.requests ELSE 0 END"),
                "usage_hourly_all u",
            ),
            // Chosen only when neither model nor provider is filtered or grouped on: their
            // filters then compare the parameter with itself.
            Source::DailyKeys => (
                "u.day",
                "u.user_id",
                "u.access_key_id",
                "CAST(NULL AS TEXT)",
                "CAST(NULL AS TEXT)",
                summed_columns("u.bedrock_direct"),
                "usage_daily_keys u",
            ),
        };
        // Each engine buckets its own way: PostgreSQL truncates the timestamp; SQLite stores
        // RFC 3339 text, so a bucket is a strftime prefix of it. `$1` is the unit or format.
        let bucket = match (self.granularity, postgres) {
            (None, _) => "CAST($1 AS TEXT)".to_owned(),
            (Some(_), true) => format!(
                "to_char(date_trunc($1, {time} AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            ),
            (Some(_), false) => format!("strftime($1, {time})"),
        };
        let no_id = if postgres {
            "CAST(NULL AS uuid)"
        } else {
            "NULL"
        };
        let (group_id, group_name) = match self.group {
            None => (no_id, "CAST(NULL AS TEXT)"),
            Some(UsageGroup::User) => (uid, "CAST(NULL AS TEXT)"),
            Some(UsageGroup::Key) => (kid, "CAST(NULL AS TEXT)"),
            Some(UsageGroup::Model) => (no_id, model),
        };
        let (uuid, text) = if postgres {
            ("::uuid", "::text")
        } else {
            ("", "")
        };
        // A filter that is set is a plain comparison, so the planner can use the index that
        // starts with its column (`x = $n OR $n IS NULL` hides it); one that is not set still
        // names its parameter, so the bind positions stay the same.
        let on = |set: bool, column: &str, n: u8, cast: &str| {
            if set {
                format!("{column} = ${n}")
            } else {
                format!("${n}{cast} IS NULL")
            }
        };
        let columns = if self.counts_only {
            let requests = match source {
                Source::Raw => "COUNT(*)",
                _ => "CAST(COALESCE(SUM(u.requests), 0) AS BIGINT)",
            };
            let zero = "CAST(0 AS BIGINT)";
            format!(
                "{requests} AS requests, {zero} AS failovers, {zero} AS bedrock_direct, \
                 {zero} AS errors, {zero} AS requests_with_usage, {zero} AS input_tokens, \
                 {zero} AS output_tokens, {zero} AS cache_read_tokens, \
                 {zero} AS cache_write_tokens, {zero} AS cost_micro_usd"
            )
        } else {
            columns
        };
        let only = if self.only == 0 {
            String::new()
        } else {
            let ids: Vec<String> = (0..self.only)
                .map(|i| format!("${}{uuid}", 8 + i))
                .collect();
            format!(" AND {group_id} IN ({})", ids.join(", "))
        };
        let by_user = on(filter.user_id.is_some(), uid, 4, uuid);
        let by_key = on(filter.access_key_id.is_some(), kid, 5, uuid);
        let by_model = on(filter.model.is_some(), model, 6, text);
        let by_provider = on(filter.provider.is_some(), provider, 7, text);
        format!(
            "SELECT {bucket} AS bucket, {group_id} AS group_id, {group_name} AS group_name, {columns}
             FROM {from}
             WHERE {time} >= $2 AND {time} < $3
               AND {by_user} AND {by_key} AND {by_model} AND {by_provider}{only}
             GROUP BY 1, 2, 3"
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
    /// Served by the rollups' `(hour, …)` key and `(user_id, hour)`, `(access_key_id, hour)`
    /// indexes, and at the edges by the matching `request_logs` indexes.
    pub async fn usage_series(
        &self,
        filter: &UsageFilter,
        granularity: Granularity,
    ) -> StoreResult<Vec<UsageBucket>> {
        let shape = UsageShape {
            granularity: Some(granularity),
            group: None,
            top: None,
            counts_only: false,
            only: 0,
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
            counts_only: false,
            only: 0,
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
            counts_only: false,
            only: 0,
        };
        self.usage_query(filter, shape).await
    }

    /// Whole hours of the range come from the rollups, the partial hours at its edges from
    /// the raw rows; the pieces are merged per bucket and group, ordered (oldest bucket first,
    /// or most requests first for a top list) and cut to the limit.
    async fn usage_query(
        &self,
        filter: &UsageFilter,
        shape: UsageShape,
    ) -> StoreResult<Vec<UsageBucket>> {
        let from = filter.from.unwrap_or(chrono::DateTime::UNIX_EPOCH);
        let to = filter
            .to
            .unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::days(1));
        // Without a user or key in the filter or the grouping, the all-users rollup answers.
        let by_person = filter.user_id.is_some()
            || filter.access_key_id.is_some()
            || matches!(shape.group, Some(UsageGroup::User | UsageGroup::Key));
        // Whole days from the daily per-key rollup when the report needs no hour, model or
        // provider.
        let by_day = by_person
            && filter.model.is_none()
            && filter.provider.is_none()
            && !matches!(shape.group, Some(UsageGroup::Model))
            && !matches!(shape.granularity, Some(Granularity::Hour));
        let pieces = plan_sources(from, to, by_day)
            .into_iter()
            .map(|(source, from, to)| match source {
                Source::Rollups if !by_person => (Source::RollupsAll, from, to),
                other => (other, from, to),
            })
            .collect();
        self.usage_from(filter, shape, pieces).await
    }

    /// The report a usage series (grouped by `group`, or not) would give, computed from the
    /// raw rows alone: exact to the instant but slow on a large table. For checking the
    /// rollups (`ccp-admin usage rebuild-rollups --check`, tests).
    pub async fn usage_series_from_raw(
        &self,
        filter: &UsageFilter,
        granularity: Granularity,
        group: Option<UsageGroup>,
    ) -> StoreResult<Vec<UsageBucket>> {
        let from = filter.from.unwrap_or(chrono::DateTime::UNIX_EPOCH);
        let to = filter
            .to
            .unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::days(1));
        let shape = UsageShape {
            granularity: Some(granularity),
            group,
            top: None,
            counts_only: false,
            only: 0,
        };
        self.usage_from(filter, shape, vec![(Source::Raw, from, to)])
            .await
    }

    /// The report over `pieces`. A top list of users or keys is found in two passes: the
    /// groups are ranked on their request counts alone, then everything is summed for the
    /// winners only (summing every column for every person costs several times more).
    async fn usage_from(
        &self,
        filter: &UsageFilter,
        shape: UsageShape,
        pieces: Vec<Piece>,
    ) -> StoreResult<Vec<UsageBucket>> {
        let Some(limit) = shape.top else {
            return self.merged(filter, shape, &pieces, &[]).await;
        };
        let limit = usize::try_from(limit).unwrap_or(0);
        if !matches!(shape.group, Some(UsageGroup::User | UsageGroup::Key)) {
            return Ok(largest(
                self.merged(filter, shape, &pieces, &[]).await?,
                limit,
            ));
        }
        let ranking = UsageShape {
            counts_only: true,
            ..shape
        };
        let ranked = largest(self.merged(filter, ranking, &pieces, &[]).await?, limit);
        let winners: Vec<uuid::Uuid> = ranked.iter().filter_map(|b| b.group_id).collect();
        if winners.is_empty() {
            return Ok(Vec::new());
        }
        let details = UsageShape {
            only: winners.len(),
            ..shape
        };
        Ok(largest(
            self.merged(filter, details, &pieces, &winners).await?,
            limit,
        ))
    }

    /// Each piece's rows (restricted to the groups `only`, when given), merged per bucket and
    /// group, in bucket and group order.
    async fn merged(
        &self,
        filter: &UsageFilter,
        shape: UsageShape,
        pieces: &[Piece],
        only: &[uuid::Uuid],
    ) -> StoreResult<Vec<UsageBucket>> {
        let mut merged: BTreeMap<(String, Option<uuid::Uuid>, Option<String>), UsageBucket> =
            BTreeMap::new();
        for &(source, from, to) in pieces {
            for row in self
                .usage_piece(filter, shape, source, from, to, only)
                .await?
            {
                let key = (row.bucket.clone(), row.group_id, row.group_name.clone());
                match merged.entry(key) {
                    Entry::Occupied(mut seen) => seen.get_mut().add(&row),
                    Entry::Vacant(slot) => {
                        slot.insert(row);
                    }
                }
            }
        }
        Ok(merged.into_values().collect())
    }

    /// One source's rows for `[from, to)`.
    async fn usage_piece(
        &self,
        filter: &UsageFilter,
        shape: UsageShape,
        source: Source,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        only: &[uuid::Uuid],
    ) -> StoreResult<Vec<UsageBucket>> {
        let postgres = matches!(self.pool, super::Pool::Postgres(_));
        let sql = shape.sql(postgres, source, filter);
        let rows = on_pool!(self, pool => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(shape.bucket_param(postgres))
                .bind(from)
                .bind(to)
                .bind(filter.user_id)
                .bind(filter.access_key_id)
                .bind(filter.model.as_deref())
                .bind(filter.provider.as_deref());
            for id in only {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await
        })?;
        Ok(rows)
    }
}

/// The `limit` rows with the most requests, largest first; ties keep their order (the group
/// order of the merge), so both passes of a top list pick the same groups.
fn largest(mut rows: Vec<UsageBucket>, limit: usize) -> Vec<UsageBucket> {
    rows.sort_by_key(|b| std::cmp::Reverse(b.requests));
    rows.truncate(limit);
    rows
}

/// Which source answers which part of `[from, to)`: with `days`, the whole days from the
/// daily per-key rollup; the whole hours (of the rest) from the hourly rollups; the partial
/// hours at the edges from the raw rows.
fn plan_sources(
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    days: bool,
) -> Vec<Piece> {
    if days {
        let first_day = match day_of(from) {
            d if d == from => d,
            d => d + chrono::Duration::days(1),
        };
        let end_day = day_of(to);
        if first_day < end_day {
            let mut pieces = vec![(Source::DailyKeys, first_day, end_day)];
            pieces.extend(plan_sources(from, first_day, false));
            pieces.extend(plan_sources(end_day, to, false));
            return pieces;
        }
    }
    let first_whole = match hour_of(from) {
        h if h == from => h,
        h => h + chrono::Duration::hours(1),
    };
    let end_whole = hour_of(to);
    if first_whole >= end_whole {
        return if from < to {
            vec![(Source::Raw, from, to)]
        } else {
            Vec::new()
        };
    }
    let mut pieces = vec![(Source::Rollups, first_whole, end_whole)];
    if from < first_whole {
        pieces.push((Source::Raw, from, first_whole));
    }
    if end_whole < to {
        pieces.push((Source::Raw, end_whole, to));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
    }

    #[test]
    fn whole_hours_come_from_rollups_and_edges_from_raw_rows() {
        assert_eq!(
            plan_sources(at(9, 30), at(12, 15), false),
            vec![
                (Source::Rollups, at(10, 0), at(12, 0)),
                (Source::Raw, at(9, 30), at(10, 0)),
                (Source::Raw, at(12, 0), at(12, 15)),
            ]
        );
        assert_eq!(
            plan_sources(at(9, 0), at(12, 0), false),
            vec![(Source::Rollups, at(9, 0), at(12, 0))]
        );
        // Inside one hour, or across one boundary with no whole hour: raw rows only.
        assert_eq!(
            plan_sources(at(9, 10), at(9, 50), true),
            vec![(Source::Raw, at(9, 10), at(9, 50))]
        );
        assert_eq!(
            plan_sources(at(9, 10), at(10, 50), false),
            vec![(Source::Raw, at(9, 10), at(10, 50))]
        );
        assert!(plan_sources(at(9, 0), at(9, 0), true).is_empty());
        assert!(plan_sources(at(10, 0), at(9, 0), false).is_empty());
    }

    #[test]
    fn whole_days_come_from_the_daily_rollup_when_asked() {
        let day =
            |d: u32, h: u32, m: u32| chrono::Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        assert_eq!(
            plan_sources(day(26, 9, 30), day(28, 12, 15), true),
            vec![
                (Source::DailyKeys, day(27, 0, 0), day(28, 0, 0)),
                (Source::Rollups, day(26, 10, 0), day(27, 0, 0)),
                (Source::Raw, day(26, 9, 30), day(26, 10, 0)),
                (Source::Rollups, day(28, 0, 0), day(28, 12, 0)),
                (Source::Raw, day(28, 12, 0), day(28, 12, 15)),
            ]
        );
        // Midnight to midnight: the daily rows alone.
        assert_eq!(
            plan_sources(day(1, 0, 0), day(28, 0, 0), true),
            vec![(Source::DailyKeys, day(1, 0, 0), day(28, 0, 0))]
        );
        // No whole day: as without days.
        assert_eq!(
            plan_sources(day(27, 9, 30), day(28, 12, 15), true),
            plan_sources(day(27, 9, 30), day(28, 12, 15), false)
        );
    }
}
