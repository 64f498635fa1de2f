//! What the API shows: the domain records as JSON with their OpenAPI schemas. No view holds a
//! secret: access keys appear masked, Bedrock keys as region and last four characters.

use ccp_core::domain::{AccessKeyRecord, AuditEntry, KeyStatus, Routing, User, UserStatus};
use ccp_core::store::{BedrockKeyRecord, CircuitRecord, CircuitState, ModelMapping};
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

/// Where a user's Messages requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoutingView {
    /// The Anthropic API (the user's plan), failing over to Bedrock when the key has a
    /// Bedrock key. The default.
    PlanFirst,
    /// Every Messages request to Bedrock with the key's Bedrock key (no Anthropic plan).
    BedrockOnly,
    /// Never Bedrock, even with a Bedrock key.
    PlanOnly,
}

impl From<Routing> for RoutingView {
    fn from(routing: Routing) -> Self {
        match routing {
            Routing::PlanFirst => Self::PlanFirst,
            Routing::BedrockOnly => Self::BedrockOnly,
            Routing::PlanOnly => Self::PlanOnly,
        }
    }
}

impl From<RoutingView> for Routing {
    fn from(routing: RoutingView) -> Self {
        match routing {
            RoutingView::PlanFirst => Self::PlanFirst,
            RoutingView::BedrockOnly => Self::BedrockOnly,
            RoutingView::PlanOnly => Self::PlanOnly,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub status: UserStatusView,
    pub routing: RoutingView,
    /// The estimated Bedrock cost a calendar month (UTC) may reach, in USD as an exact
    /// decimal string (`"25.00"`); null: no budget.
    pub monthly_budget_usd: Option<String>,
    /// At this share of the budget the user shows as near it.
    pub budget_warning_percent: i32,
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
            routing: u.routing.into(),
            monthly_budget_usd: u.monthly_budget_micro_usd.map(ccp_core::money::format_usd),
            budget_warning_percent: u.budget_warning_percent,
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
    /// The key's circuit breaker as the gateways share it (in the user view; null there:
    /// Plan never failed for it).
    pub circuit: Option<CircuitView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitStateView {
    /// Requests go to Plan first.
    Closed,
    /// Plan kept failing: requests go straight to Bedrock until `open_until`.
    Open,
    /// The open period is over: the next request probes Plan (or one is probing now).
    HalfOpen,
}

/// An access key's circuit breaker, shared by every gateway.
#[derive(Debug, Serialize, ToSchema)]
pub struct CircuitView {
    pub state: CircuitStateView,
    /// Open: when the next request may probe Plan.
    pub open_until: Option<DateTime<Utc>>,
    /// Half-open with a probe out: until when the probing gateway holds it.
    pub probe_until: Option<DateTime<Utc>>,
    /// Closed: Plan failures counted toward opening it.
    pub recent_failures: usize,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Times it opened (or opened again after a failed probe).
    pub opened_count: i64,
}

impl CircuitView {
    pub fn new(r: &CircuitRecord, now: DateTime<Utc>) -> Self {
        let at = |ms: Option<i64>| ms.and_then(DateTime::from_timestamp_millis);
        let now_ms = now.timestamp_millis();
        let state = match r.state {
            CircuitState::Closed => CircuitStateView::Closed,
            CircuitState::Open if r.open_until_ms.is_some_and(|t| t > now_ms) => {
                CircuitStateView::Open
            }
            CircuitState::Open | CircuitState::HalfOpen => CircuitStateView::HalfOpen,
        };
        Self {
            state,
            open_until: at(r.open_until_ms).filter(|_| state == CircuitStateView::Open),
            probe_until: at(r.probe_until_ms).filter(|t| *t > now),
            recent_failures: r.failures_ms.len(),
            last_failure_at: at(r.last_failure_ms),
            opened_count: r.opened_count,
        }
    }
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
            circuit: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    pub user: UserView,
    /// This calendar month's (UTC) estimated Bedrock spend against the budget.
    pub budget: BudgetView,
    /// Newest first.
    pub access_keys: Vec<AccessKeyView>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetStateView {
    /// No budget is set.
    NoBudget,
    Within,
    /// At or past the warning share of the budget.
    Warning,
    /// Used up: no Bedrock until the month turns or the budget is raised.
    Over,
}

/// A user's estimated Bedrock spend in the current calendar month (UTC), as written by the
/// gateways so far, against the monthly budget.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetView {
    /// Start of the month, UTC.
    pub month_start: DateTime<Utc>,
    /// When the spend starts again from zero (the next month, UTC).
    pub resets_at: DateTime<Utc>,
    /// USD, exact decimal string.
    pub spend_usd: String,
    /// USD, exact decimal string; null: no budget.
    pub monthly_budget_usd: Option<String>,
    /// Whole percent of the budget spent (null without a budget).
    pub used_percent: Option<i64>,
    pub warning_percent: i32,
    pub state: BudgetStateView,
}

impl From<crate::ops::BudgetStatus> for BudgetView {
    fn from(b: crate::ops::BudgetStatus) -> Self {
        use crate::ops::BudgetState;
        Self {
            month_start: b.month_start,
            resets_at: b.resets_at,
            spend_usd: ccp_core::money::format_usd(b.spend_micro_usd),
            monthly_budget_usd: b.monthly_budget_micro_usd.map(ccp_core::money::format_usd),
            used_percent: b.monthly_budget_micro_usd.map(|budget| {
                let used = i128::from(b.spend_micro_usd) * 100 / i128::from(budget.max(1));
                i64::try_from(used).unwrap_or(i64::MAX)
            }),
            warning_percent: b.warning_percent,
            state: match b.state {
                BudgetState::NoBudget => BudgetStateView::NoBudget,
                BudgetState::Within => BudgetStateView::Within,
                BudgetState::Warning => BudgetStateView::Warning,
                BudgetState::Over => BudgetStateView::Over,
            },
        }
    }
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
