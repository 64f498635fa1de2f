//! Domain records: what the store returns and the admin plane shows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub(crate) fn from_db(s: &str) -> Self {
        // The CHECK constraint admits only these two; anything else is treated as disabled.
        if s == "active" {
            Self::Active
        } else {
            Self::Disabled
        }
    }
}

/// Where a user's requests may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// Plan, failing over to Bedrock when the key has a Bedrock key (the default).
    #[default]
    PlanFirst,
    /// Every Messages request to Bedrock with the key's Bedrock key: for people without an
    /// Anthropic plan.
    BedrockOnly,
    /// Never Bedrock, even with a Bedrock key.
    PlanOnly,
}

impl Routing {
    pub const ALL: [Self; 3] = [Self::PlanFirst, Self::BedrockOnly, Self::PlanOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlanFirst => "plan_first",
            Self::BedrockOnly => "bedrock_only",
            Self::PlanOnly => "plan_only",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// An unknown stored value routes as the default.
    pub(crate) fn from_db(s: &str) -> Self {
        Self::parse(s).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub status: UserStatus,
    pub routing: Routing,
    /// Estimated Bedrock cost a calendar month (UTC) may reach, in micro-USD; `None`: no budget.
    pub monthly_budget_micro_usd: Option<i64>,
    /// At this share of the budget the user is reported as near it.
    pub budget_warning_percent: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }

    pub(crate) fn from_db(s: &str) -> Self {
        if s == "active" {
            Self::Active
        } else {
            Self::Revoked
        }
    }
}

/// An access key as admins see it: never the key, only its mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessKeyRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: Option<String>,
    pub display_prefix: String,
    pub status: KeyStatus,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set once the key was rotated: the key that replaces it. It works until `expires_at`.
    pub replaced_by: Option<Uuid>,
}

/// What authentication needs about a key, joined with its user's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    pub key_id: Uuid,
    pub user_id: Uuid,
    pub key_status: KeyStatus,
    pub user_status: UserStatus,
    pub expires_at: Option<DateTime<Utc>>,
    /// The region of the key's Bedrock API key, when it has one: only such keys fail over.
    pub bedrock_region: Option<String>,
    /// The user's routing policy.
    pub routing: Routing,
    /// The user's monthly Bedrock budget in micro-USD, if any.
    pub monthly_budget_micro_usd: Option<i64>,
}

impl KeyGrant {
    /// Whether the key may be used at `now`.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.key_status == KeyStatus::Active
            && self.user_status == UserStatus::Active
            && self.expires_at.is_none_or(|at| now < at)
    }
}

/// An admin of the admin API (the password hash is never part of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admin {
    pub id: Uuid,
    pub username: String,
    /// Session tokens carry the version they were issued under; a bump revokes them all.
    pub token_version: i64,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// One audit entry. `detail` is JSON and must never carry a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn grant_usability() {
        let now = Utc::now();
        let grant = KeyGrant {
            key_id: Uuid::nil(),
            user_id: Uuid::nil(),
            key_status: KeyStatus::Active,
            user_status: UserStatus::Active,
            expires_at: None,
            bedrock_region: None,
            routing: Routing::PlanFirst,
            monthly_budget_micro_usd: None,
        };
        assert!(grant.is_usable(now));
        assert!(
            !KeyGrant {
                key_status: KeyStatus::Revoked,
                ..grant.clone()
            }
            .is_usable(now)
        );
        assert!(
            !KeyGrant {
                user_status: UserStatus::Disabled,
                ..grant.clone()
            }
            .is_usable(now)
        );
        assert!(
            !KeyGrant {
                expires_at: Some(now),
                ..grant.clone()
            }
            .is_usable(now)
        );
        assert!(
            KeyGrant {
                expires_at: Some(now + Duration::seconds(1)),
                ..grant
            }
            .is_usable(now)
        );
    }
}
