//! Admin accounts of the admin API. Only the argon2id hash of a password is stored;
//! `token_version` is bumped to revoke every session token issued before (logout, password
//! change).

use super::{Engine, Store, StoreError, StoreResult, new_id, now, on_pool};
use crate::domain::{Admin, UserStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewAdmin {
    pub username: String,
    /// An argon2id PHC string ([`crate::password::hash`]); never a password.
    pub password_hash: String,
}

/// An admin with the stored hash, for login only.
#[derive(Debug, Clone)]
pub struct AdminLogin {
    pub admin: Admin,
    pub password_hash: String,
}

#[derive(sqlx::FromRow)]
struct AdminRow {
    id: Uuid,
    username: String,
    password_hash: String,
    token_version: i32,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
}

impl From<AdminRow> for AdminLogin {
    fn from(r: AdminRow) -> Self {
        AdminLogin {
            admin: Admin {
                id: r.id,
                username: r.username,
                token_version: i64::from(r.token_version),
                status: UserStatus::from_db(&r.status),
                created_at: r.created_at,
                updated_at: r.updated_at,
                last_login_at: r.last_login_at,
            },
            password_hash: r.password_hash,
        }
    }
}

macro_rules! select_admins {
    ($tail:literal) => {
        concat!(
            "SELECT id, username, password_hash, token_version, status, created_at, updated_at, \
             last_login_at FROM admins ",
            $tail
        )
    };
}

/// Usernames compare case-insensitively; they are stored lower-cased.
pub fn normalize_username(username: &str) -> String {
    username.trim().to_lowercase()
}

impl Store {
    /// Creates an admin (the CLI's `admin create`). A taken username is a conflict.
    pub async fn create_admin(&self, new: NewAdmin) -> StoreResult<Admin> {
        let admin = Self::admin_from(&new);
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO admins (id, username, password_hash, token_version, status, created_at, updated_at)
                 VALUES ($1, $2, $3, 0, 'active', $4, $5)",
            )
            .bind(admin.id)
            .bind(&admin.username)
            .bind(&new.password_hash)
            .bind(admin.created_at)
            .bind(admin.updated_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(|e| StoreError::conflict_or(e, "an admin with this username"))?;
        Ok(admin)
    }

    /// Creates the first admin, or nothing (`Ok(None)`) when any admin exists: the one-time
    /// bootstrap. Concurrent calls create one admin at most (PostgreSQL: the table is locked
    /// for the check and the insert; SQLite: the insert is one write statement, and SQLite
    /// runs one write at a time).
    pub async fn create_first_admin(&self, new: NewAdmin) -> StoreResult<Option<Admin>> {
        let admin = Self::admin_from(&new);
        const INSERT_IF_NONE: &str = "INSERT INTO admins (id, username, password_hash, token_version, status, created_at, updated_at)
             SELECT $1, $2, $3, 0, 'active', $4, $5 WHERE NOT EXISTS (SELECT 1 FROM admins)";
        let lock = self.engine() == Engine::Postgres;
        let inserted = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if lock {
                sqlx::query("LOCK TABLE admins IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
            }
            let n = sqlx::query(INSERT_IF_NONE)
                .bind(admin.id)
                .bind(&admin.username)
                .bind(&new.password_hash)
                .bind(admin.created_at)
                .bind(admin.updated_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(n)
        })?;
        Ok((inserted == 1).then_some(admin))
    }

    pub async fn count_admins(&self) -> StoreResult<i64> {
        let (n,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM admins").fetch_one(pool).await
        })?;
        Ok(n)
    }

    /// The admin and its password hash, for a login attempt.
    pub async fn admin_login(&self, username: &str) -> StoreResult<Option<AdminLogin>> {
        let row: Option<AdminRow> = on_pool!(self, pool => {
            sqlx::query_as(select_admins!("WHERE username = $1"))
                .bind(normalize_username(username))
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(AdminLogin::from))
    }

    pub async fn get_admin(&self, id: Uuid) -> StoreResult<Option<Admin>> {
        let row: Option<AdminRow> = on_pool!(self, pool => {
            sqlx::query_as(select_admins!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|r| AdminLogin::from(r).admin))
    }

    pub async fn record_admin_login(&self, id: Uuid) -> StoreResult<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE admins SET last_login_at = $1 WHERE id = $2")
                .bind(now())
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Revokes every session token of the admin issued so far; returns the new version.
    pub async fn bump_admin_token_version(&self, id: Uuid) -> StoreResult<i64> {
        let row: Option<(i32,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "UPDATE admins SET token_version = token_version + 1, updated_at = $1
                 WHERE id = $2 RETURNING token_version",
            )
            .bind(now())
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        row.map(|(v,)| i64::from(v))
            .ok_or(StoreError::NotFound("admin"))
    }

    /// Replaces the password hash and revokes the admin's session tokens.
    pub async fn set_admin_password(&self, id: Uuid, password_hash: &str) -> StoreResult<()> {
        let n = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE admins SET password_hash = $1, token_version = token_version + 1,
                 updated_at = $2 WHERE id = $3",
            )
            .bind(password_hash)
            .bind(now())
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if n == 0 {
            return Err(StoreError::NotFound("admin"));
        }
        Ok(())
    }

    fn admin_from(new: &NewAdmin) -> Admin {
        let at = now();
        Admin {
            id: new_id(),
            username: normalize_username(&new.username),
            token_version: 0,
            status: UserStatus::Active,
            created_at: at,
            updated_at: at,
            last_login_at: None,
        }
    }

    /// Failed logins counted against `subject` (`user:<name>` or `addr:<address>`): the
    /// count, if the last failure is less than `window` old. Shared by every admin server on
    /// the database.
    pub async fn login_failures(
        &self,
        subject: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> StoreResult<u32> {
        let since = now.timestamp_millis() - millis(window);
        let count: Option<(i64,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT CAST(failures AS BIGINT) FROM login_failures
                 WHERE subject = $1 AND last_failure_ms > $2",
            )
            .bind(subject)
            .bind(since)
            .fetch_optional(pool)
            .await
        })?;
        Ok(count.map_or(0, |(n,)| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Counts one more failed login against `subject` (starting again from 1 when the last
    /// one is `window` old) and returns the count. One statement, so concurrent failures on
    /// several admin servers are all counted.
    pub async fn record_login_failure(
        &self,
        subject: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> StoreResult<u32> {
        let now_ms = now.timestamp_millis();
        let (count,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(
                "INSERT INTO login_failures AS f (subject, failures, last_failure_ms) VALUES ($1, 1, $2)
                 ON CONFLICT (subject) DO UPDATE SET
                   failures = CASE WHEN f.last_failure_ms > $3 THEN f.failures + 1 ELSE 1 END,
                   last_failure_ms = $2
                 RETURNING CAST(failures AS BIGINT)",
            )
            .bind(subject)
            .bind(now_ms)
            .bind(now_ms - millis(window))
            .fetch_one(pool)
            .await
        })?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Forgets the failed logins of `subject` (after a good password).
    pub async fn clear_login_failures(&self, subject: &str) -> StoreResult<()> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM login_failures WHERE subject = $1")
                .bind(subject)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes failure counts whose last failure is older than `before` (housekeeping).
    pub async fn delete_login_failures_before(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let deleted = on_pool!(self, pool => {
            sqlx::query("DELETE FROM login_failures WHERE last_failure_ms <= $1")
                .bind(before.timestamp_millis())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(deleted)
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
