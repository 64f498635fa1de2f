//! Realistic metering rows for the store benchmarks: a Claude Code turn's timings and
//! usage, 80 % Plan, 10 % failover, 10 % Bedrock direct.

use ccp_core::metering::pricing::TokenCounts;
use ccp_core::metering::{Outcome, PathTaken, Provider, RequestRecord, Upstream, UsageRecord};

pub fn record(
    n: usize,
    users: &[uuid::Uuid],
    keys: &[uuid::Uuid],
    at: chrono::DateTime<chrono::Utc>,
) -> RequestRecord {
    let key = n % keys.len();
    let route = match n % 10 {
        0 => PathTaken::PlanThenBedrock,
        1 => PathTaken::BedrockDirect,
        _ => PathTaken::Plan,
    };
    let bedrock = route != PathTaken::Plan;
    RequestRecord {
        request_id: format!("bench-{n:010}"),
        access_key_id: keys[key],
        user_id: users[key % users.len()],
        model: Some(["claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5"][n % 3].to_owned()),
        stream: true,
        route,
        upstream: if bedrock {
            Upstream::Bedrock
        } else {
            Upstream::Plan
        },
        status: 200,
        error_type: None,
        plan_status: (route == PathTaken::PlanThenBedrock).then_some(429),
        failover_skip: None,
        routing: None,
        outcome: Outcome::Complete,
        auth_ms: Some(0.1),
        plan_ttfb_ms: Some(300.0),
        bedrock_ttfb_ms: None,
        total_ms: 4_000.0,
        request_bytes: 90_000,
        response_bytes: 6_000,
        started_at: at,
        finished_at: at,
        usage: Some(UsageRecord {
            model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0".into(),
            provider: if bedrock {
                Provider::Bedrock
            } else {
                Provider::Plan
            },
            tokens: TokenCounts {
                input: 1_200,
                output: 800,
                cache_read: 40_000,
                cache_write_5m: 2_000,
                cache_write_1h: 0,
            },
            cost_micro_usd: if bedrock { 40_000 } else { 0 },
        }),
    }
}
