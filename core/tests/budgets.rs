#![allow(clippy::unwrap_used)]
//! Monthly Bedrock budgets over real SQLite and PostgreSQL: the month is the UTC calendar
//! month (crossed with an injected clock), Plan cost never counts, metered-but-unwritten
//! spend counts at once, and a database that stops answering falls back to the last figure
//! or, without one, refuses Bedrock.

use ccp_testkit::on_both_engines;

use ccp_core::clock::WallClock;
use ccp_core::metering::pending::PendingSpend;
use ccp_core::metering::pricing::TokenCounts;
use ccp_core::metering::{Provider, RequestRecord, UsageRecord};
use ccp_core::routing::budget::{BudgetSettings, BudgetTracker, Verdict};
use ccp_core::store::Store;
use chrono::{DateTime, TimeZone, Utc};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

on_both_engines!(
    the_budget_month_is_the_utc_calendar_month,
    unwritten_spend_counts_and_a_silent_database_fails_closed,
);

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn spend(
    user: Uuid,
    n: usize,
    when: DateTime<Utc>,
    provider: Provider,
    cost: i64,
) -> RequestRecord {
    let keys = [Uuid::now_v7()];
    let mut r = ccp_testkit::records::record(n, &[user], &keys, when);
    r.usage = Some(UsageRecord {
        model: "global.anthropic.claude-sonnet-4-5-20250929-v1:0".into(),
        provider,
        tokens: TokenCounts::default(),
        cost_micro_usd: cost,
    });
    r.upstream = match provider {
        Provider::Bedrock => ccp_core::metering::Upstream::Bedrock,
        Provider::Plan => ccp_core::metering::Upstream::Plan,
    };
    r
}

/// A clock the test moves.
fn clock(start: DateTime<Utc>) -> (Arc<Mutex<DateTime<Utc>>>, WallClock) {
    let now = Arc::new(Mutex::new(start));
    let read = Arc::clone(&now);
    (now, WallClock::new(move || *read.lock().unwrap()))
}

const FRESH: BudgetSettings = BudgetSettings {
    fresh_for: Duration::ZERO,
    stale_for: Duration::from_secs(900),
};

async fn the_budget_month_is_the_utc_calendar_month(store: &Store) {
    let user = Uuid::now_v7();
    store
        .insert_request_records(&[
            spend(
                user,
                1,
                at(2026, 10, 31, 23, 59),
                Provider::Bedrock,
                600_000,
            ),
            spend(user, 2, at(2026, 11, 1, 0, 0), Provider::Bedrock, 300_000),
            spend(user, 3, at(2026, 11, 20, 12, 0), Provider::Bedrock, 500_000),
            // Plan answers cost the admin nothing, whatever a row says.
            spend(user, 4, at(2026, 11, 20, 12, 0), Provider::Plan, 900_000),
        ])
        .await
        .unwrap();
    let (now, clock) = clock(at(2026, 10, 31, 23, 59));
    let tracker = BudgetTracker::with_clock(
        store.clone(),
        Arc::new(PendingSpend::default()),
        FRESH,
        clock,
    );

    // October: only the October row.
    assert_eq!(
        tracker.check(user, Some(1_000_000)).await,
        Verdict::Within {
            spend: 600_000,
            budget: 1_000_000
        }
    );
    // One minute later it is November: the month starts again, and holds November's rows
    // only (the October row is not counted; the rows of 20 November are).
    *now.lock().unwrap() = at(2026, 11, 1, 0, 1);
    assert_eq!(
        tracker.check(user, Some(1_000_000)).await,
        Verdict::Within {
            spend: 800_000,
            budget: 1_000_000
        }
    );
    *now.lock().unwrap() = at(2026, 11, 25, 8, 0);
    assert_eq!(
        tracker.check(user, Some(800_000)).await,
        Verdict::Over {
            spend: 800_000,
            budget: 800_000,
            resets_at: at(2026, 12, 1, 0, 0)
        },
        "spend equal to the budget is over it"
    );
    assert_eq!(tracker.check(user, None).await, Verdict::NoBudget);
    // December: nothing spent yet.
    *now.lock().unwrap() = at(2026, 12, 1, 0, 0);
    assert_eq!(
        tracker.check(user, Some(800_000)).await,
        Verdict::Within {
            spend: 0,
            budget: 800_000
        }
    );
}

async fn unwritten_spend_counts_and_a_silent_database_fails_closed(store: &Store) {
    let user = Uuid::now_v7();
    let stranger = Uuid::now_v7();
    let now = Utc::now();
    let pending = Arc::new(PendingSpend::default());
    let tracker = BudgetTracker::new(
        store.clone(),
        Arc::clone(&pending),
        BudgetSettings {
            fresh_for: Duration::from_secs(60),
            stale_for: Duration::from_secs(900),
        },
    );
    let written = spend(user, 1, now, Provider::Bedrock, 400_000);
    store
        .insert_request_records(std::slice::from_ref(&written))
        .await
        .unwrap();
    assert_eq!(
        tracker.check(user, Some(1_000_000)).await,
        Verdict::Within {
            spend: 400_000,
            budget: 1_000_000
        }
    );
    // A request finishes: it counts before its row is written, and once after.
    let queued = spend(user, 2, now, Provider::Bedrock, 600_000);
    pending.queued(&queued);
    assert!(matches!(
        tracker.check(user, Some(1_000_000)).await,
        Verdict::Over {
            spend: 1_000_000,
            ..
        }
    ));
    store
        .insert_request_records(std::slice::from_ref(&queued))
        .await
        .unwrap();
    pending.written(std::slice::from_ref(&queued), Instant::now());
    // The cached figure predates the write; the written amount is still added to it.
    assert!(matches!(
        tracker.check(user, Some(1_000_000)).await,
        Verdict::Over {
            spend: 1_000_000,
            ..
        }
    ));
    tracker.forget(user);
    assert!(matches!(
        tracker.check(user, Some(1_000_000)).await,
        Verdict::Over {
            spend: 1_000_000,
            ..
        }
    ));

    // The database goes away: a recent figure stands in, a user never read gets no Bedrock.
    let quick = BudgetTracker::new(
        store.clone(),
        Arc::new(PendingSpend::default()),
        BudgetSettings {
            fresh_for: Duration::ZERO,
            stale_for: Duration::from_secs(900),
        },
    );
    assert!(matches!(
        quick.check(user, Some(5_000_000)).await,
        Verdict::Within {
            spend: 1_000_000,
            ..
        }
    ));
    store.close().await;
    assert!(matches!(
        quick.check(user, Some(5_000_000)).await,
        Verdict::Within {
            spend: 1_000_000,
            ..
        }
    ));
    assert_eq!(
        quick.check(stranger, Some(5_000_000)).await,
        Verdict::Unknown
    );
    assert!(!Verdict::Unknown.allows_bedrock());
    assert_eq!(
        quick.db_failures.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}
