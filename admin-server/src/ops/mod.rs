//! The admin operations, independent of how they are asked for: the REST API and the
//! `ccp-admin` command line both call these. Each checks its input, acts through the
//! [`Store`] and writes one audit entry naming the actor (`cli`, `admin:<id>`). Audit details
//! hold masks, ids and regions, never a secret.//!
//! Split by what they change: users here, `keys.rs` (access keys and Bedrock keys),
//! `admins.rs`, `model_map.rs`; the input checks shared with the OpenAPI patterns in
//! `checks.rs`.

mod admins;
mod checks;
mod keys;
mod model_map;

pub use checks::{check_email, check_name, check_username};
pub use model_map::{UnmappedModel, unmapped_models};

use ccp_core::crypto::{KeyWrapper, WrapError};
use ccp_core::domain::{AccessKeyRecord, User};
use ccp_core::keys::{AccessKey, Pepper};
use ccp_core::store::{Change, NewAuditEntry, NewUser, Store, StoreError, UserPatch};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Why an operation was refused. The messages are safe to show to admins.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The input breaks a rule (an API 422).
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change clashes with the current state (an API 409).
    #[error("{0}")]
    Conflict(String),
    /// The database or the key wrapper cannot answer; details go to the log, not the caller.
    #[error("{what} is unavailable")]
    Unavailable {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<StoreError> for OpsError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Unavailable {
                what: "the database",
                source: Box::new(other),
            },
        }
    }
}

impl From<WrapError> for OpsError {
    fn from(err: WrapError) -> Self {
        Self::Unavailable {
            what: "the key wrapper",
            source: Box::new(err),
        }
    }
}

fn invalid(message: impl Into<String>) -> OpsError {
    OpsError::Invalid(message.into())
}

fn conflict(message: &str) -> OpsError {
    OpsError::Conflict(message.to_owned())
}

pub type OpsResult<T> = Result<T, OpsError>;

/// A freshly issued key: the raw key exists only here, to be shown once.
#[derive(Debug)]
pub struct IssuedKey {
    pub record: AccessKeyRecord,
    pub key: AccessKey,
}

/// What admins can change, with the secrets it needs to do so.
#[derive(Debug, Clone)]
pub struct AdminOps {
    pub store: Store,
    pepper: Pepper,
    wrapper: Arc<dyn KeyWrapper>,
    /// How long a rotated key keeps working when the caller names no grace period.
    pub rotation_grace: Duration,
}

/// A user's Bedrock spend this calendar month (UTC) against the budget.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BudgetStatus {
    pub month_start: DateTime<Utc>,
    /// When the month's spend starts again from zero.
    pub resets_at: DateTime<Utc>,
    /// From the hourly rollups: what the gateways have written so far.
    pub spend_micro_usd: i64,
    pub monthly_budget_micro_usd: Option<i64>,
    pub warning_percent: i32,
    pub state: BudgetState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetState {
    NoBudget,
    Within,
    /// At or past the warning share, still under the budget.
    Warning,
    /// No more Bedrock this month.
    Over,
}

/// `user`'s spend this month against the budget.
pub async fn budget_status(store: &Store, user: &User) -> OpsResult<BudgetStatus> {
    use ccp_core::routing::budget::{month_start, next_month_start};
    let now = Utc::now();
    let month = month_start(now);
    let spend = store
        .bedrock_spend_between(user.id, month, next_month_start(now))
        .await?;
    let state = match user.monthly_budget_micro_usd {
        None => BudgetState::NoBudget,
        Some(budget) if spend >= budget => BudgetState::Over,
        Some(budget)
            if i128::from(spend) * 100
                >= i128::from(budget) * i128::from(user.budget_warning_percent) =>
        {
            BudgetState::Warning
        }
        Some(_) => BudgetState::Within,
    };
    Ok(BudgetStatus {
        month_start: month,
        resets_at: next_month_start(now),
        spend_micro_usd: spend,
        monthly_budget_micro_usd: user.monthly_budget_micro_usd,
        warning_percent: user.budget_warning_percent,
        state,
    })
}

/// Longest grace period a rotation may ask for.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

impl AdminOps {
    pub fn new(
        store: Store,
        pepper: Pepper,
        wrapper: Arc<dyn KeyWrapper>,
        rotation_grace: Duration,
    ) -> Self {
        Self {
            store,
            pepper,
            wrapper,
            rotation_grace,
        }
    }

    /// The operations with the pepper and key wrapper a configuration names.
    pub async fn from_config(
        config: &ccp_core::config::Config,
        store: Store,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let pepper = config
            .load_pepper()
            .context("cannot load the access-key pepper")?;
        let wrapper = ccp_core::crypto::wrapper_for(&config.key_wrapper)
            .await
            .context("cannot set up the key wrapper")?;
        Ok(Self::new(store, pepper, wrapper, config.key_rotation_grace))
    }

    async fn audit(
        &self,
        actor: &str,
        action: &'static str,
        target_type: &'static str,
        target_id: Uuid,
        detail: serde_json::Value,
    ) -> OpsResult<()> {
        self.store
            .append_audit(NewAuditEntry {
                actor: actor.to_owned(),
                action,
                target_type: Some(target_type),
                target_id: Some(target_id.to_string()),
                detail: Some(detail),
            })
            .await?;
        // Every change a gateway caches is audited: announce it from here, after it is
        // committed. Best effort: a gateway that misses it still has its cache TTL.
        if let Some(change) = Change::of_audit_target(target_type, target_id)
            && let Err(err) = self.store.announce(change).await
        {
            tracing::warn!(error = %err, kind = change.kind(), "could not announce a change to the gateways; their cache TTL applies");
        }
        Ok(())
    }

    pub async fn create_user(&self, actor: &str, name: &str, email: &str) -> OpsResult<User> {
        check_name(name)?;
        check_email(email)?;
        let user = self
            .store
            .create_user(NewUser {
                name: name.to_owned(),
                email: email.to_owned(),
            })
            .await?;
        let detail = json!({"name": user.name, "email": user.email});
        self.audit(actor, "user.create", "user", user.id, detail)
            .await?;
        Ok(user)
    }

    pub async fn update_user(&self, actor: &str, id: Uuid, patch: UserPatch) -> OpsResult<User> {
        if let Some(name) = &patch.name {
            check_name(name)?;
        }
        if let Some(email) = &patch.email {
            check_email(email)?;
        }
        if patch.is_empty() {
            return Err(invalid(
                "nothing to change: give name, email, status, routing, monthly_budget_usd or budget_warning_percent",
            ));
        }
        if let Some(Some(budget)) = patch.monthly_budget_micro_usd
            && !(0..=ccp_core::money::MAX_MICRO_USD).contains(&budget)
        {
            return Err(invalid("monthly_budget_usd must be between 0 and 1000000"));
        }
        if let Some(percent) = patch.budget_warning_percent
            && !(1..=100).contains(&percent)
        {
            return Err(invalid("budget_warning_percent must be between 1 and 100"));
        }
        // The fields that change, and only those (a null budget: removed).
        let mut detail = serde_json::Map::new();
        let mut note = |field: &str, value: Option<serde_json::Value>| {
            if let Some(value) = value {
                detail.insert(field.to_owned(), value);
            }
        };
        note("name", patch.name.as_ref().map(|v| json!(v)));
        note("email", patch.email.as_ref().map(|v| json!(v)));
        note("status", patch.status.map(|v| json!(v.as_str())));
        note("routing", patch.routing.map(|v| json!(v.as_str())));
        note(
            "monthly_budget_usd",
            patch
                .monthly_budget_micro_usd
                .map(|b| json!(b.map(ccp_core::money::format_usd))),
        );
        note(
            "budget_warning_percent",
            patch.budget_warning_percent.map(|v| json!(v)),
        );
        let detail = serde_json::Value::Object(detail);
        let user = self.store.update_user(id, patch).await?;
        self.audit(actor, "user.update", "user", user.id, detail)
            .await?;
        Ok(user)
    }
}
