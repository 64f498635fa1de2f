//! Bedrock spend this process has metered that a budget check cannot read from the database
//! yet: queued rows, and rows written so recently that a cached database figure may predate
//! them.
//!
//! A row's cost is added when the row is queued ([`super::Meter::record`]) and marked written
//! once its batch commits; written amounts are kept for [`WRITTEN_MEMORY`] with the time of the
//! commit, so a check that read the database at time T adds exactly what was written after T.

use crate::metering::record::{Provider, RequestRecord};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long written amounts are remembered; longer than any budget cache lifetime.
pub const WRITTEN_MEMORY: Duration = Duration::from_secs(120);

#[derive(Debug, Default)]
struct UserSpend {
    queued: i64,
    written: Vec<(Instant, i64)>,
}

/// Per user: queued Bedrock cost, and recently written cost with when it was written.
#[derive(Debug, Default)]
pub struct PendingSpend {
    users: Mutex<HashMap<Uuid, UserSpend>>,
}

/// The Bedrock cost a record carries, if any.
pub fn bedrock_cost(record: &RequestRecord) -> Option<i64> {
    record
        .usage
        .as_ref()
        .filter(|u| u.provider == Provider::Bedrock && u.cost_micro_usd > 0)
        .map(|u| u.cost_micro_usd)
}

impl PendingSpend {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, UserSpend>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A record was queued.
    pub fn queued(&self, record: &RequestRecord) {
        if let Some(cost) = bedrock_cost(record) {
            self.lock().entry(record.user_id).or_default().queued += cost;
        }
    }

    /// A record will never be written (dropped at shutdown): forget its cost.
    pub fn abandoned(&self, record: &RequestRecord) {
        if let Some(cost) = bedrock_cost(record) {
            let mut users = self.lock();
            if let Some(user) = users.get_mut(&record.user_id) {
                user.queued -= cost;
            }
        }
    }

    /// A batch committed at `at`.
    pub fn written(&self, records: &[RequestRecord], at: Instant) {
        let mut users = self.lock();
        for record in records {
            if let Some(cost) = bedrock_cost(record) {
                let user = users.entry(record.user_id).or_default();
                user.queued -= cost;
                user.written.push((at, cost));
            }
        }
        users.retain(|_, user| {
            user.written
                .retain(|(when, _)| at.saturating_duration_since(*when) < WRITTEN_MEMORY);
            user.queued != 0 || !user.written.is_empty()
        });
    }

    /// What a database figure read at `read_at` does not include yet: the queued cost and
    /// what was written after `read_at`. (A batch written just before the read may be counted
    /// twice; the error is on the safe side.)
    pub fn unseen_since(&self, user_id: Uuid, read_at: Instant) -> i64 {
        self.lock().get(&user_id).map_or(0, |user| {
            user.queued
                + user
                    .written
                    .iter()
                    .filter(|(when, _)| *when >= read_at)
                    .map(|(_, cost)| cost)
                    .sum::<i64>()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::pricing::TokenCounts;
    use crate::metering::record::UsageRecord;

    fn record(user: Uuid, provider: Provider, cost: i64) -> RequestRecord {
        let mut r = crate::metering::record::tests_support::minimal(user);
        r.usage = Some(UsageRecord {
            model: "m".into(),
            provider,
            tokens: TokenCounts::default(),
            cost_micro_usd: cost,
        });
        r
    }

    #[test]
    fn queued_then_written_is_seen_once_by_a_later_read() {
        let spend = PendingSpend::default();
        let user = Uuid::now_v7();
        let a = record(user, Provider::Bedrock, 50_000);
        let plan = record(user, Provider::Plan, 0);
        spend.queued(&a);
        spend.queued(&plan);
        let before_write = Instant::now();
        assert_eq!(spend.unseen_since(user, before_write), 50_000);
        let at = Instant::now();
        spend.written(std::slice::from_ref(&a), at);
        // A read from before the commit misses the row: it is still counted here.
        assert_eq!(spend.unseen_since(user, before_write), 50_000);
        // A read after the commit sees the row in the database: nothing left here.
        let after = at + Duration::from_millis(1);
        assert_eq!(spend.unseen_since(user, after), 0);
        assert_eq!(spend.unseen_since(Uuid::now_v7(), before_write), 0);
    }

    #[test]
    fn abandoned_rows_stop_counting_and_old_writes_are_forgotten() {
        let spend = PendingSpend::default();
        let user = Uuid::now_v7();
        let a = record(user, Provider::Bedrock, 10);
        spend.queued(&a);
        spend.abandoned(&a);
        let now = Instant::now();
        assert_eq!(spend.unseen_since(user, now), 0);
        let b = record(user, Provider::Bedrock, 7);
        spend.queued(&b);
        spend.written(std::slice::from_ref(&b), now);
        spend.written(&[], now + WRITTEN_MEMORY + Duration::from_secs(1));
        assert!(spend.lock().is_empty());
    }
}
