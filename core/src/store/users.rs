//! Users: the people access keys are issued to.

use super::{Store, StoreError, StoreResult, new_id, now, on_pool};
use crate::domain::{User, UserStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub email: String,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    name: String,
    email: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            name: r.name,
            email: r.email,
            status: UserStatus::from_db(&r.status),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `SELECT … FROM users` plus a tail, as one static string (no SQL is built at run time).
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, email, status, created_at, updated_at FROM users ",
            $tail
        )
    };
}

/// Emails compare case-insensitively; they are stored lower-cased.
pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Store {
    pub async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let at = now();
        let user = User {
            id: new_id(),
            name: new.name.trim().to_owned(),
            email: normalize_email(&new.email),
            status: UserStatus::Active,
            created_at: at,
            updated_at: at,
        };
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO users (id, name, email, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(user.id)
            .bind(&user.name)
            .bind(&user.email)
            .bind(user.status.as_str())
            .bind(user.created_at)
            .bind(user.updated_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(|e| StoreError::conflict_or(e, "a user with this email"))?;
        Ok(user)
    }

    pub async fn get_user(&self, id: Uuid) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(select_users!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(User::from))
    }

    pub async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(select_users!("WHERE email = $1"))
                .bind(normalize_email(email))
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(User::from))
    }

    /// Users ordered by creation, `limit` at a time.
    pub async fn list_users(&self, limit: i64, offset: i64) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(select_users!("ORDER BY created_at, id LIMIT $1 OFFSET $2"))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Activates or deactivates a user. A deactivated user's keys stop authenticating.
    pub async fn set_user_status(&self, id: Uuid, status: UserStatus) -> StoreResult<User> {
        let done = on_pool!(self, pool => {
            sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(status.as_str())
                .bind(now())
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound("user"));
        }
        self.get_user(id).await?.ok_or(StoreError::NotFound("user"))
    }
}
