#![allow(clippy::unwrap_used)]
//! Many gateways, one PostgreSQL database: real `ccp-gateway` processes (two and three) share
//! their circuit breakers and hear the admin API's changes through LISTEN/NOTIFY.
//!
//! - Plan failures sent round-robin across gateways open the circuit on every gateway after
//!   the threshold in total; exactly one gateway probes after the open period; the probe's
//!   failure re-opens and its success closes the circuit everywhere.
//! - A key revoked through the admin API is refused by every gateway well within a second
//!   (the key-cache TTL is 30 s here, so only the notification can explain it); the p99 is
//!   printed. With the listening connections killed, revocation still lands and the
//!   listeners come back.
//! - A circuit closed in the database without a notification still reaches every gateway.
//! - A storm of Plan 429s writes a bounded number of circuit rows and statements.

mod common;

use ccp_core::store::CircuitState;
use ccp_testkit::bedrock as fake;
use ccp_testkit::{RecordedRequest, Reply};
use common::{Engine, Harness, Setup};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The circuit's open period here (the default is 30 min).
const OPEN_SECS: u64 = 3;

/// One `ccp-gateway` process of the fleet.
struct Gateway {
    process: common::GatewayProcess,
    /// `host:port`
    addr: String,
    metrics: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
        // A failed test shows what each gateway said (its log is in a temporary directory).
        if std::thread::panicking() {
            let said = std::fs::read_to_string(&self.process.log).unwrap_or_default();
            let tail: Vec<&str> = said.lines().rev().take(80).collect();
            eprintln!("--- gateway {} (last {} lines) ---", self.addr, tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// N gateway processes on the harness's PostgreSQL schema, fakes and keys, and the admin API
/// in-process on the same database.
struct Fleet {
    /// Before `h`: fields drop in order, and a gateway's log lives in `h`'s directory.
    gateways: Vec<Gateway>,
    h: Harness,
    /// Names this fleet's connections in `pg_stat_activity`.
    application_name: String,
    admin: common::Admin,
}

impl Fleet {
    async fn start(
        n: usize,
        plan: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let setup = Setup {
            engine: Engine::Postgres,
            clock: None,
        };
        let mut h = Harness::start_failover_with(
            plan,
            |_: &RecordedRequest| fake::converse_reply("Hello from Bedrock"),
            &[],
            setup,
        )
        .await;
        h.stop_gateway().await;
        let application_name = format!("ccp-fleet-{}", uuid::Uuid::new_v4().simple());
        let database_url = format!(
            "{}&application_name={application_name}",
            h.config.database_url.expose()
        );
        let wrap_key = std::path::Path::new(&h.config.data_dir).join("wrap.key");
        let mut gateways = Vec::new();
        for i in 0..n {
            let data_dir = std::path::Path::new(&h.config.data_dir).join(format!("g{i}"));
            std::fs::create_dir_all(&data_dir).unwrap();
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ccp-gateway"));
            command
                .env_clear()
                .env("CCP_DATA_DIR", &data_dir)
                .env("CCP_DATABASE_URL", &database_url)
                .env("CCP_PEPPER", common::PG_PEPPER)
                .env("CCP_KEY_WRAPPER", "local")
                .env("CCP_WRAP_KEY_FILE", &wrap_key)
                .env("CCP_PLAN_BASE_URL", h.upstream.url())
                .env("CCP_BEDROCK_ENDPOINT", h.bedrock().url())
                .env("CCP_THREADS", "1")
                .env("CCP_DB_MAX_CONNECTIONS", "4")
                .env("CCP_SHUTDOWN_GRACE_SECS", "2")
                .env("CCP_KEY_CACHE_TTL_SECS", "30")
                .env("CCP_CIRCUIT_OPEN_SECS", OPEN_SECS.to_string())
                .envs(extra_env.iter().copied());
            let log = data_dir.join("gateway.log");
            let process = common::GatewayProcess::start(command, log, true, &h.client).await;
            gateways.push(Gateway {
                addr: process.addr.to_string(),
                metrics: process.metrics.clone().unwrap(),
                process,
            });
        }
        let admin = common::Admin::start(&h).await;
        Self {
            h,
            gateways,
            application_name,
            admin,
        }
    }

    async fn admin_call(&self, method: &str, path: &str) -> (u16, Value) {
        self.admin.call(method, path, Value::Null).await
    }

    async fn admin_send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.admin
            .call(method, path, body.unwrap_or(Value::Null))
            .await
    }

    /// A Messages request through gateway `i` with `key` and the client token `client`.
    async fn post(&self, i: usize, key: &str, client: &str) -> reqwest::Response {
        self.request(i, key, client).send().await.unwrap()
    }

    fn request(&self, i: usize, key: &str, client: &str) -> reqwest::RequestBuilder {
        self.h
            .client
            .post(format!(
                "http://{}/ak/{key}/v1/messages",
                self.gateways[i].addr
            ))
            .header("authorization", format!("Bearer {client}"))
            .header("anthropic-version", "2023-06-01")
            .json(&json!({
                "model": "claude-sonnet-4-5-20250929",
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "hi"}],
            }))
    }

    /// `GET /v1/models` through gateway `i` with `key`: 200 while the key works.
    async fn status_of(&self, i: usize, key: &str) -> u16 {
        common::models_status(&self.h.client, &self.gateways[i].addr, key).await
    }

    /// The harness key's circuit as the admin API's user view shows it.
    async fn circuit_in_admin_api(&self) -> Value {
        let (status, user) = self
            .admin_call("GET", &format!("/admin/users/{}", self.h.user_id))
            .await;
        assert_eq!(status, 200, "{user}");
        let keys = user["access_keys"].as_array().unwrap();
        let key = keys
            .iter()
            .find(|k| k["id"] == self.h.key_id.to_string())
            .unwrap();
        key["circuit"].clone()
    }

    async fn metric(&self, i: usize, line_start: &str) -> f64 {
        let text = common::scrape(&self.h.client, &self.gateways[i].metrics).await;
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    async fn open_circuits(&self, i: usize) -> f64 {
        self.metric(i, "ccp_open_circuits ").await
    }

    /// Sends one request with `key` through each gateway: each reaches Plan.
    async fn every_gateway_uses_plan(&self, key: &str) {
        for i in 0..self.gateways.len() {
            let plan_seen = self.h.upstream.requests().len();
            let resp = self.post(i, key, "sk-ant-oat01-fleet").await;
            assert_eq!(resp.status(), 200);
            assert_eq!(
                self.h.upstream.requests().len(),
                plan_seen + 1,
                "gateway {i} uses Plan again"
            );
        }
    }

    /// Waits until every gateway reports `open` open circuits; returns how long it took.
    async fn all_report_open(&self, open: f64) -> Duration {
        let started = Instant::now();
        for i in 0..self.gateways.len() {
            common::eventually("the circuit state reaches every gateway", || async {
                self.open_circuits(i).await == open
            })
            .await;
        }
        started.elapsed()
    }
}

fn plan_switch(
    down: &Arc<AtomicBool>,
) -> impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static {
    let down = Arc::clone(down);
    move |r: &RecordedRequest| {
        if down.load(Ordering::SeqCst) {
            Reply::json(
                429,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"rate limited"}}"#,
            )
        } else {
            Reply::json(
                200,
                r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello from Plan"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}"#,
            )
            // Messages slow enough that a burst's other requests are all routed while the
            // probe is still out (after it, the circuit is closed and Plan is theirs again).
            .delayed(if r.target.starts_with("/v1/messages") {
                Duration::from_millis(300)
            } else {
                Duration::ZERO
            })
        }
    }
}

fn upstream_of(resp: &reqwest::Response) -> String {
    resp.headers()["x-ccp-upstream"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Sends two requests at once through every gateway; returns how many reached Plan.
async fn burst(f: &Fleet, key: &str) -> usize {
    let before = f.h.upstream.requests().len();
    let mut all = Vec::new();
    for i in 0..f.gateways.len() {
        for _ in 0..2 {
            all.push(tokio::spawn(f.request(i, key, "sk-ant-oat01-fleet").send()));
        }
    }
    for sent in all {
        let resp = sent.await.unwrap().unwrap();
        assert_eq!(
            resp.status(),
            200,
            "every request is served (Plan or Bedrock)"
        );
    }
    f.h.upstream.requests().len() - before
}

/// Waits until the key's open period has passed in the shared state.
async fn wait_for_probe_time(f: &Fleet) {
    let record = f.h.store.circuit(f.h.key_id).await.unwrap().unwrap();
    let until = record.open_until_ms.unwrap();
    let left = until - chrono::Utc::now().timestamp_millis();
    if left > 0 {
        tokio::time::sleep(Duration::from_millis(left.unsigned_abs() + 50)).await;
    }
}

async fn one_circuit_for_the_deployment(n: usize) {
    let down = Arc::new(AtomicBool::new(true));
    let f = Fleet::start(n, plan_switch(&down), &[]).await;
    let key = f.h.key.expose().to_owned();

    // Three Plan failures in total, one gateway after another: each fails over.
    for i in 0..3 {
        let resp = f.post(i % n, &key, "sk-ant-oat01-fleet").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(upstream_of(&resp), "bedrock");
    }
    let spread = f.all_report_open(1.0).await;
    println!(
        "circuit open on all {n} gateways {} ms after the third failure's answer",
        spread.as_millis()
    );
    assert!(
        spread < Duration::from_secs(1),
        "open everywhere within 1 s: {spread:?}"
    );
    let record = f.h.store.circuit(f.h.key_id).await.unwrap().unwrap();
    assert_eq!(record.state, CircuitState::Open);
    let circuit = f.circuit_in_admin_api().await;
    // Open for OPEN_SECS; a slow machine may already be past it (then half-open).
    match circuit["state"].as_str() {
        Some("open") => assert!(circuit["open_until"].is_string(), "{circuit}"),
        Some("half_open") => assert!(circuit["open_until"].is_null(), "{circuit}"),
        _ => panic!("not open: {circuit}"),
    }
    assert_eq!(circuit["opened_count"], 1);

    // Every gateway now sends the key straight to Bedrock.
    let plan_seen = f.h.upstream.requests().len();
    for i in 0..n {
        let resp = f.post(i, &key, "sk-ant-oat01-fleet").await;
        assert_eq!(upstream_of(&resp), "bedrock");
    }
    assert_eq!(f.h.upstream.requests().len(), plan_seen, "Plan not called");

    // After the open period, requests on all gateways at once: exactly one probes Plan. It
    // fails, so the circuit opens again everywhere.
    wait_for_probe_time(&f).await;
    assert_eq!(
        burst(&f, &key).await,
        1,
        "exactly one probe across {n} gateways"
    );
    common::eventually("the failed probe re-opens the circuit", || async {
        let r = f.h.store.circuit(f.h.key_id).await.unwrap().unwrap();
        r.state == CircuitState::Open && r.opened_count == 2
    })
    .await;
    assert_eq!(burst(&f, &key).await, 0, "re-opened on every gateway");

    // Plan recovers: the next probe closes the circuit on every gateway.
    down.store(false, Ordering::SeqCst);
    wait_for_probe_time(&f).await;
    assert_eq!(burst(&f, &key).await, 1, "exactly one probe again");
    let spread = f.all_report_open(0.0).await;
    println!(
        "circuit closed on all {n} gateways {} ms after the probe",
        spread.as_millis()
    );
    let bedrock_seen = f.h.bedrock().requests().len();
    f.every_gateway_uses_plan(&key).await;
    assert_eq!(f.h.bedrock().requests().len(), bedrock_seen);
    let record = f.h.store.circuit(f.h.key_id).await.unwrap().unwrap();
    assert_eq!(record.state, CircuitState::Closed);
    let circuit = f.circuit_in_admin_api().await;
    assert_eq!(circuit["state"], "closed", "{circuit}");
    assert_eq!(circuit["opened_count"], 2);
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_gateways_share_one_circuit() {
        super::one_circuit_for_the_deployment(2).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn three_gateways_share_one_circuit() {
        super::one_circuit_for_the_deployment(3).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_circuit_change_whose_notification_was_lost_still_arrives() {
        super::lost_circuit_notification().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn revocation_reaches_every_gateway_and_survives_a_lost_listener() {
        super::revocation_reaches_every_gateway().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn user_and_bedrock_key_changes_reach_every_gateway() {
        super::user_and_bedrock_key_changes().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_storm_of_plan_errors_writes_a_bounded_number_of_rows() {
        super::storm().await;
    }
}

/// A circuit closed in the database without a notification (as when the announcement failed)
/// still reaches both gateways: they re-read circuits that are not closed (every open period
/// here, 3 s), and then send the key to Plan again.
async fn lost_circuit_notification() {
    let down = Arc::new(AtomicBool::new(true));
    let f = Fleet::start(2, plan_switch(&down), &[]).await;
    let key = f.h.key.expose().to_owned();
    for i in 0..3 {
        let resp = f.post(i % 2, &key, "sk-ant-oat01-fleet").await;
        assert_eq!(upstream_of(&resp), "bedrock");
    }
    f.all_report_open(1.0).await;

    // Closed behind the gateways' backs: written, never announced.
    down.store(false, Ordering::SeqCst);
    f.h.store
        .record_circuit_probe(
            f.h.key_id,
            true,
            chrono::Utc::now(),
            Duration::from_secs(OPEN_SECS),
        )
        .await
        .unwrap();
    let took = f.all_report_open(0.0).await;
    println!(
        "a closing never announced reached both gateways in {} ms",
        took.as_millis()
    );
    f.every_gateway_uses_plan(&key).await;
}

/// Revokes `key_id` through the API and returns, per gateway, how long until it refused
/// the key (polling every 5 ms).
async fn revoke_and_time(f: &Fleet, key_id: uuid::Uuid, key: &str) -> Vec<Duration> {
    for i in 0..f.gateways.len() {
        assert_eq!(f.status_of(i, key).await, 200, "cached as working first");
    }
    let (status, _) = f
        .admin_call("DELETE", &format!("/admin/access-keys/{key_id}"))
        .await;
    assert_eq!(status, 200);
    let revoked = Instant::now();
    let mut times = Vec::new();
    for i in 0..f.gateways.len() {
        loop {
            if f.status_of(i, key).await != 200 {
                times.push(revoked.elapsed());
                break;
            }
            assert!(revoked.elapsed() < Duration::from_secs(60), "never refused");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    times
}

async fn revocation_reaches_every_gateway() {
    let down = Arc::new(AtomicBool::new(false));
    let f = Fleet::start(3, plan_switch(&down), &[]).await;

    let mut times = Vec::new();
    for _ in 0..10 {
        let (key, key_id) = f.h.issue_key(None).await;
        times.extend(revoke_and_time(&f, key_id, key.expose()).await);
    }
    times.sort();
    let p99 = times[(times.len() * 99).div_ceil(100) - 1];
    println!(
        "revocation reached a gateway in: median {} ms, p99 {} ms ({} samples)",
        times[times.len() / 2].as_millis(),
        p99.as_millis(),
        times.len()
    );
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");

    // Kill every listening connection of this fleet: the gateways reconnect, drop their
    // caches (a notification may have been lost) and hear the next revocation.
    let (key, key_id) = f.h.issue_key(None).await;
    for i in 0..3 {
        assert_eq!(f.status_of(i, key.expose()).await, 200);
    }
    let admin_pool = sqlx::PgPool::connect(&ccp_testkit::stores::pg_url())
        .await
        .unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&f.application_name)
    .fetch_all(&admin_pool)
    .await
    .unwrap();
    assert_eq!(killed.len(), 3, "one listener per gateway");
    let times = revoke_and_time(&f, key_id, key.expose()).await;
    println!("revocation after the listeners were killed: {times:?}");
    for i in 0..3 {
        common::eventually("the listener is back", || async {
            f.metric(i, "ccp_change_listener_lost_total ").await >= 1.0
                && f.metric(i, "ccp_changes_applied_total{kind=\"resync\"} ")
                    .await
                    >= 1.0
        })
        .await;
    }
    let (key, key_id) = f.h.issue_key(None).await;
    let times = revoke_and_time(&f, key_id, key.expose()).await;
    assert!(
        times.iter().all(|t| *t < Duration::from_secs(1)),
        "listening again: {times:?}"
    );
    admin_pool.close().await;
}

/// Waits until every gateway answers `key` with `want` (`GET /v1/models`); returns the
/// longest wait.
async fn all_answer(f: &Fleet, key: &str, want: u16) -> Duration {
    let started = Instant::now();
    for i in 0..f.gateways.len() {
        common::eventually(&format!("gateway {i} answers {want}"), || async {
            f.status_of(i, key).await == want
        })
        .await;
    }
    started.elapsed()
}

/// A user disabled and enabled again, and a Bedrock key removed, through the API: every
/// gateway follows at once although its caches would hold the old state for 30 s.
async fn user_and_bedrock_key_changes() {
    let down = Arc::new(AtomicBool::new(false));
    let f = Fleet::start(2, plan_switch(&down), &[]).await;
    let key = f.h.key.expose().to_owned();
    let user = format!("/admin/users/{}", f.h.user_id);
    all_answer(&f, &key, 200).await; // cached as working on both

    let (status, body) = f
        .admin_send("PATCH", &user, Some(json!({"status": "disabled"})))
        .await;
    assert_eq!(status, 200, "{body}");
    let took = all_answer(&f, &key, 404).await;
    assert!(
        took < Duration::from_secs(1),
        "disabled everywhere in {took:?}"
    );
    let (status, _) = f
        .admin_send("PATCH", &user, Some(json!({"status": "active"})))
        .await;
    assert_eq!(status, 200);
    let took = all_answer(&f, &key, 200).await;
    assert!(
        took < Duration::from_secs(1),
        "enabled everywhere in {took:?}"
    );

    // With Plan down, the key fails over; once its Bedrock key is removed, Plan's 429 is
    // relayed on every gateway.
    down.store(true, Ordering::SeqCst);
    for i in 0..2 {
        assert_eq!(
            upstream_of(&f.post(i, &key, "sk-ant-oat01-fleet").await),
            "bedrock"
        );
    }
    let (status, _) = f
        .admin_call(
            "DELETE",
            &format!("/admin/access-keys/{}/bedrock-key", f.h.key_id),
        )
        .await;
    assert_eq!(status, 204);
    let removed = Instant::now();
    for i in 0..2 {
        common::eventually("the Bedrock key is gone everywhere", || async {
            f.post(i, &key, "sk-ant-oat01-fleet").await.status() == 429
        })
        .await;
    }
    let took = removed.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "removed everywhere in {took:?}"
    );
}

/// 10 keys with a Bedrock key and 10 without, a Plan answering 429 to everything, 10 000
/// requests across three gateways, 16 at a time.
async fn storm() {
    const THRESHOLD: i64 = 3;
    const CONCURRENCY: usize = 16;
    let down = Arc::new(AtomicBool::new(true));
    let f = Fleet::start(3, plan_switch(&down), &[]).await;
    let config = &f.h.config;
    let mut keys = Vec::new();
    for n in 0..20 {
        let (key, key_id) = f.h.issue_key(None).await;
        if n < 10 {
            common::set_bedrock_key(&f.h.store, config, key_id, common::BEDROCK_KEY).await;
        }
        keys.push(key.expose().to_owned());
    }
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = Arc::new(f);
    let keys = Arc::new(keys);
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (f, keys, next) = (Arc::clone(&f), Arc::clone(&keys), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= 10_000 {
                    break;
                }
                let resp = f
                    .post(n % 3, &keys[n % keys.len()], "sk-ant-oat01-fleet")
                    .await;
                assert!(
                    matches!(resp.status().as_u16(), 200 | 429),
                    "{}",
                    resp.status()
                );
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let took = started.elapsed();
    let plan_429s = f.h.upstream.requests().len();
    let (rows, writes): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(writes), 0) AS BIGINT) FROM circuit_states",
    )
    .fetch_one(
        &sqlx::PgPool::connect(&f.h.config.database_url.expose().to_owned())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    println!(
        "storm: 10 000 requests in {:.1} s, {plan_429s} Plan 429s; circuit rows {rows}, writes {writes}",
        took.as_secs_f64()
    );
    // One row per key with a Bedrock key; per key, the failures up to the threshold plus
    // those already in flight when it opened (at most the client concurrency).
    assert_eq!(rows, 10);
    let bound = 10 * (THRESHOLD + CONCURRENCY as i64);
    assert!(writes <= bound, "{writes} writes > bound {bound}");
    assert!(plan_429s >= 5_000, "the storm reached Plan: {plan_429s}");
}
