//! The Bedrock leg: Anthropic request in, Converse call out, Anthropic answer back, written
//! to the client from inside a Pingora hook with our own HTTP client.
//!
//! Pingora cannot make this leg itself: the Converse URL needs `model` from the body, and its
//! retry buffer stops at 64 KiB while Claude Code bodies are 50–500 KB (Pingora 0.9 replays
//! only what it buffered). So the gateway reads the whole body (teed while
//! proxying to Plan, or read up front on Bedrock direct) and calls Bedrock with reqwest.
//!
//! The request is built from scratch: `Authorization: Bearer <the key's Bedrock key>`, the
//! content type and the translated body. No client header is copied, so no client credential,
//! cookie or `anthropic-*` value can reach AWS.
//!
//! Nothing is written to the client until Bedrock has produced a first translated byte, so a
//! Bedrock failure (an error status, a refused connection, an exception as the first frame)
//! leaves the caller free to answer something else (the original Plan response).

use crate::respond;
use bytes::Bytes;
use ccp_core::api_error::{ApiError, ApiErrorKind};
use ccp_core::routing::credentials::{BedrockCredential, CredentialCache};
use ccp_core::routing::model_map::{MappingSource, ModelMap, ResolvedModel};
use ccp_core::translate::errors::BedrockError;
use ccp_core::translate::eventstream::{EventStreamDecoder, StreamFrame};
use ccp_core::translate::models::encode_model_id;
use ccp_core::translate::request::{TranslateOptions, translate};
use ccp_core::translate::response::converse_to_anthropic;
use ccp_core::translate::stream::{StreamTranslator, StreamUsage, map_stream_exception};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use serde_json::{Value, json};
use std::io::Read;
use std::time::{Duration, Instant};

/// Header naming who answered, for clients and tests: `plan` is never written (the Plan
/// response is relayed untouched), `bedrock` marks a translated answer.
pub const UPSTREAM_HEADER: &str = "x-ccp-upstream";

/// On a Bedrock answer: the Bedrock model id actually called. The body's `model` stays the
/// name the client asked for (Claude Code keys its bookkeeping on it).
pub const MODEL_HEADER: &str = "x-ccp-bedrock-model";

/// Error bodies and non-streaming answers are read up to this size.
const MAX_ERROR_BODY: usize = 64 * 1024;
const MAX_JSON_RESPONSE: usize = 64 * 1024 * 1024;

/// Which Messages operation a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Messages,
    CountTokens,
}

/// A client request, read in full.
#[derive(Debug)]
pub struct ClientRequest<'a> {
    pub operation: Operation,
    pub body: &'a [u8],
    pub content_encoding: Option<&'a str>,
    /// `anthropic-beta` values, split on commas.
    pub betas: Vec<&'a str>,
}

/// How a Bedrock attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// Bedrock's answer (translated) went to the client with this status.
    Served {
        status: u16,
        stats: Box<ServedStats>,
    },
    /// Nothing was written. `error` is the answer when nothing better exists (Bedrock
    /// direct); after a Plan failure the caller sends the Plan response instead.
    NotServed { error: ApiError, cause: Cause },
    /// Writing to the client failed part-way.
    ClientGone,
}

/// Why a Bedrock attempt did not serve the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The request cannot be sent to Bedrock at all: a failover that could not be attempted.
    Unusable(Unusable),
    /// Bedrock answered an error, or could not be reached, before any byte went out.
    Failed,
}

/// Why a request could not be sent to Bedrock, in words an admin can act on. Never holds
/// request content beyond the model name (made printable and capped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// Neither a mapping row, a built-in default nor a family default names a Bedrock model.
    UnmappedModel(String),
    /// The body holds something Converse cannot express; the translator's reason.
    Untranslatable(String),
    /// Not JSON, not an object, no model, an encoding the gateway cannot read, too large.
    BadBody(String),
}

impl Unusable {
    /// The metric and request-log label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnmappedModel(_) => "unmapped_model",
            Self::Untranslatable(_) => "untranslatable",
            Self::BadBody(_) => "bad_body",
        }
    }

    pub fn model(&self) -> Option<&str> {
        match self {
            Self::UnmappedModel(model) => Some(model),
            _ => None,
        }
    }
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnmappedModel(model) => write!(
                f,
                "model {model} has no Bedrock mapping (map it: `ccp-admin model-map set --anthropic {model} --bedrock <model id>`, or set a family default)"
            ),
            Self::Untranslatable(why) => write!(f, "the request has no Converse form: {why}"),
            Self::BadBody(why) => write!(f, "the request body cannot be read: {why}"),
        }
    }
}

/// What a served answer looked like, for the access log and metering.
#[derive(Debug, Clone, Default)]
pub struct ServedStats {
    pub first_byte: Option<Duration>,
    pub usage: Option<StreamUsage>,
    /// The Bedrock model id called (what the price table is keyed by).
    pub model_id: String,
    /// The model name the client asked for.
    pub model_name: String,
    /// Conversation repairs the translation made (`ccp_core::translate::request::Repair`
    /// labels, and `thinking_off_after_refusal` for the retry without thinking).
    pub repairs: Vec<&'static str>,
    pub stream: bool,
    /// The Converse stream was cut or failed after the first byte (the client got an SSE error).
    pub broken_stream: bool,
    pub estimated: bool,
}

/// A 400 for the client (on Bedrock direct; after a Plan failure the Plan answer goes out
/// instead) and the reason the failover could not be attempted.
fn unusable(message: String, why: Unusable) -> Outcome {
    Outcome::NotServed {
        error: ApiError::owned(400, ApiErrorKind::InvalidRequest, message),
        cause: Cause::Unusable(why),
    }
}

fn bad_body(message: impl Into<String>) -> Outcome {
    let message = message.into();
    unusable(message.clone(), Unusable::BadBody(message))
}

fn untranslatable(message: String) -> Outcome {
    unusable(message.clone(), Unusable::Untranslatable(message))
}

fn failed(error: ApiError) -> Outcome {
    Outcome::NotServed {
        error,
        cause: Cause::Failed,
    }
}

const UNREACHABLE: ApiError = ApiError::new(
    529,
    ApiErrorKind::Overloaded,
    "Amazon Bedrock could not be reached. Retry shortly.",
);

/// The Bedrock client, shared by every request.
#[derive(Debug)]
pub struct Bedrock {
    http: reqwest::Client,
    /// `CCP_BEDROCK_ENDPOINT`: replaces `https://bedrock-runtime.{region}.amazonaws.com`.
    endpoint: Option<String>,
    pub credentials: CredentialCache,
    pub models: ModelMap,
    max_body_bytes: u64,
}

impl Bedrock {
    pub fn new(
        config: &ccp_core::config::Config,
        credentials: CredentialCache,
        models: ModelMap,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.bedrock_connect_timeout)
            .read_timeout(config.bedrock_read_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_keepalive(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("claude-code-proxy/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            endpoint: config
                .bedrock_endpoint
                .as_ref()
                .map(|e| e.trim_end_matches('/').to_owned()),
            credentials,
            models,
            max_body_bytes: config.max_body_bytes,
        })
    }

    fn url(&self, region: &str, model_id: &str, action: &str) -> String {
        let model = encode_model_id(model_id);
        match &self.endpoint {
            Some(base) => format!("{base}/model/{model}/{action}"),
            // The region was validated when the key was stored: it cannot change the host.
            None => {
                format!("https://bedrock-runtime.{region}.amazonaws.com/model/{model}/{action}")
            }
        }
    }

    /// Translates `request`, calls Bedrock with `credential`, and writes the answer.
    pub async fn serve(
        &self,
        session: &mut Session,
        request: &ClientRequest<'_>,
        credential: &BedrockCredential,
        request_id: &str,
    ) -> Outcome {
        let body = match decode_body(request.body, request.content_encoding, self.max_body_bytes) {
            Ok(body) => body,
            Err(outcome) => return outcome,
        };
        let parsed: Value = match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return bad_body("The request body must be a JSON object."),
            Err(e) => return bad_body(format!("The request body is not valid JSON: {e}")),
        };
        drop(body);
        let Some(model_name) = parsed.get("model").and_then(Value::as_str) else {
            return bad_body("model: field required");
        };
        let Some(model) = self.models.resolve(model_name, &credential.region).await else {
            let model = printable(model_name);
            return unusable(
                format!("model: {model} has no Amazon Bedrock mapping on this gateway."),
                Unusable::UnmappedModel(model),
            );
        };
        if model.source == MappingSource::Family {
            tracing::info!(request_id, requested = %printable(model_name), bedrock_model = %model.model_id,
                "the model has no mapping of its own; using its family default");
        }
        let call = Call {
            bedrock: self,
            credential,
            model: &model,
            model_name,
            request,
            parsed: &parsed,
            request_id,
            repairs: std::sync::Mutex::new(Vec::new()),
        };
        match request.operation {
            Operation::Messages => call.messages(session).await,
            Operation::CountTokens => call.count_tokens(session).await,
        }
    }
}

/// One request's Bedrock call.
struct Call<'a> {
    bedrock: &'a Bedrock,
    credential: &'a BedrockCredential,
    model: &'a ResolvedModel,
    model_name: &'a str,
    request: &'a ClientRequest<'a>,
    parsed: &'a Value,
    request_id: &'a str,
    /// Conversation repairs made for this call (labels), for the log and metrics.
    repairs: std::sync::Mutex<Vec<&'static str>>,
}

impl Call<'_> {
    fn note_repairs(&self, labels: &[&'static str]) {
        let mut repairs = self.repairs.lock().unwrap_or_else(|e| e.into_inner());
        for label in labels {
            if !repairs.contains(label) {
                repairs.push(label);
            }
        }
    }

    fn stats(&self, stream: bool) -> ServedStats {
        ServedStats {
            model_id: self.model.model_id.clone(),
            model_name: self.model_name.to_owned(),
            repairs: self
                .repairs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            stream,
            ..ServedStats::default()
        }
    }

    fn translate(&self, strip_thinking: bool) -> Result<Vec<u8>, Outcome> {
        let options = TranslateOptions {
            max_output_tokens: self.model.max_output_tokens,
            betas: &self.request.betas,
            prompt_caching: true,
            strip_thinking,
        };
        let converse = if self.request.operation == Operation::CountTokens
            && self.parsed.get("max_tokens").is_none()
        {
            // count_tokens requests carry no max_tokens; Converse's shape wants one.
            let mut with_max = self.parsed.clone();
            with_max["max_tokens"] = json!(1);
            translate(&with_max, &options)
        } else {
            translate(self.parsed, &options)
        }
        .map_err(|e| untranslatable(e.to_string()))?;
        if !converse.repairs.is_empty() {
            let labels: Vec<&'static str> = converse.repairs.iter().map(|r| r.as_str()).collect();
            tracing::info!(request_id = %self.request_id, repairs = %labels.join(","),
                "conversation repaired for Bedrock");
            self.note_repairs(&labels);
        }
        serde_json::to_vec(&converse.body).map_err(|e| untranslatable(e.to_string()))
    }

    async fn post(&self, url: &str, body: Vec<u8>) -> Result<reqwest::Response, Outcome> {
        let sent = self
            .bedrock
            .http
            .post(url)
            .bearer_auth(self.credential.api_key.expose())
            .header("content-type", "application/json")
            .header(
                "accept",
                "application/json, application/vnd.amazon.eventstream",
            )
            .body(body)
            .send()
            .await;
        sent.map_err(|e| {
            // reqwest errors carry the URL (no secret in it, but keep logs template-only).
            tracing::warn!(request_id = %self.request_id, error = %e.without_url(), "Bedrock unreachable");
            failed(UNREACHABLE)
        })
    }

    /// Posts the Converse request; on a 400 about a thinking signature, once more without
    /// thinking. Returns a successful response or the client-facing error.
    async fn converse(&self, action: &str) -> Result<reqwest::Response, Outcome> {
        let url = self
            .bedrock
            .url(&self.credential.region, &self.model.model_id, action);
        let mut strip_thinking = false;
        loop {
            let response = self.post(&url, self.translate(strip_thinking)?).await?;
            if response.status().is_success() {
                return Ok(response);
            }
            let error = read_error(response).await;
            if !strip_thinking && error.0.is_thinking_problem() {
                tracing::info!(request_id = %self.request_id, message = %printable(&error.0.message),
                    "Bedrock refused the request's thinking; retrying without thinking");
                self.note_repairs(&["thinking_off_after_refusal"]);
                strip_thinking = true;
                continue;
            }
            tracing::warn!(request_id = %self.request_id, status = error.0.status, code = %error.0.code,
                message = %printable(&error.0.message), "Bedrock answered an error");
            return Err(failed(error.0.to_api_error(error.1)));
        }
    }

    fn message_id(response: &reqwest::Response, request_id: &str) -> String {
        let amzn = response
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(64)
                    .collect::<String>()
            })
            .filter(|v| !v.is_empty());
        format!("msg_bdrk_{}", amzn.as_deref().unwrap_or(request_id))
    }

    async fn messages(&self, session: &mut Session) -> Outcome {
        let stream = self
            .parsed
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let started = Instant::now();
        let action = if stream {
            "converse-stream"
        } else {
            "converse"
        };
        let response = match self.converse(action).await {
            Ok(r) => r,
            Err(outcome) => return outcome,
        };
        let message_id = Self::message_id(&response, self.request_id);
        if stream {
            self.relay_stream(session, response, &message_id, started)
                .await
        } else {
            let body = match read_capped(response, MAX_JSON_RESPONSE).await {
                Ok(body) => body,
                Err(()) => return failed(UNREACHABLE),
            };
            match converse_to_anthropic(&body, &message_id, self.model_name) {
                Ok(message) => {
                    let usage = message.get("usage").map(usage_from_json);
                    let body = serde_json::to_vec(&message).unwrap_or_default();
                    match write_json(session, 200, body, self.request_id, &self.model.model_id)
                        .await
                    {
                        Ok(()) => Outcome::Served {
                            status: 200,
                            stats: Box::new(ServedStats {
                                first_byte: Some(started.elapsed()),
                                usage,
                                ..self.stats(false)
                            }),
                        },
                        Err(()) => Outcome::ClientGone,
                    }
                }
                Err(e) => {
                    tracing::warn!(request_id = %self.request_id, error = %e, "unusable Converse response");
                    failed(ApiError::new(
                        502,
                        ApiErrorKind::Api,
                        "Amazon Bedrock returned a response the gateway cannot read.",
                    ))
                }
            }
        }
    }

    /// Decodes event-stream frames as they arrive and writes the SSE they translate to. The
    /// response header goes out with the first translated bytes; until then a failure is
    /// still an unserved request.
    async fn relay_stream(
        &self,
        session: &mut Session,
        mut response: reqwest::Response,
        message_id: &str,
        started: Instant,
    ) -> Outcome {
        let mut decoder = EventStreamDecoder::new();
        let mut translator = StreamTranslator::new(message_id, self.model_name);
        let mut out = Vec::with_capacity(8 * 1024);
        let mut stats = self.stats(true);
        let mut header_sent = false;
        loop {
            let chunk = response.chunk().await;
            let (chunk, upstream_done) = match chunk {
                Ok(Some(chunk)) => (chunk, false),
                Ok(None) => (Bytes::new(), true),
                Err(e) => {
                    tracing::warn!(request_id = %self.request_id, error = %e.without_url(), "Bedrock stream broke");
                    if !header_sent {
                        return failed(UNREACHABLE);
                    }
                    stats.broken_stream = true;
                    (Bytes::new(), true)
                }
            };
            decoder.push(&chunk);
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => {
                        if !header_sent && let Some(error) = first_frame_error(&frame) {
                            return failed(error);
                        }
                        translator.on_frame(&frame, &mut out);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(request_id = %self.request_id, error = %e, "malformed Bedrock stream");
                        if !header_sent {
                            return failed(UNREACHABLE);
                        }
                        stats.broken_stream = true;
                        translator.finish(&mut out);
                        break;
                    }
                }
            }
            let done = upstream_done || translator.is_finished() || stats.broken_stream;
            if done {
                if !translator.is_finished() {
                    stats.broken_stream = true;
                }
                translator.finish(&mut out);
            }
            if !header_sent && (done || !out.is_empty()) {
                if out.is_empty() {
                    return failed(UNREACHABLE);
                }
                stats.first_byte = Some(started.elapsed());
                if write_stream_header(session, self.request_id, &self.model.model_id)
                    .await
                    .is_err()
                {
                    return Outcome::ClientGone;
                }
                header_sent = true;
            }
            if !out.is_empty() || done {
                let data = Bytes::from(std::mem::replace(&mut out, Vec::with_capacity(8 * 1024)));
                if session.write_response_body(Some(data), done).await.is_err() {
                    return Outcome::ClientGone;
                }
            }
            if done {
                stats.usage = translator.usage();
                return Outcome::Served {
                    status: 200,
                    stats: Box::new(stats),
                };
            }
        }
    }

    /// Bedrock CountTokens; if it fails, an estimate (about 4 bytes a token) labelled by the
    /// `x-ccp-token-estimate: true` header. Never a 404.
    async fn count_tokens(&self, session: &mut Session) -> Outcome {
        let started = Instant::now();
        let converse: Value = match self.translate(false) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            Err(outcome) => return outcome,
        };
        let mut input = serde_json::Map::new();
        for field in [
            "messages",
            "system",
            "toolConfig",
            "additionalModelRequestFields",
        ] {
            if let Some(v) = converse.get(field) {
                input.insert(field.to_owned(), v.clone());
            }
        }
        let body = json!({"input": {"converse": input}});
        let url = self.bedrock.url(
            &self.credential.region,
            &self.model.model_id,
            "count-tokens",
        );
        let counted = match self
            .post(&url, serde_json::to_vec(&body).unwrap_or_default())
            .await
        {
            Ok(response) if response.status().is_success() => read_capped(response, MAX_ERROR_BODY)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v.get("inputTokens").and_then(Value::as_u64)),
            Ok(response) => {
                let (error, _) = read_error(response).await;
                tracing::info!(request_id = %self.request_id, status = error.status, code = %error.code,
                    "Bedrock CountTokens unavailable; answering an estimate");
                None
            }
            Err(_) => None,
        };
        let (tokens, estimated) = match counted {
            Some(n) => (n, false),
            None => (estimate_tokens(&input), true),
        };
        let body = serde_json::to_vec(&json!({"input_tokens": tokens})).unwrap_or_default();
        let mut header = match json_header(200, body.len(), self.request_id, &self.model.model_id) {
            Ok(h) => h,
            Err(()) => return Outcome::ClientGone,
        };
        if estimated {
            let _ = header.insert_header("x-ccp-token-estimate", "true");
        }
        if session.write_response_header(header, false).await.is_err()
            || session
                .write_response_body(Some(Bytes::from(body)), true)
                .await
                .is_err()
        {
            return Outcome::ClientGone;
        }
        Outcome::Served {
            status: 200,
            stats: Box::new(ServedStats {
                first_byte: Some(started.elapsed()),
                estimated,
                ..self.stats(false)
            }),
        }
    }
}

/// A first frame that is an exception means Bedrock failed before answering anything.
fn first_frame_error(frame: &StreamFrame) -> Option<ApiError> {
    let (kind, message) = match frame {
        StreamFrame::Event { .. } => return None,
        StreamFrame::Exception {
            exception_type,
            payload,
        } => {
            let status = serde_json::from_slice::<Value>(payload)
                .ok()
                .and_then(|v| v.get("originalStatusCode").and_then(Value::as_u64))
                .and_then(|s| u16::try_from(s).ok());
            (
                map_stream_exception(exception_type, status),
                "Amazon Bedrock failed before answering. Retry shortly.",
            )
        }
        StreamFrame::Error { .. } => ("api_error", "Amazon Bedrock failed before answering."),
    };
    let kind = match kind {
        "rate_limit_error" => ApiErrorKind::RateLimit,
        "overloaded_error" => ApiErrorKind::Overloaded,
        "invalid_request_error" => ApiErrorKind::InvalidRequest,
        _ => ApiErrorKind::Api,
    };
    Some(ApiError::new(kind.default_status(), kind, message))
}

fn usage_from_json(usage: &Value) -> StreamUsage {
    let get = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    StreamUsage {
        input_tokens: get("input_tokens"),
        output_tokens: get("output_tokens"),
        cache_read_input_tokens: get("cache_read_input_tokens"),
        cache_creation_input_tokens: get("cache_creation_input_tokens"),
    }
}

/// About four bytes of text a token, counted over the translated input.
fn estimate_tokens(input: &serde_json::Map<String, Value>) -> u64 {
    let bytes = serde_json::to_vec(input).map_or(0, |v| v.len());
    (bytes as u64).div_ceil(4).max(1)
}

/// Undoes `Content-Encoding: gzip` (Claude Code can be told to compress bodies), bounded
/// by the body limit so a small bomb cannot expand without end.
fn decode_body<'a>(
    body: &'a [u8],
    encoding: Option<&str>,
    limit: u64,
) -> Result<std::borrow::Cow<'a, [u8]>, Outcome> {
    match encoding.map(str::trim) {
        None | Some("") | Some("identity") => Ok(std::borrow::Cow::Borrowed(body)),
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => {
            let mut out = Vec::with_capacity(body.len() * 4);
            let mut decoder = flate2::read::MultiGzDecoder::new(body).take(limit + 1);
            decoder
                .read_to_end(&mut out)
                .map_err(|_| bad_body("The gzip request body cannot be decoded."))?;
            if out.len() as u64 > limit {
                return Err(Outcome::NotServed {
                    error: ApiError::new(
                        413,
                        ApiErrorKind::RequestTooLarge,
                        "The decompressed request body is larger than the gateway accepts.",
                    ),
                    cause: Cause::Unusable(Unusable::BadBody(
                        "the decompressed body is over the size limit".into(),
                    )),
                });
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        Some(_) => Err(bad_body(
            "Unsupported Content-Encoding for the Bedrock fallback (gzip only).",
        )),
    }
}

/// A client-supplied string made safe to echo: printable ASCII, at most 100 characters.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect()
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, ()> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| ())? {
        if body.len() + chunk.len() > cap {
            return Err(());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn read_error(response: reqwest::Response) -> (BedrockError, Option<u16>) {
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_capped(response, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    BedrockError::parse(status, header.as_deref(), &body)
}

fn json_header(
    status: u16,
    len: usize,
    request_id: &str,
    model_id: &str,
) -> Result<Box<ResponseHeader>, ()> {
    let mut h = ResponseHeader::build(status, Some(7)).map_err(|_| ())?;
    h.insert_header("content-type", "application/json")
        .and_then(|_| h.insert_header("content-length", len.to_string()))
        .and_then(|_| h.insert_header(respond::REQUEST_ID_HEADER, request_id))
        .and_then(|_| h.insert_header(UPSTREAM_HEADER, "bedrock"))
        .and_then(|_| h.insert_header(MODEL_HEADER, model_id))
        .map_err(|_| ())?;
    Ok(Box::new(h))
}

async fn write_json(
    session: &mut Session,
    status: u16,
    body: Vec<u8>,
    request_id: &str,
    model_id: &str,
) -> Result<(), ()> {
    let header = json_header(status, body.len(), request_id, model_id)?;
    session
        .write_response_header(header, false)
        .await
        .map_err(|_| ())?;
    session
        .write_response_body(Some(Bytes::from(body)), true)
        .await
        .map_err(|_| ())
}

async fn write_stream_header(
    session: &mut Session,
    request_id: &str,
    model_id: &str,
) -> Result<(), ()> {
    let mut h = ResponseHeader::build(200, Some(7)).map_err(|_| ())?;
    h.insert_header("content-type", "text/event-stream")
        .and_then(|_| h.insert_header("cache-control", "no-cache"))
        .and_then(|_| h.insert_header("transfer-encoding", "chunked"))
        .and_then(|_| h.insert_header(respond::REQUEST_ID_HEADER, request_id))
        .and_then(|_| h.insert_header(UPSTREAM_HEADER, "bedrock"))
        .and_then(|_| h.insert_header(MODEL_HEADER, model_id))
        .map_err(|_| ())?;
    session
        .write_response_header(Box::new(h), false)
        .await
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_bodies_are_decoded_within_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"model":"m"}"#).unwrap();
        let packed = gz.finish().unwrap();
        let plain = decode_body(&packed, Some("gzip"), 1024).ok().unwrap();
        assert_eq!(&*plain, br#"{"model":"m"}"#);
        assert!(matches!(
            decode_body(b"not gzip", Some("gzip"), 1024),
            Err(Outcome::NotServed {
                cause: Cause::Unusable(Unusable::BadBody(_)),
                ..
            })
        ));
        // A bomb: 10 MB of zeros in a few KB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 10 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(matches!(
            decode_body(&bomb, Some("gzip"), 1 << 20),
            Err(Outcome::NotServed { error, .. }) if error.status == 413
        ));
        assert!(decode_body(b"x", Some("br"), 1024).is_err());
        assert!(matches!(
            decode_body(b"x", None, 1024),
            Ok(std::borrow::Cow::Borrowed(_))
        ));
    }

    #[test]
    fn echoed_model_names_are_tamed() {
        assert_eq!(printable("claude\n\u{1b}[31mx"), "claude[31mx");
        assert_eq!(printable(&"m".repeat(500)).len(), 100);
    }
}
