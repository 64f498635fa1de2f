//! Converse JSON response → Anthropic Messages JSON (reference §3).

use super::stream::{ConverseUsage, StreamUsage, map_stop_reason};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("the Converse response is not valid: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    output: Output,
    stop_reason: String,
    usage: ConverseUsage,
    additional_model_response_fields: Option<Value>,
}

#[derive(Deserialize)]
struct Output {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Vec<Block>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Block {
    text: Option<String>,
    tool_use: Option<ToolUse>,
    reasoning_content: Option<Reasoning>,
    citations_content: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse {
    tool_use_id: String,
    name: String,
    input: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reasoning {
    reasoning_text: Option<ReasoningText>,
    redacted_content: Option<String>,
}

#[derive(Deserialize)]
struct ReasoningText {
    text: String,
    signature: Option<String>,
}

/// Builds the Anthropic message. `model` is the name the client asked for.
pub fn converse_to_anthropic(
    body: &[u8],
    message_id: &str,
    model: &str,
) -> Result<Value, ResponseError> {
    let response: ConverseResponse =
        serde_json::from_slice(body).map_err(|e| ResponseError::Invalid(e.to_string()))?;
    let content: Vec<Value> = response
        .output
        .message
        .content
        .into_iter()
        .filter_map(block)
        .collect();
    let stop_sequence = response
        .additional_model_response_fields
        .as_ref()
        .and_then(|f| f.get("stop_sequence"))
        .cloned()
        .unwrap_or(Value::Null);
    let usage = StreamUsage::from(response.usage);
    Ok(json!({
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": map_stop_reason(&response.stop_reason),
        "stop_sequence": stop_sequence,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        }
    }))
}

fn block(b: Block) -> Option<Value> {
    if let Some(text) = b.text {
        return Some(json!({"type": "text", "text": text}));
    }
    if let Some(tool) = b.tool_use {
        return Some(
            json!({"type": "tool_use", "id": tool.tool_use_id, "name": tool.name, "input": tool.input}),
        );
    }
    if let Some(reasoning) = b.reasoning_content {
        if let Some(text) = reasoning.reasoning_text {
            return Some(
                json!({"type": "thinking", "thinking": text.text, "signature": text.signature.unwrap_or_default()}),
            );
        }
        if let Some(data) = reasoning.redacted_content {
            return Some(json!({"type": "redacted_thinking", "data": data}));
        }
    }
    if let Some(cited) = b.citations_content {
        let text: String = cited
            .get("content")
            .and_then(Value::as_array)
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let citations = cited.get("citations").cloned().unwrap_or_else(|| json!([]));
        return Some(json!({"type": "text", "text": text, "citations": citations}));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_text_tool_use_thinking_and_usage() {
        let body = json!({
            "output": {"message": {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig=="}}},
                {"text": "Running it."},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "Bash", "input": {"command": "ls"}}},
                {"reasoningContent": {"redactedContent": "AAEC"}}
            ]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30, "cacheReadInputTokens": 5, "cacheWriteInputTokens": 7},
            "metrics": {"latencyMs": 100}
        });
        let msg = converse_to_anthropic(
            body.to_string().as_bytes(),
            "msg_bdrk_1",
            "claude-sonnet-4-5",
        )
        .unwrap();
        assert_eq!(msg["id"], "msg_bdrk_1");
        assert_eq!(msg["model"], "claude-sonnet-4-5");
        assert_eq!(msg["stop_reason"], "tool_use");
        assert_eq!(msg["stop_sequence"], Value::Null);
        assert_eq!(
            msg["content"],
            json!([
                {"type": "thinking", "thinking": "hmm", "signature": "sig=="},
                {"type": "text", "text": "Running it."},
                {"type": "tool_use", "id": "tooluse_1", "name": "Bash", "input": {"command": "ls"}},
                {"type": "redacted_thinking", "data": "AAEC"}
            ])
        );
        assert_eq!(
            msg["usage"],
            json!({"input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 7})
        );
    }

    #[test]
    fn stop_sequence_and_refusals() {
        let body = json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "a"}]}},
            "stopReason": "stop_sequence",
            "additionalModelResponseFields": {"stop_sequence": "###"},
            "usage": {"inputTokens": 1, "outputTokens": 1}
        });
        let msg = converse_to_anthropic(body.to_string().as_bytes(), "m", "x").unwrap();
        assert_eq!(
            (msg["stop_reason"].as_str(), msg["stop_sequence"].as_str()),
            (Some("stop_sequence"), Some("###"))
        );
        let mut filtered = body.clone();
        filtered["stopReason"] = json!("content_filtered");
        let msg = converse_to_anthropic(filtered.to_string().as_bytes(), "m", "x").unwrap();
        assert_eq!(msg["stop_reason"], "refusal");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(converse_to_anthropic(b"{", "m", "x").is_err());
        assert!(converse_to_anthropic(b"{\"output\":{}}", "m", "x").is_err());
    }
}
