//! Inference settings: `inferenceConfig` (max tokens, temperature or top_p, stop sequences),
//! `additionalModelRequestFields` (top_k, thinking, parallel tool use, betas) and
//! `outputConfig`.

use super::{Repair, thinking};
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

/// Adds the inference members to `out`.
pub(super) fn insert(
    out: &mut Map<String, Value>,
    req: &Map<String, Value>,
    betas: &[&str],
    max_tokens: u64,
    thinking_on: bool,
    repairs: &mut Vec<Repair>,
) {
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

    let mut additional = Map::new();
    if let Some(k) = req.get("top_k").filter(|_| !thinking_on) {
        additional.insert("top_k".into(), k.clone());
    }
    if thinking_on && let Some(config) = thinking::config(req, max_tokens, repairs) {
        additional.insert("thinking".into(), config);
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
    let betas: Vec<&str> = betas
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
}
