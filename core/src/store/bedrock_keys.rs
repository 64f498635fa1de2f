//! Per-access-key Bedrock API keys, stored only as ciphertext (see [`crate::crypto`]) with
//! the region and the last four characters for display.

use super::{Store, StoreError, StoreResult, new_id, now, on_pool};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What is written when a Bedrock key is registered or replaced.
#[derive(Debug, Clone)]
pub struct NewBedrockKey {
    pub access_key_id: Uuid,
    pub ciphertext: Vec<u8>,
    /// `local` or `kms`: which wrapper made the ciphertext.
    pub wrapper: &'static str,
    pub region: String,
    pub last4: String,
}

/// A stored Bedrock key: ciphertext and metadata, never the key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BedrockKeyRecord {
    pub access_key_id: Uuid,
    pub ciphertext: Vec<u8>,
    pub wrapper: String,
    pub region: String,
    pub last4: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Registers the Bedrock key of an access key, replacing any earlier one.
    pub async fn set_bedrock_key(&self, new: NewBedrockKey) -> StoreResult<BedrockKeyRecord> {
        let at = now();
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO bedrock_keys (id, access_key_id, ciphertext, wrapper, region, last4, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                 ON CONFLICT (access_key_id) DO UPDATE SET
                   ciphertext = excluded.ciphertext, wrapper = excluded.wrapper,
                   region = excluded.region, last4 = excluded.last4, updated_at = excluded.updated_at",
            )
            .bind(new_id())
            .bind(new.access_key_id)
            .bind(&new.ciphertext)
            .bind(new.wrapper)
            .bind(&new.region)
            .bind(&new.last4)
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NotFound("access key")
            }
            _ => StoreError::Database(e),
        })?;
        self.bedrock_key(new.access_key_id)
            .await?
            .ok_or(StoreError::NotFound("bedrock key"))
    }

    pub async fn bedrock_key(&self, access_key_id: Uuid) -> StoreResult<Option<BedrockKeyRecord>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT access_key_id, ciphertext, wrapper, region, last4, created_at, updated_at
                 FROM bedrock_keys WHERE access_key_id = $1",
            )
            .bind(access_key_id)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Removes the Bedrock key; `false` when there was none.
    /// How many access keys have a Bedrock key (whether failover is configured at all).
    pub async fn count_bedrock_keys(&self) -> StoreResult<i64> {
        let (n,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM bedrock_keys").fetch_one(pool).await
        })?;
        Ok(n)
    }

    pub async fn delete_bedrock_key(&self, access_key_id: Uuid) -> StoreResult<bool> {
        let deleted = on_pool!(self, pool => {
            sqlx::query("DELETE FROM bedrock_keys WHERE access_key_id = $1")
                .bind(access_key_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(deleted > 0)
    }
}
