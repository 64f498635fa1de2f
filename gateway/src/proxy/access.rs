//! The access log line: one `ccp::access` event for each finished request, written by
//! `logging()` after the last byte went out. Its fields are the request's story in one line
//! (who, which route, which upstream answered, how long each leg took); the metering row in
//! [`super::record`] carries the same facts to the database.

use super::ctx::RequestCtx;
use crate::error::GatewayError;
use pingora::http::Method;
use pingora::prelude::*;
use std::time::Duration;

/// What `logging()` knows beyond the request's context.
#[derive(Debug, Clone, Copy)]
pub struct Finish<'a> {
    pub method: &'a Method,
    /// The status written to the client, 0 when none was.
    pub status: u16,
    pub error: Option<&'a Error>,
    pub response_bytes: u64,
}

/// Milliseconds, or -1 for a leg that did not happen.
fn ms(d: Option<Duration>) -> f64 {
    d.map_or(-1.0, |d| d.as_secs_f64() * 1e3)
}

/// Emits the line (when `ccp::access` is enabled at `info`).
pub fn log(ctx: &RequestCtx, finish: Finish<'_>) {
    // The ids are written from stack buffers: no allocation per request.
    let mut key_buf = uuid::Uuid::encode_buffer();
    let mut user_buf = uuid::Uuid::encode_buffer();
    let (key_id, user_id): (&str, &str) = match &ctx.grant {
        Some(g) => (
            g.key_id.hyphenated().encode_lower(&mut key_buf),
            g.user_id.hyphenated().encode_lower(&mut user_buf),
        ),
        None => ("-", "-"),
    };
    tracing::info!(
        target: "ccp::access",
        request_id = ctx.request_id.as_str(),
        key_id,
        user_id,
        method = finish.method.as_str(),
        route = ctx.template,
        path = ctx.path_taken.as_str(),
        upstream = ctx.upstream().as_str(),
        status = finish.status,
        plan_status = ctx.plan_status.unwrap_or(0),
        local_error = ctx.local_error.as_ref().map_or("-", GatewayError::label),
        failover_skip = ctx.failover_skip.unwrap_or("-"),
        error = finish.error.map_or("-", |e| e.etype().as_str()),
        auth_ms = ctx.auth_time.map_or(0.0, |d| d.as_secs_f64() * 1e3),
        plan_ttfb_ms = ms(ctx.plan_first_byte),
        bedrock_ttfb_ms = ms(ctx.bedrock.as_ref().and_then(|b| b.stats.first_byte)),
        broken_stream = ctx.bedrock.as_ref().is_some_and(|b| b.stats.broken_stream),
        total_ms = ctx.started.elapsed().as_secs_f64() * 1e3,
        request_bytes = ctx.request_bytes,
        response_bytes = finish.response_bytes,
        "request"
    );
}
