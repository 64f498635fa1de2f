//! Usage rollups: what the usage reports and budget checks read instead of every request
//! row. `usage_hourly` (per hour, user, key, model, provider, path), `usage_hourly_all` (the
//! same without user and key) and `usage_daily_keys` (per day, user and key: the top lists).
//!
//! The metering writer adds each batch's sums in the transaction that inserts the batch, and
//! only for rows that were really inserted (a retried batch adds nothing twice). Upserts go in
//! key order, so two gateways writing the same hours take their row locks in the same order.
//! [`Store::rebuild_rollups`] recomputes them from the raw rows.

use super::{Store, StoreResult, on_pool};
use crate::metering::record::{PathTaken, RequestRecord};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// One rollup row's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RollupKey {
    pub hour: DateTime<Utc>,
    pub user_id: Uuid,
    pub access_key_id: Uuid,
    /// `""` when the request named no model.
    pub model: String,
    pub provider: &'static str,
    pub path: &'static str,
}

/// What a rollup row counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RollupSums {
    pub requests: i64,
    pub failovers: i64,
    pub errors: i64,
    pub requests_with_usage: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micro_usd: i64,
}

/// One stored rollup row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct RollupRow {
    pub hour: DateTime<Utc>,
    pub user_id: Uuid,
    pub access_key_id: Uuid,
    pub model: String,
    pub provider: String,
    pub path: String,
    pub requests: i64,
    pub failovers: i64,
    pub errors: i64,
    pub requests_with_usage: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micro_usd: i64,
}

impl RollupSums {
    /// What one request adds.
    fn of(r: &RequestRecord) -> Self {
        let usage = r.usage.as_ref();
        let tokens = |f: fn(&crate::metering::UsageRecord) -> u64| usage.map_or(0, |u| count(f(u)));
        Self {
            requests: 1,
            failovers: i64::from(r.route == PathTaken::PlanThenBedrock),
            errors: i64::from(r.status >= 400),
            requests_with_usage: i64::from(usage.is_some()),
            input_tokens: tokens(|u| u.tokens.input),
            output_tokens: tokens(|u| u.tokens.output),
            cache_read_tokens: tokens(|u| u.tokens.cache_read),
            cache_write_tokens: tokens(|u| {
                u.tokens
                    .cache_write_5m
                    .saturating_add(u.tokens.cache_write_1h)
            }),
            cost_micro_usd: usage.map_or(0, |u| u.cost_micro_usd),
        }
    }

    fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.failovers += other.failovers;
        self.errors += other.errors;
        self.requests_with_usage += other.requests_with_usage;
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(other.cache_read_tokens);
        self.cache_write_tokens = self
            .cache_write_tokens
            .saturating_add(other.cache_write_tokens);
        self.cost_micro_usd = self.cost_micro_usd.saturating_add(other.cost_micro_usd);
    }
}

/// The start of the UTC day holding `at`.
pub fn day_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::days(1)).unwrap_or(at)
}

/// The start of the UTC hour holding `at`.
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}

fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Sums `records` by rollup key, in key order.
pub(crate) fn rollup_deltas<'a>(
    records: impl IntoIterator<Item = &'a RequestRecord>,
) -> BTreeMap<RollupKey, RollupSums> {
    let mut deltas: BTreeMap<RollupKey, RollupSums> = BTreeMap::new();
    for r in records {
        let key = RollupKey {
            hour: hour_of(r.started_at),
            user_id: r.user_id,
            access_key_id: r.access_key_id,
            model: r.model.clone().unwrap_or_default(),
            provider: r.upstream.as_str(),
            path: r.route.as_str(),
        };
        deltas.entry(key).or_default().add(&RollupSums::of(r));
    }
    deltas
}

/// The all-users rollup's key: the fine key without user and access key.
pub(crate) type AllKey = (DateTime<Utc>, String, &'static str, &'static str);

/// The fine deltas summed over users and keys, in key order.
pub(crate) fn all_users(deltas: &BTreeMap<RollupKey, RollupSums>) -> BTreeMap<AllKey, RollupSums> {
    let mut all: BTreeMap<AllKey, RollupSums> = BTreeMap::new();
    for (k, s) in deltas {
        all.entry((k.hour, k.model.clone(), k.provider, k.path))
            .or_default()
            .add(s);
    }
    all
}

/// The daily per-key rollup's key: day, user, access key.
pub(crate) type DailyKey = (DateTime<Utc>, Uuid, Uuid);

/// A daily per-key row's sums: the hourly sums, and the requests sent straight to Bedrock
/// (the hourly rows tell them by their path; these rows have none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DailySums {
    pub sums: RollupSums,
    pub bedrock_direct: i64,
}

/// The fine deltas summed per day, user and key, in key order.
pub(crate) fn daily_keys(
    deltas: &BTreeMap<RollupKey, RollupSums>,
) -> BTreeMap<DailyKey, DailySums> {
    let mut daily: BTreeMap<DailyKey, DailySums> = BTreeMap::new();
    for (k, s) in deltas {
        let day = daily
            .entry((day_of(k.hour), k.user_id, k.access_key_id))
            .or_default();
        day.sums.add(s);
        if k.path == PathTaken::BedrockDirect.as_str() {
            day.bedrock_direct += s.requests;
        }
    }
    daily
}

/// The conflict action of the rollup upserts (the target table is aliased `t`): add the new
/// sums to the stored ones.
macro_rules! add_sums {
    () => {
        " DO UPDATE SET requests = t.requests + excluded.requests, \
         failovers = t.failovers + excluded.failovers, errors = t.errors + excluded.errors, \
         requests_with_usage = t.requests_with_usage + excluded.requests_with_usage, \
         input_tokens = t.input_tokens + excluded.input_tokens, \
         output_tokens = t.output_tokens + excluded.output_tokens, \
         cache_read_tokens = t.cache_read_tokens + excluded.cache_read_tokens, \
         cache_write_tokens = t.cache_write_tokens + excluded.cache_write_tokens, \
         cost_micro_usd = t.cost_micro_usd + excluded.cost_micro_usd"
    };
}

pub(crate) const UPSERT_ALL_HEAD: &str = "INSERT INTO usage_hourly_all AS t (hour, model, provider, path, \
     requests, failovers, errors, requests_with_usage, input_tokens, output_tokens, \
     cache_read_tokens, cache_write_tokens, cost_micro_usd) ";
pub(crate) const UPSERT_ALL_TAIL: &str =
    concat!(" ON CONFLICT (hour, model, provider, path)", add_sums!());

/// Upserts rows of sums: the columns and the conflict clause that adds to what is there.
pub(crate) const UPSERT_HEAD: &str = "INSERT INTO usage_hourly AS t (hour, user_id, access_key_id, model, provider, path, \
     requests, failovers, errors, requests_with_usage, input_tokens, output_tokens, \
     cache_read_tokens, cache_write_tokens, cost_micro_usd) ";
pub(crate) const UPSERT_TAIL: &str = concat!(
    " ON CONFLICT (hour, user_id, access_key_id, model, provider, path)",
    add_sums!()
);

pub(crate) const UPSERT_DAILY_HEAD: &str = "INSERT INTO usage_daily_keys AS t (day, user_id, access_key_id, \
     requests, failovers, errors, requests_with_usage, input_tokens, output_tokens, \
     cache_read_tokens, cache_write_tokens, cost_micro_usd, bedrock_direct) ";
pub(crate) const UPSERT_DAILY_TAIL: &str = concat!(
    " ON CONFLICT (day, user_id, access_key_id)",
    add_sums!(),
    ", bedrock_direct = t.bedrock_direct + excluded.bedrock_direct"
);

/// Rollup rows per upsert statement (15 placeholders a row).
pub(crate) const ROLLUP_ROWS_PER_STATEMENT: usize = 1_000;

/// The raw rows of `[$1, ∞)` summed per hour: the same sums the writer keeps, from scratch.
/// Each engine truncates to the hour its own way; SQLite's text matches what the driver
/// writes for a `DateTime<Utc>` (`2026-11-28T13:00:00+00:00`).
fn rebuild_sql(postgres: bool) -> String {
    let hour = if postgres {
        "date_trunc('hour', r.started_at)"
    } else {
        "strftime('%Y-%m-%dT%H:00:00+00:00', r.started_at)"
    };
    format!(
        "INSERT INTO usage_hourly (hour, user_id, access_key_id, model, provider, path, \
         requests, failovers, errors, requests_with_usage, input_tokens, output_tokens, \
         cache_read_tokens, cache_write_tokens, cost_micro_usd)
         SELECT {hour}, r.user_id, r.access_key_id, COALESCE(r.model, ''), COALESCE(r.upstream, ''), r.route,
                COUNT(*),
                SUM(CASE WHEN r.route = 'plan_bedrock' THEN 1 ELSE 0 END),
                SUM(CASE WHEN r.status >= 400 THEN 1 ELSE 0 END),
                COUNT(r.usage_provider),
                COALESCE(SUM(r.input_tokens), 0), COALESCE(SUM(r.output_tokens), 0),
                COALESCE(SUM(r.cache_read_tokens), 0), COALESCE(SUM(r.cache_write_tokens), 0),
                COALESCE(SUM(r.cost_micro_usd), 0)
         FROM request_logs r
         WHERE r.started_at >= $1
         GROUP BY 1, 2, 3, 4, 5, 6"
    )
}

/// The all-users rollup of `[$1, ∞)` from the fine one.
const REBUILD_ALL: &str = "INSERT INTO usage_hourly_all (hour, model, provider, path, requests, \
     failovers, errors, requests_with_usage, input_tokens, output_tokens, cache_read_tokens, \
     cache_write_tokens, cost_micro_usd)
     SELECT hour, model, provider, path, SUM(requests), SUM(failovers), SUM(errors),
            SUM(requests_with_usage), SUM(input_tokens), SUM(output_tokens),
            SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_micro_usd)
     FROM usage_hourly WHERE hour >= $1
     GROUP BY 1, 2, 3, 4";

/// The daily per-key rollup of the days from `$1` (a day start) on, from the hourly one
/// (complete for every hour, also those before the rebuild's first hour).
fn rebuild_daily_sql(postgres: bool) -> String {
    let day = if postgres {
        "date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    } else {
        "strftime('%Y-%m-%dT00:00:00+00:00', hour)"
    };
    format!(
        "INSERT INTO usage_daily_keys (day, user_id, access_key_id, requests, failovers, \
         bedrock_direct, errors, requests_with_usage, input_tokens, output_tokens, \
         cache_read_tokens, cache_write_tokens, cost_micro_usd)
         SELECT {day}, user_id, access_key_id, SUM(requests), SUM(failovers),
                SUM(CASE WHEN path = 'bedrock' THEN requests ELSE 0 END), SUM(errors),
                SUM(requests_with_usage), SUM(input_tokens), SUM(output_tokens),
                SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_micro_usd)
         FROM usage_hourly WHERE hour >= $1
         GROUP BY 1, 2, 3"
    )
}

impl Store {
    /// Recomputes the rollups of every hour from the one holding `from` on, from the raw rows,
    /// in one transaction. Returns the number of rollup rows written. On PostgreSQL the table
    /// is locked for the duration, so a metering batch committing meanwhile is counted once:
    /// either in the raw rows read here or by its own upsert after this commits.
    ///
    /// Hours whose raw rows retention has deleted would come back empty: callers keep `from`
    /// inside the retention window.
    pub async fn rebuild_rollups(&self, from: DateTime<Utc>) -> StoreResult<u64> {
        let from = hour_of(from);
        let postgres = matches!(self.pool, super::Pool::Postgres(_));
        let sql = rebuild_sql(postgres);
        let daily = rebuild_daily_sql(postgres);
        let written = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query(
                    "LOCK TABLE usage_hourly, usage_hourly_all, usage_daily_keys IN EXCLUSIVE MODE",
                )
                    .execute(&mut *tx)
                    .await?;
            }
            for delete in [
                "DELETE FROM usage_hourly WHERE hour >= $1",
                "DELETE FROM usage_hourly_all WHERE hour >= $1",
            ] {
                sqlx::query(delete).bind(from).execute(&mut *tx).await?;
            }
            let written = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(from)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(REBUILD_ALL).bind(from).execute(&mut *tx).await?;
            // The first day is rebuilt whole from the hourly rows, which hold its early hours.
            sqlx::query("DELETE FROM usage_daily_keys WHERE day >= $1")
                .bind(day_of(from))
                .execute(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(daily.clone()))
                .bind(day_of(from))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(written)
        })?;
        Ok(written)
    }

    /// Every rollup row from the hour holding `from` on, in no particular order (checks and
    /// tests).
    pub async fn rollup_rows(&self, from: DateTime<Utc>) -> StoreResult<Vec<RollupRow>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT hour, user_id, access_key_id, model, provider, path, requests, failovers,
                        errors, requests_with_usage, input_tokens, output_tokens,
                        cache_read_tokens, cache_write_tokens, cost_micro_usd
                 FROM usage_hourly WHERE hour >= $1",
            )
            .bind(hour_of(from))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Estimated Bedrock cost of `user_id` in the hours of `[from, to)`, in micro-USD, from
    /// the rollups (both ends are rounded down to their hour).
    pub async fn bedrock_spend_between(
        &self,
        user_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let (spend,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(cost_micro_usd), 0) AS BIGINT) FROM usage_hourly
                 WHERE user_id = $1 AND hour >= $2 AND hour < $3 AND provider = 'bedrock'",
            )
            .bind(user_id)
            .bind(hour_of(from))
            .bind(hour_of(to))
            .fetch_one(pool)
            .await
        })?;
        Ok(spend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn days_are_utc_day_starts() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
        assert_eq!(
            day_of(at),
            Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn hours_are_utc_hour_starts() {
        let at =
            Utc.with_ymd_and_hms(2026, 11, 28, 13, 59, 59).unwrap() + TimeDelta::milliseconds(999);
        assert_eq!(
            hour_of(at),
            Utc.with_ymd_and_hms(2026, 11, 28, 13, 0, 0).unwrap()
        );
        let exact = Utc.with_ymd_and_hms(2026, 11, 28, 14, 0, 0).unwrap();
        assert_eq!(hour_of(exact), exact);
    }
}
