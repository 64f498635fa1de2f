//! Circuit-breaker state shared by every gateway on one database (`circuit_states`).
//!
//! Each gateway keeps its own in-memory breaker ([`crate::routing::circuit`]) for the request
//! path and writes here only when something happens: a Plan failure while the circuit is
//! closed (the transaction that reaches the threshold opens it), the claim of the one
//! half-open probe, the probe's result, and a success that forgets recorded failures. The
//! rules are the in-memory breaker's, applied to the failures of all gateways together; the
//! other gateways learn of a change through a notification (`Change::Circuit`) and read the
//! row.
//!
//! Bound on writes: a key's row changes only while its circuit is closed (at most
//! `threshold` failures before it opens, plus the requests already on their way to Plan on
//! other gateways in the moment before they hear of it), and once per claim and per probe
//! result while it is open. A storm of Plan errors therefore writes a few statements per key
//! per open period, however many requests it holds.

use super::{Pool, Store, StoreResult, on_pool};
use crate::routing::circuit::{Adopted, BreakerSettings};
use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

/// The shared state of one key's circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "open" => Self::Open,
            "half_open" => Self::HalfOpen,
            _ => Self::Closed,
        }
    }
}

/// One key's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitRecord {
    pub access_key_id: Uuid,
    pub state: CircuitState,
    /// Plan failures remembered while closed (Unix ms, oldest first).
    pub failures_ms: Vec<i64>,
    pub open_until_ms: Option<i64>,
    pub probe_owner: Option<Uuid>,
    pub probe_until_ms: Option<i64>,
    pub last_failure_ms: Option<i64>,
    pub opened_count: i64,
    pub writes: i64,
    pub updated_ms: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    access_key_id: Uuid,
    state: String,
    failures_ms: String,
    open_until_ms: Option<i64>,
    probe_owner: Option<Uuid>,
    probe_until_ms: Option<i64>,
    last_failure_ms: Option<i64>,
    opened_count: i64,
    writes: i64,
    updated_ms: i64,
}

impl From<Row> for CircuitRecord {
    fn from(r: Row) -> Self {
        Self {
            access_key_id: r.access_key_id,
            state: CircuitState::parse(&r.state),
            failures_ms: serde_json::from_str(&r.failures_ms).unwrap_or_default(),
            open_until_ms: r.open_until_ms,
            probe_owner: r.probe_owner,
            probe_until_ms: r.probe_until_ms,
            last_failure_ms: r.last_failure_ms,
            opened_count: r.opened_count,
            writes: r.writes,
            updated_ms: r.updated_ms,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl CircuitRecord {
    fn closed(access_key_id: Uuid, now_ms: i64) -> Self {
        Self {
            access_key_id,
            state: CircuitState::Closed,
            failures_ms: Vec::new(),
            open_until_ms: None,
            probe_owner: None,
            probe_until_ms: None,
            last_failure_ms: None,
            opened_count: 0,
            writes: 0,
            updated_ms: now_ms,
        }
    }

    /// What a gateway should apply locally at `now_ms`.
    pub fn adopted(&self, now_ms: i64) -> Adopted {
        let left = |until: Option<i64>| {
            let left = until.unwrap_or(now_ms).saturating_sub(now_ms).max(0);
            Adopted::OpenFor(Duration::from_millis(left.unsigned_abs()))
        };
        match self.state {
            CircuitState::Closed => Adopted::Closed,
            CircuitState::Open => left(self.open_until_ms),
            CircuitState::HalfOpen => left(self.probe_until_ms),
        }
    }

    /// Applies a Plan failure at `now_ms` to a closed circuit; `true` when it opens it.
    /// Returns `None` (nothing to write) when the circuit is not closed: the failure came
    /// from a request that left before this gateway heard it opened.
    fn fail(&mut self, now_ms: i64, s: &BreakerSettings) -> Option<bool> {
        if self.state != CircuitState::Closed {
            return None;
        }
        let window = ms(s.window);
        self.failures_ms.retain(|at| now_ms - at < window);
        self.failures_ms.push(now_ms);
        self.last_failure_ms = Some(now_ms);
        let opens = self.failures_ms.len() >= s.threshold;
        if opens {
            self.state = CircuitState::Open;
            self.failures_ms.clear();
            self.open_until_ms = Some(now_ms.saturating_add(ms(s.open_for)));
            self.opened_count += 1;
        }
        Some(opens)
    }
}

/// The outcome of asking to send the half-open probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeClaim {
    /// This gateway probes.
    Mine,
    /// Another gateway probes, or the circuit is not ready for a probe: the row says what
    /// to apply.
    NotMine(CircuitRecord),
    /// No shared row (the opening was never written): probe on the local state alone.
    NoRecord,
}

const COLUMNS: &str = "access_key_id, state, failures_ms, open_until_ms, probe_owner, \
                       probe_until_ms, last_failure_ms, opened_count, writes, updated_ms";

/// Writes a whole row (insert, or replace and count the write).
const UPSERT: &str = "INSERT INTO circuit_states AS c (access_key_id, state, failures_ms, \
     open_until_ms, probe_owner, probe_until_ms, last_failure_ms, opened_count, writes, updated_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9)
     ON CONFLICT (access_key_id) DO UPDATE SET state = excluded.state,
       failures_ms = excluded.failures_ms, open_until_ms = excluded.open_until_ms,
       probe_owner = excluded.probe_owner, probe_until_ms = excluded.probe_until_ms,
       last_failure_ms = excluded.last_failure_ms, opened_count = excluded.opened_count,
       writes = c.writes + 1, updated_ms = excluded.updated_ms";

/// Writes `$record` whole at `$now_ms` on `$executor` (a pool or a transaction) and counts
/// the write in it.
macro_rules! write_record {
    ($record:expr, $now_ms:expr, $executor:expr) => {{
        let record: &mut CircuitRecord = $record;
        record.updated_ms = $now_ms;
        record.writes += 1;
        let failures =
            serde_json::to_string(&record.failures_ms).unwrap_or_else(|_| "[]".to_owned());
        sqlx::query(UPSERT)
            .bind(record.access_key_id)
            .bind(record.state.as_str())
            .bind(failures)
            .bind(record.open_until_ms)
            .bind(record.probe_owner)
            .bind(record.probe_until_ms)
            .bind(record.last_failure_ms)
            .bind(record.opened_count)
            .bind($now_ms)
            .execute($executor)
            .await
            .map(|done| done.rows_affected())
    }};
}

impl Store {
    /// Records a Plan failure of `key` at `now` (one transaction: the row is locked, so
    /// failures arriving at once from several gateways are all counted). Returns the row as
    /// it stands and whether this failure opened the circuit.
    pub async fn record_circuit_failure(
        &self,
        key: Uuid,
        now: DateTime<Utc>,
        settings: &BreakerSettings,
    ) -> StoreResult<(CircuitRecord, bool)> {
        let now_ms = now.timestamp_millis();
        // The read and the write must see the same row: PostgreSQL locks it, SQLite takes
        // the write lock before reading (IMMEDIATE).
        let (begin, lock) = match self.pool {
            Pool::Postgres(_) => ("BEGIN", " FOR UPDATE"),
            Pool::Sqlite(_) => ("BEGIN IMMEDIATE", ""),
        };
        let select = format!("SELECT {COLUMNS} FROM circuit_states WHERE access_key_id = $1{lock}");
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin_with(begin).await?;
            // `FOR UPDATE` locks no row that is not there yet: two first failures from two
            // gateways would both insert, and the second would overwrite the first. So the row
            // is created first (closed, never written; this waits for a concurrent insert to
            // commit), then locked and read.
            sqlx::query(
                "INSERT INTO circuit_states (access_key_id, state, failures_ms, updated_ms)
                 VALUES ($1, 'closed', '[]', $2) ON CONFLICT (access_key_id) DO NOTHING",
            )
            .bind(key)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(select))
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            let mut record = row.map_or_else(|| CircuitRecord::closed(key, now_ms), Into::into);
            let opened = record.fail(now_ms, settings);
            if opened.is_some() {
                write_record!(&mut record, now_ms, &mut *tx)?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>((record, opened == Some(true)))
        })?;
        Ok(outcome)
    }

    /// A Plan success on a closed circuit: forgets the failures recorded for `key`.
    pub async fn clear_circuit_failures(&self, key: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE circuit_states SET failures_ms = '[]', writes = writes + 1, updated_ms = $2
                 WHERE access_key_id = $1 AND state = 'closed' AND failures_ms <> '[]'",
            )
            .bind(key)
            .bind(now.timestamp_millis())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Asks to send the half-open probe of `key` as gateway `owner`, holding the claim for
    /// `lease` (another gateway may probe once it lapses, e.g. when this one died).
    pub async fn claim_circuit_probe(
        &self,
        key: Uuid,
        owner: Uuid,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<ProbeClaim> {
        let now_ms = now.timestamp_millis();
        let claimed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE circuit_states SET state = 'half_open', probe_owner = $2,
                        probe_until_ms = $4, writes = writes + 1, updated_ms = $3
                 WHERE access_key_id = $1 AND state IN ('open', 'half_open')
                   AND open_until_ms <= $3
                   AND (probe_owner IS NULL OR probe_owner = $2 OR probe_until_ms <= $3)",
            )
            .bind(key)
            .bind(owner)
            .bind(now_ms)
            .bind(now_ms.saturating_add(ms(lease)))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if claimed == 1 {
            return Ok(ProbeClaim::Mine);
        }
        Ok(match self.circuit(key).await? {
            Some(record) => ProbeClaim::NotMine(record),
            None => ProbeClaim::NoRecord,
        })
    }

    /// The probe's result: closes the circuit, or opens it for another `open_for`.
    pub async fn record_circuit_probe(
        &self,
        key: Uuid,
        success: bool,
        now: DateTime<Utc>,
        open_for: Duration,
    ) -> StoreResult<()> {
        let now_ms = now.timestamp_millis();
        let mut record = self
            .circuit(key)
            .await?
            .unwrap_or_else(|| CircuitRecord::closed(key, now_ms));
        record.probe_owner = None;
        record.probe_until_ms = None;
        if success {
            record.state = CircuitState::Closed;
            record.failures_ms.clear();
            record.open_until_ms = None;
        } else {
            record.state = CircuitState::Open;
            record.open_until_ms = Some(now_ms.saturating_add(ms(open_for)));
            record.last_failure_ms = Some(now_ms);
            record.opened_count += 1;
        }
        on_pool!(self, pool => write_record!(&mut record, now_ms, pool))?;
        Ok(())
    }

    /// One key's row, if it ever failed.
    pub async fn circuit(&self, key: Uuid) -> StoreResult<Option<CircuitRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM circuit_states WHERE access_key_id = $1");
        let row: Option<Row> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(key).fetch_optional(pool).await
        })?;
        Ok(row.map(Into::into))
    }

    /// Every circuit that is not closed (what a gateway loads when it starts or reconnects).
    pub async fn circuits_not_closed(&self) -> StoreResult<Vec<CircuitRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM circuit_states WHERE state <> 'closed'");
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The circuits of one user's keys (the admin API's key view).
    pub async fn circuits_of_user(&self, user_id: Uuid) -> StoreResult<Vec<CircuitRecord>> {
        let sql = format!(
            "SELECT {} FROM circuit_states c JOIN access_keys k ON k.id = c.access_key_id
             WHERE k.user_id = $1",
            COLUMNS
                .split(", ")
                .map(|c| format!("c.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user_id).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_open_a_closed_circuit_at_the_threshold_within_the_window() {
        let s = BreakerSettings::default();
        let mut r = CircuitRecord::closed(Uuid::nil(), 0);
        assert_eq!(r.fail(0, &s), Some(false));
        assert_eq!(r.fail(61_000, &s), Some(false), "the first one expired");
        assert_eq!(r.fail(70_000, &s), Some(false));
        assert_eq!(r.fail(80_000, &s), Some(true));
        assert_eq!(r.state, CircuitState::Open);
        assert_eq!(r.open_until_ms, Some(80_000 + 30 * 60_000));
        assert!(r.failures_ms.is_empty());
        assert_eq!(r.fail(81_000, &s), None, "an open circuit takes no writes");
        assert_eq!(
            r.adopted(80_000 + 29 * 60_000),
            Adopted::OpenFor(Duration::from_secs(60))
        );
        assert_eq!(r.adopted(i64::MAX), Adopted::OpenFor(Duration::ZERO));
    }
}
