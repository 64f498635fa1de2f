//! The audit log: who changed what, when. Entries never hold a secret.

use super::{Store, StoreResult, new_id, now, on_pool};
use crate::domain::AuditEntry;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor: String,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub detail: Option<serde_json::Value>,
}

/// Which audit entries a listing returns; `None` fields do not filter.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            actor: None,
            action: None,
            target_id: None,
            limit: 100,
            offset: 0,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    detail: Option<String>,
}

impl Store {
    pub async fn append_audit(&self, entry: NewAuditEntry) -> StoreResult<AuditEntry> {
        let saved = AuditEntry {
            id: new_id(),
            at: now(),
            actor: entry.actor,
            action: entry.action.to_owned(),
            target_type: entry.target_type.map(str::to_owned),
            target_id: entry.target_id,
            detail: entry.detail.map(|d| d.to_string()),
        };
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO audit_log (id, at, actor, action, target_type, target_id, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(saved.id)
            .bind(saved.at)
            .bind(&saved.actor)
            .bind(&saved.action)
            .bind(&saved.target_type)
            .bind(&saved.target_id)
            .bind(&saved.detail)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(saved)
    }

    /// Entries matching the query, newest first, and how many match in all.
    pub async fn list_audit(&self, query: &AuditQuery) -> StoreResult<(Vec<AuditEntry>, i64)> {
        macro_rules! matching {
            () => {
                "WHERE (CAST($1 AS TEXT) IS NULL OR actor = $1)
                   AND (CAST($2 AS TEXT) IS NULL OR action = $2)
                   AND (CAST($3 AS TEXT) IS NULL OR target_id = $3) "
            };
        }
        let rows: Vec<AuditRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT id, at, actor, action, target_type, target_id, detail FROM audit_log ",
                matching!(),
                "ORDER BY at DESC, id DESC LIMIT $4 OFFSET $5"
            ))
            .bind(query.actor.as_deref())
            .bind(query.action.as_deref())
            .bind(query.target_id.as_deref())
            .bind(query.limit)
            .bind(query.offset)
            .fetch_all(pool)
            .await
        })?;
        let (total,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT COUNT(*) FROM audit_log ", matching!()))
                .bind(query.actor.as_deref())
                .bind(query.action.as_deref())
                .bind(query.target_id.as_deref())
                .fetch_one(pool)
                .await
        })?;
        let entries = rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: r.at,
                actor: r.actor,
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id,
                detail: r.detail,
            })
            .collect();
        Ok((entries, total))
    }
}
