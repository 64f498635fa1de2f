//! Anthropic model name → the Bedrock model id to call. In order: the model's own row of
//! `model_mappings` (a disabled row keeps the model off Bedrock); the built-in default, with
//! the inference profile that matches the Bedrock key's region; the family default (a row
//! named `family:opus`, `family:sonnet` or `family:haiku`, off until an admin sets it), for
//! names that are newer than this build, such as the model Claude Code sends by default.
//! Rows are re-read at most every `refresh` (30 s by default), so admin edits take effect
//! without a restart.

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
    pub source: MappingSource,
}

/// Which rule chose the Bedrock model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingSource {
    /// The model's own `model_mappings` row.
    Row,
    /// The built-in table.
    BuiltIn,
    /// The family default (`family:opus`…).
    Family,
}

impl MappingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Row => "row",
            Self::BuiltIn => "built_in",
            Self::Family => "family_default",
        }
    }
}

/// The model families a default can be set for.
pub const FAMILIES: [&str; 3] = ["opus", "sonnet", "haiku"];

/// The mapping-row name that holds a family's default.
pub const FAMILY_PREFIX: &str = "family:";

/// The family of a model name (`claude-opus-5-5` → `opus`, `claude-3-5-haiku-20241022` →
/// `haiku`): a whole name part, so `claude-opusx` has none.
pub fn family(anthropic_model: &str) -> Option<&'static str> {
    anthropic_model
        .split(['-', '.', ':', '[', ']', '@'])
        .find_map(|part| FAMILIES.iter().copied().find(|f| *f == part))
}

/// A Bedrock model id to offer as a family's default: the newest built-in model of the
/// family, through its `global.` inference profile (or its first one).
pub fn suggested_for_family(family: &str) -> Option<String> {
    let model = models::DEFAULT_MODELS.iter().find(|m| {
        m.anthropic_names
            .first()
            .is_some_and(|name| self::family(name) == Some(family))
    })?;
    let profile = if model.profiles.contains(&"global") {
        "global"
    } else {
        model.profiles.first()?
    };
    Some(format!("{profile}.{}", model.base_id))
}

/// The family a mapping-row name sets the default for (`family:opus` → `opus`).
pub fn family_row(anthropic_model: &str) -> Option<&'static str> {
    let name = anthropic_model.strip_prefix(FAMILY_PREFIX)?;
    FAMILIES.iter().copied().find(|f| *f == name)
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

    /// Forgets the cached map: the next lookup reads it again.
    pub fn forget(&self) {
        self.rows.invalidate_all();
    }

    /// The Bedrock model for `anthropic_model` called from `region`, if any.
    pub async fn resolve(&self, anthropic_model: &str, region: &str) -> Option<ResolvedModel> {
        let rows = self.rows().await;
        resolve_with(rows.as_deref(), anthropic_model, region)
    }

    /// Logs a warning when Bedrock keys exist (failover is configured) but Claude Code's
    /// default models have no mapping: their requests would relay Plan's 429 instead of
    /// failing over. Run at start-up.
    pub async fn warn_if_defaults_unmapped(&self) {
        let keys = match self.store.count_bedrock_keys().await {
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(error = %err, "cannot count Bedrock keys; skipping the model-map check");
                return;
            }
        };
        let Some(rows) = self.rows().await else {
            return;
        };
        let missing = unmapped_claude_code_defaults(&rows);
        if keys > 0 && !missing.is_empty() {
            tracing::warn!(
                bedrock_keys = keys,
                unmapped = %missing.join(", "),
                "failover is configured, but Claude Code's default models have no Bedrock mapping: \
                 their requests will not fail over. Map them (`ccp-admin model-map set --anthropic <model> --bedrock <id>`) \
                 or set family defaults (`ccp-admin model-map family opus --bedrock <id>`)"
            );
        }
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
    let from_row = |row: &ModelMapping, source| {
        row.enabled.then(|| ResolvedModel {
            model_id: row.bedrock_model_id.clone(),
            max_output_tokens: row
                .max_output_tokens
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_ROW_MAX_OUTPUT),
            source,
        })
    };
    // A family row is not a model: `family:opus` as a request's model goes nowhere.
    if family_row(anthropic_model).is_some() {
        return None;
    }
    if let Some(row) = rows.and_then(|r| r.get(anthropic_model)) {
        return from_row(row, MappingSource::Row);
    }
    if let Some(model) = models::default_model(anthropic_model)
        && let Some(model_id) = models::inference_profile_id(model, region)
    {
        return Some(ResolvedModel {
            model_id,
            max_output_tokens: model.max_output_tokens,
            source: MappingSource::BuiltIn,
        });
    }
    let family = family(anthropic_model)?;
    let row = rows?.get(&format!("{FAMILY_PREFIX}{family}"))?;
    from_row(row, MappingSource::Family)
}

/// Which of Claude Code's default model names nothing maps: the start-up check.
pub fn unmapped_claude_code_defaults(rows: &HashMap<String, ModelMapping>) -> Vec<&'static str> {
    models::CLAUDE_CODE_DEFAULT_MODELS
        .into_iter()
        .filter(|m| !is_mapped(rows, m))
        .collect()
}

/// Whether requests for `anthropic_model` can go to Bedrock in some region: the test the
/// unmapped-models list and the start-up check use.
pub fn is_mapped(rows: &HashMap<String, ModelMapping>, anthropic_model: &str) -> bool {
    let any_region = [
        "us-east-1",
        "eu-west-1",
        "ap-northeast-1",
        "ap-southeast-2",
        "ap-south-1",
    ];
    any_region
        .iter()
        .any(|region| resolve_with(Some(rows), anthropic_model, region).is_some())
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
                max_output_tokens: 32_000,
                source: MappingSource::Row,
            })
        );
        assert_eq!(
            resolve_with(Some(&rows), "claude-sonnet-4-5", "us-east-1"),
            None
        );
    }

    #[test]
    fn the_start_up_check_names_what_claude_code_would_miss() {
        let mut rows = HashMap::new();
        assert_eq!(
            unmapped_claude_code_defaults(&rows),
            ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"]
        );
        rows.insert(
            "family:opus".into(),
            row("family:opus", "global.anthropic.claude-opus-4-7", true),
        );
        rows.insert(
            "claude-haiku-5-5".into(),
            row(
                "claude-haiku-5-5",
                "global.anthropic.claude-haiku-4-5-20251001-v1:0",
                true,
            ),
        );
        assert_eq!(unmapped_claude_code_defaults(&rows), ["claude-sonnet-5-5"]);
    }

    #[test]
    fn each_family_has_a_suggested_default() {
        assert_eq!(
            suggested_for_family("opus").as_deref(),
            Some("global.anthropic.claude-opus-4-7")
        );
        assert!(
            suggested_for_family("sonnet")
                .unwrap()
                .starts_with("global.anthropic.claude-sonnet-")
        );
        assert!(
            suggested_for_family("haiku")
                .unwrap()
                .starts_with("global.anthropic.claude-haiku-")
        );
        assert_eq!(suggested_for_family("gpt"), None);
    }

    #[test]
    fn family_names() {
        for (name, want) in [
            ("claude-opus-5-5", Some("opus")),
            ("claude-sonnet-5-5", Some("sonnet")),
            ("claude-haiku-5-5", Some("haiku")),
            ("claude-3-5-haiku-20241022", Some("haiku")),
            ("claude-sonnet-4-5[1m]", Some("sonnet")),
            ("claude-opusx-1", None),
            ("gpt-4o", None),
            ("", None),
        ] {
            assert_eq!(family(name), want, "{name}");
        }
        assert_eq!(family_row("family:opus"), Some("opus"));
        assert_eq!(family_row("family:gpt"), None);
        assert_eq!(family_row("opus"), None);
    }

    #[test]
    fn family_defaults_fill_in_only_where_nothing_else_maps() {
        let mut rows = HashMap::new();
        // Off until set.
        assert_eq!(
            resolve_with(Some(&rows), "claude-opus-5-5", "us-east-1"),
            None
        );
        assert!(!is_mapped(&rows, "claude-opus-5-5"));
        rows.insert(
            "family:opus".into(),
            row("family:opus", "global.anthropic.claude-opus-4-7", true),
        );
        let resolved = resolve_with(Some(&rows), "claude-opus-5-5", "us-east-1").unwrap();
        assert_eq!(resolved.model_id, "global.anthropic.claude-opus-4-7");
        assert_eq!(resolved.source, MappingSource::Family);
        assert!(is_mapped(&rows, "claude-opus-5-5"));
        // A built-in default still wins over the family default.
        let builtin = resolve_with(Some(&rows), "claude-opus-4-5", "us-east-1").unwrap();
        assert_eq!(builtin.source, MappingSource::BuiltIn);
        // Other families are untouched.
        assert_eq!(
            resolve_with(Some(&rows), "claude-sonnet-5-5", "us-east-1"),
            None
        );
        // A disabled exact row keeps the model off Bedrock, family default or not.
        rows.insert("claude-opus-5-5".into(), row("claude-opus-5-5", "x", false));
        assert_eq!(
            resolve_with(Some(&rows), "claude-opus-5-5", "us-east-1"),
            None
        );
        // A disabled family row is no default.
        rows.insert(
            "family:sonnet".into(),
            row("family:sonnet", "global.anthropic.claude-sonnet-4-6", false),
        );
        assert_eq!(
            resolve_with(Some(&rows), "claude-sonnet-5-5", "us-east-1"),
            None
        );
        // The row name itself is not a model.
        assert_eq!(resolve_with(Some(&rows), "family:opus", "us-east-1"), None);
    }
}
