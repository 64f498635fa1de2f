//! Access keys: stored as their peppered digest and a display mask, never in clear.

use super::{Store, StoreError, StoreResult, new_id, now, on_pool};
use crate::domain::{AccessKeyRecord, KeyGrant, KeyStatus, UserStatus};
use crate::keys::KeyDigest;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewAccessKey {
    pub user_id: Uuid,
    pub name: Option<String>,
    pub display_prefix: String,
    pub digest: KeyDigest,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    user_id: Uuid,
    name: Option<String>,
    display_prefix: String,
    status: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for AccessKeyRecord {
    fn from(r: KeyRow) -> Self {
        AccessKeyRecord {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            display_prefix: r.display_prefix,
            status: KeyStatus::from_db(&r.status),
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: Uuid,
    user_id: Uuid,
    status: String,
    user_status: String,
    expires_at: Option<DateTime<Utc>>,
    bedrock_region: Option<String>,
}

macro_rules! select_keys {
    ($tail:literal) => {
        concat!(
            "SELECT id, user_id, name, display_prefix, status, created_at, revoked_at, expires_at, last_used_at
             FROM access_keys ",
            $tail
        )
    };
}

impl Store {
    pub async fn insert_access_key(&self, new: NewAccessKey) -> StoreResult<AccessKeyRecord> {
        let record = AccessKeyRecord {
            id: new_id(),
            user_id: new.user_id,
            name: new.name,
            display_prefix: new.display_prefix,
            status: KeyStatus::Active,
            created_at: now(),
            revoked_at: None,
            expires_at: new.expires_at,
            last_used_at: None,
        };
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO access_keys (id, user_id, name, display_prefix, digest, status, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(record.id)
            .bind(record.user_id)
            .bind(&record.name)
            .bind(&record.display_prefix)
            .bind(new.digest.as_bytes())
            .bind(record.status.as_str())
            .bind(record.created_at)
            .bind(record.expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound("user"),
            _ => StoreError::conflict_or(e, "an access key with this digest"),
        })?;
        Ok(record)
    }

    /// The authentication view of the key with this digest, whatever its status.
    pub async fn find_grant_by_digest(&self, digest: &KeyDigest) -> StoreResult<Option<KeyGrant>> {
        let row: Option<GrantRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT k.id, k.user_id, k.status, u.status AS user_status, k.expires_at,
                        b.region AS bedrock_region
                 FROM access_keys k JOIN users u ON u.id = k.user_id
                 LEFT JOIN bedrock_keys b ON b.access_key_id = k.id
                 WHERE k.digest = $1",
            )
            .bind(digest.as_bytes())
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|r| KeyGrant {
            key_id: r.id,
            user_id: r.user_id,
            key_status: KeyStatus::from_db(&r.status),
            user_status: UserStatus::from_db(&r.user_status),
            expires_at: r.expires_at,
            bedrock_region: r.bedrock_region,
        }))
    }

    pub async fn get_access_key(&self, id: Uuid) -> StoreResult<Option<AccessKeyRecord>> {
        let row: Option<KeyRow> = on_pool!(self, pool => {
            sqlx::query_as(select_keys!("WHERE id = $1")).bind(id).fetch_optional(pool).await
        })?;
        Ok(row.map(AccessKeyRecord::from))
    }

    /// Keys of one user, or of everyone, newest first.
    pub async fn list_access_keys(
        &self,
        user_id: Option<Uuid>,
    ) -> StoreResult<Vec<AccessKeyRecord>> {
        let rows: Vec<KeyRow> = on_pool!(self, pool => {
            match user_id {
                Some(user) => {
                    sqlx::query_as(select_keys!("WHERE user_id = $1 ORDER BY created_at DESC, id DESC"))
                        .bind(user)
                        .fetch_all(pool)
                        .await
                }
                None => {
                    sqlx::query_as(select_keys!("ORDER BY created_at DESC, id DESC"))
                        .fetch_all(pool)
                        .await
                }
            }
        })?;
        Ok(rows.into_iter().map(AccessKeyRecord::from).collect())
    }

    /// Revokes a key. Revoking twice keeps the first revocation time.
    pub async fn revoke_access_key(&self, id: Uuid) -> StoreResult<AccessKeyRecord> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE access_keys SET status = 'revoked', revoked_at = COALESCE(revoked_at, $1)
                 WHERE id = $2",
            )
            .bind(now())
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        self.get_access_key(id)
            .await?
            .ok_or(StoreError::NotFound("access key"))
    }

    /// Records use of a key. Called at most once per cache lifetime, off the request path.
    pub async fn touch_access_key(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE access_keys SET last_used_at = $1 WHERE id = $2")
                .bind(at)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
