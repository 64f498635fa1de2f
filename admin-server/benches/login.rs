//! Login timing: a wrong password for an existing admin and any password for an unknown one
//! must cost the same (no user enumeration by timing), and a good login shows what a session
//! costs on top. Each attempt goes through `LoginService::login` (throttle checks, the store
//! lookup on SQLite, argon2id) with a fresh client address, and wrong-password attempts rotate
//! over 2 000 admins so throttling never cuts an attempt short.
//! Run with `cargo bench -p ccp-admin-server --bench login`.

use ccp_admin_server::login::LoginService;
use ccp_admin_server::session::SessionKeys;
use ccp_core::secret::SecretString;
use ccp_core::store::{NewAdmin, Store, StoreOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const ADMINS: u32 = 2_000;
const PASSWORD: &str = "a long enough passphrase";

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
    let login = runtime.block_on(async {
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("store");
        store.migrate().await.expect("migrate");
        // One hash for every admin: the verification work is the same as with distinct ones.
        let hash = ccp_core::password::hash(&SecretString::from(PASSWORD)).expect("hash");
        for n in 0..ADMINS {
            store
                .create_admin(NewAdmin {
                    username: format!("admin{n}"),
                    password_hash: hash.clone(),
                })
                .await
                .expect("admin");
        }
        let keys = SessionKeys::new(
            &SecretString::from("bench-session-secret-0123456789abcdef"),
            Duration::from_secs(900),
        )
        .expect("keys");
        LoginService::new(store, Arc::new(keys))
    });
    let counter = AtomicU32::new(1);
    let next = || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        (n, IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n)))
    };
    let mut group = c.benchmark_group("login");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("unknown_user", |b| {
        b.iter(|| {
            let (n, ip) = next();
            let name = format!("nobody{n}");
            runtime
                .block_on(login.login(&name, SecretString::from(PASSWORD), ip))
                .expect_err("unknown user")
        })
    });
    group.bench_function("wrong_password", |b| {
        b.iter(|| {
            let (n, ip) = next();
            let name = format!("admin{}", n % ADMINS);
            runtime
                .block_on(login.login(&name, SecretString::from("not the passphrase"), ip))
                .expect_err("wrong password")
        })
    });
    group.bench_function("good_password", |b| {
        b.iter(|| {
            let (n, ip) = next();
            let name = format!("admin{}", n % ADMINS);
            runtime
                .block_on(login.login(&name, SecretString::from(PASSWORD), ip))
                .expect("login")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
