//! Anthropic → Converse request translation on a Claude Code-shaped request
//! (fixtures/translate/claude_code_tool_round_trip.json).

#![allow(clippy::unwrap_used)]

use ccp_core::translate::request::{RequestError, TranslateOptions, anthropic_to_converse};
use serde_json::{Value, json};

fn fixture() -> Value {
    serde_json::from_str(include_str!(
        "fixtures/translate/claude_code_tool_round_trip.json"
    ))
    .unwrap()
}

fn options() -> TranslateOptions<'static> {
    TranslateOptions {
        max_output_tokens: 64_000,
        betas: &[
            "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
            "effort-2025-11-24",
        ],
        prompt_caching: true,
        strip_thinking: false,
    }
}

fn translate(body: &Value) -> Value {
    anthropic_to_converse(body, &options()).unwrap()
}

#[test]
fn system_blocks_and_mid_conversation_system_turns_fold_into_system() {
    let out = translate(&fixture());
    let system = out["system"].as_array().unwrap();
    let texts: Vec<&str> = system.iter().filter_map(|b| b["text"].as_str()).collect();
    assert_eq!(texts.len(), 4);
    assert!(texts[0].starts_with("x-anthropic-billing-header"));
    assert_eq!(texts[3], "# Environment\ncwd: /repo");
    assert_eq!(
        system[2],
        json!({"cachePoint": {"type": "default"}}),
        "cache point right after the marked block"
    );
    assert_eq!(
        system[4],
        json!({"cachePoint": {"type": "default", "ttl": "1h"}})
    );
}

#[test]
fn roles_alternate_and_blank_text_is_dropped() {
    let out = translate(&fixture());
    let messages = out["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"]);
    // The tool_result turn and the "and again" turn merged; the blank text vanished.
    let merged = messages[2]["content"].as_array().unwrap();
    assert!(merged.iter().all(|b| {
        b.get("text")
            .is_none_or(|t| !t.as_str().unwrap().trim().is_empty())
    }));
    assert_eq!(merged.last().unwrap(), &json!({"text": "and again"}));
    for message in messages {
        assert!(!message["content"].as_array().unwrap().is_empty());
    }
}

#[test]
fn tool_round_trip_maps_to_tool_use_and_tool_result() {
    let out = translate(&fixture());
    let messages = out["messages"].as_array().unwrap();
    let assistant = messages[1]["content"].as_array().unwrap();
    assert_eq!(
        assistant[1],
        json!({"toolUse": {"toolUseId": "toolu_01", "name": "Bash", "input": {"command": "echo hi"}}})
    );
    let result = &messages[2]["content"][0]["toolResult"];
    assert_eq!(result["toolUseId"], "toolu_01");
    assert_eq!(result["status"], "error", "is_error becomes status");
    assert_eq!(
        result["content"],
        json!([{"text": "(empty)"}]),
        "empty results get a non-blank placeholder"
    );
    assert_eq!(
        messages[2]["content"][1],
        json!({"cachePoint": {"type": "default"}}),
        "cache point after the toolResult, not inside"
    );
    let last = &messages[4]["content"][0]["toolResult"];
    assert_eq!(
        last["content"][1],
        json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
    );
}

#[test]
fn thinking_survives_only_in_the_latest_assistant_turn() {
    let out = translate(&fixture());
    let text = out.to_string();
    assert!(
        !text.contains("OLD-SIG") && !text.contains("old thought"),
        "earlier thinking is stripped"
    );
    let latest = out["messages"][3]["content"].as_array().unwrap();
    assert_eq!(
        latest[0],
        json!({"reasoningContent": {"reasoningText": {"text": "new thought", "signature": "NEW-SIG"}}})
    );
    assert_eq!(
        latest[1],
        json!({"reasoningContent": {"redactedContent": "UkVEQUNURUQ="}})
    );
}

#[test]
fn tools_map_to_tool_specs_and_server_tools_are_dropped() {
    let out = translate(&fixture());
    let tools = out["toolConfig"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools
        .iter()
        .filter_map(|t| t["toolSpec"]["name"].as_str())
        .collect();
    assert_eq!(names, ["Bash", "Read", "DeferredToolPlaceholder"]);
    assert!(
        tools[1]["toolSpec"].get("description").is_none(),
        "empty descriptions are left out"
    );
    assert!(!out.to_string().contains("defer_loading"));
    assert_eq!(out["toolConfig"]["toolChoice"], json!({"auto": {}}));
    assert_eq!(
        out["additionalModelRequestFields"]["tool_choice"],
        json!({"disable_parallel_tool_use": true})
    );
}

#[test]
fn the_four_claude_code_cache_marks_all_become_cache_points() {
    let out = translate(&fixture());
    assert_eq!(out.to_string().matches("cachePoint").count(), 4);
}

#[test]
fn at_most_four_cache_points_in_tools_system_messages_order() {
    let marked =
        |text: &str| json!({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}});
    let body = json!({
        "model": "m", "max_tokens": 10,
        "tools": [{"name": "T", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        "system": [marked("s1"), marked("s2")],
        "messages": [{"role": "user", "content": [marked("u1"), marked("u2"), marked("u3")]}]
    });
    let out = translate(&body);
    assert_eq!(
        out["toolConfig"]["tools"][1],
        json!({"cachePoint": {"type": "default"}})
    );
    assert_eq!(
        out.to_string().matches("cachePoint").count(),
        4,
        "6 marks, Bedrock takes 4"
    );
    let user = out["messages"][0]["content"].as_array().unwrap();
    assert_eq!(user.len(), 4, "u1, its cache point, u2, u3");
    let no_caching = TranslateOptions {
        prompt_caching: false,
        strip_thinking: false,
        ..options()
    };
    assert!(
        !anthropic_to_converse(&body, &no_caching)
            .unwrap()
            .to_string()
            .contains("cachePoint")
    );
}

#[test]
fn inference_config_thinking_betas_and_dropped_fields() {
    let out = translate(&fixture());
    assert_eq!(
        out["inferenceConfig"],
        json!({"maxTokens": 64000}),
        "clamped; temperature 0.5 and top_p dropped with thinking on"
    );
    let extra = &out["additionalModelRequestFields"];
    assert_eq!(
        extra["thinking"],
        json!({"type": "enabled", "budget_tokens": 63999}),
        "budget kept below max tokens"
    );
    assert!(extra.get("top_k").is_none(), "no top_k with thinking on");
    assert_eq!(
        extra["anthropic_beta"],
        json!(["interleaved-thinking-2025-05-14", "effort-2025-11-24"])
    );
    assert_eq!(out["outputConfig"], json!({"effort": "medium"}));
    for gone in [
        "metadata",
        "context_management",
        "stream",
        "model",
        "display",
        "claude-code-20250219",
        "device_id",
    ] {
        assert!(
            !out.to_string().contains(gone),
            "{gone} must not reach Bedrock"
        );
    }
}

#[test]
fn without_thinking_temperature_wins_over_top_p_and_top_k_passes() {
    let mut body = fixture();
    let obj = body.as_object_mut().unwrap();
    obj.remove("thinking");
    obj.insert("stop_sequences".into(), json!(["", "###"]));
    let out = translate(&body);
    assert_eq!(out["inferenceConfig"]["temperature"], json!(0.5));
    assert!(out["inferenceConfig"].get("topP").is_none());
    assert_eq!(out["inferenceConfig"]["stopSequences"], json!(["###"]));
    assert_eq!(
        out["additionalModelResponseFieldPaths"],
        json!(["/stop_sequence"])
    );
    assert_eq!(out["additionalModelRequestFields"]["top_k"], json!(5));
    // Without thinking, earlier and latest thinking blocks alike are still only kept in the latest turn.
    assert!(!out.to_string().contains("OLD-SIG"));
}

#[test]
fn requests_bedrock_cannot_serve_are_client_errors() {
    let url_image = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]});
    assert!(matches!(
        anthropic_to_converse(&url_image, &options()),
        Err(RequestError::Invalid(_))
    ));
    for bad in [
        json!([]),
        json!({"max_tokens": 5}),
        json!({"messages": [{"role": "tool", "content": "x"}], "max_tokens": 5}),
        json!({"messages": [{"role": "user", "content": "x"}]}),
    ] {
        assert!(anthropic_to_converse(&bad, &options()).is_err(), "{bad}");
    }
}

#[test]
fn a_conversation_starting_with_the_assistant_gets_a_user_turn_first() {
    let body = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "yo"}]});
    let out = translate(&body);
    assert_eq!(
        out["messages"][0],
        json!({"role": "user", "content": [{"text": "."}]})
    );
    assert_eq!(out["messages"][1]["role"], "assistant");
}
