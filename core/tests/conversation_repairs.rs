//! Conversation repairs: histories the Anthropic API accepts that would break a Converse rule
//! (one table test per rule), and a property test: for random well-formed Anthropic
//! conversations, the translated request keeps every Converse invariant written down in
//! docs/architecture.md ("Conversation repairs").

#![allow(clippy::unwrap_used)]

use ccp_core::translate::request::{
    MIN_THINKING_BUDGET, Repair, TranslateOptions, Translated, translate,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn options(max_output_tokens: u32) -> TranslateOptions<'static> {
    TranslateOptions {
        max_output_tokens,
        betas: &[],
        prompt_caching: true,
        strip_thinking: false,
    }
}

fn run(body: &Value) -> Translated {
    translate(body, &options(64_000)).unwrap()
}

fn thinking(sig: &str) -> Value {
    json!({"type": "thinking", "thinking": "let me look", "signature": sig})
}

fn tool_use(id: &str) -> Value {
    json!({"type": "tool_use", "id": id, "name": "Bash", "input": {"command": "ls"}})
}

fn tool_result(id: &str) -> Value {
    json!({"type": "tool_result", "tool_use_id": id, "content": "a.txt"})
}

/// A tool round trip whose final assistant turn is `assistant`, with thinking `config`.
fn round_trip(assistant: Vec<Value>, config: Value, max_tokens: u64) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": max_tokens,
        "thinking": config,
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "list the files"},
            {"role": "assistant", "content": assistant},
            {"role": "user", "content": [tool_result("toolu_1")]},
        ],
    })
}

fn enabled(budget: u64) -> Value {
    json!({"type": "enabled", "budget_tokens": budget})
}

fn final_assistant(out: &Value) -> Vec<Value> {
    out["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant")
        .unwrap()["content"]
        .as_array()
        .unwrap()
        .clone()
}

fn thinking_config(out: &Value) -> Option<&Value> {
    out.get("additionalModelRequestFields")
        .and_then(|a| a.get("thinking"))
}

#[test]
fn a_well_formed_round_trip_needs_no_repair() {
    let t = run(&round_trip(
        vec![thinking("SIG"), tool_use("toolu_1")],
        enabled(4096),
        32_000,
    ));
    assert_eq!(t.repairs, []);
    assert_eq!(thinking_config(&t.body).unwrap()["budget_tokens"], 4096);
    assert!(
        final_assistant(&t.body)[0]
            .get("reasoningContent")
            .is_some()
    );
}

#[test]
fn thinking_on_but_the_tool_turn_ran_without_thinking_goes_without_thinking() {
    let t = run(&round_trip(
        vec![
            json!({"type": "text", "text": "Listing."}),
            tool_use("toolu_1"),
        ],
        enabled(4096),
        32_000,
    ));
    assert_eq!(t.repairs, [Repair::ThinkingOffForToolTurn]);
    assert!(thinking_config(&t.body).is_none());
    // Without thinking a forced tool choice and temperature are allowed again.
    let mut forced = round_trip(vec![tool_use("toolu_1")], enabled(4096), 32_000);
    forced["tool_choice"] = json!({"type": "any"});
    forced["temperature"] = json!(0.2);
    let t = run(&forced);
    assert_eq!(t.body["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(t.body["inferenceConfig"]["temperature"], 0.2);
}

#[test]
fn thinking_off_drops_thinking_blocks_from_history() {
    let t = run(&round_trip(
        vec![thinking("SIG"), tool_use("toolu_1")],
        json!({"type": "disabled"}),
        32_000,
    ));
    assert_eq!(t.repairs, [Repair::ThinkingBlocksDropped]);
    assert!(!t.body.to_string().contains("reasoningContent"));
    let no_config = run(&json!({
        "model": "m", "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [thinking("SIG"), {"type": "text", "text": "hello"}]},
            {"role": "user", "content": "again"},
        ],
    }));
    assert_eq!(no_config.repairs, [Repair::ThinkingBlocksDropped]);
    assert!(!no_config.body.to_string().contains("reasoningContent"));
}

#[test]
fn thinking_that_is_not_first_in_the_final_turn() {
    // With a tool use: Bedrock needs the turn to open with thinking; the blocks cannot be
    // reordered (they must come back unmodified), so the request goes without thinking.
    let t = run(&round_trip(
        vec![
            json!({"type": "text", "text": "Listing."}),
            thinking("SIG"),
            tool_use("toolu_1"),
        ],
        enabled(4096),
        32_000,
    ));
    assert_eq!(t.repairs, [Repair::ThinkingOffForToolTurn]);
    assert!(thinking_config(&t.body).is_none());
    assert!(!t.body.to_string().contains("reasoningContent"));
    // Without a tool use (the turn is over): the misplaced thinking goes, thinking stays on.
    let t = run(&json!({
        "model": "m", "max_tokens": 8000, "thinking": enabled(2048),
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}, thinking("SIG")]},
            {"role": "user", "content": "again"},
        ],
    }));
    assert_eq!(t.repairs, [Repair::MisplacedThinkingDropped]);
    assert_eq!(thinking_config(&t.body).unwrap()["budget_tokens"], 2048);
    assert!(!t.body.to_string().contains("reasoningContent"));
}

#[test]
fn unusable_thinking_is_dropped_and_the_tool_turn_rule_follows() {
    for block in [
        json!({"type": "redacted_thinking", "data": ""}),
        json!({"type": "redacted_thinking"}),
        json!({"type": "thinking", "thinking": "x", "signature": ""}),
        json!({"type": "thinking", "thinking": "x"}),
    ] {
        let t = run(&round_trip(
            vec![block.clone(), tool_use("toolu_1")],
            enabled(4096),
            32_000,
        ));
        assert_eq!(
            t.repairs,
            [
                Repair::UnusableThinkingDropped,
                Repair::ThinkingOffForToolTurn
            ],
            "{block}"
        );
        assert!(!t.body.to_string().contains("reasoningContent"), "{block}");
    }
    // A usable block next to an unusable one keeps the turn led by thinking.
    let t = run(&round_trip(
        vec![
            json!({"type": "redacted_thinking", "data": "UkVE"}),
            json!({"type": "redacted_thinking", "data": ""}),
            tool_use("toolu_1"),
        ],
        enabled(4096),
        32_000,
    ));
    assert_eq!(t.repairs, [Repair::UnusableThinkingDropped]);
    assert_eq!(
        final_assistant(&t.body)[0],
        json!({"reasoningContent": {"redactedContent": "UkVE"}})
    );
    // Omitted thinking text (display: omitted) is fine as long as the signature is there.
    let t = run(&round_trip(
        vec![
            json!({"type": "thinking", "thinking": "", "signature": "SIG"}),
            tool_use("toolu_1"),
        ],
        enabled(4096),
        32_000,
    ));
    assert_eq!(t.repairs, []);
}

#[test]
fn budgets_outside_the_bedrock_range_are_clamped_or_thinking_goes() {
    let cases: [(u64, u64, Option<u64>, &[Repair]); 5] = [
        (32_000, 4_096, Some(4_096), &[]),
        (
            32_000,
            32_000,
            Some(31_999),
            &[Repair::ThinkingBudgetClamped],
        ),
        (
            32_000,
            50_000,
            Some(31_999),
            &[Repair::ThinkingBudgetClamped],
        ),
        (32_000, 100, Some(1_024), &[Repair::ThinkingBudgetClamped]),
        (1_024, 512, None, &[Repair::ThinkingOffMaxTokensTooSmall]),
    ];
    for (max_tokens, budget, want, repairs) in cases {
        let body = json!({
            "model": "m", "max_tokens": max_tokens, "thinking": enabled(budget),
            "messages": [{"role": "user", "content": "hi"}],
        });
        let t = run(&body);
        assert_eq!(t.repairs, repairs, "max {max_tokens} budget {budget}");
        assert_eq!(
            thinking_config(&t.body).map(|c| c["budget_tokens"].as_u64().unwrap()),
            want,
            "max {max_tokens} budget {budget}"
        );
    }
    // max_tokens above the model's cap is clamped first; the budget follows it.
    let body = json!({
        "model": "m", "max_tokens": 64_000, "thinking": enabled(40_000),
        "messages": [{"role": "user", "content": "hi"}],
    });
    let t = translate(&body, &options(32_000)).unwrap();
    assert_eq!(t.body["inferenceConfig"]["maxTokens"], 32_000);
    assert_eq!(thinking_config(&t.body).unwrap()["budget_tokens"], 31_999);
}

// ---- The property test ------------------------------------------------------------------

/// One assistant block, as Claude Code histories have them (some unusable on purpose).
fn assistant_block() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z ]{0,12}".prop_map(|t| json!({"type": "text", "text": t})),
        (
            "[a-z ]{0,8}",
            prop_oneof![Just(String::new()), "[A-Za-z0-9]{4,12}"]
        )
            .prop_map(|(t, sig)| json!({"type": "thinking", "thinking": t, "signature": sig})),
        prop_oneof![Just(String::new()), "[A-Za-z0-9=]{4,12}"]
            .prop_map(|d| json!({"type": "redacted_thinking", "data": d})),
    ]
}

#[derive(Debug, Clone)]
struct Turn {
    /// Blocks before the tool uses (text, thinking in any order).
    blocks: Vec<Value>,
    /// Tool uses at the end of the assistant turn (answered by the next user turn).
    tools: usize,
    /// A user text next to the tool results.
    user_text: Option<String>,
    /// A mid-conversation system turn before the next user turn (Claude Code 5.5).
    system: bool,
    cache: bool,
}

fn turn() -> impl Strategy<Value = Turn> {
    (
        prop::collection::vec(assistant_block(), 0..4),
        0usize..3,
        prop::option::of("[a-z ]{0,10}"),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(blocks, tools, user_text, system, cache)| Turn {
            blocks,
            tools,
            user_text,
            system,
            cache,
        })
}

fn conversation() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(turn(), 0..6),
        prop_oneof![
            Just(json!(null)),
            Just(json!({"type": "adaptive"})),
            (0u64..70_000).prop_map(|b| json!({"type": "enabled", "budget_tokens": b})),
            Just(json!({"type": "disabled"})),
        ],
        1u64..80_000,
        prop::option::of(prop_oneof![
            Just(json!({"type": "auto"})),
            Just(json!({"type": "any"})),
            Just(json!({"type": "tool", "name": "Bash"})),
        ]),
        "[a-z ]{0,10}",
    )
        .prop_map(|(turns, thinking, max_tokens, choice, first)| {
            let mut messages = vec![json!({"role": "user", "content": first})];
            let mut next_id = 0;
            for turn in turns {
                let mut assistant = turn.blocks.clone();
                let mut results = Vec::new();
                for _ in 0..turn.tools {
                    let id = format!("toolu_{next_id}");
                    next_id += 1;
                    assistant.push(tool_use(&id));
                    results.push(tool_result(&id));
                }
                if turn.cache
                    && let Some(last) = assistant.last_mut()
                    && last["type"] == "text"
                {
                    last["cache_control"] = json!({"type": "ephemeral"});
                }
                messages.push(json!({"role": "assistant", "content": assistant}));
                if turn.system {
                    messages.push(json!({"role": "system", "content": "reminder"}));
                }
                if let Some(text) = turn.user_text {
                    results.push(json!({"type": "text", "text": text}));
                }
                if results.is_empty() {
                    results.push(json!({"type": "text", "text": "go on"}));
                }
                messages.push(json!({"role": "user", "content": results}));
            }
            let mut body = json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": max_tokens,
                "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
                "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
                "messages": messages,
            });
            if !thinking.is_null() {
                body["thinking"] = thinking;
            }
            if let Some(choice) = choice {
                body["tool_choice"] = choice;
            }
            body
        })
}

fn is_blank_text(block: &Value) -> bool {
    block
        .get("text")
        .and_then(Value::as_str)
        .is_some_and(|t| t.trim().is_empty())
}

/// The Converse invariants (docs/architecture.md, "Conversation repairs").
fn check_invariants(out: &Value) -> Result<(), TestCaseError> {
    let messages = out["messages"].as_array().unwrap();
    prop_assert!(!messages.is_empty());
    prop_assert_eq!(&messages[0]["role"], "user", "starts with user");
    for pair in messages.windows(2) {
        prop_assert_ne!(&pair[0]["role"], &pair[1]["role"], "roles alternate");
    }
    let thinking = out
        .get("additionalModelRequestFields")
        .and_then(|a| a.get("thinking"));
    let max_tokens = out["inferenceConfig"]["maxTokens"].as_u64().unwrap();
    if let Some(budget) = thinking.and_then(|t| t.get("budget_tokens")) {
        let budget = budget.as_u64().unwrap();
        prop_assert!((MIN_THINKING_BUDGET..max_tokens).contains(&budget));
    }
    let last_assistant = messages.iter().rposition(|m| m["role"] == "assistant");
    let mut cache_points = 0;
    let mut open_tool_uses: Vec<String> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let content = message["content"].as_array().unwrap();
        prop_assert!(
            content.iter().any(|b| b.get("cachePoint").is_none()),
            "no empty content"
        );
        prop_assert!(!content.iter().any(is_blank_text), "no blank text");
        for (j, block) in content.iter().enumerate() {
            if block.get("cachePoint").is_some() {
                cache_points += 1;
                prop_assert!(j > 0, "a cache point follows a block");
                prop_assert!(
                    content[j - 1].get("reasoningContent").is_none(),
                    "never after reasoning"
                );
            }
            if let Some(reasoning) = block.get("reasoningContent") {
                prop_assert_eq!(Some(i), last_assistant, "thinking only in the final turn");
                prop_assert!(thinking.is_some(), "thinking blocks only with thinking on");
                // Interleaved thinking may follow text later in the turn; the turn opens
                // with thinking.
                prop_assert!(
                    content[0].get("reasoningContent").is_some(),
                    "thinking first"
                );
                if let Some(text) = reasoning.get("reasoningText") {
                    prop_assert!(!text["signature"].as_str().unwrap().is_empty());
                } else {
                    prop_assert!(!reasoning["redactedContent"].as_str().unwrap().is_empty());
                }
            }
        }
        if message["role"] == "assistant" {
            open_tool_uses = content
                .iter()
                .filter_map(|b| b["toolUse"]["toolUseId"].as_str())
                .map(str::to_owned)
                .collect();
            if thinking.is_some() && Some(i) == last_assistant && !open_tool_uses.is_empty() {
                prop_assert!(
                    content[0].get("reasoningContent").is_some(),
                    "a tool turn opens with thinking when thinking is on"
                );
            }
        } else {
            for block in content {
                if let Some(id) = block["toolResult"]["toolUseId"].as_str() {
                    prop_assert!(
                        open_tool_uses.iter().any(|u| u == id),
                        "tool result {} answers a tool use of the turn before",
                        id
                    );
                }
            }
        }
    }
    cache_points += out["system"].as_array().map_or(0, |s| {
        s.iter().filter(|b| b.get("cachePoint").is_some()).count()
    });
    prop_assert!(cache_points <= 4);
    if thinking.is_some()
        && let Some(choice) = out.get("toolConfig").and_then(|c| c.get("toolChoice"))
    {
        prop_assert!(choice.get("auto").is_some(), "only auto with thinking");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn translated_conversations_keep_the_converse_invariants(body in conversation()) {
        let translated = translate(&body, &options(64_000)).unwrap();
        check_invariants(&translated.body)?;
        // The one retry after a refused signature keeps them too.
        let stripped = TranslateOptions { strip_thinking: true, ..options(64_000) };
        let retry = translate(&body, &stripped).unwrap();
        check_invariants(&retry.body)?;
        prop_assert!(!retry.body.to_string().contains("reasoningContent"));
    }
}
