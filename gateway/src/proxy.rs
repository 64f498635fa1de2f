//! The Pingora `ProxyHttp` implementation: each hook is short and hands off to a plain
//! function. Per-request state lives in [`RequestCtx`], shared state in [`GatewayState`].

use crate::path::{self, Route};
use crate::plan::PlanUpstream;
use crate::respond;
use async_trait::async_trait;
use bytes::Bytes;
use ccp_core::api_error::{ApiError, ApiErrorKind};
use ccp_core::auth::{AuthOutcome, KeyAuthenticator};
use ccp_core::domain::KeyGrant;
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
    /// Set when the gateway itself answered, naming the Anthropic error type it used.
    pub local_error: Option<&'static str>,
    pub auth_time: Option<Duration>,
    _in_flight: InFlight,
}

/// The gateway service.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub state: Arc<GatewayState>,
}

const NOT_FOUND: ApiError = ApiError::new(404, ApiErrorKind::NotFound, "Not found.");
const UNKNOWN_API_PATH: ApiError = ApiError::new(
    404,
    ApiErrorKind::NotFound,
    "Not found: the gateway forwards /v1/… and /api/… paths only.",
);
const AUTH_UNAVAILABLE: ApiError = ApiError::new(
    503,
    ApiErrorKind::Overloaded,
    "The gateway cannot check access keys right now. Retry shortly.",
);
const TOO_LARGE: ApiError = ApiError::new(
    413,
    ApiErrorKind::RequestTooLarge,
    "Request body is larger than the gateway accepts (32 MiB by default).",
);
const BAD_LENGTH: ApiError = ApiError::new(
    400,
    ApiErrorKind::InvalidRequest,
    "Invalid Content-Length header.",
);
const NO_UPGRADE: ApiError = ApiError::new(
    400,
    ApiErrorKind::InvalidRequest,
    "Protocol upgrades are not supported on this endpoint.",
);
const PLAN_UNREACHABLE: ApiError = ApiError::new(
    502,
    ApiErrorKind::Api,
    "The gateway could not reach the Anthropic API. Retry shortly.",
);
const PLAN_TIMEOUT: ApiError = ApiError::new(
    504,
    ApiErrorKind::Api,
    "The Anthropic API did not answer in time.",
);
const CLIENT_TIMEOUT: ApiError = ApiError::new(
    408,
    ApiErrorKind::InvalidRequest,
    "The request body arrived too slowly.",
);
const INTERNAL: ApiError = ApiError::new(500, ApiErrorKind::Api, "Internal gateway error.");

/// What `request_filter` decided.
enum Decision {
    Proxy,
    Answer(ApiError),
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
            Route::NotFound => return Decision::Answer(NOT_FOUND),
            Route::KeyedUnknown { key } => {
                ctx.template = "/ak/{key}/(unknown)";
                return match self.authenticate(key, ctx).await {
                    Ok(()) => Decision::Answer(UNKNOWN_API_PATH),
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
            return Decision::Answer(NO_UPGRADE);
        }
        if let Some(length) = req.headers.get("content-length") {
            match length.to_str().ok().and_then(|v| v.parse::<u64>().ok()) {
                Some(n) if n > self.state.max_body_bytes => return Decision::Answer(TOO_LARGE),
                Some(_) => {}
                None => return Decision::Answer(BAD_LENGTH),
            }
        }
        let base = self.state.plan.base_path();
        ctx.upstream_target = match req.uri.query() {
            Some(query) => format!("{base}{}?{query}", keyed.upstream_path),
            None => format!("{base}{}", keyed.upstream_path),
        };
        Decision::Proxy
    }

    async fn authenticate(&self, key: &str, ctx: &mut RequestCtx) -> Result<(), ApiError> {
        let started = Instant::now();
        let outcome = self.state.auth.authenticate(key).await;
        ctx.auth_time = Some(started.elapsed());
        match outcome {
            AuthOutcome::Granted(grant) => {
                ctx.grant = Some(grant);
                Ok(())
            }
            AuthOutcome::Denied => Err(ApiError::KEY_NOT_FOUND),
            AuthOutcome::Unavailable => Err(AUTH_UNAVAILABLE),
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

/// Maps a proxying failure to the answer the client gets, or `None` when the client is gone.
fn failure_answer(e: &Error, ctx: &RequestCtx) -> Option<ApiError> {
    if ctx.local_error == Some(TOO_LARGE.kind.type_name()) {
        return Some(TOO_LARGE);
    }
    match (e.esource(), e.etype()) {
        (_, ErrorType::HTTPStatus(413)) => Some(TOO_LARGE),
        (ErrorSource::Upstream, ErrorType::ReadTimedout | ErrorType::ConnectTimedout) => {
            Some(PLAN_TIMEOUT)
        }
        (ErrorSource::Upstream, _) => Some(PLAN_UNREACHABLE),
        (ErrorSource::Downstream, ErrorType::ReadTimedout) => Some(CLIENT_TIMEOUT),
        (ErrorSource::Downstream, _) => None,
        _ => Some(INTERNAL),
    }
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
        let decision = self.decide(session, ctx).await;
        match decision {
            Decision::Proxy => Ok(false),
            Decision::Answer(err) => {
                ctx.local_error = Some(err.kind.type_name());
                respond::api_error(session, &err, &ctx.request_id).await?;
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
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        match self.state.plan.peer() {
            Some(peer) => Ok(Box::new(peer)),
            None => Err(Error::explain(
                ErrorType::ConnectNoRoute,
                "Plan upstream has no resolved address",
            )),
        }
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
        if let Some(chunk) = body {
            ctx.request_bytes += chunk.len() as u64;
            if ctx.request_bytes > self.state.max_body_bytes {
                ctx.local_error = Some(TOO_LARGE.kind.type_name());
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

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream_response.insert_header(respond::REQUEST_ID_HEADER, ctx.request_id.as_str())?;
        if self.state.lifecycle.is_draining() {
            session.set_keepalive(None);
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let answer = if session.response_written().is_some() {
            None
        } else {
            failure_answer(e, ctx)
        };
        let error_code = match answer {
            Some(err) => {
                ctx.local_error = Some(err.kind.type_name());
                if let Err(write_err) = respond::api_error(session, &err, &ctx.request_id).await {
                    tracing::debug!(request_id = %ctx.request_id, error = %write_err, "could not send the error response");
                }
                err.status
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
        // Request metering (request_logs, token usage) hooks in here: everything it needs is in
        // `ctx`, and this hook runs once per request after the last byte went out.
        tracing::info!(
            target: "ccp::access",
            request_id = %ctx.request_id,
            key_id = key_id.as_deref().unwrap_or("-"),
            user_id = user_id.as_deref().unwrap_or("-"),
            method = %session.req_header().method,
            route = ctx.template,
            status,
            local_error = ctx.local_error.unwrap_or("-"),
            error = e.map(|e| e.etype().as_str()).unwrap_or("-"),
            auth_ms = ctx.auth_time.map_or(0.0, |d| d.as_secs_f64() * 1e3),
            total_ms = ctx.started.elapsed().as_secs_f64() * 1e3,
            request_bytes = ctx.request_bytes,
            response_bytes = session.as_downstream().body_bytes_sent(),
            "request"
        );
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
