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

/// Betas Converse accepts in `additionalModelRequestFields.anthropic_beta` (reference §7.6).
const BETA_ALLOW_LIST: &[&str] = &[
    "context-1m-2025-08-07",
    "computer-use-2025-01-24",
    "computer-use-2025-11-24",
    "effort-2025-11-24",
    "fine-grained-tool-streaming-2025-05-14",
    "structured-outputs-2025-11-13",
    "interleaved-thinking-2025-05-14",
];

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
    let mut out = Map::new();
    let mut repairs = Vec::new();

    let max_tokens = req
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("max_tokens: field required"))?
        .clamp(1, u64::from(options.max_output_tokens));
    let thinking_mode = req
        .get("thinking")
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        .filter(|t| *t == "enabled" || *t == "adaptive");
    let mut thinking_on = !options.strip_thinking && thinking_mode.is_some();
    if thinking_on && thinking_mode == Some("enabled") && max_tokens <= MIN_THINKING_BUDGET {
        thinking_on = false;
        repairs.push(Repair::ThinkingOffMaxTokensTooSmall);
    }

    // Cache points count in the order tools → system → messages.
    let tool_specs = tool_specs(req, &mut cache);
    let mut system = Vec::new();
    system_blocks(req.get("system"), &mut system, &mut cache)?;
    let last_assistant = messages
        .iter()
        .rposition(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
    let mut converse_messages: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let content = message.get("content").unwrap_or(&Value::Null);
        match role {
            // Claude Code 5.5 models send mid-conversation system turns; Converse has none.
            "system" => system_blocks(Some(content), &mut system, &mut cache)?,
            "user" | "assistant" => {
                let keep_thinking = !options.strip_thinking && Some(i) == last_assistant;
                let blocks = content_blocks(content, keep_thinking, &mut cache, &mut repairs)?;
                match converse_messages.last_mut() {
                    Some((last_role, last_blocks)) if last_role == role => {
                        last_blocks.extend(blocks)
                    }
                    _ => converse_messages.push((role.to_owned(), blocks)),
                }
            }
            other => {
                return Err(invalid(format!(
                    "messages.{i}.role: unexpected role {:?}",
                    other.chars().take(20).collect::<String>()
                )));
            }
        }
    }
    thinking_on = repair_final_turn(&mut converse_messages, thinking_on, &mut repairs);
    if let Some(specs) = tool_specs {
        let mut config = json!({"tools": specs});
        if let Some(choice) = tool_choice(req, thinking_on) {
            config["toolChoice"] = choice;
        }
        out.insert("toolConfig".into(), config);
    }
    if converse_messages
        .first()
        .is_some_and(|(role, _)| role == "assistant")
    {
        converse_messages.insert(0, ("user".to_owned(), Vec::new()));
    }
    if converse_messages.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    let messages: Vec<Value> = converse_messages
        .into_iter()
        .map(|(role, mut blocks)| {
            if blocks.iter().all(|b| b.get("cachePoint").is_some()) {
                blocks.insert(0, json!({"text": "."}));
            }
            json!({"role": role, "content": blocks})
        })
        .collect();
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }

    let mut additional = Map::new();
    let mut inference = Map::new();
    inference.insert("maxTokens".into(), json!(max_tokens));
    let temperature = req.get("temperature").and_then(Value::as_f64);
    match temperature {
        Some(t) if !thinking_on || t == 1.0 => {
            inference.insert("temperature".into(), json!(t));
        }
        _ => {
            if let Some(p) = req
                .get("top_p")
                .and_then(Value::as_f64)
                .filter(|_| !thinking_on)
            {
                inference.insert("topP".into(), json!(p));
            }
        }
    }
    if let Some(stops) = req.get("stop_sequences").and_then(Value::as_array) {
        let stops: Vec<&Value> = stops
            .iter()
            .filter(|s| s.as_str().is_some_and(|s| !s.is_empty()))
            .collect();
        if !stops.is_empty() {
            inference.insert("stopSequences".into(), json!(stops));
            out.insert(
                "additionalModelResponseFieldPaths".into(),
                json!(["/stop_sequence"]),
            );
        }
    }
    out.insert("inferenceConfig".into(), Value::Object(inference));

    if let Some(k) = req.get("top_k").filter(|_| !thinking_on) {
        additional.insert("top_k".into(), k.clone());
    }
    if let Some(thinking) = req
        .get("thinking")
        .and_then(Value::as_object)
        .filter(|_| thinking_on)
    {
        match thinking.get("type").and_then(Value::as_str) {
            Some("enabled") => {
                let asked = thinking.get("budget_tokens").and_then(Value::as_u64);
                // max_tokens > MIN_THINKING_BUDGET here (else thinking is off).
                let budget = asked
                    .unwrap_or(MIN_THINKING_BUDGET)
                    .clamp(MIN_THINKING_BUDGET, max_tokens - 1);
                if asked.is_some_and(|b| b != budget) {
                    repairs.push(Repair::ThinkingBudgetClamped);
                }
                additional.insert(
                    "thinking".into(),
                    json!({"type": "enabled", "budget_tokens": budget}),
                );
            }
            Some("adaptive") => {
                additional.insert("thinking".into(), json!({"type": "adaptive"}));
            }
            _ => {}
        }
    }
    if let Some(disable) = req
        .get("tool_choice")
        .and_then(|c| c.get("disable_parallel_tool_use"))
        .filter(|v| v.is_boolean())
    {
        additional.insert(
            "tool_choice".into(),
            json!({"disable_parallel_tool_use": disable}),
        );
    }
    let betas: Vec<&str> = options
        .betas
        .iter()
        .flat_map(|b| b.split(','))
        .map(str::trim)
        .filter(|b| BETA_ALLOW_LIST.contains(b))
        .collect();
    if !betas.is_empty() {
        additional.insert("anthropic_beta".into(), json!(betas));
    }
    if !additional.is_empty() {
        out.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    if let Some(effort) = req
        .get("output_config")
        .and_then(|c| c.get("effort"))
        .and_then(Value::as_str)
    {
        out.insert("outputConfig".into(), json!({"effort": effort}));
    }
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

fn is_reasoning(block: &Value) -> bool {
    block.get("reasoningContent").is_some()
}

/// Applies the thinking rules to the final assistant turn (the only one that kept its
/// thinking blocks) and returns whether thinking stays on. With thinking on, a final turn
/// that uses a tool must open with thinking, else the request goes without thinking; a
/// final turn without tool use keeps only thinking that opens it. With thinking off, no
/// thinking block is sent.
fn repair_final_turn(
    messages: &mut [(String, Vec<Value>)],
    thinking_on: bool,
    repairs: &mut Vec<Repair>,
) -> bool {
    let Some((_, blocks)) = messages.iter_mut().rev().find(|(r, _)| r == "assistant") else {
        return thinking_on;
    };
    let has_reasoning = blocks.iter().any(is_reasoning);
    let leads = blocks.first().is_some_and(is_reasoning);
    let uses_tool = blocks.iter().any(|b| b.get("toolUse").is_some());
    let mut on = thinking_on;
    if on && uses_tool && !leads {
        on = false;
        repairs.push(Repair::ThinkingOffForToolTurn);
    }
    if has_reasoning && !on {
        blocks.retain(|b| !is_reasoning(b));
        if thinking_on {
            // Already recorded as ThinkingOffForToolTurn.
        } else {
            repairs.push(Repair::ThinkingBlocksDropped);
        }
    } else if has_reasoning && !leads {
        blocks.retain(|b| !is_reasoning(b));
        repairs.push(Repair::MisplacedThinkingDropped);
    }
    on
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

fn system_blocks(
    system: Option<&Value>,
    out: &mut Vec<Value>,
    cache: &mut CacheBudget,
) -> Result<(), RequestError> {
    match system {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) if !is_blank(text) => out.push(json!({"text": text})),
        Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for block in blocks {
                let text = block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if is_blank(text) {
                    continue;
                }
                out.push(json!({"text": text}));
                out.extend(cache.point_after(block));
            }
        }
        Some(_) => return Err(invalid("system: must be a string or a list of text blocks")),
    }
    Ok(())
}

fn content_blocks(
    content: &Value,
    keep_thinking: bool,
    cache: &mut CacheBudget,
    repairs: &mut Vec<Repair>,
) -> Result<Vec<Value>, RequestError> {
    let blocks = match content {
        Value::String(text) if is_blank(text) => return Ok(Vec::new()),
        Value::String(text) => return Ok(vec![json!({"text": text})]),
        Value::Array(blocks) => blocks,
        _ => return Err(invalid("content: must be a string or a list of blocks")),
    };
    let mut out = Vec::with_capacity(blocks.len());
    for block in blocks {
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let converted = match kind {
            "text" => {
                let text = block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                (!is_blank(text)).then(|| json!({"text": text}))
            }
            "image" => Some(json!({"image": image(block)?})),
            "document" => Some(json!({"document": document(block, out.len())?})),
            "tool_use" => Some(json!({"toolUse": {
                "toolUseId": block.get("id").cloned().unwrap_or(Value::Null),
                "name": block.get("name").cloned().unwrap_or(Value::Null),
                "input": block.get("input").cloned().unwrap_or_else(|| json!({})),
            }})),
            "tool_result" => Some(tool_result(block)?),
            "thinking" | "redacted_thinking" if keep_thinking => {
                let usable = usable_thinking(block);
                if usable.is_none() {
                    repairs.push(Repair::UnusableThinkingDropped);
                }
                usable
            }
            // Thinking from earlier turns, and block types Converse has no member for.
            _ => None,
        };
        let Some(converted) = converted else { continue };
        let reasoning = converted.get("reasoningContent").is_some();
        out.push(converted);
        if !reasoning {
            out.extend(cache.point_after(block));
        }
    }
    Ok(out)
}

/// The Converse form of a thinking or redacted-thinking block, or `None` when Bedrock could
/// not take it back: a thinking block needs its signature, redacted thinking its data.
fn usable_thinking(block: &Value) -> Option<Value> {
    let non_empty = |key| {
        block
            .get(key)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    match block.get("type").and_then(Value::as_str)? {
        "thinking" => {
            let signature = non_empty("signature")?;
            let text = block.get("thinking").and_then(Value::as_str).unwrap_or("");
            Some(
                json!({"reasoningContent": {"reasoningText": {"text": text, "signature": signature}}}),
            )
        }
        "redacted_thinking" => {
            Some(json!({"reasoningContent": {"redactedContent": non_empty("data")?}}))
        }
        _ => None,
    }
}

fn image(block: &Value) -> Result<Value, RequestError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    if source.get("type").and_then(Value::as_str) != Some("base64") {
        return Err(invalid(
            "Images must be sent inline (base64) when the request is served by Bedrock.",
        ));
    }
    let format = match source.get("media_type").and_then(Value::as_str) {
        Some("image/png") => "png",
        Some("image/jpeg") => "jpeg",
        Some("image/gif") => "gif",
        Some("image/webp") => "webp",
        _ => {
            return Err(invalid(
                "image.source.media_type must be image/png, image/jpeg, image/gif or image/webp",
            ));
        }
    };
    Ok(
        json!({"format": format, "source": {"bytes": source.get("data").cloned().unwrap_or(Value::Null)}}),
    )
}

fn document(block: &Value, position: usize) -> Result<Value, RequestError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    // Bedrock requires a name with a strict alphabet; a neutral one is always valid.
    let name = format!("doc-{}", position + 1);
    let mut doc = match source.get("type").and_then(Value::as_str) {
        Some("base64")
            if source.get("media_type").and_then(Value::as_str) == Some("application/pdf") =>
        {
            json!({"format": "pdf", "name": name, "source": {"bytes": source.get("data").cloned().unwrap_or(Value::Null)}})
        }
        Some("text") => {
            json!({"format": "txt", "name": name, "source": {"text": source.get("data").cloned().unwrap_or(Value::Null)}})
        }
        _ => {
            return Err(invalid(
                "document.source must be a base64 PDF or text when the request is served by Bedrock.",
            ));
        }
    };
    if block
        .get("citations")
        .and_then(|c| c.get("enabled"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        doc["citations"] = json!({"enabled": true});
    }
    Ok(doc)
}

fn tool_result(block: &Value) -> Result<Value, RequestError> {
    let mut content = Vec::new();
    match block.get("content") {
        Some(Value::String(text)) if !is_blank(text) => content.push(json!({"text": text})),
        Some(Value::Array(parts)) => {
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let text = part.get("text").and_then(Value::as_str).unwrap_or_default();
                        if !is_blank(text) {
                            content.push(json!({"text": text}));
                        }
                    }
                    Some("image") => content.push(json!({"image": image(part)?})),
                    Some("document") => {
                        content.push(json!({"document": document(part, content.len())?}))
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    if content.is_empty() {
        content.push(json!({"text": "(empty)"}));
    }
    let mut result = json!({"toolUseId": block.get("tool_use_id").cloned().unwrap_or(Value::Null), "content": content});
    if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        result["status"] = json!("error");
    }
    Ok(json!({"toolResult": result}))
}

/// The custom tools as Converse `toolSpec`s, with their cache points.
fn tool_specs(req: &Map<String, Value>, cache: &mut CacheBudget) -> Option<Vec<Value>> {
    let tools = req.get("tools")?.as_array()?;
    let mut specs = Vec::new();
    for tool in tools {
        // Anthropic-defined server tools (web_search_…, bash_…, text_editor_…) carry a type
        // other than "custom"; Converse has no equivalent.
        let custom = tool
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(|t| t == "custom");
        if !custom {
            continue;
        }
        let mut spec = json!({"name": tool.get("name").cloned().unwrap_or(Value::Null),
                              "inputSchema": {"json": tool.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"}))}});
        if let Some(description) = tool
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| !is_blank(d))
        {
            spec["description"] = json!(description);
        }
        specs.push(json!({"toolSpec": spec}));
        specs.extend(cache.point_after(tool));
    }
    (!specs.is_empty()).then_some(specs)
}

fn tool_choice(req: &Map<String, Value>, thinking_on: bool) -> Option<Value> {
    let choice = req.get("tool_choice")?;
    match choice.get("type").and_then(Value::as_str)? {
        "any" if !thinking_on => Some(json!({"any": {}})),
        "tool" if !thinking_on => choice
            .get("name")
            .map(|name| json!({"tool": {"name": name}})),
        "auto" => Some(json!({"auto": {}})),
        _ => None, // none, or a forced choice with thinking on (Anthropic allows only auto then)
    }
}
