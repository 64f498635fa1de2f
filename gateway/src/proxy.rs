//! The Pingora `ProxyHttp` implementation: each hook is short and hands off to a plain
//! function. Per-request state lives in [`RequestCtx`], shared state in [`GatewayState`].

use crate::bedrock::{Bedrock, Cause, ClientRequest, Operation, Outcome, Unusable};
use crate::error::GatewayError;
use crate::failover::{BedrockLeg, Failover, PathTaken, PlanFailure, SseWatch};
use crate::path::{self, Route};
use crate::plan::PlanUpstream;
use crate::respond;
use async_trait::async_trait;
use bytes::Bytes;
use ccp_core::auth::{AuthOutcome, KeyAuthenticator};
use ccp_core::domain::KeyGrant;
use ccp_core::metering::Meter;
use ccp_core::metering::pricing::PriceTable;
use ccp_core::metering::tap::{ReportedUsage, UsageTap};
use ccp_core::routing::circuit::{self, CircuitBreaker, PlanOutcome, Transition};
use ccp_core::secret::SecretString;
use ccp_core::store::Store;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// State shared by every request.
#[derive(Debug)]
pub struct GatewayState {
    pub auth: KeyAuthenticator,
    pub store: Store,
    pub plan: Arc<PlanUpstream>,
    pub plan_api_key: Option<SecretString>,
    pub max_body_bytes: u64,
    pub client_read_timeout: Duration,
    pub lifecycle: Lifecycle,
    pub bedrock: Bedrock,
    /// Per access key; only keys with a Bedrock key use it.
    pub breaker: CircuitBreaker<uuid::Uuid>,
    pub meter: Meter,
    pub prices: PriceTable,
    pub metrics: crate::metrics::Metrics,
    /// `CCP_METERING`: off only to measure what metering costs.
    pub metering: bool,
}

/// Drain bookkeeping for graceful shutdown.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    in_flight: AtomicUsize,
}

impl Lifecycle {
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// Counts a request as in flight from context creation to context drop.
#[derive(Debug)]
pub struct InFlight(Arc<GatewayState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lifecycle.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Per-request state.
#[derive(Debug)]
pub struct RequestCtx {
    pub request_id: String,
    pub started: Instant,
    pub template: &'static str,
    pub grant: Option<Arc<KeyGrant>>,
    /// Path and query for the upstream, `/ak/{key}` stripped.
    pub upstream_target: String,
    pub request_bytes: u64,
    /// Request body bytes held back so the upstream gets them in one write (see
    /// `request_body_filter`).
    pending_body: bytes::BytesMut,
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
    /// Who answered: `bedrock`, `plan`, or `gateway` (the gateway's own error).
    pub fn upstream(&self) -> &'static str {
        match (&self.bedrock, self.plan_status) {
            (Some(_), _) => "bedrock",
            (None, Some(_)) if self.local_error.is_none() => "plan",
            _ => "gateway",
        }
    }
}

/// The gateway service.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub state: Arc<GatewayState>,
}

/// What `request_filter` decided.
enum Decision {
    Proxy,
    /// The circuit is open: straight to Bedrock.
    BedrockDirect,
    Answer(GatewayError),
    Health,
    Ready(bool),
}

impl Gateway {
    pub fn new(state: Arc<GatewayState>) -> Self {
        Self { state }
    }

    async fn decide(&self, session: &Session, ctx: &mut RequestCtx) -> Decision {
        let req = session.req_header();
        let keyed = match path::parse(req.uri.path()) {
            Route::Health => return Decision::Health,
            Route::Ready => return Decision::Ready(self.is_ready().await),
            Route::NotFound => return Decision::Answer(GatewayError::NotFound),
            Route::KeyedUnknown { key } => {
                ctx.template = "/ak/{key}/(unknown)";
                return match self.authenticate(key, ctx).await {
                    Ok(()) => Decision::Answer(GatewayError::UnknownApiPath),
                    Err(answer) => Decision::Answer(answer),
                };
            }
            Route::Keyed(keyed) => keyed,
        };
        ctx.template = keyed.template;
        if let Err(answer) = self.authenticate(keyed.key, ctx).await {
            return Decision::Answer(answer);
        }
        if req.headers.contains_key("upgrade") {
            return Decision::Answer(GatewayError::UpgradeRefused);
        }
        if let Some(length) = req.headers.get("content-length") {
            match length.to_str().ok().and_then(|v| v.parse::<u64>().ok()) {
                Some(n) if n > self.state.max_body_bytes => {
                    return Decision::Answer(GatewayError::TooLarge);
                }
                Some(_) => {}
                None => return Decision::Answer(GatewayError::BadContentLength),
            }
        }
        let base = self.state.plan.base_path();
        ctx.upstream_target = match req.uri.query() {
            Some(query) => format!("{base}{}?{query}", keyed.upstream_path),
            None => format!("{base}{}", keyed.upstream_path),
        };
        let operation = match keyed.upstream_path {
            "/v1/messages" => Some(Operation::Messages),
            "/v1/messages/count_tokens" => Some(Operation::CountTokens),
            _ => None,
        };
        let has_bedrock = ctx
            .grant
            .as_ref()
            .is_some_and(|g| g.bedrock_region.is_some());
        if let (Some(operation), true, true) = (operation, has_bedrock, req.method == "POST") {
            let key_id = ctx.grant.as_ref().map(|g| g.key_id).unwrap_or_default();
            let route = self.state.breaker.route(&key_id);
            ctx.failover = Some(Failover::new(operation, route));
            if route == circuit::Route::BedrockDirect {
                return Decision::BedrockDirect;
            }
        }
        Decision::Proxy
    }

    /// Tells the breaker how the Plan attempt ended, once per request.
    fn record_plan(&self, ctx: &mut RequestCtx, outcome: PlanOutcome) {
        let (Some(failover), Some(grant)) = (ctx.failover.as_mut(), ctx.grant.as_ref()) else {
            return;
        };
        if failover.outcome_recorded {
            return;
        }
        failover.outcome_recorded = true;
        if let Some(transition) = self
            .state
            .breaker
            .record(&grant.key_id, failover.route, outcome)
        {
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
    fn skip_failover(&self, ctx: &mut RequestCtx, reason: &'static str, model: Option<&str>) {
        ctx.failover_skip = Some(reason);
        self.state.metrics.failover_skipped(reason, model);
    }

    fn note_unusable(&self, ctx: &mut RequestCtx, why: &Unusable) {
        self.skip_failover(ctx, why.reason(), why.model());
        if let Some(model) = why.model() {
            ctx.requested_model = Some(model.to_owned());
        }
    }

    /// Bedrock direct (circuit open): read the body here, call Bedrock, answer. Without a
    /// usable Bedrock credential the request goes to Plan after all (`Ok(false)`).
    async fn serve_direct(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let key_id = ctx.grant.as_ref().map(|g| g.key_id).unwrap_or_default();
        let credential = match self.state.bedrock.credentials.get(key_id).await {
            Ok(credential) => credential,
            Err(why) => {
                tracing::warn!(request_id = %ctx.request_id, %key_id, reason = ?why,
                    "circuit open but no usable Bedrock key; trying Plan");
                self.skip_failover(ctx, "bedrock_key_unavailable", None);
                ctx.failover = None;
                return Ok(false);
            }
        };
        let Some(mut failover) = ctx.failover.take() else {
            return Ok(false);
        };
        ctx.path_taken = PathTaken::BedrockDirect;
        let answer = match self.read_rest_of_body(session, &mut failover, ctx).await {
            Ok(()) => {
                let body = failover.body();
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
        if !failover.body_complete {
            loop {
                match session.read_request_body().await {
                    Ok(Some(chunk)) => {
                        ctx.request_bytes += chunk.len() as u64;
                        if ctx.request_bytes > self.state.max_body_bytes {
                            return Err(GatewayError::TooLarge);
                        }
                        failover.push(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) if e.etype() == &ErrorType::ReadTimedout => {
                        return Err(GatewayError::ClientTimeout);
                    }
                    Err(_) => return Err(GatewayError::BodyUnreadable),
                }
            }
            failover.body_complete = true;
        }
        // A chunk Pingora read but never handed to the body filter would be missing.
        let declared = session
            .req_header()
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(n) if n != failover.tee_len => Err(GatewayError::BodyUnreadable),
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
                stats: stats.clone(),
                status: *status,
            });
        }
        outcome
    }

    /// After a Plan failure: serve the request from Bedrock if at all possible. `Some(status)`
    /// when the client got an answer (0: the client went away), `None` when not.
    async fn fail_over(&self, session: &mut Session, ctx: &mut RequestCtx) -> Option<u16> {
        let key_id = ctx.grant.as_ref()?.key_id;
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
        let body = failover.body();
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

    async fn authenticate(&self, key: &str, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
        let started = Instant::now();
        let outcome = self.state.auth.authenticate(key).await;
        ctx.auth_time = Some(started.elapsed());
        match outcome {
            AuthOutcome::Granted(grant) => {
                ctx.grant = Some(grant);
                Ok(())
            }
            AuthOutcome::Denied => Err(GatewayError::KeyRejected),
            AuthOutcome::Unavailable => Err(GatewayError::AuthUnavailable),
        }
    }

    async fn is_ready(&self) -> bool {
        !self.state.lifecycle.is_draining()
            && matches!(
                tokio::time::timeout(Duration::from_secs(2), self.state.store.ping()).await,
                Ok(Ok(()))
            )
    }
}

/// Whether `e` means Plan failed before answering: refused, unreachable, timed out, or a
/// failing status (recorded in `upstream_response_filter`). Client-side errors and the
/// gateway's own limits are not Plan failures.
fn is_plan_failure(e: &Error, ctx: &RequestCtx) -> bool {
    if ctx.local_error.is_some() {
        return false;
    }
    if ctx.plan_failure.is_some() {
        return true;
    }
    ctx.plan_status.is_none() && e.esource() == &ErrorSource::Upstream
}

/// Writes the gateway's own error answer and remembers it for the log and metrics.
async fn answer_with(
    session: &mut Session,
    ctx: &mut RequestCtx,
    error: GatewayError,
) -> Result<()> {
    let written = respond::api_error(session, &error.api_error(), &ctx.request_id).await;
    ctx.local_error = Some(error);
    written
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        self.state
            .lifecycle
            .in_flight
            .fetch_add(1, Ordering::SeqCst);
        RequestCtx {
            request_id: uuid::Uuid::now_v7().simple().to_string(),
            started: Instant::now(),
            template: "(unrouted)",
            grant: None,
            upstream_target: String::new(),
            request_bytes: 0,
            pending_body: bytes::BytesMut::new(),
            local_error: None,
            auth_time: None,
            failover: None,
            path_taken: PathTaken::Plan,
            plan_status: None,
            plan_first_byte: None,
            plan_failure: None,
            failover_skip: None,
            requested_model: None,
            plan_sse: None,
            bedrock: None,
            usage_tap: None,
            reported: None,
            plan_stream_cut: false,
            started_at: chrono::Utc::now(),
            _in_flight: InFlight(Arc::clone(&self.state)),
        }
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
            &ctx.upstream_target,
            self.state.plan.host_header(),
            self.state.plan_api_key.as_ref(),
        )
    }

    /// Counts the body against the cap and coalesces its chunks: Pingora hands over the part
    /// read with the header and the rest separately, and each upstream write costs a syscall
    /// (and, on loopback, the receiver's TCP work). Chunks are joined up to 64 KiB; a body
    /// that arrives in one chunk passes through without a copy.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        const COALESCE_LIMIT: usize = 64 * 1024;
        if let Some(failover) = ctx.failover.as_mut() {
            if let Some(chunk) = body.as_ref() {
                failover.push(chunk);
            }
            failover.body_complete |= end_of_stream;
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
        let release = end_of_stream
            || ctx.pending_body.len() + body.as_ref().map_or(0, Bytes::len) >= COALESCE_LIMIT;
        if ctx.pending_body.is_empty() && release {
            return Ok(()); // nothing held back: pass the chunk as it is
        }
        if let Some(chunk) = body.take() {
            ctx.pending_body.extend_from_slice(&chunk);
        }
        // `None` would mean "end of body" to Pingora; an empty chunk is simply not written.
        *body = Some(if release {
            ctx.pending_body.split().freeze()
        } else {
            Bytes::new()
        });
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
            return Ok(());
        };
        let probing = failover.route == circuit::Route::Probe;
        if status == 429 || status >= 500 {
            self.record_plan(ctx, PlanOutcome::Failure);
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
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream_response.insert_header(respond::REQUEST_ID_HEADER, ctx.request_id.as_str())?;
        let is_sse = upstream_response
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        // Only an open-ended body can take an appended event: not one with a Content-Length,
        // not a compressed one.
        let open_ended = !upstream_response.headers.contains_key("content-length")
            && !upstream_response.headers.contains_key("content-encoding");
        if is_sse && open_ended && upstream_response.status.is_success() {
            ctx.plan_sse = Some(SseWatch::default());
        }
        if upstream_response.status.is_success() && ctx.grant.is_some() {
            let header = |name: &str| {
                upstream_response
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
            };
            ctx.usage_tap = UsageTap::new(
                header("content-type").unwrap_or_default(),
                header("content-encoding"),
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
        if let (Some(tap), Some(chunk)) = (ctx.usage_tap.as_mut(), body.as_ref()) {
            tap.feed(chunk);
        }
        if end_of_stream && let Some(tap) = ctx.usage_tap.take() {
            ctx.reported = tap.finish();
        }
        if let Some(watch) = ctx.plan_sse.as_mut() {
            if let Some(chunk) = body.as_ref() {
                watch.observe(chunk);
            }
            if end_of_stream && !watch.complete {
                watch.complete = true;
                ctx.plan_stream_cut = true;
                let mut joined = body.take().map(Vec::from).unwrap_or_default();
                joined.extend_from_slice(&SseWatch::cut_event());
                *body = Some(Bytes::from(joined));
            }
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
        if let Some(failure) = ctx.plan_failure.clone() {
            let written = match failure.response(&ctx.request_id) {
                Ok((header, body)) => {
                    let header_ok = session.write_response_header(header, false).await;
                    match header_ok {
                        Ok(()) => {
                            session
                                .write_response_body(Some(Bytes::from(body)), true)
                                .await
                        }
                        Err(err) => Err(err),
                    }
                }
                Err(err) => Err(err),
            };
            if let Err(write_err) = written {
                tracing::debug!(request_id = %ctx.request_id, error = %write_err, "could not relay the Plan answer");
            }
            return FailToProxy {
                error_code: failure.status,
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
        let key_id = ctx.grant.as_ref().map(|g| g.key_id.to_string());
        let user_id = ctx.grant.as_ref().map(|g| g.user_id.to_string());
        if let (Some(failover), Some(grant)) = (&ctx.failover, &ctx.grant)
            && failover.route == circuit::Route::Probe
            && !failover.outcome_recorded
        {
            self.state.breaker.abandon_probe(&grant.key_id);
        }
        let upstream = ctx.upstream();
        let ms = |d: Option<Duration>| d.map_or(-1.0, |d| d.as_secs_f64() * 1e3);
        let response_bytes = session.as_downstream().body_bytes_sent() as u64;
        if let Some(error) = &ctx.local_error {
            self.state.metrics.gateway_error(error.label());
        }
        if let Some(record) =
            crate::metering::request_record(ctx, status, response_bytes, e, &self.state.prices)
        {
            self.state.metrics.observe(&record);
            if self.state.metering {
                self.state.meter.record(record);
            }
        }
        // Request metering (request_logs, token usage) hooks in here: everything it needs is in
        // `ctx`, and this hook runs once per request after the last byte went out.
        tracing::info!(
            target: "ccp::access",
            request_id = %ctx.request_id,
            key_id = key_id.as_deref().unwrap_or("-"),
            user_id = user_id.as_deref().unwrap_or("-"),
            method = %session.req_header().method,
            route = ctx.template,
            path = ctx.path_taken.as_str(),
            upstream,
            status,
            plan_status = ctx.plan_status.unwrap_or(0),
            local_error = ctx.local_error.as_ref().map_or("-", GatewayError::label),
            failover_skip = ctx.failover_skip.unwrap_or("-"),
            error = e.map(|e| e.etype().as_str()).unwrap_or("-"),
            auth_ms = ctx.auth_time.map_or(0.0, |d| d.as_secs_f64() * 1e3),
            plan_ttfb_ms = ms(ctx.plan_first_byte),
            bedrock_ttfb_ms = ms(ctx.bedrock.as_ref().and_then(|b| b.stats.first_byte)),
            broken_stream = ctx.bedrock.as_ref().is_some_and(|b| b.stats.broken_stream),
            total_ms = ctx.started.elapsed().as_secs_f64() * 1e3,
            request_bytes = ctx.request_bytes,
            response_bytes = session.as_downstream().body_bytes_sent(),
            "request"
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
