//! Metering rows: `request_logs`, one a request with its token usage, written in batches by
//! the metering writer, with their hourly rollups (`rollups.rs`) in the same transaction.
//! Multi-row inserts, idempotent on the request id, so a retried batch never duplicates a row
//! or a sum.
//! (One placeholder per value, written by `QueryBuilder` or `InsertText`; no value is ever
//! spliced into the SQL text.)

use super::binds::{SharedIds, SharedTexts, Stamp};
use super::rollups::{
    ROLLUP_ROWS_PER_STATEMENT, UPSERT_ALL_HEAD, UPSERT_ALL_TAIL, UPSERT_DAILY_HEAD,
    UPSERT_DAILY_TAIL, UPSERT_HEAD, UPSERT_TAIL, all_users, daily_keys, rollup_deltas,
};
use super::{Store, StoreResult, on_pool};
use crate::metering::pricing::TokenCounts;
use crate::metering::record::RequestRecord;
use sqlx::{Arguments, AssertSqlSafe};
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

/// Binds a rollup row's sums, in the column order of the rollup upserts.
macro_rules! push_sums {
    ($row:expr, $s:expr) => {
        $row.push_bind($s.requests)
            .push_bind($s.failovers)
            .push_bind($s.errors)
            .push_bind($s.requests_with_usage)
            .push_bind($s.input_tokens)
            .push_bind($s.output_tokens)
            .push_bind($s.cache_read_tokens)
            .push_bind($s.cache_write_tokens)
            .push_bind($s.cost_micro_usd)
    };
}

/// The model column: `None` for a request that named none (an empty name counts as none, so
/// the raw rows and the rollups' `''` agree).
fn model_of(r: &RequestRecord) -> Option<&str> {
    r.model.as_deref().filter(|m| !m.is_empty())
}

/// Rows per INSERT statement: 500 × 28 placeholders stays well inside SQLite's 32 766.
pub const ROWS_PER_STATEMENT: usize = 500;

/// A batch cut into statements whose row counts come from a fixed set: `max` while that
/// many rows are left, then powers of two (a remainder of 300 goes as 256 + 32 + 8 + 4), so
/// every statement the writer runs can stay prepared. A statement of any other size is a new
/// SQL text, compiled again for each batch (SQLite, one key, 300-row batches: 21.5 µs of CPU
/// a row compiled each time, 19.1 µs in prepared pieces; docs/benchmarks.md, round nine), and
/// a cache of every size seen once held compiled programs for up to 10 500 placeholders each
/// (the gateway's peak RSS fell from 68 MB to 52–55 MB without them, round one). A statement
/// kind has at most 11 sizes here.
fn pieces<T>(rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        let n = match rest.len() {
            0 => return None,
            left if left >= max => max,
            left => 1 << left.ilog2(),
        };
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        Some(piece)
    })
}

/// Adds each value to a statement's arguments, in order.
macro_rules! add_all {
    ($args:expr; $($value:expr),+ $(,)?) => {
        $( $args.add($value).map_err(sqlx::Error::Encode)?; )+
    };
}

/// The SQL text of a multi-row insert, made once for each row count [`pieces`] uses (at most
/// 10) and placeholder style, and kept. Building it for every batch with `QueryBuilder` cost
/// about 5 000 instructions a metering row: a `write!` for each placeholder and separator
/// (docs/benchmarks.md, round twelve).
struct InsertText {
    head: &'static str,
    columns: usize,
    tail: &'static str,
    /// By placeholder style (`?`, `$n`), then by row count: `ROWS_PER_STATEMENT`, then the
    /// powers of two below it.
    made: [[OnceLock<String>; 10]; 2],
}

impl InsertText {
    const fn new(head: &'static str, columns: usize, tail: &'static str) -> Self {
        Self {
            head,
            columns,
            tail,
            made: [const { [const { OnceLock::new() }; 10] }; 2],
        }
    }

    /// The text for `rows` rows; numbered placeholders (`$1`) for PostgreSQL, `?` for SQLite
    /// (what `QueryBuilder` writes for each).
    fn sql(&'static self, rows: usize, numbered: bool) -> &'static str {
        let slot = if rows == ROWS_PER_STATEMENT {
            9
        } else {
            assert!(
                rows.is_power_of_two() && rows < 512,
                "a row count pieces() never makes: {rows}"
            );
            rows.ilog2() as usize
        };
        self.made[usize::from(numbered)][slot].get_or_init(|| self.build(rows, numbered))
    }

    fn build(&self, rows: usize, numbered: bool) -> String {
        let mut sql =
            String::with_capacity(self.head.len() + self.tail.len() + rows * self.columns * 7);
        sql.push_str(self.head);
        sql.push_str(" VALUES ");
        let mut n = 0;
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..self.columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                if numbered {
                    sql.push('$');
                    sql.push_str(itoa::Buffer::new().format(n));
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
        }
        sql.push_str(self.tail);
        sql
    }
}

static REQUEST_LOGS: InsertText = InsertText::new(
    "INSERT INTO request_logs (request_id, access_key_id, user_id, model, stream, route, upstream, \
     status, error_type, plan_status, failover_skip, routing, outcome, auth_ms, plan_ttfb_ms, bedrock_ttfb_ms, total_ms, \
     request_bytes, response_bytes, started_at, finished_at, usage_model, usage_provider, input_tokens, \
     output_tokens, cache_read_tokens, cache_write_tokens, cost_micro_usd)",
    28,
    " ON CONFLICT (request_id) DO NOTHING",
);

/// Whether `pool`'s database wants numbered placeholders (`$1`: PostgreSQL) or `?` (SQLite).
fn numbered_placeholders<DB: sqlx::Database>(_pool: &sqlx::Pool<DB>) -> bool {
    DB::NAME == <sqlx::Postgres as sqlx::Database>::NAME
}

/// Empty arguments for a statement on `pool`'s database.
fn arguments_for<DB: sqlx::Database>(_pool: &sqlx::Pool<DB>) -> DB::Arguments {
    DB::Arguments::default()
}

/// How an attempt to write a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Committed: every row was new, or (when asked to be exact) the new ones.
    All,
    /// Rolled back: some row was already there.
    SomeExisted,
}

impl Store {
    /// Writes a batch in one transaction: statements of at most [`ROWS_PER_STATEMENT`] rows
    /// (SQLite allows 32 766 placeholders a statement), one commit. One commit for many rows
    /// is what makes the embedded default cheap: each commit writes every index page it
    /// touched to SQLite's WAL again.
    ///
    /// Idempotent on the request id. Request ids are unique, so only a batch written again
    /// (after a commit whose answer was lost) can meet rows already there: the first attempt
    /// inserts and checks the counts, and only if some row existed is it rolled back and
    /// written again asking which rows are new (`RETURNING`). Asking every time cost a
    /// wake-up of the writer's thread for nearly every row, as sqlx's SQLite worker hands
    /// rows over one by one (docs/benchmarks.md, round five).
    pub async fn insert_request_records(&self, records: &[RequestRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        if self.write_request_records(records, false).await? == Written::All {
            return Ok(());
        }
        self.write_request_records(records, true).await?;
        Ok(())
    }

    /// One attempt of [`Store::insert_request_records`]. With `exact`, the rows already
    /// there are skipped (and left out of the rollups); without, the first such row rolls
    /// the transaction back and the answer is [`Written::SomeExisted`].
    async fn write_request_records(
        &self,
        records: &[RequestRecord],
        exact: bool,
    ) -> StoreResult<Written> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut inserted: Vec<&RequestRecord> = Vec::with_capacity(records.len());
            let mut texts = SharedTexts::default();
            let mut ids = SharedIds::default();
            let numbered = numbered_placeholders(pool);
            for chunk in pieces(records, ROWS_PER_STATEMENT) {
                let mut args = arguments_for(pool);
                for r in chunk {
                    let usage = r.usage.as_ref();
                    let tokens = |count: fn(&TokenCounts) -> u64| {
                        usage.map(|u| i64::try_from(count(&u.tokens)).unwrap_or(i64::MAX))
                    };
                    add_all!(args;
                        // A request id is unique: one allocation, not a shared value.
                        Arc::<str>::from(r.request_id.as_str()),
                        ids.get(r.access_key_id),
                        ids.get(r.user_id),
                        texts.get_opt(model_of(r)),
                        r.stream,
                        texts.get(r.route.as_str()),
                        texts.get(r.upstream.as_str()),
                        i32::from(r.status),
                        texts.get_opt(r.error_type),
                        r.plan_status.map(i32::from),
                        texts.get_opt(r.failover_skip),
                        texts.get_opt(r.routing.map(crate::domain::Routing::as_str)),
                        texts.get(r.outcome.as_str()),
                        r.auth_ms,
                        r.plan_ttfb_ms,
                        r.bedrock_ttfb_ms,
                        r.total_ms,
                        i64::try_from(r.request_bytes).unwrap_or(i64::MAX),
                        i64::try_from(r.response_bytes).unwrap_or(i64::MAX),
                        Stamp(r.started_at),
                        Stamp(r.finished_at),
                        texts.get_opt(usage.map(|u| u.model.as_str())),
                        texts.get_opt(usage.map(|u| u.provider.as_str())),
                        tokens(|t| t.input),
                        tokens(|t| t.output),
                        tokens(|t| t.cache_read),
                        tokens(|t| t.cache_write_5m.saturating_add(t.cache_write_1h)),
                        usage.map(|u| u.cost_micro_usd),
                    );
                }
                let sql = REQUEST_LOGS.sql(chunk.len(), numbered);
                let fresh: Vec<&RequestRecord> = if exact {
                    // Only rows really inserted count: a retried batch adds nothing twice.
                    // Rare, so not kept prepared.
                    let returning = AssertSqlSafe(format!("{sql} RETURNING request_id"));
                    let new_ids: Vec<(String,)> = sqlx::query_as_with(returning, args)
                        .persistent(false)
                        .fetch_all(&mut *tx)
                        .await?;
                    let new_ids: HashSet<&str> = new_ids.iter().map(|(id,)| id.as_str()).collect();
                    chunk
                        .iter()
                        .filter(|r| new_ids.contains(r.request_id.as_str()))
                        .collect()
                } else {
                    let done = sqlx::query_with(sql, args).execute(&mut *tx).await?;
                    if done.rows_affected() != chunk.len() as u64 {
                        // Dropping the transaction rolls it back.
                        return Ok(Written::SomeExisted);
                    }
                    chunk.iter().collect()
                };
                inserted.extend(fresh);
            }
            let deltas = rollup_deltas(inserted);
            let all: Vec<_> = all_users(&deltas).into_iter().collect();
            let daily: Vec<_> = daily_keys(&deltas).into_iter().collect();
            let deltas: Vec<_> = deltas.into_iter().collect();
            for chunk in pieces(&deltas, ROLLUP_ROWS_PER_STATEMENT) {
                let mut upsert = sqlx::QueryBuilder::new(UPSERT_HEAD);
                upsert.push_values(chunk, |mut row, (k, s)| {
                    row.push_bind(k.hour)
                        .push_bind(k.user_id)
                        .push_bind(k.access_key_id)
                        .push_bind(k.model.as_str())
                        .push_bind(k.provider)
                        .push_bind(k.path);
                    push_sums!(row, s);
                });
                upsert.push(UPSERT_TAIL);
                upsert.build().execute(&mut *tx).await?;
            }
            for chunk in pieces(&all, ROLLUP_ROWS_PER_STATEMENT) {
                let mut upsert = sqlx::QueryBuilder::new(UPSERT_ALL_HEAD);
                upsert.push_values(chunk, |mut row, ((hour, model, provider, path), s)| {
                    row.push_bind(*hour)
                        .push_bind(model.as_str())
                        .push_bind(*provider)
                        .push_bind(*path);
                    push_sums!(row, s);
                });
                upsert.push(UPSERT_ALL_TAIL);
                upsert.build().execute(&mut *tx).await?;
            }
            for chunk in pieces(&daily, ROLLUP_ROWS_PER_STATEMENT) {
                let mut upsert = sqlx::QueryBuilder::new(UPSERT_DAILY_HEAD);
                upsert.push_values(chunk, |mut row, ((day, user_id, key_id), d)| {
                    row.push_bind(*day).push_bind(*user_id).push_bind(*key_id);
                    push_sums!(row, d.sums).push_bind(d.bedrock_direct);
                });
                upsert.push(UPSERT_DAILY_TAIL);
                upsert.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(Written::All)
    }

    /// Deletes up to `batch` of the oldest request rows (their usage with them) that started
    /// before `cutoff`; returns how many request rows went. The rollups are left alone.
    /// Callers repeat until it returns less than `batch`, pausing in between, so no single
    /// transaction holds the table long.
    pub async fn delete_request_rows_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        batch: i64,
    ) -> StoreResult<u64> {
        const OLDEST: &str = "SELECT request_id FROM request_logs WHERE started_at < $1 \
                              ORDER BY started_at LIMIT $2";
        let deleted = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let ids: Vec<(String,)> = sqlx::query_as(OLDEST)
                .bind(cutoff)
                .bind(batch)
                .fetch_all(&mut *tx)
                .await?;
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let mut delete = sqlx::QueryBuilder::new("DELETE FROM request_logs WHERE request_id IN (");
                let mut list = delete.separated(", ");
                for (id,) in chunk {
                    list.push_bind(id.as_str());
                }
                delete.push(")");
                delete.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(ids.len() as u64)
        })?;
        Ok(deleted)
    }

    /// Rows in `request_logs` (tests and operational checks).
    pub async fn count_request_logs(&self) -> StoreResult<i64> {
        let (n,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM request_logs").fetch_one(pool).await
        })?;
        Ok(n)
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

/// One `request_logs` row with its usage, as reports read it.
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
    pub routing: Option<String>,
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
                        r.error_type, r.plan_status, r.failover_skip, r.routing, r.outcome, r.request_bytes, r.response_bytes,
                        r.usage_provider AS provider, r.usage_model, r.input_tokens, r.output_tokens,
                        r.cache_read_tokens, r.cache_write_tokens, r.cost_micro_usd
                 FROM request_logs r
                 WHERE r.request_id = $1",
            )
            .bind(request_id)
            .fetch_optional(pool)
            .await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::{InsertText, REQUEST_LOGS, ROWS_PER_STATEMENT, pieces};

    /// The text `QueryBuilder` makes for `rows` rows of `columns` values.
    fn query_builder_text<DB: sqlx::Database>(text: &InsertText, rows: usize) -> String
    where
        i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let mut builder = sqlx::QueryBuilder::<DB>::new(text.head);
        builder.push(" ");
        builder.push_values(0..rows, |mut row, _| {
            for _ in 0..text.columns {
                row.push_bind(0i64);
            }
        });
        builder.push(text.tail);
        builder.sql().as_str().to_owned()
    }

    #[test]
    fn insert_texts_are_what_query_builder_wrote_for_both_databases() {
        for rows in [1, 2, 64, 256, ROWS_PER_STATEMENT] {
            assert_eq!(
                REQUEST_LOGS.sql(rows, false),
                query_builder_text::<sqlx::Sqlite>(&REQUEST_LOGS, rows)
            );
            assert_eq!(
                REQUEST_LOGS.sql(rows, true),
                query_builder_text::<sqlx::Postgres>(&REQUEST_LOGS, rows)
            );
        }
        // Made once, then shared.
        assert!(std::ptr::eq(
            REQUEST_LOGS.sql(8, true),
            REQUEST_LOGS.sql(8, true)
        ));
    }

    #[test]
    fn a_batch_goes_in_statements_of_few_sizes_and_in_order() {
        let mut sizes_seen = std::collections::BTreeSet::new();
        for total in (0..=2_600).chain([5_000, 5_001]) {
            let rows: Vec<usize> = (0..total).collect();
            let parts: Vec<&[usize]> = pieces(&rows, 500).collect();
            assert_eq!(parts.concat(), rows, "{total}");
            assert!(parts.iter().all(|p| !p.is_empty()));
            // Full statements first, then each power of two at most once.
            let full = total / 500;
            assert!(parts[..full].iter().all(|p| p.len() == 500), "{total}");
            let rest: Vec<usize> = parts[full..].iter().map(|p| p.len()).collect();
            assert_eq!(rest.iter().sum::<usize>(), total % 500);
            assert!(rest.windows(2).all(|w| w[0] > w[1]), "{total}: {rest:?}");
            sizes_seen.extend(parts.iter().map(|p| p.len()));
        }
        let want: std::collections::BTreeSet<usize> = (0..9).map(|k| 1 << k).chain([500]).collect();
        assert_eq!(sizes_seen, want);
    }
}
