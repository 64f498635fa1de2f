//! What the API shows: the domain records as JSON with their OpenAPI schemas. No view holds a
//! secret: access keys appear masked, Bedrock keys as region and last four characters.

use ccp_core::domain::{AccessKeyRecord, AuditEntry, KeyStatus, User, UserStatus};
use ccp_core::store::{BedrockKeyRecord, ModelMapping};
use chrono::{DateTime, Utc};
use salvo::oapi::ToSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatusView {
    Active,
    Disabled,
}

impl From<UserStatus> for UserStatusView {
    fn from(status: UserStatus) -> Self {
        match status {
            UserStatus::Active => Self::Active,
            UserStatus::Disabled => Self::Disabled,
        }
    }
}

impl From<UserStatusView> for UserStatus {
    fn from(status: UserStatusView) -> Self {
        match status {
            UserStatusView::Active => Self::Active,
            UserStatusView::Disabled => Self::Disabled,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub status: UserStatusView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            status: u.status.into(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// How many users match the filters in all.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatusView {
    /// Works (until `expires_at`, if set).
    Active,
    Revoked,
}

/// A stored Bedrock API key, as far as it is shown: never the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct BedrockKeyView {
    pub region: String,
    pub last4: String,
    /// `local` or `kms`: what encrypts it at rest.
    pub wrapper: String,
    pub updated_at: DateTime<Utc>,
}

impl From<BedrockKeyRecord> for BedrockKeyView {
    fn from(r: BedrockKeyRecord) -> Self {
        Self {
            region: r.region,
            last4: r.last4,
            wrapper: r.wrapper,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessKeyView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: Option<String>,
    /// The key masked, e.g. `ccp_AbCd…wxyz`.
    pub display_prefix: String,
    pub status: KeyStatusView,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set when the key was rotated: the key replacing it.
    pub replaced_by: Option<Uuid>,
    /// The Bedrock key this access key fails over with, if any.
    pub bedrock_key: Option<BedrockKeyView>,
}

impl AccessKeyView {
    pub fn new(k: AccessKeyRecord, bedrock: Option<BedrockKeyRecord>) -> Self {
        Self {
            id: k.id,
            user_id: k.user_id,
            name: k.name,
            display_prefix: k.display_prefix,
            status: match k.status {
                KeyStatus::Active => KeyStatusView::Active,
                KeyStatus::Revoked => KeyStatusView::Revoked,
            },
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            replaced_by: k.replaced_by,
            bedrock_key: bedrock.map(BedrockKeyView::from),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    pub user: UserView,
    /// Newest first.
    pub access_keys: Vec<AccessKeyView>,
}

/// A new key: `key` appears in this answer only and is stored nowhere.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKeyView {
    pub key: String,
    pub access_key: AccessKeyView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKeyView {
    /// The new key, shown once.
    pub key: String,
    pub access_key: AccessKeyView,
    /// The replaced key: it keeps working until its `expires_at`.
    pub previous: AccessKeyView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelMappingView {
    pub id: Uuid,
    pub anthropic_model: String,
    pub bedrock_model_id: String,
    pub max_output_tokens: Option<i32>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ModelMapping> for ModelMappingView {
    fn from(m: ModelMapping) -> Self {
        Self {
            id: m.id,
            anthropic_model: m.anthropic_model,
            bedrock_model_id: m.bedrock_model_id,
            max_output_tokens: m.max_output_tokens,
            enabled: m.enabled,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// A model clients sent in the last 7 days that no rule maps to Bedrock.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnmappedModelView {
    /// The model name as clients send it.
    pub model: String,
    pub requests: i64,
    /// Requests that needed Bedrock (Plan failed, or the circuit was open) and could not go
    /// there because of the missing mapping.
    pub missed_failovers: i64,
    pub last_seen: DateTime<Utc>,
    /// `opus`, `sonnet` or `haiku`: setting `family:<family>` would cover this model.
    pub family: Option<String>,
    /// A Bedrock model id to offer for it: the family's newest built-in model.
    pub suggested_bedrock_model_id: Option<String>,
}

impl From<crate::ops::UnmappedModel> for UnmappedModelView {
    fn from(m: crate::ops::UnmappedModel) -> Self {
        Self {
            model: m.model,
            requests: m.requests,
            missed_failovers: m.missed_failovers,
            last_seen: m.last_seen,
            family: m.family.map(str::to_owned),
            suggested_bedrock_model_id: m.suggested_bedrock_model_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// `admin:<id>`, `cli` or `bootstrap`.
    pub actor: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// What changed (ids, masks, names; never a secret).
    pub detail: Option<serde_json::Value>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            detail: e.detail.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}
