//! System blocks, the conversation's turns and their content blocks (text, images,
//! documents, tool use and results, thinking).

use super::thinking::usable_thinking;
use super::{CacheBudget, Repair, RequestError, invalid, is_blank};
use serde_json::{Value, json};

/// The conversation as Converse turns: `role:"system"` messages folded into `system`, adjacent
/// turns of one role merged, thinking kept only in the latest assistant turn.
pub(super) fn turns(
    messages: &[Value],
    strip_thinking: bool,
    system: &mut Vec<Value>,
    cache: &mut CacheBudget,
    repairs: &mut Vec<Repair>,
) -> Result<Vec<(String, Vec<Value>)>, RequestError> {
    let last_assistant = messages
        .iter()
        .rposition(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let content = message.get("content").unwrap_or(&Value::Null);
        match role {
            // Claude Code 5.5 models send mid-conversation system turns; Converse has none.
            "system" => system_blocks(Some(content), system, cache)?,
            "user" | "assistant" => {
                let keep_thinking = !strip_thinking && Some(i) == last_assistant;
                let blocks = content_blocks(content, keep_thinking, cache, repairs)?;
                match turns.last_mut() {
                    Some((last_role, last_blocks)) if last_role == role => {
                        last_blocks.extend(blocks)
                    }
                    _ => turns.push((role.to_owned(), blocks)),
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
    Ok(turns)
}

/// The `messages` member: a first `user` turn when the conversation opens with the assistant,
/// and "." in a turn that would otherwise be empty.
pub(super) fn finish(mut turns: Vec<(String, Vec<Value>)>) -> Result<Value, RequestError> {
    if turns.first().is_some_and(|(role, _)| role == "assistant") {
        turns.insert(0, ("user".to_owned(), Vec::new()));
    }
    if turns.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    Ok(Value::Array(
        turns
            .into_iter()
            .map(|(role, mut blocks)| {
                if blocks.iter().all(|b| b.get("cachePoint").is_some()) {
                    blocks.insert(0, json!({"text": "."}));
                }
                json!({"role": role, "content": blocks})
            })
            .collect(),
    ))
}

pub(super) fn system_blocks(
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
