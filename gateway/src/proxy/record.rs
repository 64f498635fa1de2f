//! Turns a finished request's context into its metering row. Runs in `logging()`, once per
//! request, after the last byte went out; the row is queued, never written here.

use super::ctx::RequestCtx;
use ccp_core::metering::pricing::{PriceTable, TokenCounts};
use ccp_core::metering::{Outcome, Provider, RequestRecord, UsageRecord};
use pingora::prelude::*;
use std::time::Duration;

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1e3)
}

/// How a request ended: the client leaving wins over a cut stream, which wins over an error
/// status (or none written, or the gateway's own error).
fn classify(client_gone: bool, broken_stream: bool, status: u16, local_error: bool) -> Outcome {
    if client_gone {
        Outcome::ClientDisconnect
    } else if broken_stream {
        Outcome::Partial
    } else if status >= 400 || status == 0 || local_error {
        Outcome::Error
    } else {
        Outcome::Complete
    }
}

/// The row for an authenticated request; `None` for health checks and unauthenticated ones.
pub fn request_record(
    ctx: &mut RequestCtx,
    status: u16,
    response_bytes: u64,
    error: Option<&Error>,
    prices: &PriceTable,
    finished_at: chrono::DateTime<chrono::Utc>,
) -> Option<RequestRecord> {
    let grant = ctx.grant.as_ref()?;
    let reported = match (ctx.reported.take(), ctx.usage_tap.take()) {
        (Some(r), _) => Some(r),
        (None, Some(tap)) => tap.finish(),
        (None, None) => None,
    };
    let bedrock = ctx.bedrock.as_ref();
    let broken = bedrock.is_some_and(|b| b.stats.broken_stream) || ctx.plan_stream_cut;
    let client_gone = error.is_some_and(|e| e.esource() == &ErrorSource::Downstream);
    let outcome = classify(client_gone, broken, status, ctx.local_error.is_some());
    let usage = match (bedrock, &reported) {
        (Some(leg), _) => leg.stats.usage.map(|u| {
            let tokens = TokenCounts {
                input: u.input_tokens,
                output: u.output_tokens,
                cache_read: u.cache_read_input_tokens,
                cache_write_5m: u.cache_creation_input_tokens,
                cache_write_1h: 0,
            };
            UsageRecord {
                cost_micro_usd: prices
                    .cost_micro_usd(&leg.stats.model_id, finished_at.date_naive(), &tokens)
                    .unwrap_or(0),
                model: leg.stats.model_id.clone(),
                provider: Provider::Bedrock,
                tokens,
            }
        }),
        (None, Some(r)) if r.tokens != TokenCounts::default() => Some(UsageRecord {
            model: r.model.clone().unwrap_or_else(|| "unknown".to_owned()),
            provider: Provider::Plan,
            tokens: r.tokens,
            // Plan traffic is paid by the person's own plan, not billed through the gateway.
            cost_micro_usd: 0,
        }),
        _ => None,
    };
    let model = match (bedrock, &reported) {
        (Some(leg), _) => Some(leg.stats.model_name.clone()),
        (None, Some(r)) => r.model.clone(),
        _ => ctx.requested_model.clone(),
    };
    Some(RequestRecord {
        request_id: ctx.request_id.clone(),
        access_key_id: grant.key_id,
        user_id: grant.user_id,
        model,
        stream: bedrock.map_or(ctx.plan_sse.is_some(), |b| b.stats.stream),
        route: ctx.path_taken,
        upstream: ctx.upstream(),
        status,
        error_type: ctx
            .local_error
            .as_ref()
            .map(|e| e.api_error().kind.type_name()),
        plan_status: ctx.plan_status,
        failover_skip: ctx.failover_skip,
        routing: ctx.grant.as_ref().map(|g| g.routing),
        outcome,
        auth_ms: ms(ctx.auth_time),
        plan_ttfb_ms: ms(ctx.plan_first_byte),
        bedrock_ttfb_ms: ms(bedrock.and_then(|b| b.stats.first_byte)),
        total_ms: ctx.started.elapsed().as_secs_f64() * 1e3,
        request_bytes: ctx.request_bytes,
        response_bytes,
        started_at: ctx.started_at,
        finished_at,
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        use Outcome::*;
        let cases = [
            ((false, false, 200, false), Complete),
            ((false, false, 429, false), Error),
            ((false, false, 0, false), Error),
            ((false, false, 200, true), Error),
            ((false, true, 200, false), Partial),
            ((true, true, 200, false), ClientDisconnect),
            ((true, false, 0, true), ClientDisconnect),
        ];
        for ((gone, broken, status, local), want) in cases {
            assert_eq!(
                classify(gone, broken, status, local),
                want,
                "{gone} {broken} {status} {local}"
            );
        }
    }
}
