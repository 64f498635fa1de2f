//! Times the admin usage queries and the budget check on a large metering history, on
//! PostgreSQL or SQLite.
//!
//! `cargo run --release -p ccp-core --example usage_query_bench -- [postgres|sqlite] [ROWS]
//! [USERS] [DAYS]` (default: postgres, 10 000 000 rows, 1 000 users, 90 days). PostgreSQL is
//! `CCP_TEST_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/test) in a schema of its
//! own (`ccp_usage_bench`, dropped first and after); SQLite is a file in a temporary
//! directory. The raw rows are generated inside the database (one INSERT … SELECT: 1.5 keys a user, 80 % Plan, 10 % failover, 10 % Bedrock direct, three models), then
//! `Store::rebuild_rollups` builds the rollups from them, as `ccp-admin usage
//! rebuild-rollups` would. Each query runs five times; best and median are printed.

use ccp_core::metering::pending::PendingSpend;
use ccp_core::routing::budget::{BudgetSettings, BudgetTracker};
use ccp_core::store::{Granularity, Store, StoreOptions, UsageFilter, UsageGroup};
use sqlx::ConnectOptions;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const OPTIONS: StoreOptions = StoreOptions {
    max_connections: 4,
    acquire_timeout: Duration::from_secs(60),
};

/// Raw rows generated in PostgreSQL: `$1` rows, `$2` start (epoch ms), `$3` step (ms).
const PG_FILL: &[&str] = &[
    "INSERT INTO request_logs (request_id, access_key_id, user_id, model, stream, route, upstream,
         status, outcome, total_ms, request_bytes, response_bytes, started_at, finished_at,
         usage_model, usage_provider, input_tokens, output_tokens, cache_read_tokens,
         cache_write_tokens, cost_micro_usd)
     SELECT 'bench-' || n, k.id, k.user_id,
            (ARRAY['claude-sonnet-5-5','claude-opus-5-5','claude-haiku-5-5'])[1 + n % 3], TRUE,
            CASE n % 10 WHEN 0 THEN 'plan_bedrock' WHEN 1 THEN 'bedrock' ELSE 'plan' END,
            CASE WHEN n % 10 < 2 THEN 'bedrock' ELSE 'plan' END, 200, 'complete', 4000, 90000, 6000,
            to_timestamp(($2 + n * $3) / 1000.0), to_timestamp(($2 + n * $3) / 1000.0),
            'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
            CASE WHEN n % 10 < 2 THEN 'bedrock' ELSE 'plan' END, 1200, 800, 40000, 2000,
            CASE WHEN n % 10 < 2 THEN 40000 ELSE 0 END
     FROM generate_series(0, $1 - 1) AS n
     JOIN bench_keys k ON k.idx = n % (SELECT COUNT(*) FROM bench_keys)",
];

/// The same in SQLite, where timestamps are RFC 3339 text.
const SQLITE_FILL: &[&str] = &[
    "INSERT INTO request_logs (request_id, access_key_id, user_id, model, stream, route, upstream,
         status, outcome, total_ms, request_bytes, response_bytes, started_at, finished_at,
         usage_model, usage_provider, input_tokens, output_tokens, cache_read_tokens,
         cache_write_tokens, cost_micro_usd)
     WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $1),
          keyed(n, at) AS (SELECT n, strftime('%Y-%m-%dT%H:%M:%f+00:00', ($2 + n * $3) / 1000.0, 'unixepoch') FROM seq)
     SELECT 'bench-' || n, k.id, k.user_id,
            CASE n % 3 WHEN 0 THEN 'claude-sonnet-5-5' WHEN 1 THEN 'claude-opus-5-5' ELSE 'claude-haiku-5-5' END, 1,
            CASE n % 10 WHEN 0 THEN 'plan_bedrock' WHEN 1 THEN 'bedrock' ELSE 'plan' END,
            CASE WHEN n % 10 < 2 THEN 'bedrock' ELSE 'plan' END, 200, 'complete', 4000, 90000, 6000,
            at, at, 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
            CASE WHEN n % 10 < 2 THEN 'bedrock' ELSE 'plan' END, 1200, 800, 40000, 2000,
            CASE WHEN n % 10 < 2 THEN 40000 ELSE 0 END
     FROM keyed JOIN bench_keys k ON k.idx = n % (SELECT COUNT(*) FROM bench_keys)",
];

/// On a connection of either engine: creates and fills `bench_keys` (index, key id, user
/// id), generates the rows with `fill` (`$1` rows, `$2` start in epoch ms, `$3` step in ms)
/// and analyses the tables.
macro_rules! fill {
    ($db:expr, $keys_table:expr, $keys:expr, $fill:expr, $rows:expr, $start:expr, $step:expr) => {{
        sqlx::query($keys_table).execute(&mut *$db).await?;
        for (idx, (id, user)) in $keys.iter().enumerate() {
            sqlx::query("INSERT INTO bench_keys (idx, id, user_id) VALUES ($1, $2, $3)")
                .bind(idx as i64)
                .bind(*id)
                .bind(*user)
                .execute(&mut *$db)
                .await?;
        }
        for &sql in $fill {
            sqlx::query(sql)
                .bind($rows)
                .bind($start.timestamp_millis())
                .bind($step)
                .execute(&mut *$db)
                .await?;
        }
        sqlx::query("ANALYZE").execute(&mut *$db).await?;
    }};
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let engine = args.first().map_or("postgres", String::as_str).to_owned();
    let arg = |i: usize, default: i64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (rows, user_count, days) = (arg(1, 10_000_000), arg(2, 1_000), arg(3, 90));

    let users: Vec<uuid::Uuid> = (0..user_count).map(|_| uuid::Uuid::now_v7()).collect();
    let keys: Vec<(uuid::Uuid, uuid::Uuid)> = (0..user_count * 3 / 2)
        .map(|n| (uuid::Uuid::now_v7(), users[n as usize % users.len()]))
        .collect();
    let now = chrono::Utc::now();
    let start = now - chrono::Duration::days(days);
    let step_ms = chrono::Duration::days(days).num_milliseconds() / rows;

    let dir = tempfile::tempdir()?;
    let postgres = engine == "postgres";
    let filled = Instant::now();
    let (store, cleanup) = if postgres {
        let url = std::env::var("CCP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let admin = sqlx::postgres::PgConnectOptions::from_str(&url)?;
        let mut conn = admin.connect().await?;
        sqlx::query("DROP SCHEMA IF EXISTS ccp_usage_bench CASCADE")
            .execute(&mut conn)
            .await?;
        sqlx::query("CREATE SCHEMA ccp_usage_bench")
            .execute(&mut conn)
            .await?;
        let options = admin.options([("search_path", "ccp_usage_bench")]);
        let store = Store::connect_postgres(options.clone(), &OPTIONS).await?;
        store.migrate().await?;
        let mut db = options.connect().await?;
        let table = "CREATE TABLE bench_keys (idx BIGINT PRIMARY KEY, id UUID, user_id UUID)";
        fill!(&mut db, table, keys, PG_FILL, rows, start, step_ms);
        (store, Some(conn))
    } else {
        let path = dir.path().join("bench.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Store::connect(&url, &OPTIONS).await?;
        store.migrate().await?;
        let mut db = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?
            .connect()
            .await?;
        let table = "CREATE TABLE bench_keys (idx INTEGER PRIMARY KEY, id BLOB, user_id BLOB)";
        fill!(&mut db, table, keys, SQLITE_FILL, rows, start, step_ms);
        (store, None)
    };
    println!(
        "{engine}: {rows} request rows ({user_count} users, {} keys, {days} days) in {:.0} s",
        keys.len(),
        filled.elapsed().as_secs_f64()
    );
    let rebuilt = Instant::now();
    let rollup_rows = store.rebuild_rollups(chrono::DateTime::UNIX_EPOCH).await?;
    println!(
        "rebuild-rollups from the raw rows: {rollup_rows} hourly rows in {:.1} s",
        rebuilt.elapsed().as_secs_f64()
    );

    let ago = |n| Some(now - chrono::Duration::days(n));
    type Case = (&'static str, UsageFilter, Granularity, Option<UsageGroup>);
    let cases: Vec<Case> = vec![
        (
            "all users, last 30 days, per day",
            UsageFilter {
                from: ago(30),
                ..Default::default()
            },
            Granularity::Day,
            None,
        ),
        (
            "all users, last 7 days, per hour",
            UsageFilter {
                from: ago(7),
                ..Default::default()
            },
            Granularity::Hour,
            None,
        ),
        (
            "all users, last 30 days, per day and model",
            UsageFilter {
                from: ago(30),
                ..Default::default()
            },
            Granularity::Day,
            Some(UsageGroup::Model),
        ),
        (
            "one user, last 30 days, per day",
            UsageFilter {
                from: ago(30),
                user_id: Some(users[7]),
                ..Default::default()
            },
            Granularity::Day,
            None,
        ),
        (
            "one user, last 30 days, per day and key",
            UsageFilter {
                from: ago(30),
                user_id: Some(users[7]),
                ..Default::default()
            },
            Granularity::Day,
            Some(UsageGroup::Key),
        ),
        (
            "one key, all time, per month",
            UsageFilter {
                access_key_id: Some(keys[42].0),
                ..Default::default()
            },
            Granularity::Month,
            None,
        ),
    ];
    println!("| query | buckets | best | median |\n|---|---|---|---|");
    for (name, filter, granularity, group) in cases {
        let mut times = Vec::new();
        let mut buckets = 0;
        for _ in 0..5 {
            let t = Instant::now();
            buckets = match group {
                None => store.usage_series(&filter, granularity).await?,
                Some(g) => store.usage_series_by(&filter, granularity, g).await?,
            }
            .len();
            times.push(t.elapsed());
        }
        report(name, buckets, times);
    }
    for (name, group) in [
        ("top 10 users, last 30 days", UsageGroup::User),
        ("top 10 models, last 30 days", UsageGroup::Model),
    ] {
        let filter = UsageFilter {
            from: ago(30),
            ..Default::default()
        };
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..5 {
            let t = Instant::now();
            found = store.usage_top(&filter, group, 10).await?.len();
            times.push(t.elapsed());
        }
        report(name, found, times);
    }

    // The budget check: from its cache, and cold (a database read each time).
    let tracker = BudgetTracker::new(
        store.clone(),
        Arc::new(PendingSpend::default()),
        BudgetSettings::default(),
    );
    let budget = Some(1_000_000_000);
    tracker.check(users[3], budget).await;
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(tracker.check(users[3], budget).await);
    }
    println!(
        "budget check from the cache: {:.0} ns a check ({n} checks)",
        t.elapsed().as_secs_f64() * 1e9 / f64::from(n)
    );
    let mut cold = Vec::new();
    for user in users.iter().take(50) {
        tracker.forget(*user);
        let t = Instant::now();
        std::hint::black_box(tracker.check(*user, budget).await);
        cold.push(t.elapsed());
    }
    cold.sort();
    println!(
        "budget check, cold (one rollup read): median {:.2} ms, worst {:.2} ms (50 users)",
        cold[25].as_secs_f64() * 1e3,
        cold[49].as_secs_f64() * 1e3
    );

    store.close().await;
    if let Some(mut conn) = cleanup {
        sqlx::query("DROP SCHEMA ccp_usage_bench CASCADE")
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

fn report(name: &str, rows: usize, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "| {name} | {rows} | {:.1} ms | {:.1} ms |",
        times[0].as_secs_f64() * 1e3,
        times[2].as_secs_f64() * 1e3
    );
}
