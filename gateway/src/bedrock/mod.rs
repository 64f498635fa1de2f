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
//!
//! `call.rs` holds one request's call (translate, post, the thinking retry, the JSON answer,
//! CountTokens), `relay.rs` the streaming relay, `wire.rs` the body decoding and the
//! response writing they share.

mod call;
mod relay;
mod wire;

use wire::{decode_body, printable};

use ccp_core::api_error::{ApiError, ApiErrorKind};
use ccp_core::routing::credentials::{BedrockCredential, CredentialCache};
use ccp_core::routing::model_map::{MappingSource, ModelMap, ResolvedModel};
use ccp_core::translate::models::encode_model_id;
use ccp_core::translate::stream::StreamUsage;
use pingora::proxy::Session;
use serde_json::Value;
use std::time::Duration;

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
