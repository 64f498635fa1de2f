//! Times the admin usage queries on a million metering rows in PostgreSQL.
//!
//! `cargo run --release -p ccp-core --example usage_query_bench [ROWS]` against
//! `CCP_TEST_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/test). It fills a
//! schema of its own (`ccp_usage_bench`, dropped first and after): 60 days of traffic from
//! 500 users with 5 000 keys, then runs each query five times and prints best and median.

use ccp_core::store::{Granularity, Store, StoreOptions, UsageFilter};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::time::{Duration, Instant};

use ccp_testkit::records;
use records::record;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let url = std::env::var("CCP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let admin = PgConnectOptions::from_str(&url)?;
    let mut conn = admin.connect().await?;
    sqlx::query("DROP SCHEMA IF EXISTS ccp_usage_bench CASCADE")
        .execute(&mut conn)
        .await?;
    sqlx::query("CREATE SCHEMA ccp_usage_bench")
        .execute(&mut conn)
        .await?;
    let store = Store::connect_postgres(
        admin.clone().options([("search_path", "ccp_usage_bench")]),
        &StoreOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(30),
        },
    )
    .await?;
    store.migrate().await?;

    let users: Vec<uuid::Uuid> = (0..500).map(|_| uuid::Uuid::now_v7()).collect();
    let keys: Vec<uuid::Uuid> = (0..5_000).map(|_| uuid::Uuid::now_v7()).collect();
    let start = chrono::Utc::now() - chrono::Duration::days(60);
    let step_ms = chrono::Duration::days(60).num_milliseconds() / rows as i64;
    let filled = Instant::now();
    let mut batch = Vec::with_capacity(1_000);
    for n in 0..rows {
        let at = start + chrono::Duration::milliseconds(step_ms * n as i64);
        batch.push(record(n, &users, &keys, at));
        if batch.len() == 1_000 {
            store.insert_request_records(&batch).await?;
            batch.clear();
        }
    }
    store.insert_request_records(&batch).await?;
    sqlx::query("ANALYZE ccp_usage_bench.request_logs")
        .execute(&mut conn)
        .await?;
    sqlx::query("ANALYZE ccp_usage_bench.token_usage")
        .execute(&mut conn)
        .await?;
    println!(
        "filled {rows} rows in {:.1} s",
        filled.elapsed().as_secs_f64()
    );

    let now = chrono::Utc::now();
    let days = |n| Some(now - chrono::Duration::days(n));
    let cases: Vec<(&str, UsageFilter, Granularity)> = vec![
        (
            "all users, last 30 days, per day",
            UsageFilter {
                from: days(30),
                ..Default::default()
            },
            Granularity::Day,
        ),
        (
            "all users, last 7 days, per hour",
            UsageFilter {
                from: days(7),
                ..Default::default()
            },
            Granularity::Hour,
        ),
        (
            "one user, last 30 days, per day",
            UsageFilter {
                from: days(30),
                user_id: Some(users[7]),
                ..Default::default()
            },
            Granularity::Day,
        ),
        (
            "one key, all time, per month",
            UsageFilter {
                access_key_id: Some(keys[42]),
                ..Default::default()
            },
            Granularity::Month,
        ),
        (
            "Bedrock only, one model, last 30 days, per day",
            UsageFilter {
                from: days(30),
                provider: Some("bedrock".into()),
                model: Some("claude-opus-5-5".into()),
                ..Default::default()
            },
            Granularity::Day,
        ),
    ];
    println!("| query | buckets | best | median |\n|---|---|---|---|");
    for (name, filter, granularity) in cases {
        let mut times = Vec::new();
        let mut buckets = 0;
        for _ in 0..5 {
            let t = Instant::now();
            buckets = store.usage_series(&filter, granularity).await?.len();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "| {name} | {buckets} | {:.1} ms | {:.1} ms |",
            times[0].as_secs_f64() * 1e3,
            times[2].as_secs_f64() * 1e3
        );
    }
    store.close().await;
    sqlx::query("DROP SCHEMA ccp_usage_bench CASCADE")
        .execute(&mut conn)
        .await?;
    Ok(())
}
