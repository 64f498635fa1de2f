//! Admin-defined Anthropic model name → Bedrock model id rows. They override and extend the
//! built-in defaults in [`crate::translate::models`].

use super::{Store, StoreError, StoreResult, new_id, now, on_pool};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewModelMapping {
    pub anthropic_model: String,
    /// Sent as is in the Converse URL, e.g. `us.anthropic.claude-sonnet-4-5-20250929-v1:0`.
    pub bedrock_model_id: String,
    pub max_output_tokens: Option<i32>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ModelMapping {
    pub id: Uuid,
    pub anthropic_model: String,
    pub bedrock_model_id: String,
    pub max_output_tokens: Option<i32>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A partial update of a mapping; `None` leaves the field as it is. `max_output_tokens`
/// is `Some(None)` to clear the cap.
#[derive(Debug, Clone, Default)]
pub struct ModelMappingPatch {
    pub bedrock_model_id: Option<String>,
    pub max_output_tokens: Option<Option<i32>>,
    pub enabled: Option<bool>,
}

macro_rules! select_mappings {
    ($tail:literal) => {
        concat!(
            "SELECT id, anthropic_model, bedrock_model_id, max_output_tokens, enabled, created_at, updated_at
             FROM model_mappings ",
            $tail
        )
    };
}

/// Maps a violated unique constraint on `anthropic_model` to a conflict.
fn mapping_conflict(err: sqlx::Error) -> StoreError {
    StoreError::conflict_or(err, "a mapping for this model")
}

impl Store {
    /// Creates the mapping for `anthropic_model` or replaces the existing one.
    pub async fn upsert_model_mapping(&self, new: NewModelMapping) -> StoreResult<ModelMapping> {
        let at = now();
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO model_mappings (id, anthropic_model, bedrock_model_id, max_output_tokens, enabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (anthropic_model) DO UPDATE SET
                   bedrock_model_id = excluded.bedrock_model_id,
                   max_output_tokens = excluded.max_output_tokens,
                   enabled = excluded.enabled, updated_at = excluded.updated_at",
            )
            .bind(new_id())
            .bind(&new.anthropic_model)
            .bind(&new.bedrock_model_id)
            .bind(new.max_output_tokens)
            .bind(new.enabled)
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        self.model_mapping(&new.anthropic_model)
            .await?
            .ok_or(StoreError::NotFound("model mapping"))
    }

    /// Creates a mapping; one for the same Anthropic model is a conflict.
    pub async fn insert_model_mapping(&self, new: NewModelMapping) -> StoreResult<ModelMapping> {
        let at = now();
        let row = ModelMapping {
            id: new_id(),
            anthropic_model: new.anthropic_model,
            bedrock_model_id: new.bedrock_model_id,
            max_output_tokens: new.max_output_tokens,
            enabled: new.enabled,
            created_at: at,
            updated_at: at,
        };
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO model_mappings (id, anthropic_model, bedrock_model_id, max_output_tokens, enabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(row.id)
            .bind(&row.anthropic_model)
            .bind(&row.bedrock_model_id)
            .bind(row.max_output_tokens)
            .bind(row.enabled)
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(mapping_conflict)?;
        Ok(row)
    }

    pub async fn model_mapping_by_id(&self, id: Uuid) -> StoreResult<Option<ModelMapping>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(select_mappings!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Changes the fields the patch sets.
    pub async fn update_model_mapping(
        &self,
        id: Uuid,
        patch: ModelMappingPatch,
    ) -> StoreResult<ModelMapping> {
        let (set_max, max) = match patch.max_output_tokens {
            Some(value) => (true, value),
            None => (false, None),
        };
        let done = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE model_mappings SET bedrock_model_id = COALESCE($1, bedrock_model_id),
                        max_output_tokens = CASE WHEN $2 THEN $3 ELSE max_output_tokens END,
                        enabled = COALESCE($4, enabled), updated_at = $5
                 WHERE id = $6",
            )
            .bind(patch.bedrock_model_id.as_deref())
            .bind(set_max)
            .bind(max)
            .bind(patch.enabled)
            .bind(now())
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound("model mapping"));
        }
        self.model_mapping_by_id(id)
            .await?
            .ok_or(StoreError::NotFound("model mapping"))
    }

    /// Removes a mapping by id; `false` when there was none.
    pub async fn delete_model_mapping_by_id(&self, id: Uuid) -> StoreResult<bool> {
        let deleted = on_pool!(self, pool => {
            sqlx::query("DELETE FROM model_mappings WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(deleted > 0)
    }

    pub async fn model_mapping(&self, anthropic_model: &str) -> StoreResult<Option<ModelMapping>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(select_mappings!("WHERE anthropic_model = $1"))
                .bind(anthropic_model)
                .fetch_optional(pool)
                .await
        })?)
    }

    pub async fn list_model_mappings(&self) -> StoreResult<Vec<ModelMapping>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(select_mappings!("ORDER BY anthropic_model"))
                .fetch_all(pool)
                .await
        })?)
    }

    /// Removes a mapping; `false` when there was none.
    pub async fn delete_model_mapping(&self, anthropic_model: &str) -> StoreResult<bool> {
        let deleted = on_pool!(self, pool => {
            sqlx::query("DELETE FROM model_mappings WHERE anthropic_model = $1")
                .bind(anthropic_model)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(deleted > 0)
    }
}
