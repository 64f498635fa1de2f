//! The failover flow: Bedrock direct when the circuit is open, failing over after a Plan
//! failure (reading whatever the client has not sent yet), and relaying Plan's own answer
//! when Bedrock cannot serve either. Also the breaker bookkeeping for each Plan attempt.
//!
//! (Just over 400 lines: the three ways into the Bedrock leg and the relay of Plan's failure
//! share the body tee and the outcome bookkeeping, and read best as one flow.)

use super::Gateway;
use super::answer_with;
use super::body::BodyTee;
use super::ctx::RequestCtx;
use crate::bedrock::{Cause, ClientRequest, Operation, Outcome, ServedStats, Unusable};
use crate::error::GatewayError;
use bytes::Bytes;
use ccp_core::api_error::{ApiError, ApiErrorKind};
use ccp_core::metering::PathTaken;
use ccp_core::routing::circuit::{PlanOutcome, Route, Transition};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

/// Set on a request that may be served by Bedrock: a Messages call by a key that has a
/// Bedrock key.
#[derive(Debug)]
pub struct Failover {
    pub operation: Operation,
    /// What the circuit breaker chose.
    pub route: Route,
    /// The request body as it went to Plan.
    pub tee: BodyTee,
    /// The breaker has been told how the Plan attempt ended.
    pub outcome_recorded: bool,
}

impl Failover {
    pub fn new(operation: Operation, route: Route) -> Self {
        Self {
            operation,
            route,
            tee: BodyTee::default(),
            outcome_recorded: false,
        }
    }
}

/// Plan response headers worth keeping when the Plan answer has to be reproduced: the ones
/// Claude Code's retry logic and error messages read.
fn is_kept_plan_header(name: &str) -> bool {
    matches!(
        name,
        "retry-after" | "x-should-retry" | "request-id" | "content-type"
    ) || name.starts_with("anthropic-ratelimit-")
}

/// A Plan answer that triggered failover, kept to be sent if Bedrock fails too.
#[derive(Debug, Clone)]
pub struct PlanFailure {
    pub status: u16,
    headers: Vec<(String, Vec<u8>)>,
}

impl PlanFailure {
    pub fn from_response(resp: &ResponseHeader) -> Self {
        Self {
            status: resp.status.as_u16(),
            headers: resp
                .headers
                .iter()
                .filter(|(name, _)| is_kept_plan_header(name.as_str()))
                .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
                .collect(),
        }
    }

    /// The Plan status with its headers and an Anthropic error body of the matching type.
    /// (The Plan body itself was not read: the connection was dropped when the status came.)
    pub fn response(&self, request_id: &str) -> pingora::Result<(Box<ResponseHeader>, Vec<u8>)> {
        let kind = match self.status {
            429 => ApiErrorKind::RateLimit,
            529 | 503 => ApiErrorKind::Overloaded,
            _ => ApiErrorKind::Api,
        };
        let message = format!(
            "The Anthropic API answered {}; the Bedrock fallback could not serve the request either.",
            self.status
        );
        let body = ApiError::owned(self.status, kind, message).body();
        let mut resp = ResponseHeader::build(self.status, Some(self.headers.len() + 3))?;
        for (name, value) in &self.headers {
            if name != "content-type" {
                resp.append_header(name.clone(), value.as_slice())?;
            }
        }
        resp.insert_header("content-type", "application/json")?;
        resp.insert_header("content-length", body.len().to_string())?;
        resp.insert_header(crate::respond::REQUEST_ID_HEADER, request_id)?;
        Ok((Box::new(resp), body))
    }
}

/// Bedrock's part of a request, for the log.
#[derive(Debug, Default)]
pub struct BedrockLeg {
    pub stats: ServedStats,
    pub status: u16,
}

/// A `bedrock_only` user's Bedrock key exists but cannot be opened (KMS unavailable, say).
const KEY_UNUSABLE: ApiError = ApiError::new(
    503,
    ApiErrorKind::Overloaded,
    "This access key's Bedrock API key cannot be used right now. Retry shortly.",
);

impl Gateway {
    /// Sends the Plan answer that triggered a failover Bedrock could not serve: its status
    /// and retry headers. `None` when there is none to send.
    pub(super) async fn relay_plan_failure(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
    ) -> Option<u16> {
        let failure = ctx.plan_failure.as_ref()?;
        let written = match failure.response(&ctx.request_id) {
            Ok((header, body)) => match session.write_response_header(header, false).await {
                Ok(()) => {
                    session
                        .write_response_body(Some(Bytes::from(body)), true)
                        .await
                }
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        if let Err(write_err) = written {
            tracing::debug!(request_id = %ctx.request_id, error = %write_err, "could not relay the Plan answer");
        }
        Some(failure.status)
    }

    /// Tells the breaker how the Plan attempt ended, once per request.
    pub(super) fn record_plan(&self, ctx: &mut RequestCtx, outcome: PlanOutcome) {
        let (Some(failover), Some(grant)) = (ctx.failover.as_mut(), ctx.grant.as_ref()) else {
            return;
        };
        if failover.outcome_recorded {
            return;
        }
        failover.outcome_recorded = true;
        let had_failures = self.state.breaker.is_tracked(&grant.key_id);
        let transition = self
            .state
            .breaker
            .record(&grant.key_id, failover.route, outcome);
        super::circuits::share_plan_outcome(
            &self.state,
            grant.key_id,
            failover.route,
            outcome,
            had_failures,
        );
        if let Some(transition) = transition {
            let key_id = grant.key_id;
            self.state.metrics.circuit_transition(transition);
            match transition {
                Transition::Opened => {
                    tracing::warn!(%key_id, "circuit opened: Plan keeps failing; Bedrock direct")
                }
                Transition::Reopened => {
                    tracing::warn!(%key_id, "circuit probe failed; Bedrock direct again")
                }
                Transition::Closed => {
                    tracing::info!(%key_id, "circuit closed: Plan answered the probe")
                }
            }
        }
    }

    /// Records a failover that could not be attempted, for the log row and the metric.
    pub(super) fn skip_failover(
        &self,
        ctx: &mut RequestCtx,
        reason: &'static str,
        model: Option<&str>,
    ) {
        ctx.failover_skip = Some(reason);
        self.state.metrics.failover_skipped(reason, model);
    }

    fn note_unusable(&self, ctx: &mut RequestCtx, why: &Unusable) {
        self.skip_failover(ctx, why.reason(), why.model());
        if let Some(model) = why.model() {
            ctx.requested_model = Some(model.to_owned());
        }
    }

    /// Bedrock direct (circuit open, or a `bedrock_only` user): read the body here, call
    /// Bedrock, answer. Without a usable Bedrock credential the request goes to Plan after all
    /// (`Ok(false)`), except for a `bedrock_only` user, who gets a 503.
    pub(super) async fn serve_direct(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        let key_id = ctx.grant.as_ref().map(|g| g.key_id).unwrap_or_default();
        let credential = match self.state.bedrock.credentials.get(key_id).await {
            Ok(credential) => credential,
            Err(why) => {
                self.skip_failover(ctx, "bedrock_key_unavailable", None);
                ctx.failover = None;
                let bedrock_only = ctx
                    .grant
                    .as_ref()
                    .is_some_and(|g| g.routing == ccp_core::domain::Routing::BedrockOnly);
                if bedrock_only {
                    // No Plan to fall back to: say so.
                    tracing::warn!(request_id = %ctx.request_id, %key_id, reason = ?why,
                        "bedrock_only user, but the Bedrock key cannot be used");
                    answer_with(session, ctx, GatewayError::Bedrock(KEY_UNUSABLE)).await?;
                    return Ok(true);
                }
                tracing::warn!(request_id = %ctx.request_id, %key_id, reason = ?why,
                    "circuit open but no usable Bedrock key; trying Plan");
                return Ok(false);
            }
        };
        let Some(mut failover) = ctx.failover.take() else {
            return Ok(false);
        };
        ctx.path_taken = PathTaken::BedrockDirect;
        let answer = match self.read_rest_of_body(session, &mut failover, ctx).await {
            Ok(()) => {
                let body = failover.tee.joined();
                let outcome = self
                    .call_bedrock(session, &body, failover.operation, &credential, ctx)
                    .await;
                match outcome {
                    Outcome::NotServed {
                        error,
                        cause: Cause::Unusable(why),
                    } => {
                        tracing::warn!(request_id = %ctx.request_id, reason = why.reason(),
                            "Bedrock direct not possible: {why}");
                        self.note_unusable(ctx, &why);
                        Some(GatewayError::Bedrock(error))
                    }
                    Outcome::NotServed { error, .. } => Some(GatewayError::Bedrock(error)),
                    Outcome::Served { .. } | Outcome::ClientGone => None,
                }
            }
            Err(error) => Some(error),
        };
        ctx.failover = Some(failover);
        if let Some(error) = answer {
            answer_with(session, ctx, error).await?;
        }
        Ok(true)
    }

    /// Reads whatever part of the request body Pingora has not read yet into the tee.
    async fn read_rest_of_body(
        &self,
        session: &mut Session,
        failover: &mut Failover,
        ctx: &mut RequestCtx,
    ) -> std::result::Result<(), GatewayError> {
        if !failover.tee.complete {
            loop {
                match session.read_request_body().await {
                    Ok(Some(chunk)) => {
                        ctx.request_bytes += chunk.len() as u64;
                        if ctx.request_bytes > self.state.max_body_bytes {
                            return Err(GatewayError::TooLarge);
                        }
                        failover.tee.push(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) if e.etype() == &ErrorType::ReadTimedout => {
                        return Err(GatewayError::ClientTimeout);
                    }
                    Err(_) => return Err(GatewayError::BodyUnreadable),
                }
            }
            failover.tee.complete = true;
        }
        // A chunk Pingora read but never handed to the body filter would be missing.
        let declared = session
            .req_header()
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(n) if n != failover.tee.len() => Err(GatewayError::BodyUnreadable),
            _ => Ok(()),
        }
    }

    async fn call_bedrock(
        &self,
        session: &mut Session,
        body: &[u8],
        operation: Operation,
        credential: &ccp_core::routing::credentials::BedrockCredential,
        ctx: &mut RequestCtx,
    ) -> Outcome {
        let headers = &session.req_header().headers;
        let encoding = headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let betas: Vec<String> = headers
            .get_all("anthropic-beta")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty())
            .collect();
        let request = ClientRequest {
            operation,
            body,
            content_encoding: encoding.as_deref(),
            betas: betas.iter().map(String::as_str).collect(),
        };
        let request_id = ctx.request_id.clone();
        let outcome = self
            .state
            .bedrock
            .serve(session, &request, credential, &request_id)
            .await;
        if let Outcome::Served { status, stats } = &outcome {
            self.state.metrics.conversation_repairs(&stats.repairs);
            ctx.bedrock = Some(BedrockLeg {
                stats: ServedStats::clone(stats),
                status: *status,
            });
        }
        outcome
    }

    /// After a Plan failure: serve the request from Bedrock if at all possible. `Some(status)`
    /// when the client got an answer (0: the client went away), `None` when not.
    pub(super) async fn fail_over(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Option<u16> {
        let key_id = ctx.grant.as_ref()?.key_id;
        if ctx.failover_skip.is_none()
            && let Some(refusal) = self.budget_refusal(ctx).await
        {
            self.skip_failover(ctx, refusal, None);
            return None;
        }
        let credential = match self.state.bedrock.credentials.get(key_id).await {
            Ok(credential) => credential,
            Err(why) => {
                tracing::warn!(request_id = %ctx.request_id, %key_id, reason = ?why,
                    "Plan failed and no usable Bedrock key; relaying the Plan answer");
                self.skip_failover(ctx, "bedrock_key_unavailable", None);
                return None;
            }
        };
        let mut failover = ctx.failover.take()?;
        let read = self.read_rest_of_body(session, &mut failover, ctx).await;
        let body = failover.tee.joined();
        let operation = failover.operation;
        ctx.failover = Some(failover);
        if read.is_err() {
            tracing::warn!(request_id = %ctx.request_id, "request body incomplete; no failover");
            self.skip_failover(ctx, "body_unreadable", None);
            return None;
        }
        ctx.path_taken = PathTaken::PlanThenBedrock;
        match self
            .call_bedrock(session, &body, operation, &credential, ctx)
            .await
        {
            Outcome::Served { status, .. } => Some(status),
            Outcome::ClientGone => Some(0),
            Outcome::NotServed {
                cause: Cause::Unusable(why),
                ..
            } => {
                tracing::warn!(request_id = %ctx.request_id, reason = why.reason(),
                    "failover not attempted: {why}; relaying the Plan answer");
                self.note_unusable(ctx, &why);
                None
            }
            Outcome::NotServed { error, .. } => {
                tracing::warn!(request_id = %ctx.request_id, status = error.status,
                    error_type = error.kind.type_name(), "Bedrock fallback did not serve; relaying the Plan answer");
                None
            }
        }
    }
}

/// Whether `e` means Plan failed before answering: refused, unreachable, timed out, or a
/// failing status (recorded in `upstream_response_filter`). Client-side errors and the
/// gateway's own limits are not Plan failures.
pub(super) fn is_plan_failure(e: &Error, ctx: &RequestCtx) -> bool {
    if ctx.local_error.is_some() {
        return false;
    }
    if ctx.plan_failure.is_some() {
        return true;
    }
    ctx.plan_status.is_none() && e.esource() == &ErrorSource::Upstream
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_failure_keeps_retry_headers_only() {
        let mut resp = ResponseHeader::build(429, None).unwrap();
        resp.insert_header("retry-after", "7").unwrap();
        resp.insert_header("anthropic-ratelimit-requests-remaining", "0")
            .unwrap();
        resp.insert_header("set-cookie", "s=1").unwrap();
        resp.insert_header("content-type", "application/json")
            .unwrap();
        let failure = PlanFailure::from_response(&resp);
        let (out, body) = failure.response("rid").unwrap();
        assert_eq!(out.status.as_u16(), 429);
        assert_eq!(out.headers["retry-after"], "7");
        assert_eq!(out.headers["anthropic-ratelimit-requests-remaining"], "0");
        assert!(out.headers.get("set-cookie").is_none());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
    }
}
