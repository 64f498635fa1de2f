//! What metering records: one row per request, its token usage, and the enums they are
//! made of. Plain data: no store, no I/O.

use super::pricing::TokenCounts;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Which way a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathTaken {
    /// Plan only.
    Plan,
    /// Plan failed, then Bedrock served or was tried (a failover).
    PlanThenBedrock,
    /// Straight to Bedrock: the key's circuit was open.
    BedrockDirect,
}

impl PathTaken {
    /// Every route, in the order of their discriminants.
    pub const ALL: [Self; 3] = [Self::Plan, Self::PlanThenBedrock, Self::BedrockDirect];

    /// The stored and exported name (`request_logs.route`, metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::PlanThenBedrock => "plan_bedrock",
            Self::BedrockDirect => "bedrock",
        }
    }
}

/// Who answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upstream {
    Plan,
    Bedrock,
    /// The gateway's own answer (an error it decided).
    Gateway,
}

impl Upstream {
    /// Every upstream, in the order of their discriminants.
    pub const ALL: [Self; 3] = [Self::Plan, Self::Bedrock, Self::Gateway];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Bedrock => "bedrock",
            Self::Gateway => "gateway",
        }
    }
}

/// How a request ended, from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    /// The client went away before the answer was complete.
    ClientDisconnect,
    /// The upstream stream broke after bytes went out (the client got an SSE error).
    Partial,
    /// The gateway or an upstream answered with an error.
    Error,
}

impl Outcome {
    /// Every outcome, in the order of their discriminants.
    pub const ALL: [Self; 4] = [
        Self::Complete,
        Self::ClientDisconnect,
        Self::Partial,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::ClientDisconnect => "client_disconnect",
            Self::Partial => "partial",
            Self::Error => "error",
        }
    }
}

/// Who was billed for the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// The person's own Anthropic plan (subscription or API key): not billed by us.
    Plan,
    /// The key's Bedrock account.
    Bedrock,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Bedrock => "bedrock",
        }
    }
}

/// Token usage of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    pub model: String,
    pub provider: Provider,
    pub tokens: TokenCounts,
    /// Estimated USD cost in millionths; 0 for Plan traffic and unpriced models.
    pub cost_micro_usd: i64,
}

/// One finished request. Never holds prompt or response text, a key or a credential.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub request_id: String,
    pub access_key_id: Uuid,
    pub user_id: Uuid,
    pub model: Option<String>,
    pub stream: bool,
    /// Which way the request went.
    pub route: PathTaken,
    /// Who answered.
    pub upstream: Upstream,
    pub status: u16,
    pub error_type: Option<&'static str>,
    pub plan_status: Option<u16>,
    /// Why a request that needed Bedrock could not be sent there (`unmapped_model`,
    /// `untranslatable`, `bad_body`): a missed failover.
    pub failover_skip: Option<&'static str>,
    /// The user's routing policy the request went under (`None`: no key was recognised).
    pub routing: Option<crate::domain::Routing>,
    pub outcome: Outcome,
    pub auth_ms: Option<f64>,
    pub plan_ttfb_ms: Option<f64>,
    pub bedrock_ttfb_ms: Option<f64>,
    pub total_ms: f64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub usage: Option<UsageRecord>,
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A Plan request of `user` with nothing else set.
    pub fn minimal(user: Uuid) -> RequestRecord {
        let now = Utc::now();
        RequestRecord {
            request_id: Uuid::now_v7().simple().to_string(),
            access_key_id: Uuid::now_v7(),
            user_id: user,
            model: None,
            stream: false,
            route: PathTaken::Plan,
            upstream: Upstream::Plan,
            status: 200,
            error_type: None,
            plan_status: None,
            failover_skip: None,
            routing: None,
            outcome: Outcome::Complete,
            auth_ms: None,
            plan_ttfb_ms: None,
            bedrock_ttfb_ms: None,
            total_ms: 1.0,
            request_bytes: 0,
            response_bytes: 0,
            started_at: now,
            finished_at: now,
            usage: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_list_is_in_discriminant_order() {
        // Metrics count in slots indexed by `as usize` and read them back through `ALL`.
        for (i, route) in PathTaken::ALL.into_iter().enumerate() {
            assert_eq!(route as usize, i);
        }
        for (i, upstream) in Upstream::ALL.into_iter().enumerate() {
            assert_eq!(upstream as usize, i);
        }
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome as usize, i);
        }
    }
}
