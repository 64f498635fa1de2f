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
    replaced_by: Option<Uuid>,
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
            replaced_by: r.replaced_by,
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
    routing: String,
    monthly_budget_micro_usd: Option<i64>,
}

macro_rules! select_keys {
    ($tail:literal) => {
        concat!(
            "SELECT id, user_id, name, display_prefix, status, created_at, revoked_at, expires_at,
                    last_used_at, replaced_by
             FROM access_keys ",
            $tail
        )
    };
}

/// The INSERT of one key row, for a pool or a transaction.
macro_rules! insert_key {
    ($record:expr, $digest:expr) => {
        sqlx::query(
            "INSERT INTO access_keys (id, user_id, name, display_prefix, digest, status, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind($record.id)
        .bind($record.user_id)
        .bind(&$record.name)
        .bind(&$record.display_prefix)
        .bind($digest.as_bytes())
        .bind($record.status.as_str())
        .bind($record.created_at)
        .bind($record.expires_at)
    };
}

/// The record of a key about to be inserted for `user_id`.
fn fresh_record(user_id: Uuid, new: &NewAccessKey) -> AccessKeyRecord {
    AccessKeyRecord {
        id: new_id(),
        user_id,
        name: new.name.clone(),
        display_prefix: new.display_prefix.clone(),
        status: KeyStatus::Active,
        created_at: now(),
        revoked_at: None,
        expires_at: new.expires_at,
        last_used_at: None,
        replaced_by: None,
    }
}

impl Store {
    pub async fn insert_access_key(&self, new: NewAccessKey) -> StoreResult<AccessKeyRecord> {
        let record = fresh_record(new.user_id, &new);
        on_pool!(self, pool => {
            insert_key!(record, new.digest)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NotFound("user")
            }
            _ => StoreError::conflict_or(e, "an access key with this digest"),
        })?;
        Ok(record)
    }

    /// The authentication view of the key with this digest, whatever its status.
    pub async fn find_grant_by_digest(&self, digest: &KeyDigest) -> StoreResult<Option<KeyGrant>> {
        let row: Option<GrantRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT k.id, k.user_id, k.status, u.status AS user_status, k.expires_at,
                        b.region AS bedrock_region, u.routing, u.monthly_budget_micro_usd
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
            routing: crate::domain::Routing::from_db(&r.routing),
            monthly_budget_micro_usd: r.monthly_budget_micro_usd,
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

    /// Replaces an active key: inserts `new` and lets the old key work until `grace_until`
    /// (or its own earlier expiry), in one transaction. A key that is revoked or already
    /// rotated is a conflict. Returns the new key and the old one as it now is.
    pub async fn rotate_access_key(
        &self,
        old_id: Uuid,
        new: NewAccessKey,
        grace_until: DateTime<Utc>,
    ) -> StoreResult<(AccessKeyRecord, AccessKeyRecord)> {
        let old = self
            .get_access_key(old_id)
            .await?
            .ok_or(StoreError::NotFound("access key"))?;
        let fresh = fresh_record(old.user_id, &new);
        let rotated = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            insert_key!(fresh, new.digest).execute(&mut *tx).await?;
            let n = sqlx::query(
                "UPDATE access_keys SET replaced_by = $1,
                        expires_at = CASE WHEN expires_at IS NULL OR expires_at > $2 THEN $2 ELSE expires_at END
                 WHERE id = $3 AND status = 'active' AND replaced_by IS NULL",
            )
            .bind(fresh.id)
            .bind(grace_until)
            .bind(old_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok::<bool, sqlx::Error>(n == 1)
        })
        .map_err(|e| StoreError::conflict_or(e, "an access key with this digest"))?;
        if !rotated {
            return Err(StoreError::Conflict(
                "a revoked or already rotated access key",
            ));
        }
        let old = self
            .get_access_key(old_id)
            .await?
            .ok_or(StoreError::NotFound("access key"))?;
        Ok((fresh, old))
    }

    /// Marks rotated keys whose grace period has ended as revoked; returns how many.
    pub async fn revoke_lapsed_rotations(&self, at: DateTime<Utc>) -> StoreResult<u64> {
        Ok(on_pool!(self, pool => {
            sqlx::query(
                "UPDATE access_keys SET status = 'revoked', revoked_at = expires_at
                 WHERE replaced_by IS NOT NULL AND status = 'active' AND expires_at <= $1",
            )
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?)
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
