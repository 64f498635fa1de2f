//! Thinking: whether the request keeps it, the repairs that keep a history Bedrock accepts
//! (docs/architecture.md, "Conversation repairs"), and the Converse form of a thinking block.

use super::{MIN_THINKING_BUDGET, Repair};
use serde_json::{Map, Value, json};

/// Whether thinking is on for this request: asked for, not stripped (the retry), and with room
/// for Bedrock's minimum budget.
pub(super) fn requested(
    req: &Map<String, Value>,
    strip_thinking: bool,
    max_tokens: u64,
    repairs: &mut Vec<Repair>,
) -> bool {
    let mode = req
        .get("thinking")
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        .filter(|t| *t == "enabled" || *t == "adaptive");
    if strip_thinking || mode.is_none() {
        return false;
    }
    if mode == Some("enabled") && max_tokens <= MIN_THINKING_BUDGET {
        repairs.push(Repair::ThinkingOffMaxTokensTooSmall);
        return false;
    }
    true
}

/// The `thinking` member of `additionalModelRequestFields`, with the budget kept inside
/// `[MIN_THINKING_BUDGET, max_tokens)`.
pub(super) fn config(
    req: &Map<String, Value>,
    max_tokens: u64,
    repairs: &mut Vec<Repair>,
) -> Option<Value> {
    let thinking = req.get("thinking")?.as_object()?;
    match thinking.get("type").and_then(Value::as_str)? {
        "enabled" => {
            let asked = thinking.get("budget_tokens").and_then(Value::as_u64);
            // max_tokens > MIN_THINKING_BUDGET here (else thinking is off).
            let budget = asked
                .unwrap_or(MIN_THINKING_BUDGET)
                .clamp(MIN_THINKING_BUDGET, max_tokens - 1);
            if asked.is_some_and(|b| b != budget) {
                repairs.push(Repair::ThinkingBudgetClamped);
            }
            Some(json!({"type": "enabled", "budget_tokens": budget}))
        }
        "adaptive" => Some(json!({"type": "adaptive"})),
        _ => None,
    }
}

fn is_reasoning(block: &Value) -> bool {
    block.get("reasoningContent").is_some()
}
/// Applies the thinking rules to the final assistant turn (the only one that kept its
/// thinking blocks) and returns whether thinking stays on. With thinking on, a final turn
/// that uses a tool must open with thinking, else the request goes without thinking; a
/// final turn without tool use keeps only thinking that opens it. With thinking off, no
/// thinking block is sent.
pub(super) fn repair_final_turn(
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
/// The Converse form of a thinking or redacted-thinking block, or `None` when Bedrock could
/// not take it back: a thinking block needs its signature, redacted thinking its data.
pub(super) fn usable_thinking(block: &Value) -> Option<Value> {
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
