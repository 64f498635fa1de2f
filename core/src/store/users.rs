//! Users: the people access keys are issued to.

use super::{Store, StoreError, StoreResult, new_id, now, on_pool};
use crate::domain::{Routing, User, UserStatus};
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
    routing: String,
    monthly_budget_micro_usd: Option<i64>,
    budget_warning_percent: i32,
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
            routing: Routing::from_db(&r.routing),
            monthly_budget_micro_usd: r.monthly_budget_micro_usd,
            budget_warning_percent: r.budget_warning_percent,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Which users a listing returns.
#[derive(Debug, Clone)]
pub struct UserQuery {
    /// A substring of the name or email, case-insensitive; `%` and `_` match themselves.
    pub search: Option<String>,
    pub status: Option<UserStatus>,
    pub limit: i64,
    pub offset: i64,
}

impl Default for UserQuery {
    fn default() -> Self {
        Self {
            search: None,
            status: None,
            limit: 100,
            offset: 0,
        }
    }
}

/// A partial update; `None` leaves the field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub status: Option<UserStatus>,
    pub routing: Option<Routing>,
    /// `Some(None)` removes the budget.
    pub monthly_budget_micro_usd: Option<Option<i64>>,
    pub budget_warning_percent: Option<i32>,
}

impl UserPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.status.is_none()
            && self.routing.is_none()
            && self.monthly_budget_micro_usd.is_none()
            && self.budget_warning_percent.is_none()
    }
}

/// `%text%` for LIKE, lower-cased, with the wildcards and the escape character escaped.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `SELECT … FROM users` plus a tail, as one static string (no SQL is built at run time).
macro_rules! select_users {
    ($($tail:tt)*) => {
        concat!(
            "SELECT id, name, email, status, routing, monthly_budget_micro_usd, budget_warning_percent, \
             created_at, updated_at FROM users ",
            $($tail)*
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
            routing: Routing::PlanFirst,
            monthly_budget_micro_usd: None,
            budget_warning_percent: 80,
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

    /// One page of users, oldest first, and how many match in all.
    pub async fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, i64)> {
        // One static WHERE for every combination: a NULL parameter does not filter.
        macro_rules! matching {
            () => {
                "WHERE (CAST($1 AS TEXT) IS NULL OR LOWER(name) LIKE $1 ESCAPE '\\' OR email LIKE $1 ESCAPE '\\')
                   AND (CAST($2 AS TEXT) IS NULL OR status = $2) "
            };
        }
        let pattern = query.search.as_deref().map(like_pattern);
        let status = query.status.map(UserStatus::as_str);
        let rows: Vec<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(select_users!(concat!(matching!(), "ORDER BY created_at, id LIMIT $3 OFFSET $4")))
                .bind(pattern.as_deref())
                .bind(status)
                .bind(query.limit)
                .bind(query.offset)
                .fetch_all(pool)
                .await
        })?;
        let (total,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT COUNT(*) FROM users ", matching!()))
                .bind(pattern.as_deref())
                .bind(status)
                .fetch_one(pool)
                .await
        })?;
        Ok((rows.into_iter().map(User::from).collect(), total))
    }

    /// Changes the fields that are `Some`. A changed email must stay unique.
    pub async fn update_user(&self, id: Uuid, patch: UserPatch) -> StoreResult<User> {
        let done = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE users SET name = COALESCE($1, name), email = COALESCE($2, email),
                        status = COALESCE($3, status), updated_at = $4,
                        routing = COALESCE($6, routing),
                        monthly_budget_micro_usd = CASE WHEN $7 THEN $8 ELSE monthly_budget_micro_usd END,
                        budget_warning_percent = COALESCE($9, budget_warning_percent)
                 WHERE id = $5",
            )
            .bind(patch.name.as_deref().map(str::trim))
            .bind(patch.email.as_deref().map(normalize_email))
            .bind(patch.status.map(UserStatus::as_str))
            .bind(now())
            .bind(id)
            .bind(patch.routing.map(Routing::as_str))
            .bind(patch.monthly_budget_micro_usd.is_some())
            .bind(patch.monthly_budget_micro_usd.flatten())
            .bind(patch.budget_warning_percent)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(|e| StoreError::conflict_or(e, "a user with this email"))?;
        if done == 0 {
            return Err(StoreError::NotFound("user"));
        }
        self.get_user(id).await?.ok_or(StoreError::NotFound("user"))
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
