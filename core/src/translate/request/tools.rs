//! Tools: custom tools as Converse tool specs, and the tool choice.

use super::{CacheBudget, is_blank};
use serde_json::{Map, Value, json};

/// The `toolConfig` member.
pub(super) fn config(specs: Vec<Value>, req: &Map<String, Value>, thinking_on: bool) -> Value {
    let mut config = json!({"tools": specs});
    if let Some(choice) = choice(req, thinking_on) {
        config["toolChoice"] = choice;
    }
    config
}

/// The custom tools as Converse `toolSpec`s, with their cache points.
pub(super) fn specs(req: &Map<String, Value>, cache: &mut CacheBudget) -> Option<Vec<Value>> {
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
fn choice(req: &Map<String, Value>, thinking_on: bool) -> Option<Value> {
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
