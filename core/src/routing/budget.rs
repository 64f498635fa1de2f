//! Monthly Bedrock budgets: whether a user may still spend on Bedrock this calendar month
//! (UTC).
//!
//! Spend = the month's Bedrock cost in the hourly rollups (read at most every
//! [`BudgetSettings::fresh_for`] per user) + what this process metered that the figure does
//! not include yet ([`PendingSpend`]). A user is over budget once spend ≥ budget.
//!
//! Overshoot (spend past the budget) comes from three places, each bounded:
//! - requests already in flight when the budget is reached: their cost is known only when
//!   they finish (one gateway, one request at a time: at most one request's cost);
//! - other gateways: their queued rows reach the database within the metering flush
//!   interval (1 s), and this gateway reads it within `fresh_for` (2 s): at most what the
//!   user spends through the other gateways in about 3 s;
//! - nothing from this gateway's own finished requests: they count the moment they finish.
//!
//! At a month's turn, cost still queued from the old month's last second counts against the
//! new month until it is written (about a second): an error toward refusing, never overshoot.
//!
//! When the database cannot answer, the last figure read in the past
//! [`BudgetSettings::stale_for`] is used; without one the check fails closed for Bedrock
//! ([`Verdict::Unknown`]): a budget caps spend in the admin's AWS account, and a database
//! outage must not lift the cap. The Plan path never waits for a budget.

use crate::clock::WallClock;
use crate::metering::pending::PendingSpend;
use crate::store::Store;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub struct BudgetSettings {
    /// How long a database figure is used before it is read again.
    pub fresh_for: Duration,
    /// How long a database figure may stand in when the database cannot answer.
    pub stale_for: Duration,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            fresh_for: Duration::from_secs(2),
            stale_for: Duration::from_secs(15 * 60),
        }
    }
}

/// The outcome of a budget check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The user has no budget.
    NoBudget,
    Within {
        spend: i64,
        budget: i64,
    },
    /// No more Bedrock until `resets_at` (the next month, UTC) or a higher budget.
    Over {
        spend: i64,
        budget: i64,
        resets_at: DateTime<Utc>,
    },
    /// The spend is not known (database unavailable, nothing recent cached).
    Unknown,
}

impl Verdict {
    /// Whether Bedrock may be used.
    pub fn allows_bedrock(self) -> bool {
        self.refusal().is_none()
    }

    /// Why Bedrock is refused (a missed-failover label), or `None` when it is allowed.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Self::NoBudget | Self::Within { .. } => None,
            Self::Over { .. } => Some("over_budget"),
            Self::Unknown => Some("budget_unknown"),
        }
    }
}

/// The first instant of the calendar month (UTC) holding `at`.
pub fn month_start(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(at)
}

/// The first instant of the next calendar month (UTC).
pub fn next_month_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if at.month() == 12 {
        (at.year() + 1, 1)
    } else {
        (at.year(), at.month() + 1)
    };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .unwrap_or(at)
}

#[derive(Debug, Clone, Copy)]
struct Reading {
    month: DateTime<Utc>,
    spend: i64,
    read_at: Instant,
}

/// Budget checks for one process; cheap to share.
pub struct BudgetTracker {
    store: Store,
    pending: Arc<PendingSpend>,
    readings: Mutex<HashMap<Uuid, Reading>>,
    settings: BudgetSettings,
    clock: WallClock,
    /// Checks that could not read the database (a stale figure or `Unknown` answered).
    pub db_failures: AtomicU64,
}

impl std::fmt::Debug for BudgetTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetTracker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl BudgetTracker {
    pub fn new(store: Store, pending: Arc<PendingSpend>, settings: BudgetSettings) -> Self {
        Self::with_clock(store, pending, settings, WallClock::system())
    }

    /// With another clock (tests cross a month boundary with it).
    pub fn with_clock(
        store: Store,
        pending: Arc<PendingSpend>,
        settings: BudgetSettings,
        clock: WallClock,
    ) -> Self {
        Self {
            store,
            pending,
            readings: Mutex::default(),
            settings,
            clock,
            db_failures: AtomicU64::new(0),
        }
    }

    fn cached(&self, user_id: Uuid) -> Option<Reading> {
        self.readings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user_id)
            .copied()
    }

    /// Whether `user_id`, with `budget` (micro-USD) for the month, may still use Bedrock.
    pub async fn check(&self, user_id: Uuid, budget: Option<i64>) -> Verdict {
        let Some(budget) = budget else {
            return Verdict::NoBudget;
        };
        let now = self.clock.now();
        let month = month_start(now);
        let cached = self.cached(user_id).filter(|r| r.month == month);
        let reading = match cached {
            Some(r) if r.read_at.elapsed() < self.settings.fresh_for => r,
            _ => {
                let read_at = Instant::now();
                let spent = self
                    .store
                    .bedrock_spend_between(user_id, month, next_month_start(now))
                    .await;
                match spent {
                    Ok(spend) => {
                        let reading = Reading {
                            month,
                            spend,
                            read_at,
                        };
                        self.readings
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(user_id, reading);
                        reading
                    }
                    Err(err) => {
                        self.db_failures.fetch_add(1, Ordering::Relaxed);
                        match cached {
                            Some(r) if r.read_at.elapsed() < self.settings.stale_for => {
                                tracing::warn!(error = %err, "budget check: the database did not answer; using the last figure");
                                r
                            }
                            _ => {
                                tracing::warn!(error = %err, "budget check: the database did not answer and no recent figure exists; no Bedrock for this request");
                                return Verdict::Unknown;
                            }
                        }
                    }
                }
            }
        };
        let spend = reading.spend + self.pending.unseen_since(user_id, reading.read_at);
        if spend >= budget {
            Verdict::Over {
                spend,
                budget,
                resets_at: next_month_start(now),
            }
        } else {
            Verdict::Within { spend, budget }
        }
    }

    /// Forgets a user's cached figure (the budget or the month's rows changed).
    pub fn forget(&self, user_id: Uuid) {
        self.readings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
        assert_eq!(
            month_start(at),
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            next_month_start(at),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        let december = Utc.with_ymd_and_hms(2026, 12, 15, 8, 0, 0).unwrap();
        assert_eq!(
            next_month_start(december),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
        let first = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(month_start(first), first);
    }
}
