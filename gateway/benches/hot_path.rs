//! The gateway's own per-request work, piece by piece: what it adds on top of Pingora for a
//! Plan request. Run with `cargo bench -p ccp-gateway --bench hot_path`; the figures are in
//! docs/benchmarks.md.
//!
//! - `path_parse`: `/ak/{key}/v1/messages?beta=true` into the key and the upstream path;
//! - `key_check_warm`: `KeyAuthenticator::authenticate` on a cached key (SQLite behind it);
//! - `header_prep`: a Claude Code request header rewritten for the Plan upstream;
//! - `usage_tap_json`: token usage read from a 1 KB Messages answer as it passes;
//! - `stream_watch_50ev`: a 50-event Messages stream passed chunk by chunk (one event each,
//!   as the load test's upstream sends it) through the usage tap and the end-of-stream watch,
//!   which share one pass over its lines as in the gateway;
//! - `metering_record`: the finished request's row built, observed by the metrics and queued
//!   to the metering writer (which runs on its own thread, as in the gateway);
//! - `request_ctx`: a request's context created and dropped (its id, clock reads, counters);
//! - `access_line`: the access log line formatted as JSON and buffered, through the same
//!   subscriber, formatter and line buffer as the gateway's (the buffer's sink discards).

use ccp_core::auth::{AuthCacheSettings, AuthOutcome, KeyAuthenticator};
use ccp_core::clock::WallClock;
use ccp_core::keys::{AccessKey, Pepper};
use ccp_core::logging::{buffer::LineBuffer, json::JsonLines};
use ccp_core::metering::prices::Prices;
use ccp_core::metering::tap::UsageTap;
use ccp_core::metering::{Meter, MeterSettings};
use ccp_core::secret::SecretString;
use ccp_core::store::{NewAccessKey, NewUser, Store, StoreOptions};
use ccp_gateway::proxy::{Lifecycle, RequestCtx, access, record::request_record};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pingora::http::RequestHeader;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// An Anthropic Messages answer of about 1 KB, as the fake upstream sends.
const ANSWER: &[u8] = br#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[{"type":"text","text":"I'll look at the failing test first. The assertion compares the parsed config against a default that changed last week, so the fixture needs the new field. Here is the change, and then I will run the suite again to confirm nothing else depends on the old default value. After that I will update the changelog entry so the next release notes mention the renamed option and the migration step for existing deployments that set it explicitly in their environment files."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"cache_creation_input_tokens":0,"cache_read_input_tokens":28000,"output_tokens":503,"service_tier":"standard"}}"#;

fn claude_code_request_header(key: &str) -> RequestHeader {
    let mut req = RequestHeader::build(
        "POST",
        format!("/ak/{key}/v1/messages?beta=true").as_bytes(),
        None,
    )
    .expect("request header");
    for (name, value) in [
        ("host", "gateway.example.com"),
        ("accept", "application/json"),
        (
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
        ),
        ("anthropic-dangerous-direct-browser-access", "true"),
        ("anthropic-version", "2023-06-01"),
        ("authorization", "Bearer sk-ant-oat01-benchmark-token"),
        ("content-type", "application/json"),
        ("user-agent", "claude-cli/2.1.332 (external, cli)"),
        ("x-app", "cli"),
        ("x-stainless-arch", "x64"),
        ("x-stainless-lang", "js"),
        ("x-stainless-os", "Linux"),
        ("x-stainless-package-version", "0.60.0"),
        ("x-stainless-retry-count", "0"),
        ("x-stainless-runtime", "node"),
        ("x-stainless-runtime-version", "v22.12.0"),
        ("x-stainless-timeout", "600"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("connection", "keep-alive"),
        ("content-length", "30720"),
    ] {
        req.append_header(name, value).expect("header");
    }
    req
}

/// A SQLite store with one user and one key; returns the authenticator and the key.
async fn warm_authenticator() -> (KeyAuthenticator, AccessKey, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let store = Store::connect(&url, &StoreOptions::default())
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let user = store
        .create_user(NewUser {
            name: "Bench".into(),
            email: "bench@example.com".into(),
        })
        .await
        .expect("user");
    let pepper = Pepper::new(&SecretString::from(
        "bench-pepper-bench-pepper-bench-pepper",
    ))
    .expect("pepper");
    let key = AccessKey::generate();
    store
        .insert_access_key(NewAccessKey {
            user_id: user.id,
            name: None,
            display_prefix: key.masked(),
            digest: pepper.digest(&key),
            expires_at: None,
        })
        .await
        .expect("key");
    let auth = KeyAuthenticator::new(store, pepper, &AuthCacheSettings::default());
    assert!(matches!(
        auth.authenticate(key.expose()).await,
        AuthOutcome::Granted(_)
    ));
    (auth, key, dir)
}

fn hot_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (auth, key, dir) = rt.block_on(warm_authenticator());
    let path = format!("/ak/{}/v1/messages?beta=true", key.expose());

    c.bench_function("path_parse", |b| {
        b.iter(|| black_box(ccp_gateway::path::parse(black_box(&path))))
    });

    c.bench_function("key_check_warm", |b| {
        b.to_async(&rt).iter(|| async {
            let outcome = auth.authenticate(black_box(key.expose())).await;
            assert!(matches!(outcome, AuthOutcome::Granted(_)));
        })
    });

    let header = claude_code_request_header(key.expose());
    c.bench_function("header_prep", |b| {
        b.iter_batched_ref(
            || header.clone(),
            |req| {
                ccp_gateway::headers::prepare_plan_request(
                    req,
                    bytes::Bytes::from_static(b"/v1/messages?beta=true"),
                    &http::HeaderValue::from_static("api.anthropic.com"),
                    None,
                )
                .expect("prepared")
            },
            BatchSize::SmallInput,
        )
    });

    c.bench_function("usage_tap_json", |b| {
        b.iter(|| {
            let mut tap = UsageTap::new("application/json", None).expect("tap");
            tap.feed(black_box(ANSWER));
            black_box(tap.finish())
        })
    });

    // An answer that edits a file: 150 lines of code twice over (about 20 KB), escapes and all.
    let code = "fn main() {\n    println!(\"{} {}\", a, b);\n    let path = \"C:\\\\tmp\";\n}\n"
        .repeat(150);
    let code = serde_json::to_string(&code).expect("code as JSON");
    let edit_answer = format!(
        r#"{{"id":"msg_02","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[{{"type":"text","text":"Here is the fix."}},{{"type":"tool_use","id":"toolu_01","name":"Edit","input":{{"file_path":"/src/main.rs","old_string":{code},"new_string":{code}}}}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{{"input_tokens":2095,"cache_creation_input_tokens":0,"cache_read_input_tokens":28000,"output_tokens":503}}}}"#
    );
    c.bench_function("usage_tap_json_edit_20k", |b| {
        b.iter(|| {
            let mut tap = UsageTap::new("application/json", None).expect("tap");
            tap.feed(black_box(edit_answer.as_bytes()));
            black_box(tap.finish()).expect("usage read")
        })
    });

    let events = ccp_testkit::sse::events(&ccp_testkit::sse::messages_stream(45));
    c.bench_function("stream_watch_50ev", |b| {
        b.iter(|| {
            let mut watch = ccp_gateway::sse::SseWatch::default();
            let mut tap = UsageTap::new("text/event-stream", None).expect("tap");
            for event in &events {
                ccp_gateway::sse::read_chunk(Some(&mut tap), Some(&mut watch), black_box(event));
            }
            assert!(watch.complete);
            black_box(tap.finish())
        })
    });

    let lifecycle = Arc::new(Lifecycle::default());
    let clock = WallClock::system();
    c.bench_function("request_ctx", |b| {
        b.iter(|| black_box(RequestCtx::new(&lifecycle, clock.now())))
    });

    // The metering writer runs on the runtime's thread and writes to SQLite, as in the gateway.
    let (meter, writer) = rt.block_on(async {
        let store = auth_store_for_meter(&dir).await;
        Meter::new(store, MeterSettings::default())
    });
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let writing = rt.spawn(writer.run(stopped, Duration::from_secs(30)));
    let prices = Prices::load(None).expect("prices").get();
    let metrics = ccp_gateway::metrics::Metrics::new();
    let grant = match rt.block_on(auth.authenticate(key.expose())) {
        AuthOutcome::Granted(grant) => grant,
        _ => unreachable!("the key was granted above"),
    };
    c.bench_function("metering_record", |b| {
        b.iter_batched(
            || {
                let mut ctx = RequestCtx::new(&lifecycle, clock.now());
                ctx.grant = Some(Arc::clone(&grant));
                ctx.template = "/v1/messages";
                ctx.plan_status = Some(200);
                ctx.request_bytes = 30_720;
                let mut tap = UsageTap::new("application/json", None).expect("tap");
                tap.feed(ANSWER);
                ctx.usage_tap = Some(tap);
                ctx
            },
            |mut ctx| {
                let record = request_record(
                    &mut ctx,
                    200,
                    ANSWER.len() as u64,
                    None,
                    &prices,
                    clock.now(),
                )
                .expect("a row");
                metrics.observe(&record);
                meter.record(record);
            },
            BatchSize::SmallInput,
        )
    });
    let _ = stop.send(());
    let _ = rt.block_on(writing);

    let buffer: &'static LineBuffer<std::io::Sink> =
        Box::leak(Box::new(LineBuffer::new(std::io::sink())));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(buffer)
        .event_format(JsonLines)
        .finish();
    let mut ctx = RequestCtx::new(&lifecycle, clock.now());
    ctx.grant = Some(Arc::clone(&grant));
    ctx.template = "/v1/messages";
    ctx.plan_status = Some(200);
    ctx.plan_first_byte = Some(Duration::from_micros(812));
    ctx.auth_time = Some(Duration::from_micros(3));
    ctx.request_bytes = 30_720;
    let method = pingora::http::Method::POST;
    tracing::subscriber::with_default(subscriber, || {
        c.bench_function("access_line", |b| {
            b.iter(|| {
                access::log(
                    black_box(&ctx),
                    access::Finish {
                        method: &method,
                        status: 200,
                        error: None,
                        response_bytes: ANSWER.len() as u64,
                    },
                )
            })
        });
    });
}

async fn auth_store_for_meter(dir: &tempfile::TempDir) -> Store {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    Store::connect(
        &url,
        &StoreOptions {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
        },
    )
    .await
    .expect("meter store")
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
