#![allow(clippy::unwrap_used)]
//! The metering writer on real SQLite and PostgreSQL: batched, idempotent, drained on stop,
//! and honest about what it drops.

use ccp_testkit::on_both_engines;

use ccp_core::metering::pricing::TokenCounts;
use ccp_core::metering::{
    Meter, MeterSettings, Outcome, PathTaken, Provider, RequestRecord, Upstream, UsageRecord,
};
use ccp_core::store::{Granularity, Store, UsageFilter, UsageGroup};
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

on_both_engines!(
    rows_are_written_once_even_when_a_batch_is_retried,
    the_writer_drains_the_queue_when_stopped,
    a_full_queue_drops_and_counts_exactly,
    the_writer_wakes_for_a_full_quarter_not_for_each_row,
    usage_series_buckets_and_filters,
    usage_grouped_by_key_and_top_lists,
);

fn record(n: usize, with_usage: bool) -> RequestRecord {
    let now = chrono::Utc::now();
    RequestRecord {
        request_id: format!("req-{n:06}"),
        access_key_id: Uuid::now_v7(),
        user_id: Uuid::now_v7(),
        model: Some("claude-sonnet-4-5".into()),
        stream: n.is_multiple_of(2),
        route: PathTaken::PlanThenBedrock,
        upstream: Upstream::Bedrock,
        status: 200,
        error_type: None,
        plan_status: Some(429),
        failover_skip: None,
        routing: None,
        outcome: Outcome::Complete,
        auth_ms: Some(0.2),
        plan_ttfb_ms: Some(3.5),
        bedrock_ttfb_ms: Some(120.0),
        total_ms: 900.0,
        request_bytes: 150_000,
        response_bytes: 4_000,
        started_at: now,
        finished_at: now,
        usage: with_usage.then(|| UsageRecord {
            model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0".into(),
            provider: Provider::Bedrock,
            tokens: TokenCounts {
                input: 1_200,
                output: 850,
                cache_read: 30_000,
                cache_write_5m: 2_000,
                cache_write_1h: 1_000,
            },
            cost_micro_usd: 42_735,
        }),
    }
}

/// The usage totals of all time.
async fn all_time_totals(store: &Store) -> ccp_core::store::UsageTotals {
    store
        .usage_totals(
            chrono::DateTime::UNIX_EPOCH,
            chrono::Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .unwrap()
}

/// (requests with usage, output tokens, cost) as the usage totals sum them.
async fn usage_rows(store: &Store) -> (i64, i64, i64) {
    let totals = all_time_totals(store).await;
    (
        totals.requests_with_usage,
        totals.output_tokens,
        totals.cost_micro_usd,
    )
}

async fn rows_are_written_once_even_when_a_batch_is_retried(store: &Store) {
    let batch: Vec<RequestRecord> = (0..700).map(|n| record(n, n.is_multiple_of(3))).collect();
    store.insert_request_records(&batch).await.unwrap();
    store
        .insert_request_records(&batch[100..300])
        .await
        .unwrap();
    assert_eq!(store.count_request_logs().await.unwrap(), 700);
    let (rows, tokens, cost) = usage_rows(store).await;
    assert_eq!(rows, 234);
    assert_eq!(tokens, 234 * 850);
    assert_eq!(cost, 234 * 42_735);
}

async fn the_writer_drains_the_queue_when_stopped(store: &Store) {
    let (meter, writer) = Meter::new(
        store.clone(),
        MeterSettings {
            queue_capacity: 5_000,
            batch_rows: 500,
            // Long enough that only the stop makes the writer flush the tail.
            flush_every: Duration::from_secs(3600),
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(writer.run(stopped, Duration::from_secs(15)));
    for n in 0..1_234 {
        meter.record(record(n, true));
    }
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(store.count_request_logs().await.unwrap(), 1_234);
    assert_eq!(meter.stats().dropped.load(Ordering::SeqCst), 0);
    assert_eq!(meter.stats().written.load(Ordering::SeqCst), 1_234);
}

/// The writer sleeps until its tick or until a quarter of the queue (here 500 rows) waits: a
/// wake-up per row cost the gateway a context switch per request.
async fn the_writer_wakes_for_a_full_quarter_not_for_each_row(store: &Store) {
    let (meter, writer) = Meter::new(
        store.clone(),
        MeterSettings {
            queue_capacity: 2_000,
            batch_rows: 1_000,
            flush_every: Duration::from_secs(3600),
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(writer.run(stopped, Duration::from_secs(15)));
    // The first tick fires at once; rows recorded after it wait for the wake-up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for n in 0..499 {
        meter.record(record(n, false));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        meter.stats().written.load(Ordering::SeqCst),
        0,
        "woken before 500 rows"
    );
    meter.record(record(499, false));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while meter.stats().written.load(Ordering::SeqCst) < 500 {
        assert!(
            std::time::Instant::now() < deadline,
            "not woken at 500 rows"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.count_request_logs().await.unwrap(), 500);
    let _ = stop.send(());
    task.await.unwrap();
}

async fn a_full_queue_drops_and_counts_exactly(store: &Store) {
    let (meter, writer) = Meter::new(
        store.clone(),
        MeterSettings {
            queue_capacity: 100,
            batch_rows: 500,
            flush_every: Duration::from_secs(3600),
        },
    );
    // The writer is not running yet: the queue holds 100, the rest are dropped.
    for n in 0..250 {
        meter.record(record(n, false));
    }
    assert_eq!(meter.stats().dropped.load(Ordering::SeqCst), 150);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let _ = stop.send(());
    writer.run(stopped, Duration::from_secs(15)).await;
    let written = store.count_request_logs().await.unwrap();
    assert_eq!(written, 100);
    assert_eq!(
        written as u64 + meter.stats().dropped.load(Ordering::SeqCst),
        250,
        "every row is either written or counted as dropped"
    );
}

async fn usage_series_buckets_and_filters(store: &Store) {
    use chrono::TimeZone;
    let ada = Uuid::now_v7();
    let bob = Uuid::now_v7();
    let at = |d: u32, h: u32, m: u32| chrono::Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
    let mut rows = Vec::new();
    for (n, (user, when, route, usage)) in [
        (ada, at(25, 9, 5), PathTaken::Plan, true),
        (ada, at(25, 9, 55), PathTaken::PlanThenBedrock, true),
        (ada, at(25, 10, 1), PathTaken::BedrockDirect, false),
        (bob, at(26, 0, 30), PathTaken::Plan, true),
        (bob, at(26, 23, 59), PathTaken::PlanThenBedrock, true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = record(9_000 + n, usage);
        r.user_id = user;
        r.route = route;
        r.upstream = if route == PathTaken::Plan {
            Upstream::Plan
        } else {
            Upstream::Bedrock
        };
        r.started_at = when;
        r.finished_at = when;
        rows.push(r);
    }
    store.insert_request_records(&rows).await.unwrap();

    let all = UsageFilter::default();
    let hours = store.usage_series(&all, Granularity::Hour).await.unwrap();
    let shape: Vec<(&str, i64, i64, i64, i64)> = hours
        .iter()
        .map(|b| {
            let t = (b.requests, b.failovers, b.bedrock_direct, b.output_tokens);
            (b.bucket.as_str(), t.0, t.1, t.2, t.3)
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("2026-11-25T09:00:00Z", 2, 1, 0, 1_700),
            ("2026-11-25T10:00:00Z", 1, 0, 1, 0),
            ("2026-11-26T00:00:00Z", 1, 0, 0, 850),
            ("2026-11-26T23:00:00Z", 1, 1, 0, 850),
        ]
    );
    assert!(
        hours
            .iter()
            .all(|b| b.group_id.is_none() && b.group_name.is_none())
    );
    let days = store.usage_series(&all, Granularity::Day).await.unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!((days[0].requests, days[0].cost_micro_usd), (3, 2 * 42_735));
    let months = store.usage_series(&all, Granularity::Month).await.unwrap();
    assert_eq!(months.len(), 1);
    assert_eq!(months[0].bucket, "2026-11-01T00:00:00Z");

    let bob_only = UsageFilter {
        user_id: Some(bob),
        provider: Some("bedrock".into()),
        ..UsageFilter::default()
    };
    let series = store
        .usage_series(&bob_only, Granularity::Day)
        .await
        .unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(
        (series[0].bucket.as_str(), series[0].requests),
        ("2026-11-26T00:00:00Z", 1)
    );
    let ranged = UsageFilter {
        from: Some(at(25, 9, 30)),
        to: Some(at(26, 0, 0)),
        ..UsageFilter::default()
    };
    let total: i64 = store
        .usage_series(&ranged, Granularity::Hour)
        .await
        .unwrap()
        .iter()
        .map(|b| b.requests)
        .sum();
    assert_eq!(total, 2);
    // SQL-looking filters are only data.
    let hostile = UsageFilter {
        model: Some("x' OR '1'='1".into()),
        ..UsageFilter::default()
    };
    assert!(
        store
            .usage_series(&hostile, Granularity::Day)
            .await
            .unwrap()
            .is_empty()
    );
}

/// One user with two keys, another with one; models differ: the series per key of one user,
/// and the top users, keys and models of everyone.
async fn usage_grouped_by_key_and_top_lists(store: &Store) {
    use chrono::TimeZone;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let (laptop, desktop, bobs) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let at = |d: u32, h: u32| chrono::Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap();
    let mut rows = Vec::new();
    for (n, (user, key, model, when)) in [
        (ada, laptop, "claude-opus-5-5", at(25, 9)),
        (ada, laptop, "claude-opus-5-5", at(25, 9)),
        (ada, desktop, "claude-sonnet-5-5", at(25, 9)),
        (ada, laptop, "claude-sonnet-5-5", at(26, 9)),
        (bob, bobs, "claude-haiku-5", at(26, 9)),
        (bob, bobs, "claude-haiku-5", at(26, 10)),
        (bob, bobs, "claude-haiku-5", at(26, 11)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = record(7_000 + n, false);
        (r.user_id, r.access_key_id, r.model) = (user, key, Some(model.into()));
        (r.started_at, r.finished_at) = (when, when);
        rows.push(r);
    }
    store.insert_request_records(&rows).await.unwrap();

    let adas = UsageFilter {
        user_id: Some(ada),
        ..UsageFilter::default()
    };
    let per_key = store
        .usage_series_by(&adas, Granularity::Day, UsageGroup::Key)
        .await
        .unwrap();
    let mut got: Vec<(&str, Uuid, i64)> = per_key
        .iter()
        .map(|b| (&b.bucket[..10], b.group_id.unwrap(), b.requests))
        .collect();
    got.sort();
    let mut want = vec![
        ("2026-11-25", laptop, 2),
        ("2026-11-25", desktop, 1),
        ("2026-11-26", laptop, 1),
    ];
    want.sort();
    assert_eq!(got, want);

    let all = UsageFilter::default();
    let users = store.usage_top(&all, UsageGroup::User, 10).await.unwrap();
    let users: Vec<(Option<Uuid>, i64)> = users.iter().map(|b| (b.group_id, b.requests)).collect();
    assert_eq!(users, [(Some(ada), 4), (Some(bob), 3)]);
    let keys = store.usage_top(&all, UsageGroup::Key, 2).await.unwrap();
    // Two keys tie at 3 (ties go by id); the desktop key's 1 is left out.
    let mut keys: Vec<(Option<Uuid>, i64)> =
        keys.iter().map(|b| (b.group_id, b.requests)).collect();
    keys.sort();
    let mut want = vec![(Some(bobs), 3), (Some(laptop), 3)];
    want.sort();
    assert_eq!(keys, want);
    let models = store.usage_top(&all, UsageGroup::Model, 10).await.unwrap();
    let models: Vec<(Option<&str>, i64)> = models
        .iter()
        .map(|b| (b.group_name.as_deref(), b.requests))
        .collect();
    assert_eq!(
        models,
        [
            (Some("claude-haiku-5"), 3),
            (Some("claude-opus-5-5"), 2),
            (Some("claude-sonnet-5-5"), 2),
        ]
    );
}

/// A database written before migration 20261201000001 keeps its usage: the `token_usage`
/// rows move into their request rows, and a request without usage keeps none.
mod upgrade {
    use ccp_core::store::{Store, StoreOptions};

    /// The last migration with a separate `token_usage` table.
    const BEFORE: i64 = 20261128000006;

    /// Two requests as the old schema held them: `req-used` with a `token_usage` row,
    /// `req-bare` without. `$1`/`$2` are the key and user ids, `$3` the time.
    const OLD_ROWS: [&str; 2] = [
        "INSERT INTO request_logs (request_id, access_key_id, user_id, model, route, upstream,
             status, outcome, total_ms, started_at, finished_at)
         VALUES ('req-used', $1, $2, 'claude-sonnet-4-5', 'plan_bedrock', 'bedrock', 200,
                 'complete', 900.0, $3, $3),
                ('req-bare', $1, $2, 'claude-sonnet-4-5', 'plan', 'plan', 500, 'error',
                 10.0, $3, $3)",
        "INSERT INTO token_usage (request_id, access_key_id, user_id, model, provider,
             input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micro_usd,
             created_at)
         VALUES ('req-used', $1, $2, 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'bedrock',
                 1200, 850, 30000, 3000, 42735, $3)",
    ];

    /// Migrates the database at `$url` up to [`BEFORE`] with the migrations in `$dir` over a
    /// `$pool` pool, and writes [`OLD_ROWS`] in it.
    macro_rules! write_old_database {
        ($pool:ty, $dir:literal, $url:expr) => {{
            let pool = <$pool>::connect($url).await.unwrap();
            sqlx::migrate!($dir).run_to(BEFORE, &pool).await.unwrap();
            let (key, user) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
            for sql in OLD_ROWS {
                sqlx::query(sql)
                    .bind(key)
                    .bind(user)
                    .bind(chrono::Utc::now())
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }};
    }

    /// Opens `url` as the gateway does, runs the remaining migrations and checks both rows.
    async fn migrate_and_check(url: &str) {
        let store = Store::connect(url, &StoreOptions::default()).await.unwrap();
        store.migrate().await.unwrap();
        let used = store.request_log("req-used").await.unwrap().unwrap();
        assert_eq!(used.provider.as_deref(), Some("bedrock"));
        assert_eq!(
            used.usage_model.as_deref(),
            Some("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
        );
        assert_eq!(
            (
                used.input_tokens,
                used.output_tokens,
                used.cache_read_tokens,
                used.cache_write_tokens,
                used.cost_micro_usd
            ),
            (Some(1200), Some(850), Some(30000), Some(3000), Some(42735))
        );
        let bare = store.request_log("req-bare").await.unwrap().unwrap();
        assert_eq!(
            (bare.status, bare.provider, bare.input_tokens),
            (500, None, None)
        );
        assert_eq!(store.count_request_logs().await.unwrap(), 2);
        // Rebuilt from the raw rows, the rollups count the one request with usage.
        store
            .rebuild_rollups(chrono::DateTime::UNIX_EPOCH)
            .await
            .unwrap();
        let totals = super::all_time_totals(&store).await;
        assert_eq!(
            (
                totals.requests,
                totals.requests_with_usage,
                totals.cost_micro_usd
            ),
            (2, 1, 42735)
        );
        store.close().await;
    }

    mod sqlite {
        use super::{BEFORE, OLD_ROWS, migrate_and_check};

        #[tokio::test]
        async fn usage_moves_into_request_logs() {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
            write_old_database!(sqlx::SqlitePool, "../migrations/sqlite", &url);
            migrate_and_check(&url).await;
        }
    }

    mod postgres {
        use super::{BEFORE, OLD_ROWS, migrate_and_check};

        #[tokio::test]
        async fn usage_moves_into_request_logs() {
            let schema = ccp_testkit::stores::pg_schema().await;
            write_old_database!(sqlx::PgPool, "../migrations/postgres", &schema.url);
            migrate_and_check(&schema.url).await;
        }
    }
}
