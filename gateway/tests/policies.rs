#![allow(clippy::unwrap_used)]
//! Usage policies end to end through the real gateway: per-user routing (plan_first,
//! bedrock_only, plan_only) and the monthly Bedrock budget, with a fake Plan answering 429
//! and a fake Bedrock runtime. Changes are made in the database, as the admin API does, and
//! are honoured within the key-cache TTL (1 s here). Routing and budgets run on SQLite and on
//! PostgreSQL; a moved gateway clock takes a budget across a month boundary.

mod common;

use ccp_core::clock::WallClock;
use ccp_core::domain::Routing;
use ccp_core::routing::budget::{month_start, next_month_start};
use ccp_core::store::UserPatch;
use ccp_testkit::bedrock as fake;
use ccp_testkit::{RecordedRequest, Reply};
use chrono::{DateTime, Utc};
use common::{Engine, Harness, Setup, anthropic_error};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn plan_429(_: &RecordedRequest) -> Reply {
    Reply::json(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}"#,
    )
    .with_header("retry-after", "17")
}

/// Non-streaming answers: 11 input and 5 output tokens each.
fn bedrock_ok(_: &RecordedRequest) -> Reply {
    fake::converse_reply("Hello from Bedrock")
}

fn body() -> Value {
    json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "say hi"}],
    })
}

async fn post(h: &Harness) -> reqwest::Response {
    h.client
        .post(h.url("/v1/messages"))
        .header("authorization", "Bearer sk-ant-oat01-policytest")
        .header("anthropic-version", "2023-06-01")
        .json(&body())
        .send()
        .await
        .unwrap()
}

async fn set_routing(h: &Harness, routing: Routing) {
    let patch = UserPatch {
        routing: Some(routing),
        ..UserPatch::default()
    };
    h.store.update_user(h.user_id, patch).await.unwrap();
}

/// `None` removes the budget.
async fn set_budget(h: &Harness, micro_usd: Option<i64>) {
    let patch = UserPatch {
        monthly_budget_micro_usd: Some(micro_usd),
        ..UserPatch::default()
    };
    h.store.update_user(h.user_id, patch).await.unwrap();
}

/// Posts until an answer passes `done` (a change reaching the gateway's caches); returns it.
async fn post_until(
    h: &Harness,
    what: &str,
    done: impl Fn(&reqwest::Response) -> bool,
) -> reqwest::Response {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let resp = post(h).await;
        if done(&resp) {
            return resp;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each Bedrock answer costs exactly $0.05: 5 output tokens at $10 000 per million.
fn price_file(dir: &std::path::Path) -> String {
    let path = dir.join("prices.toml");
    write_prices(&path, "10000.0");
    path.display().to_string()
}

fn write_prices(path: &std::path::Path, output_per_million: &str) {
    std::fs::write(
        path,
        format!(
            "[[price]]\nmodel = \"anthropic.claude-sonnet-4-5*\"\neffective_from = \"2026-01-01\"\n\
             input = 0.0\noutput = {output_per_million}\ncache_write_5m = 0.0\ncache_read = 0.0\n"
        ),
    )
    .unwrap();
}

/// A harness whose budget answers cost $0.05 each, on `engine`, with `clock`.
async fn budget_harness(engine: Engine, clock: Option<WallClock>) -> (Harness, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let prices = price_file(dir.path());
    let h = Harness::start_failover_with(
        plan_429,
        bedrock_ok,
        &[("key_cache_ttl_secs", "1"), ("pricing_file", &prices)],
        Setup { engine, clock },
    )
    .await;
    (h, dir)
}

/// Posts until one answer is not a 200 (the budget reached) and returns it, asserting that
/// exactly `expected` were served by Bedrock before it.
async fn serve_until_refused(h: &Harness, expected: usize) -> reqwest::Response {
    let mut served = 0;
    loop {
        let resp = post(h).await;
        if resp.status() != 200 {
            assert_eq!(served, expected, "every cent of the budget is usable");
            return resp;
        }
        assert_eq!(resp.headers()["x-ccp-upstream"], "bedrock");
        served += 1;
        assert!(served <= expected, "the budget was overshot");
    }
}

async fn spend_in_month_of(h: &Harness, at: DateTime<Utc>) -> i64 {
    h.store
        .bedrock_spend_between(h.user_id, month_start(at), next_month_start(at))
        .await
        .unwrap()
}

macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Engine::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Engine::Postgres).await;
                }
            )*
        }
    };
}

on_both_engines!(
    routing_sends_each_user_where_their_policy_says,
    a_monthly_budget_ends_failover_at_the_budget_and_bedrock_only_gets_a_429,
    a_used_up_budget_opens_again_when_the_gateway_clock_enters_the_next_month,
);

async fn routing_sends_each_user_where_their_policy_says(engine: Engine) {
    let h = Harness::start_failover_with(
        plan_429,
        bedrock_ok,
        &[("key_cache_ttl_secs", "1")],
        Setup {
            engine,
            clock: None,
        },
    )
    .await;

    // plan_first (the default): Plan's 429 fails over.
    let resp = post(&h).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-ccp-upstream"], "bedrock");
    let row = common::logged(&h, &resp).await;
    assert_eq!(row.routing.as_deref(), Some("plan_first"));
    assert_eq!(row.route, "plan_bedrock");

    // plan_only: the 429 is relayed as Plan sent it, even with a Bedrock key.
    set_routing(&h, Routing::PlanOnly).await;
    let resp = post_until(&h, "plan_only is honoured", |r| r.status() == 429).await;
    assert_eq!(resp.headers()["retry-after"], "17");
    let row = common::logged(&h, &resp).await;
    assert_eq!(row.routing.as_deref(), Some("plan_only"));
    assert_eq!(row.route, "plan");
    assert_eq!(row.failover_skip.as_deref(), Some("plan_only"));
    let (kind, message) = anthropic_error(&resp.bytes().await.unwrap());
    assert_eq!(kind, "rate_limit_error");
    assert!(message.contains("Number of requests"), "{message}");

    // bedrock_only: straight to Bedrock; Plan never sees the request.
    set_routing(&h, Routing::BedrockOnly).await;
    post_until(&h, "bedrock_only is honoured", |r| r.status() == 200).await;
    let plan_seen = h.upstream.requests().len();
    for _ in 0..3 {
        let resp = post(&h).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-ccp-upstream"], "bedrock");
        let row = common::logged(&h, &resp).await;
        assert_eq!(row.routing.as_deref(), Some("bedrock_only"));
        assert_eq!(row.route, "bedrock");
    }
    assert_eq!(
        h.upstream.requests().len(),
        plan_seen,
        "Plan was not called"
    );

    // bedrock_only without a Bedrock key: a 403 the SDKs do not retry, never a 500.
    h.store.delete_bedrock_key(h.key_id).await.unwrap();
    let resp = post_until(&h, "the missing Bedrock key is noticed", |r| {
        r.status() == 403
    })
    .await;
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let row = common::logged(&h, &resp).await;
    assert_eq!(row.error_type.as_deref(), Some("permission_error"));
    let (kind, message) = anthropic_error(&resp.bytes().await.unwrap());
    assert_eq!(kind, "permission_error");
    assert!(message.contains("no Bedrock API key"), "{message}");
    assert_eq!(
        h.upstream.requests().len(),
        plan_seen,
        "Plan was not called"
    );
}

/// The stated bound: requests run one at a time, so the budget is never overshot; with c at
/// once, by less than c requests' cost (each is checked just before its Bedrock call).
async fn a_monthly_budget_ends_failover_at_the_budget_and_bedrock_only_gets_a_429(engine: Engine) {
    let (h, _dir) = budget_harness(engine, None).await;
    // Set before the first request, so no gateway cache holds the key without it.
    set_budget(&h, Some(1_000_000)).await;

    // $1 at $0.05 a request: 20 requests fail over, then Plan's 429 is relayed.
    let last = serve_until_refused(&h, 20).await;
    assert_eq!(last.status(), 429);
    assert_eq!(last.headers()["retry-after"], "17", "Plan's own answer");
    let row = common::logged(&h, &last).await;
    assert_eq!(row.failover_skip.as_deref(), Some("over_budget"));
    assert_eq!(row.route, "plan");
    let (_, message) = anthropic_error(&last.bytes().await.unwrap());
    assert!(message.contains("Number of requests"), "{message}");

    // Everything served is written and priced: nothing lost, nothing counted twice.
    common::eventually("the spend is written", || async {
        spend_in_month_of(&h, Utc::now()).await == 1_000_000
    })
    .await;

    // Raising the budget opens Bedrock again; four at a time overshoot by less than four
    // requests' cost.
    set_budget(&h, Some(2_000_000)).await;
    post_until(&h, "the raised budget is seen", |r| r.status() == 200).await;
    loop {
        let (a, b, c, d) = tokio::join!(post(&h), post(&h), post(&h), post(&h));
        if [a, b, c, d].iter().all(|r| r.status() == 429) {
            break;
        }
    }
    let served_total = h.bedrock().requests().len() as i64;
    let spend = served_total * 50_000;
    assert!(spend >= 2_000_000, "the budget was usable: {spend}");
    assert!(
        spend < 2_000_000 + 4 * 50_000,
        "overshoot past the bound: {spend}"
    );

    // bedrock_only over budget: an Anthropic-shaped 429 that names the budget and tells the
    // SDKs not to retry.
    set_routing(&h, Routing::BedrockOnly).await;
    let resp = post_until(&h, "bedrock_only is honoured", |r| {
        r.headers().contains_key("x-should-retry")
    })
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=31 * 24 * 3600).contains(&retry_after), "{retry_after}");
    let (kind, message) = anthropic_error(&resp.bytes().await.unwrap());
    assert_eq!(kind, "rate_limit_error");
    assert!(message.contains("budget of $2.00"), "{message}");
    assert!(message.contains("UTC"), "{message}");
    assert_eq!(h.bedrock().requests().len() as i64, served_total);
    let plan_seen = h.upstream.requests().len();
    assert_eq!(post(&h).await.status(), 429);
    assert_eq!(
        h.upstream.requests().len(),
        plan_seen,
        "Plan was not called"
    );

    // Removing the budget lifts it.
    set_budget(&h, None).await;
    common::eventually("the budget is lifted", || async {
        post(&h).await.status() == 200
    })
    .await;
}

/// The gateway's clock stands 10 s before the end of a month, then moves into the next one:
/// the used-up budget opens again, the new month's spend is counted from zero and stamped
/// with the new month, and the refusals' `retry-after` counts down to the right month end.
async fn a_used_up_budget_opens_again_when_the_gateway_clock_enters_the_next_month(engine: Engine) {
    let end_of_month = next_month_start(Utc::now());
    let now = Arc::new(Mutex::new(end_of_month - chrono::Duration::seconds(10)));
    let read = Arc::clone(&now);
    let clock = WallClock::new(move || *read.lock().unwrap());
    let (h, _dir) = budget_harness(engine, Some(clock)).await;
    set_budget(&h, Some(1_000_000)).await;
    set_routing(&h, Routing::BedrockOnly).await;

    let refused = serve_until_refused(&h, 20).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["retry-after"],
        "10",
        "seconds to the month's end"
    );
    let (_, message) = anthropic_error(&refused.bytes().await.unwrap());
    let reopens = end_of_month.format("%Y-%m-%d 00:00 UTC").to_string();
    assert!(message.contains(&reopens), "{message}");
    let last_month = end_of_month - chrono::Duration::days(1);
    common::eventually("the old month's spend is written", || async {
        spend_in_month_of(&h, last_month).await == 1_000_000
    })
    .await;

    // Five seconds into the next month: the budget is whole again, and used up again after
    // exactly 20 more answers.
    let new_month = end_of_month + chrono::Duration::seconds(5);
    *now.lock().unwrap() = new_month;
    let refused = serve_until_refused(&h, 20).await;
    assert_eq!(refused.status(), 429);
    let to_next_end = next_month_start(new_month) - new_month;
    assert_eq!(
        refused.headers()["retry-after"],
        to_next_end.num_seconds().to_string().as_str()
    );
    // Only rows stamped by the gateway's clock can land in the new month.
    common::eventually("the new month's spend is written", || async {
        spend_in_month_of(&h, new_month).await == 1_000_000
    })
    .await;
    assert_eq!(spend_in_month_of(&h, last_month).await, 1_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_are_read_again_on_sighup_and_a_broken_file_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let prices = price_file(dir.path());
    let mut h = Harness::start_failover(plan_429, bedrock_ok, &[]).await;
    h.stop_gateway().await;
    let gateway = h
        .spawn_binary(&[("CCP_PRICING_FILE", prices.as_str())])
        .await;
    let (child, log_path) = (gateway.child, gateway.log);
    let cost = |resp: reqwest::Response| {
        let h = &h;
        async move { common::logged(h, &resp).await.cost_micro_usd }
    };
    let hangup = |marker: &'static str, seen: usize| {
        let log_path = log_path.clone();
        let pid = child.id().to_string();
        async move {
            std::process::Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap();
            common::eventually(marker, || {
                let log_path = log_path.clone();
                async move {
                    std::fs::read_to_string(&log_path)
                        .unwrap_or_default()
                        .matches(marker)
                        .count()
                        > seen
                }
            })
            .await;
        }
    };

    assert_eq!(cost(post(&h).await).await, Some(50_000));
    write_prices(std::path::Path::new(&prices), "20000.0");
    hangup("prices reloaded", 0).await;
    assert_eq!(cost(post(&h).await).await, Some(100_000));

    // A broken file: the reason is logged, the prices in force stay, the gateway serves on.
    std::fs::write(&prices, "[[price]]\nmodel = 3\n").unwrap();
    hangup("the price file did not load", 0).await;
    assert_eq!(cost(post(&h).await).await, Some(100_000));

    common::sigterm(&child);
    let mut child = child;
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
