//! Anthropic model name → the Bedrock model id to call. Enabled rows of `model_mappings`
//! win; a disabled row switches a default off; otherwise the built-in defaults apply, with
//! the inference profile that matches the Bedrock key's region. Rows are re-read at most
//! every `refresh` (30 s by default), so admin edits take effect without a restart.

use crate::store::{ModelMapping, Store};
use crate::translate::models;
use moka::future::Cache;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Where a request goes on Bedrock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The id for the URL path (percent-encode it there).
    pub model_id: String,
    pub max_output_tokens: u32,
}

/// Output cap used for admin rows that name none.
const DEFAULT_ROW_MAX_OUTPUT: u32 = 64_000;

type Rows = Arc<HashMap<String, ModelMapping>>;

#[derive(Clone)]
pub struct ModelMap {
    store: Store,
    rows: Cache<(), Rows>,
}

impl std::fmt::Debug for ModelMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelMap").finish_non_exhaustive()
    }
}

impl ModelMap {
    pub fn new(store: Store, refresh: Duration) -> Self {
        Self {
            store,
            rows: Cache::builder()
                .max_capacity(1)
                .time_to_live(refresh)
                .build(),
        }
    }

    /// The Bedrock model for `anthropic_model` called from `region`, if any.
    pub async fn resolve(&self, anthropic_model: &str, region: &str) -> Option<ResolvedModel> {
        let rows = self.rows().await;
        resolve_with(rows.as_deref(), anthropic_model, region)
    }

    async fn rows(&self) -> Option<Rows> {
        let store = self.store.clone();
        let loaded = self
            .rows
            .try_get_with((), async move {
                store.list_model_mappings().await.map(|rows| {
                    Arc::new(
                        rows.into_iter()
                            .map(|r| (r.anthropic_model.clone(), r))
                            .collect::<HashMap<_, _>>(),
                    )
                })
            })
            .await;
        match loaded {
            Ok(rows) => Some(rows),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read model mappings; using the defaults");
                None
            }
        }
    }
}

/// The resolution rule, separate from the cache for tests.
pub fn resolve_with(
    rows: Option<&HashMap<String, ModelMapping>>,
    anthropic_model: &str,
    region: &str,
) -> Option<ResolvedModel> {
    if let Some(row) = rows.and_then(|r| r.get(anthropic_model)) {
        return row.enabled.then(|| ResolvedModel {
            model_id: row.bedrock_model_id.clone(),
            max_output_tokens: row
                .max_output_tokens
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_ROW_MAX_OUTPUT),
        });
    }
    let model = models::default_model(anthropic_model)?;
    Some(ResolvedModel {
        model_id: models::inference_profile_id(model, region)?,
        max_output_tokens: model.max_output_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    fn row(name: &str, id: &str, enabled: bool) -> ModelMapping {
        ModelMapping {
            id: Uuid::now_v7(),
            anthropic_model: name.into(),
            bedrock_model_id: id.into(),
            max_output_tokens: Some(32_000),
            enabled,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn rows_override_defaults_and_can_disable_them() {
        let mut rows = HashMap::new();
        assert_eq!(
            resolve_with(Some(&rows), "claude-sonnet-4-5-20250929", "eu-west-1")
                .unwrap()
                .model_id,
            "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
        );
        assert_eq!(
            resolve_with(None, "claude-sonnet-4-5", "us-east-1")
                .unwrap()
                .model_id,
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
        );
        assert_eq!(resolve_with(None, "claude-opus-5-5", "us-east-1"), None);

        rows.insert(
            "claude-opus-5-5".into(),
            row(
                "claude-opus-5-5",
                "global.anthropic.claude-opus-5-5-v1",
                true,
            ),
        );
        rows.insert(
            "claude-sonnet-4-5".into(),
            row("claude-sonnet-4-5", "x", false),
        );
        assert_eq!(
            resolve_with(Some(&rows), "claude-opus-5-5", "us-east-1"),
            Some(ResolvedModel {
                model_id: "global.anthropic.claude-opus-5-5-v1".into(),
                max_output_tokens: 32_000
            })
        );
        assert_eq!(
            resolve_with(Some(&rows), "claude-sonnet-4-5", "us-east-1"),
            None
        );
    }
}
