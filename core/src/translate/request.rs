//! Anthropic Messages request → Converse request body (reference §2 and §7).
//!
//! The result is the JSON body for `POST /model/{id}/converse[-stream]`; the model id and the
//! stream flag travel in the URL, so they are not in it. Rules that keep Bedrock from
//! answering 400: `role:"system"` messages are folded into `system`; roles alternate and
//! start with `user`; blank text is dropped (an emptied message gets "."); thinking blocks are
//! kept only in the latest assistant turn (earlier ones carry first-party signatures Bedrock
//! may reject); cache points go after their block, at most 4, never after a reasoning block;
//! `top_p` is dropped next to `temperature`; betas pass through an allow-list.

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

/// Translates a parsed Anthropic request.
pub fn anthropic_to_converse(
    req: &Value,
    options: &TranslateOptions<'_>,
) -> Result<Value, RequestError> {
    let req = req
        .as_object()
        .ok_or_else(|| invalid("The request body must be a JSON object."))?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages: field required"))?;
    let mut cache = CacheBudget::new(options.prompt_caching);
    let mut out = Map::new();

    // tools first: cache-point order is tools → system → messages.
    let thinking_on = !options.strip_thinking
        && req
            .get("thinking")
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == "enabled" || t == "adaptive");
    if let Some(tool_config) = tool_config(req, &mut cache, thinking_on) {
        out.insert("toolConfig".into(), tool_config);
    }

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
                let blocks = content_blocks(content, keep_thinking, &mut cache)?;
                match converse_messages.last_mut() {
                    Some((last_role, last_blocks)) if last_role == role => {
                        last_blocks.extend(blocks)
                    }
                    _ => converse_messages.push((role.to_owned(), blocks)),
                }
            }
            other => {
                return Err(invalid(format!(
                    "messages.{i}.role: unexpected role {other:?}"
                )));
            }
        }
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
    let max_tokens = req
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("max_tokens: field required"))?
        .clamp(1, u64::from(options.max_output_tokens));
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
                let budget = thinking
                    .get("budget_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(1024);
                let budget = budget.min(max_tokens.saturating_sub(1)).max(1024);
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
    Ok(Value::Object(out))
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
            "thinking" if keep_thinking => Some(json!({"reasoningContent": {"reasoningText": {
                "text": block.get("thinking").cloned().unwrap_or_else(|| json!("")),
                "signature": block.get("signature").cloned().unwrap_or_else(|| json!("")),
            }}})),
            "redacted_thinking" if keep_thinking => Some(
                json!({"reasoningContent": {"redactedContent": block.get("data").cloned().unwrap_or(Value::Null)}}),
            ),
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

fn tool_config(
    req: &Map<String, Value>,
    cache: &mut CacheBudget,
    thinking_on: bool,
) -> Option<Value> {
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
    if specs.is_empty() {
        return None;
    }
    let mut config = json!({"tools": specs});
    let choice = req
        .get("tool_choice")
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str);
    let choice = match choice {
        Some("any") if !thinking_on => Some(json!({"any": {}})),
        Some("tool") if !thinking_on => req
            .get("tool_choice")
            .and_then(|c| c.get("name"))
            .map(|name| json!({"tool": {"name": name}})),
        Some("auto") => Some(json!({"auto": {}})),
        _ => None, // none, or a forced choice with thinking on (Anthropic allows only auto then)
    };
    if let Some(choice) = choice {
        config["toolChoice"] = choice;
    }
    Some(config)
}
