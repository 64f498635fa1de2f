//! Per-request state: what a request's hooks learn and hand to each other.

use super::body::Coalescer;
use super::failover::{BedrockLeg, Failover, PlanFailure};
use super::state::{InFlight, Lifecycle};
use crate::error::GatewayError;
use crate::sse::SseWatch;
use ccp_core::domain::KeyGrant;
use ccp_core::metering::tap::{ReportedUsage, UsageTap};
use ccp_core::metering::{PathTaken, Upstream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-request state.
#[derive(Debug)]
pub struct RequestCtx {
    pub request_id: String,
    pub started: Instant,
    pub template: &'static str,
    pub grant: Option<Arc<KeyGrant>>,
    /// Path and query for the upstream, `/ak/{key}` stripped.
    pub upstream_target: bytes::Bytes,
    pub request_bytes: u64,
    /// Request body chunks held back so the upstream gets them in fewer writes.
    pub coalescer: Coalescer,
    /// Set when the gateway itself answered.
    pub local_error: Option<GatewayError>,
    pub auth_time: Option<Duration>,
    /// Present when Bedrock may serve this request.
    pub failover: Option<Failover>,
    pub path_taken: PathTaken,
    /// The Plan response status, once its header arrived.
    pub plan_status: Option<u16>,
    pub plan_first_byte: Option<Duration>,
    /// The Plan answer that triggered failover.
    pub plan_failure: Option<PlanFailure>,
    /// Why Bedrock could not be tried for a request that needed it (a missed failover).
    pub failover_skip: Option<&'static str>,
    /// Set when the user's policy or budget keeps this request off Bedrock (`plan_only`,
    /// `over_budget`, `budget_unknown`): a Plan failure is then relayed, and logged with it.
    pub bedrock_withheld: Option<&'static str>,
    /// The model the client asked for, when no answer names it (an unmapped model).
    pub requested_model: Option<String>,
    /// Set on Plan SSE responses.
    pub plan_sse: Option<SseWatch>,
    pub bedrock: Option<BedrockLeg>,
    /// Reads token usage from a Plan answer as it passes.
    pub usage_tap: Option<UsageTap>,
    pub reported: Option<ReportedUsage>,
    /// A Plan stream ended without `message_stop` and got an SSE error appended.
    pub plan_stream_cut: bool,
    pub started_at: chrono::DateTime<chrono::Utc>,
    _in_flight: InFlight,
}

impl RequestCtx {
    /// A new request's context, counted in flight until it drops.
    pub fn new(lifecycle: &Arc<Lifecycle>, started_at: chrono::DateTime<chrono::Utc>) -> Self {
        RequestCtx {
            request_id: uuid::Uuid::now_v7().simple().to_string(),
            started: Instant::now(),
            template: "(unrouted)",
            grant: None,
            upstream_target: bytes::Bytes::new(),
            request_bytes: 0,
            coalescer: Coalescer::default(),
            local_error: None,
            auth_time: None,
            failover: None,
            path_taken: PathTaken::Plan,
            plan_status: None,
            plan_first_byte: None,
            plan_failure: None,
            failover_skip: None,
            bedrock_withheld: None,
            requested_model: None,
            plan_sse: None,
            bedrock: None,
            usage_tap: None,
            reported: None,
            plan_stream_cut: false,
            started_at,
            _in_flight: lifecycle.enter(),
        }
    }

    /// Who answered: Bedrock, Plan, or the gateway (its own error).
    pub fn upstream(&self) -> Upstream {
        match (&self.bedrock, self.plan_status) {
            (Some(_), _) => Upstream::Bedrock,
            (None, Some(_)) if self.local_error.is_none() => Upstream::Plan,
            _ => Upstream::Gateway,
        }
    }
}
