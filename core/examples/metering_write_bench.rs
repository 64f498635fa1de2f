//! What writing metering rows costs: rows per second and CPU per row (the whole process,
//! the database driver's threads included), through the writer's own call
//! (`Store::insert_request_records`, 5 000-row batches by default, at most what the gateway's
//! writer sends in one call; under steady load it sends 500).
//!
//! `cargo run --release -p ccp-core --example metering_write_bench [sqlite|postgres] [ROWS] [BATCH]
//! [--sqlite-floor] [--users=N] [--keys=N]`. `--sqlite-floor` measures SQLite alone on the same
//! schema: the same number of rows in transactions of the same size, made inside SQLite by
//! `INSERT … SELECT` over a counter (no binds, no driver, no rollups), so the writer's own cost
//! is the difference. The rows spread
//! over 50 users and 200 keys unless `--users`/`--keys` say otherwise: a load test's single
//! key (`--users=1 --keys=1`) appends to every index, where many keys write all over them.
//! SQLite writes to a temporary file; PostgreSQL to `CCP_TEST_DATABASE_URL` (default
//! postgres://postgres@127.0.0.1:5432/test) in a schema of its own, dropped after. With
//! PostgreSQL on the same machine the server's CPU is not counted.

use ccp_testkit::records;

use ccp_core::store::{Store, StoreOptions};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (flags, args): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a.starts_with("--"));
    let engine = args.first().cloned().unwrap_or_else(|| "sqlite".into());
    let number =
        |i: usize, default: usize| args.get(i).and_then(|n| n.parse().ok()).unwrap_or(default);
    let (rows, batch) = (number(1, 200_000), number(2, 5_000));
    let floor = flags.iter().any(|f| f == "--sqlite-floor");
    anyhow::ensure!(
        !floor || engine == "sqlite",
        "--sqlite-floor measures SQLite only"
    );
    let options = StoreOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(30),
    };
    let dir = tempfile::tempdir()?;
    let sqlite_url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
    let (store, pg) = match engine.as_str() {
        "sqlite" => (Store::connect(&sqlite_url, &options).await?, None),
        "postgres" => {
            let url = std::env::var("CCP_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
            let admin = PgConnectOptions::from_str(&url)?;
            let mut conn = admin.connect().await?;
            sqlx::query("DROP SCHEMA IF EXISTS ccp_write_bench CASCADE")
                .execute(&mut conn)
                .await?;
            sqlx::query("CREATE SCHEMA ccp_write_bench")
                .execute(&mut conn)
                .await?;
            let store = Store::connect_postgres(
                admin.options([("search_path", "ccp_write_bench")]),
                &options,
            )
            .await?;
            (store, Some(conn))
        }
        other => anyhow::bail!("unknown engine {other}: sqlite or postgres"),
    };
    store.migrate().await?;
    let count = |name: &str, default: usize| {
        flags
            .iter()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or(default)
    };
    let users: Vec<uuid::Uuid> = (0..count("--users", 50))
        .map(|_| uuid::Uuid::now_v7())
        .collect();
    let keys: Vec<uuid::Uuid> = (0..count("--keys", 200))
        .map(|_| uuid::Uuid::now_v7())
        .collect();
    let now = chrono::Utc::now();
    let batches: Vec<Vec<_>> = (0..rows)
        .map(|n| records::record(n, &users, &keys, now))
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(<[_]>::to_vec)
        .collect();

    let mut floor_conn = if floor {
        Some(
            SqliteConnectOptions::from_str(&sqlite_url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .connect()
                .await?,
        )
    } else {
        None
    };

    let cpu = ccp_core::telemetry::process_cpu_seconds();
    let started = Instant::now();
    let mut first = 0_i64;
    for batch in &batches {
        match floor_conn.as_mut() {
            Some(conn) => {
                let size = i64::try_from(batch.len())?;
                sqlite_alone(conn, first, size, &batch[0]).await?;
                first += size;
            }
            None => store.insert_request_records(batch).await?,
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = ccp_core::telemetry::process_cpu_seconds() - cpu;
    #[allow(clippy::cast_precision_loss)]
    let n = rows as f64;
    println!(
        "{engine}{}: {rows} rows (each with its usage) in batches of {batch} in {wall:.2} s: \
         {:.0} rows/s, {:.1} µs CPU per row",
        if floor { " alone" } else { "" },
        n / wall,
        cpu * 1e6 / n
    );
    if let Some(conn) = floor_conn {
        conn.close().await?;
    }
    store.close().await;
    if let Some(mut conn) = pg {
        sqlx::query("DROP SCHEMA IF EXISTS ccp_write_bench CASCADE")
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// Rows `first..first + size` written by SQLite alone, in one transaction: the values a Plan
/// row of `like` has, request ids made by `printf`, every row from a counter.
async fn sqlite_alone(
    conn: &mut SqliteConnection,
    first: i64,
    size: i64,
    like: &ccp_core::metering::RequestRecord,
) -> anyhow::Result<()> {
    macro_rules! counted {
        ($insert:literal) => {
            concat!(
                "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 + ?2 - 1) ",
                $insert
            )
        };
    }
    const ROWS: &str = counted!(
        "INSERT INTO request_logs (request_id, access_key_id, user_id, model, stream, route, \
         upstream, status, outcome, auth_ms, plan_ttfb_ms, total_ms, request_bytes, response_bytes, \
         started_at, finished_at, usage_model, usage_provider, input_tokens, output_tokens, \
         cache_read_tokens, cache_write_tokens, cost_micro_usd) \
         SELECT printf('floor-%010d', i), ?3, ?4, 'claude-sonnet-5-5', 1, 'plan', 'plan', 200, \
         'complete', 0.1, 300.0, 4000.0, 90000, 6000, ?5, ?5, \
         'us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'plan', 1200, 800, 40000, 2000, 0 FROM n"
    );
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    sqlx::query(ROWS)
        .bind(first)
        .bind(size)
        .bind(like.access_key_id)
        .bind(like.user_id)
        .bind(like.started_at)
        .execute(&mut *conn)
        .await?;
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(())
}
