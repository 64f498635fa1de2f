//! Fills a SQLite database with what a large team leaves behind, for timing the console:
//! 10 000 users with an access key each and a million metering rows over the last 30 days.
//!
//! `cargo run --release -p ccp-core --example seed_console -- <sqlite file> [USERS] [ROWS]`
//! (the file is created; run `ccp-admin migrate` on a data dir first, or point it at a fresh
//! file). Keys get random digests: they exist for the views, not to be used.

use ccp_core::store::{NewAccessKey, NewUser, Store, StoreOptions};
use std::time::{Duration, Instant};

use ccp_testkit::records;
use records::record;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: seed_console <sqlite file> [USERS] [ROWS]"))?;
    let users: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let rows: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let store = Store::connect(
        &format!("sqlite://{file}?mode=rwc"),
        &StoreOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(30),
        },
    )
    .await?;
    store.migrate().await?;

    let started = Instant::now();
    let mut user_ids = Vec::with_capacity(users);
    let mut key_ids = Vec::with_capacity(users);
    for n in 0..users {
        let user = store
            .create_user(NewUser {
                name: format!("Person {n:05}"),
                email: format!("person{n:05}@example.com"),
            })
            .await?;
        let mut digest = [0u8; 32];
        digest[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        digest[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let key = store
            .insert_access_key(NewAccessKey {
                user_id: user.id,
                name: Some("laptop".into()),
                display_prefix: format!("ccp_{n:04}…seed"),
                digest: ccp_core::keys::KeyDigest(digest),
                expires_at: None,
            })
            .await?;
        user_ids.push(user.id);
        key_ids.push(key.id);
    }
    println!("{users} users and keys in {:.1?}", started.elapsed());

    let started = Instant::now();
    let start = chrono::Utc::now() - chrono::Duration::days(30);
    let step_ms = chrono::Duration::days(30).num_milliseconds() / rows as i64;
    let mut batch = Vec::with_capacity(5_000);
    for n in 0..rows {
        let at = start + chrono::Duration::milliseconds(step_ms * n as i64);
        batch.push(record(n, &user_ids, &key_ids, at));
        if batch.len() == 5_000 {
            store.insert_request_records(&batch).await?;
            batch.clear();
        }
    }
    store.insert_request_records(&batch).await?;
    println!("{rows} metering rows in {:.1?}", started.elapsed());
    Ok(())
}
