//! One repository interface, [`Store`], over PostgreSQL (production) and SQLite (the embedded
//! default). Every query is written once, with `$n` placeholders that both engines accept,
//! and runs on whichever pool the URL chose; the `on_pool!` macro does the dispatch.
//! Queries are parameterised, never built with `format!`.

mod access_keys;
mod admins;
mod audit;
mod bedrock_keys;
mod binds;
mod changes;
mod circuits;
mod metering;
mod model_mappings;
mod rollups;
mod usage;
mod users;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

pub use access_keys::NewAccessKey;
pub use admins::{AdminLogin, NewAdmin, normalize_username};
pub use audit::{AuditQuery, NewAuditEntry};
pub use bedrock_keys::{BedrockKeyRecord, NewBedrockKey};
pub use changes::{CHANNEL as CHANGES_CHANNEL, Change, ChangeListener, ListenEvent};
pub use circuits::{CircuitRecord, CircuitState, ProbeClaim};
pub use metering::{ModelSeen, RequestLogView};
pub use model_mappings::{ModelMapping, ModelMappingPatch, NewModelMapping};
pub use rollups::{RollupRow, hour_of};
pub use usage::{Granularity, UsageBucket, UsageFilter, UsageGroup, UsageTotals};
pub use users::{NewUser, UserPatch, UserQuery};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("invalid database URL")]
    InvalidUrl,
}

/// Why [`Store::open`] failed, naming the setting to look at.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database (CCP_DATABASE_URL): {0}")]
    Connect(#[source] StoreError),
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[source] StoreError),
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Conflict`].
    fn conflict_or(err: sqlx::Error, what: &'static str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(what),
            _ => Self::Database(err),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of either engine.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Postgres($pool) => $body,
            $crate::store::Pool::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Pool settings. The gateway keeps acquisition short so a slow database turns into a quick
/// 503 rather than a hung request.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The repository: cheap to clone (pools are reference-counted).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
}

impl Store {
    /// Opens a pool for `url` (`postgres://…` or `sqlite:…`). SQLite files are created on
    /// first use and run in WAL mode with foreign keys on.
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let pool = if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::InvalidUrl)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?,
            )
        } else {
            let connect = PgConnectOptions::from_str(url).map_err(|_| StoreError::InvalidUrl)?;
            Self::pg_pool(connect, options).await?
        };
        Ok(Self { pool })
    }

    /// Opens a PostgreSQL pool from explicit options (tests use this to pick a schema).
    pub async fn connect_postgres(
        connect: PgConnectOptions,
        options: &StoreOptions,
    ) -> StoreResult<Self> {
        Ok(Self {
            pool: Self::pg_pool(connect, options).await?,
        })
    }

    async fn pg_pool(connect: PgConnectOptions, options: &StoreOptions) -> StoreResult<Pool> {
        // Named in `pg_stat_activity`, unless the URL names it (`?application_name=`).
        let connect = match connect.get_application_name() {
            Some(_) => connect,
            None => connect.application_name("claude-code-proxy"),
        };
        Ok(Pool::Postgres(
            PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?,
        ))
    }

    pub fn engine(&self) -> Engine {
        match self.pool {
            Pool::Postgres(_) => Engine::Postgres,
            Pool::Sqlite(_) => Engine::Sqlite,
        }
    }

    /// Applies the embedded migrations of this engine.
    /// Opens the configured database the way every binary does: the data directory created
    /// for SQLite, the pool with `options`, the migrations applied.
    pub async fn open(
        config: &crate::config::Config,
        options: &StoreOptions,
    ) -> Result<Self, OpenError> {
        if config.is_sqlite() {
            std::fs::create_dir_all(&config.data_dir).map_err(|source| OpenError::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;
        }
        let store = Self::connect(config.database_url.expose(), options)
            .await
            .map_err(OpenError::Connect)?;
        store.migrate().await.map_err(OpenError::Migrate)?;
        Ok(store)
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.pool {
            Pool::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
            Pool::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}

/// New ids are UUIDv7: unique, and ordered by creation time, which keeps indexes compact.
pub(crate) fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// The current time at microsecond precision, the finest both engines store.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}
