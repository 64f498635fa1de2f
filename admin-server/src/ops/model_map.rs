//! The Anthropic → Bedrock model map: rows, family defaults, and the models nothing maps.

use super::checks::starts_alphanumeric;
use super::{AdminOps, OpsError, OpsResult, invalid};
use ccp_core::routing::model_map;
use ccp_core::store::{ModelMapping, ModelMappingPatch, NewModelMapping, Store};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

impl AdminOps {
    pub async fn put_model_mapping(
        &self,
        actor: &str,
        new: NewModelMapping,
        replace: bool,
    ) -> OpsResult<ModelMapping> {
        check_model_name(&new.anthropic_model)?;
        check_bedrock_model(&new.bedrock_model_id)?;
        check_max_output(new.max_output_tokens)?;
        let row = if replace {
            self.store.upsert_model_mapping(new).await?
        } else {
            self.store.insert_model_mapping(new).await?
        };
        self.audit_mapping(actor, "model_mapping.set", &row).await?;
        Ok(row)
    }

    pub async fn update_model_mapping(
        &self,
        actor: &str,
        id: Uuid,
        patch: ModelMappingPatch,
    ) -> OpsResult<ModelMapping> {
        if let Some(model) = &patch.bedrock_model_id {
            check_bedrock_model(model)?;
        }
        check_max_output(patch.max_output_tokens.flatten())?;
        if patch.bedrock_model_id.is_none()
            && patch.max_output_tokens.is_none()
            && patch.enabled.is_none()
        {
            return Err(invalid(
                "nothing to change: give bedrock_model_id, max_output_tokens or enabled",
            ));
        }
        let row = self.store.update_model_mapping(id, patch).await?;
        self.audit_mapping(actor, "model_mapping.update", &row)
            .await?;
        Ok(row)
    }

    pub async fn delete_model_mapping(&self, actor: &str, id: Uuid) -> OpsResult<ModelMapping> {
        let row = self
            .store
            .model_mapping_by_id(id)
            .await?
            .ok_or(OpsError::NotFound("model mapping"))?;
        self.store.delete_model_mapping_by_id(id).await?;
        self.audit_mapping(actor, "model_mapping.delete", &row)
            .await?;
        Ok(row)
    }

    async fn audit_mapping(
        &self,
        actor: &str,
        action: &'static str,
        row: &ModelMapping,
    ) -> OpsResult<()> {
        let detail = json!({
            "anthropic_model": row.anthropic_model,
            "bedrock_model_id": row.bedrock_model_id,
            "max_output_tokens": row.max_output_tokens,
            "enabled": row.enabled,
        });
        self.audit(actor, action, "model_mapping", row.id, detail)
            .await
    }
}

/// Models clients sent in the last `days` days that no rule maps to Bedrock: requests for
/// them cannot fail over. Most requested first.
pub async fn unmapped_models(store: &Store, days: i64) -> OpsResult<Vec<UnmappedModel>> {
    let since = Utc::now() - chrono::Duration::days(days);
    let seen = store.models_seen(since).await?;
    let rows: std::collections::HashMap<String, ModelMapping> = store
        .list_model_mappings()
        .await?
        .into_iter()
        .map(|r| (r.anthropic_model.clone(), r))
        .collect();
    Ok(seen
        .into_iter()
        .filter(|m| !model_map::is_mapped(&rows, &m.model))
        .map(|m| UnmappedModel {
            family: model_map::family(&m.model),
            suggested_bedrock_model_id: model_map::family(&m.model)
                .and_then(model_map::suggested_for_family),
            model: m.model,
            requests: m.requests,
            missed_failovers: m.missed_failovers,
            last_seen: m.last_seen,
        })
        .collect())
}

/// A model clients use that has no Bedrock mapping.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnmappedModel {
    pub model: String,
    pub requests: i64,
    /// Requests that needed Bedrock and were not sent there for want of a mapping.
    pub missed_failovers: i64,
    pub last_seen: DateTime<Utc>,
    /// The family whose default would cover it (`opus`, `sonnet`, `haiku`), if any.
    pub family: Option<&'static str>,
    /// A Bedrock model to map it (or its family) to: the family's newest built-in model.
    pub suggested_bedrock_model_id: Option<String>,
}

fn check_model_name(name: &str) -> OpsResult<()> {
    if name.starts_with(model_map::FAMILY_PREFIX) && model_map::family_row(name).is_none() {
        return Err(invalid(
            "a family default is named family:opus, family:sonnet or family:haiku",
        ));
    }
    let ok = (1..=200).contains(&name.len())
        && starts_alphanumeric(name)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
    if !ok {
        return Err(invalid(
            "anthropic_model must be a model name such as claude-opus-4-5",
        ));
    }
    Ok(())
}

fn check_bedrock_model(id: &str) -> OpsResult<()> {
    if !starts_alphanumeric(id) || !ccp_core::translate::models::is_valid_model_id(id) {
        return Err(invalid(
            "bedrock_model_id must be a Bedrock model id, inference-profile id or ARN",
        ));
    }
    Ok(())
}

fn check_max_output(max: Option<i32>) -> OpsResult<()> {
    if max.is_some_and(|n| !(1..=1_000_000).contains(&n)) {
        return Err(invalid("max_output_tokens must be 1 to 1000000"));
    }
    Ok(())
}
