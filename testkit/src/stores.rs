//! Test stores: a fresh SQLite file, and a fresh schema in the PostgreSQL named by
//! `CCP_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//!
//! A PostgreSQL test never passes without running: with no PostgreSQL it fails, naming the
//! address. Outside CI, `scripts/test.sh` leaves these tests out when none answers
//! (`--skip postgres::`, so the summary counts them as filtered out) and says so loudly.

use ccp_core::store::{Store, StoreOptions};
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

#[derive(Debug)]
pub struct TestStore {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    // Declared after `store`, so the pool is dropped first.
    _schema: Option<SchemaGuard>,
}

impl TestStore {
    /// The PostgreSQL schema this store lives in (`None` on SQLite).
    pub fn pg_schema(&self) -> Option<&str> {
        self._schema.as_ref().map(|g| g.schema.as_str())
    }

    /// Closes the store; the PostgreSQL schema is dropped with the guard (SQLite files go
    /// with their temp dir).
    pub async fn cleanup(self) {
        self.store.close().await;
    }
}

/// Drops a test's PostgreSQL schema when it goes out of scope, also when the test failed and
/// is unwinding.
#[derive(Debug)]
struct SchemaGuard {
    admin: PgConnectOptions,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        // `Drop` cannot await inside the test's runtime: a short-lived thread with its own
        // runtime does the work.
        let admin = self.admin.clone();
        let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::ConnectOptions::connect(&admin).await.ok()?;
                // A failed test may leave a transaction open on a pool connection: do not
                // wait on its locks for ever.
                sqlx::query("SET lock_timeout = '5s'")
                    .execute(&mut conn)
                    .await
                    .ok()?;
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: test schema {} could not be dropped", self.schema);
        }
    }
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
    let store = Store::connect(&url, &StoreOptions::default())
        .await
        .expect("open sqlite");
    store.migrate().await.expect("migrate sqlite");
    TestStore {
        store,
        _dir: Some(dir),
        _schema: None,
    }
}

pub fn pg_url() -> String {
    std::env::var("CCP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh, empty schema in the test PostgreSQL for a process that opens its own store
/// from a URL (a gateway); the schema is dropped with this value.
#[derive(Debug)]
pub struct PgSchema {
    /// The test database's URL with the schema as `search_path`.
    pub url: String,
    _guard: SchemaGuard,
}

pub async fn pg_schema() -> PgSchema {
    let (_, guard) = create_schema().await;
    let separator = if pg_url().contains('?') { '&' } else { '?' };
    PgSchema {
        url: format!(
            "{}{separator}options=-c%20search_path%3D{}",
            pg_url(),
            guard.schema
        ),
        _guard: guard,
    }
}

/// Creates a uniquely named schema; panics when no PostgreSQL answers.
async fn create_schema() -> (PgConnectOptions, SchemaGuard) {
    let admin = PgConnectOptions::from_str(&pg_url()).expect("CCP_TEST_DATABASE_URL");
    let mut conn = match sqlx::ConnectOptions::connect(&admin).await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "PostgreSQL not reachable at {} ({err}): start it, point CCP_TEST_DATABASE_URL at \
             one, or leave the PostgreSQL tests out with `cargo test -- --skip postgres::`",
            pg_url()
        ),
    };
    // A schema per test keeps tests independent and parallel; the name is generated here.
    let schema = format!("ccp_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create schema");
    let guard = SchemaGuard {
        admin: admin.clone(),
        schema,
    };
    (admin, guard)
}

/// A fresh, migrated schema in the test PostgreSQL; panics when none answers.
pub async fn postgres() -> TestStore {
    let (admin, guard) = create_schema().await;
    let options = admin.options([("search_path", guard.schema.as_str())]);
    let store = Store::connect_postgres(
        options,
        &StoreOptions {
            max_connections: 4,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("open postgres");
    store.migrate().await.expect("migrate postgres");
    TestStore {
        store,
        _dir: None,
        _schema: Some(guard),
    }
}

/// Runs each listed `async fn(&Store)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = $crate::stores::sqlite().await;
                    super::$name(&t.store).await;
                    t.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = $crate::stores::postgres().await;
                    super::$name(&t.store).await;
                    t.cleanup().await;
                }
            )*
        }
    };
}
