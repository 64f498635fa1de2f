#![allow(dead_code)]
//! Test stores: a fresh SQLite file, and a fresh schema in the PostgreSQL named by
//! `CCP_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use ccp_core::store::{Store, StoreOptions};
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

#[derive(Debug)]
pub struct TestStore {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(PgConnectOptions, String)>,
}

impl TestStore {
    /// Drops the PostgreSQL schema (SQLite files go with their temp dir).
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some((admin, schema)) = self.pg_schema
            && let Ok(mut conn) = sqlx::ConnectOptions::connect(&admin).await
        {
            let drop = sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            let _ = sqlx::query(drop).execute(&mut conn).await;
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
        pg_schema: None,
    }
}

pub fn pg_url() -> String {
    std::env::var("CCP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `None` (with a loud message) only when no PostgreSQL answers at all.
pub async fn postgres() -> Option<TestStore> {
    let admin = PgConnectOptions::from_str(&pg_url()).expect("CCP_TEST_DATABASE_URL");
    let mut conn = match sqlx::ConnectOptions::connect(&admin).await {
        Ok(conn) => conn,
        Err(err) => {
            eprintln!(
                "SKIPPED: PostgreSQL not reachable at {} ({err}); PostgreSQL repository tests did not run",
                pg_url()
            );
            return None;
        }
    };
    // A schema per test keeps tests independent and parallel; the name is generated here.
    let schema = format!("ccp_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create schema");
    let options = admin.clone().options([("search_path", schema.as_str())]);
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
    Some(TestStore {
        store,
        _dir: None,
        pg_schema: Some((admin, schema)),
    })
}

/// Runs each listed `async fn(&Store)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = $crate::common::sqlite().await;
                    super::$name(&t.store).await;
                    t.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(t) = $crate::common::postgres().await else { return };
                    super::$name(&t.store).await;
                    t.cleanup().await;
                }
            )*
        }
    };
}
