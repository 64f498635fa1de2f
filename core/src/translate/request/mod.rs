//! Anthropic Messages request → Converse request body (reference §2 and §7).
//!
//! The result is the JSON body for `POST /model/{id}/converse[-stream]`; the model id and the
//! stream flag travel in the URL, so they are not in it. Rules that keep Bedrock from
//! answering 400: `role:"system"` messages are folded into `system`; roles alternate and
//! start with `user`; blank text is dropped (an emptied message gets "."); thinking blocks are
//! kept only in the latest assistant turn (earlier ones carry first-party signatures Bedrock
//! may reject); cache points go after their block, at most 4, never after a reasoning block;
//! `top_p` is dropped next to `temperature`; betas pass through an allow-list.
//!
//! Conversation repairs ([`Repair`], docs/architecture.md): a history the Anthropic API took
//! can still break a Converse rule, typically after a failover mid-conversation. The
//! translation then sends what Bedrock accepts and says which repair it made: thinking off
//! for a request whose final assistant turn uses a tool without opening with thinking;
//! thinking blocks dropped when thinking is off, or when unusable (no signature, empty
//! redacted data); the thinking budget kept inside `[1024, max_tokens)`.

use serde_json::{Map, Value, json};

mod inference;
mod messages;
mod thinking;
mod tools;

const MAX_CACHE_POINTS: usize = 4;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// The client's request cannot be expressed for Bedrock: a 400 `invalid_request_error`.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> RequestError {
    RequestError::Invalid(message.into())
}

/// What the translation needs besides the body.
#[derive(Debug, Clone)]
pub struct TranslateOptions<'a> {
    /// The model's maximum output tokens; `max_tokens` is clamped to it.
    pub max_output_tokens: u32,
    /// The request's `anthropic-beta` header values.
    pub betas: &'a [&'a str],
    /// Whether the target model accepts cache points.
    pub prompt_caching: bool,
    /// Drop every thinking block and turn thinking off: the one retry after Bedrock refused
    /// a thinking signature minted by the first-party API (reference §7.1).
    pub strip_thinking: bool,
}

/// Bedrock's smallest thinking budget.
pub const MIN_THINKING_BUDGET: u64 = 1024;

/// A change made so that Bedrock accepts a conversation the Anthropic API accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repair {
    /// Thinking is on, but the final assistant turn uses a tool without opening with a
    /// thinking block (an earlier turn ran without thinking, or its thinking was unusable):
    /// the request goes without thinking.
    ThinkingOffForToolTurn,
    /// Thinking is off but the final assistant turn holds thinking blocks: they are dropped.
    ThinkingBlocksDropped,
    /// Thinking blocks that are not first in the final assistant turn (no tool use in it):
    /// they are dropped, and thinking stays on for the new turn.
    MisplacedThinkingDropped,
    /// Thinking without a signature, or redacted thinking with empty data: dropped.
    UnusableThinkingDropped,
    /// `budget_tokens` outside `[1024, max_tokens)`: clamped into it.
    ThinkingBudgetClamped,
    /// `max_tokens` leaves no room for the minimum budget: the request goes without thinking.
    ThinkingOffMaxTokensTooSmall,
}

impl Repair {
    /// The log and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ThinkingOffForToolTurn => "thinking_off_for_tool_turn",
            Self::ThinkingBlocksDropped => "thinking_blocks_dropped",
            Self::MisplacedThinkingDropped => "misplaced_thinking_dropped",
            Self::UnusableThinkingDropped => "unusable_thinking_dropped",
            Self::ThinkingBudgetClamped => "thinking_budget_clamped",
            Self::ThinkingOffMaxTokensTooSmall => "thinking_off_max_tokens_too_small",
        }
    }
}

/// A translated request and the repairs it needed.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub body: Value,
    pub repairs: Vec<Repair>,
}

/// Translates a parsed Anthropic request.
pub fn anthropic_to_converse(
    req: &Value,
    options: &TranslateOptions<'_>,
) -> Result<Value, RequestError> {
    translate(req, options).map(|t| t.body)
}

/// Translates a parsed Anthropic request and reports the conversation repairs it made.
pub fn translate(req: &Value, options: &TranslateOptions<'_>) -> Result<Translated, RequestError> {
    let req = req
        .as_object()
        .ok_or_else(|| invalid("The request body must be a JSON object."))?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages: field required"))?;
    let mut cache = CacheBudget::new(options.prompt_caching);
    let mut repairs = Vec::new();
    let max_tokens = req
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("max_tokens: field required"))?
        .clamp(1, u64::from(options.max_output_tokens));
    let thinking_on = thinking::requested(req, options.strip_thinking, max_tokens, &mut repairs);

    // Cache points count in the order tools → system → messages.
    let tool_specs = tools::specs(req, &mut cache);
    let mut system = Vec::new();
    messages::system_blocks(req.get("system"), &mut system, &mut cache)?;
    let mut turns = messages::turns(
        messages,
        options.strip_thinking,
        &mut system,
        &mut cache,
        &mut repairs,
    )?;
    let thinking_on = thinking::repair_final_turn(&mut turns, thinking_on, &mut repairs);

    let mut out = Map::new();
    if let Some(specs) = tool_specs {
        out.insert("toolConfig".into(), tools::config(specs, req, thinking_on));
    }
    out.insert("messages".into(), messages::finish(turns)?);
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    inference::insert(
        &mut out,
        req,
        options.betas,
        max_tokens,
        thinking_on,
        &mut repairs,
    );
    // metadata, context_management, service_tier, container, mcp_servers: no Converse
    // equivalent (an unknown member is a 400), so they are left out.
    let mut seen = Vec::with_capacity(repairs.len());
    repairs.retain(|r| {
        let first = !seen.contains(r);
        seen.push(*r);
        first
    });
    Ok(Translated {
        body: Value::Object(out),
        repairs,
    })
}

/// Counts cache points against Bedrock's limit of 4 and decides where one may go.
struct CacheBudget {
    enabled: bool,
    used: usize,
}

impl CacheBudget {
    fn new(enabled: bool) -> Self {
        Self { enabled, used: 0 }
    }

    /// A cache point for a block marked with `cache_control`, if one may follow it.
    fn point_after(&mut self, block: &Value) -> Option<Value> {
        let control = block.get("cache_control")?;
        if !self.enabled || self.used >= MAX_CACHE_POINTS {
            return None;
        }
        self.used += 1;
        Some(match control.get("ttl").and_then(Value::as_str) {
            Some(ttl @ ("5m" | "1h")) => json!({"cachePoint": {"type": "default", "ttl": ttl}}),
            _ => json!({"cachePoint": {"type": "default"}}),
        })
    }
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}
