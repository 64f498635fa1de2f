//! The Pingora `ProxyHttp` implementation. Each hook is short and hands off: the decision in
//! [`decide`], the failover flow in [`failover`], body handling in [`body`], the metering row
//! in [`record`]. Per-request state lives in [`ctx::RequestCtx`], shared state in
//! [`state::GatewayState`].
//!
//! (Over 400 lines: this is the whole `impl ProxyHttp`, every hook in one place in the order
//! Pingora calls them; each hook delegates to the modules above.)

pub mod access;
mod body;
pub mod circuits;
mod ctx;
mod decide;
mod failover;
pub mod record;
mod state;

pub use ctx::RequestCtx;
pub use state::{GatewayState, InFlight, Lifecycle};

use crate::error::GatewayError;
use crate::respond;
use crate::sse::{self, SseWatch};
use async_trait::async_trait;
use bytes::Bytes;
use ccp_core::metering::PathTaken;
use ccp_core::metering::tap::UsageTap;
use ccp_core::routing::circuit::{self, PlanOutcome};
use decide::Decision;
use failover::{PlanFailure, is_plan_failure};
use http::header;
use pingora::http::ResponseHeader;
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::time::Duration;

/// The gateway service.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub state: Arc<GatewayState>,
}

impl Gateway {
    pub fn new(state: Arc<GatewayState>) -> Self {
        Self { state }
    }
}

/// Writes the gateway's own error answer and remembers it for the log and metrics.
pub(crate) async fn answer_with(
    session: &mut Session,
    ctx: &mut RequestCtx,
    error: GatewayError,
) -> Result<()> {
    let written = respond::api_error(
        session,
        &error.api_error(),
        &ctx.request_id,
        error.retry_advice(),
    )
    .await;
    ctx.local_error = Some(error);
    written
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    /// None: the gateway relays bodies as the upstream sent them and never compresses. (Pingora's
    /// default adds a response-compression module, disabled, that still runs on every request.)
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(&self.state.lifecycle, self.state.clock.now())
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        session.set_read_timeout(Some(self.state.client_read_timeout));
        session.set_write_timeout(Some(Duration::from_secs(60)));
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let refused = session.as_downstream().as_http1().and_then(|h1| {
            crate::edge::check_head(&h1.get_headers_raw_bytes(), session.req_header())
        });
        if let Some(error) = refused {
            // Nothing of this request is read or forwarded; the connection ends with it.
            session.set_keepalive(None);
            answer_with(session, ctx, error).await?;
            return Ok(true);
        }
        let decision = self.decide(session, ctx).await;
        match decision {
            Decision::Proxy => Ok(false),
            Decision::BedrockDirect => self.serve_direct(session, ctx).await,
            Decision::Answer(err) => {
                answer_with(session, ctx, err).await?;
                Ok(true)
            }
            Decision::Health => {
                respond::json(
                    session,
                    200,
                    br#"{"status":"ok"}"#.to_vec(),
                    &ctx.request_id,
                    None,
                )
                .await?;
                Ok(true)
            }
            Decision::Ready(ready) => {
                let (status, body) = if ready {
                    (200, br#"{"status":"ready"}"#.to_vec())
                } else {
                    (503, br#"{"status":"not_ready"}"#.to_vec())
                };
                respond::json(session, status, body, &ctx.request_id, None).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        if let Some(peer) = self.state.plan.peer() {
            return Ok(Box::new(peer));
        }
        // Nothing resolved yet (DNS was down at start, say): one attempt now, bounded.
        let plan = &self.state.plan;
        if let Err(err) = plan.refresh_within(Duration::from_secs(2)).await {
            tracing::warn!(request_id = %ctx.request_id, error = %err, "Plan upstream has no address");
        }
        plan.peer()
            .map(Box::new)
            .ok_or_else(crate::error::no_plan_address)
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        crate::headers::prepare_plan_request(
            upstream_request,
            ctx.upstream_target.clone(),
            self.state.plan.host_header(),
            self.state.plan_api_key.as_ref(),
        )
    }

    /// Keeps the failover copy, counts the body against the cap and coalesces its chunks
    /// (see [`body`]).
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(failover) = ctx.failover.as_mut() {
            if let Some(chunk) = body.as_ref() {
                failover.tee.push(chunk);
            }
            failover.tee.complete |= end_of_stream;
        }
        if let Some(chunk) = body {
            ctx.request_bytes += chunk.len() as u64;
            if ctx.request_bytes > self.state.max_body_bytes {
                ctx.local_error = Some(GatewayError::TooLarge);
                return Err(Error::explain(
                    ErrorType::HTTPStatus(413),
                    "request body over the limit",
                ));
            }
        }
        ctx.coalescer.coalesce(body, end_of_stream);
        Ok(())
    }

    /// The Plan status decides: 429 and 5xx (529 included) fail over when the request may use
    /// Bedrock; returning an error here means nothing has been written to the client yet.
    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = upstream_response.status.as_u16();
        ctx.plan_status = Some(status);
        ctx.plan_first_byte = Some(ctx.started.elapsed());
        let Some(failover) = &ctx.failover else {
            if let Some(reason) = ctx.bedrock_withheld
                && (status == 429 || status >= 500)
            {
                self.skip_failover(ctx, reason, None);
            }
            return Ok(());
        };
        let probing = failover.route == circuit::Route::Probe;
        if status == 429 || status >= 500 {
            self.record_plan(ctx, PlanOutcome::Failure);
            if let Some(refusal) = self.budget_refusal(ctx).await {
                // No failover: Plan's answer goes to the client as Plan sent it.
                self.skip_failover(ctx, refusal, None);
                ctx.failover = None;
                return Ok(());
            }
            ctx.plan_failure = Some(PlanFailure::from_response(upstream_response));
            return Err(Error::explain(
                ErrorType::HTTPStatus(status),
                "Plan failed; failing over to Bedrock",
            ));
        }
        // 4xx is the client's business: it neither counts as a failure nor resets the count,
        // except that any answer to a probe shows Plan is back.
        if status < 400 || probing {
            self.record_plan(ctx, PlanOutcome::Success);
        }
        // Plan's final answer goes to the client: no failover from here on, so the body copy
        // kept for one can go (an informational 1xx is not the final answer).
        if status >= 200
            && let Some(failover) = ctx.failover.as_mut()
        {
            failover.tee.release();
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream_response.insert_header(respond::REQUEST_ID_HEADER, ctx.request_id.as_str())?;
        let headers = &upstream_response.headers;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let content_encoding = headers.get(header::CONTENT_ENCODING);
        let is_sse = content_type.is_some_and(|v| v.starts_with("text/event-stream"));
        // Only an open-ended body can take an appended event: not one with a Content-Length,
        // not a compressed one.
        let open_ended =
            !headers.contains_key(header::CONTENT_LENGTH) && content_encoding.is_none();
        if is_sse && open_ended && upstream_response.status.is_success() {
            ctx.plan_sse = Some(SseWatch::default());
        }
        if upstream_response.status.is_success() && ctx.grant.is_some() {
            ctx.usage_tap = UsageTap::new(
                content_type.unwrap_or_default(),
                content_encoding.and_then(|v| v.to_str().ok()),
            );
        }
        if self.state.lifecycle.is_draining() {
            session.set_keepalive(None);
        }
        Ok(())
    }

    /// Plan SSE: a stream that ends without `message_stop` (or an error event) gets an
    /// `overloaded_error` event appended, so the client never mistakes it for a complete answer.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if let Some(chunk) = body.as_ref() {
            sse::read_chunk(ctx.usage_tap.as_mut(), ctx.plan_sse.as_mut(), chunk);
        }
        if end_of_stream && let Some(tap) = ctx.usage_tap.take() {
            ctx.reported = tap.finish();
        }
        if end_of_stream
            && let Some(watch) = ctx.plan_sse.as_mut()
            && !watch.complete
        {
            watch.complete = true;
            ctx.plan_stream_cut = true;
            let mut joined = body.take().map(Vec::from).unwrap_or_default();
            joined.extend_from_slice(&SseWatch::cut_event());
            *body = Some(Bytes::from(joined));
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if session.response_written().is_some() {
            // Too late to fail over: end a cut Plan stream with an SSE error event. Pingora
            // 0.9 never reuses a client connection after a proxy failure, but the response
            // header already said keep-alive: so the body is left unterminated (no final
            // chunk) and the client sees the connection end instead of pooling a dead one.
            if let Some(watch) = ctx.plan_sse.as_mut().filter(|w| !w.complete) {
                watch.complete = true;
                ctx.plan_stream_cut = true;
                if let Err(write_err) = session
                    .write_response_body(Some(SseWatch::cut_event()), false)
                    .await
                {
                    tracing::debug!(request_id = %ctx.request_id, error = %write_err, "could not end the cut stream");
                }
            }
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        // Whatever is written now ends this connection (`Connection: close`): Pingora does
        // not reuse a downstream connection after a proxy failure (tried: the next request
        // on it was reset).
        session.set_keepalive(None);
        if let Some(reason) = ctx.bedrock_withheld
            && ctx.failover_skip.is_none()
            && is_plan_failure(e, ctx)
        {
            self.skip_failover(ctx, reason, None);
        }
        if ctx.failover.is_some() && is_plan_failure(e, ctx) {
            if ctx.plan_failure.is_none() {
                self.record_plan(ctx, PlanOutcome::Failure);
            }
            if let Some(status) = self.fail_over(session, ctx).await {
                return FailToProxy {
                    error_code: status,
                    can_reuse_downstream: false,
                };
            }
        }
        if let Some(status) = self.relay_plan_failure(session, ctx).await {
            return FailToProxy {
                error_code: status,
                can_reuse_downstream: false,
            };
        }
        let answer = match ctx.local_error.take() {
            Some(GatewayError::TooLarge) => Some(GatewayError::TooLarge),
            _ => GatewayError::from_proxy_failure(e),
        };
        let error_code = match answer {
            Some(err) => {
                let status = err.api_error().status;
                if let GatewayError::Plan(fault) = &err {
                    tracing::warn!(request_id = %ctx.request_id, cause = fault.describe(),
                        error = %e.etype().as_str(), "Plan upstream unusable");
                }
                if let Err(write_err) = answer_with(session, ctx, err).await {
                    tracing::debug!(request_id = %ctx.request_id, error = %write_err, "could not send the error response");
                }
                status
            }
            None => 0,
        };
        FailToProxy {
            error_code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        if let (Some(failover), Some(grant)) = (&ctx.failover, &ctx.grant)
            && failover.route == circuit::Route::Probe
            && !failover.outcome_recorded
        {
            self.state.breaker.abandon_probe(&grant.key_id);
        }
        let response_bytes = session.as_downstream().body_bytes_sent() as u64;
        if let Some(error) = &ctx.local_error {
            self.state.metrics.gateway_error(error.label());
        }
        if let Some(record) = record::request_record(
            ctx,
            status,
            response_bytes,
            e,
            &self.state.prices.get(),
            self.state.clock.now(),
        ) {
            self.state.metrics.observe(&record);
            if self.state.metering {
                self.state.meter.record(record);
            }
        }
        access::log(
            ctx,
            access::Finish {
                method: &session.req_header().method,
                status,
                error: e,
                response_bytes,
            },
        );
    }

    /// A Plan failure that Bedrock then served is routine, not an error: the access log line
    /// records it (`path=plan_bedrock`, `plan_status`). Every other proxy failure keeps
    /// Pingora's error line, which carries the request id through `request_summary`.
    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, _error: &Error) -> bool {
        ctx.path_taken == PathTaken::PlanThenBedrock && ctx.bedrock.is_some()
    }

    /// Pingora's default summary holds the URI, and with it the access key.
    fn request_summary(&self, session: &Session, ctx: &RequestCtx) -> String {
        format!(
            "{} {} request_id={}",
            session.req_header().method,
            ctx.template,
            ctx.request_id
        )
    }
}
