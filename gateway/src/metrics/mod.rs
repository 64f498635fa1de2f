//! Prometheus metrics, served in the text format at `GET /metrics` on a separate, non-public
//! listener (`CCP_METRICS_ADDR`, default 127.0.0.1:9464; [`scrape`]), and interval sums
//! pushed to CloudWatch or the log ([`interval`]). Labels are route templates, paths,
//! outcomes, reasons and (capped) model names only: never a key, a user or a URI.
//! (Over 400 lines: `Metrics::new` names every metric with its help text, in one place.)

mod interval;
mod process;
mod scrape;

pub use interval::publish_intervals;
pub use scrape::serve;

use ccp_core::metering::{MeterStats, Outcome, PathTaken, Provider, RequestRecord, Upstream};
use ccp_core::routing::circuit::Transition;
use ccp_core::routing::credentials::CredentialStats;
use ccp_core::telemetry::Snapshot;
use interval::Interval;
use process::ProcessFigures;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    upstream: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabel {
    transition: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepairLabel {
    repair: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SkipLabels {
    reason: &'static str,
    model: String,
}

/// Distinct model names the failover-skip metric keeps as labels; later ones count as
/// `other`, so a client inventing names cannot grow the registry.
pub const MAX_MODEL_LABELS: usize = 32;

/// The model label for a client-supplied name: itself while the set has room and the name
/// looks like a model name, else `other` / `invalid`.
fn model_label(admitted: &Mutex<HashSet<String>>, model: Option<&str>) -> String {
    let Some(model) = model else {
        return "-".to_owned();
    };
    let plausible = (1..=64).contains(&model.len())
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
    if !plausible {
        return "invalid".to_owned();
    }
    let mut admitted = admitted.lock().unwrap_or_else(|e| e.into_inner());
    if admitted.contains(model) {
        return model.to_owned();
    }
    if admitted.len() < MAX_MODEL_LABELS {
        admitted.insert(model.to_owned());
        return model.to_owned();
    }
    "other".to_owned()
}

/// Series of a family that every request touches, each looked up in the family once: a
/// request then costs an atomic add instead of the family's lock and a hash of its labels
/// (`Metrics::observe` was the gateway's costliest function under load at 0.9 µs a request;
/// docs/benchmarks.md, round nine). The series still appear in `/metrics` only once used.
#[derive(Debug)]
struct Handles<M, const N: usize>([OnceLock<M>; N]);

impl<M: Clone, const N: usize> Handles<M, N> {
    fn new() -> Self {
        Self(std::array::from_fn(|_| OnceLock::new()))
    }

    /// The series in `slot`, made by `make` the first time; without a slot (a combination
    /// past the table, which a new enum variant would give) from the family every time.
    fn get(&self, slot: Option<usize>, make: impl FnOnce() -> M) -> Cow<'_, M> {
        match slot.and_then(|i| self.0.get(i)) {
            Some(cell) => Cow::Borrowed(cell.get_or_init(make)),
            None => Cow::Owned(make()),
        }
    }
}

/// The slot of a combination of labels in a table of them: each part is a label's index and
/// how many values it has; `None` when an index is out of its range.
fn slot(parts: &[(usize, usize)]) -> Option<usize> {
    parts.iter().try_fold(0, |slot, &(index, values)| {
        (index < values).then_some(slot * values + index)
    })
}

/// Every route: the size of the tables of requests by route.
const ROUTES: usize = PathTaken::ALL.len();

/// Every route × upstream × outcome: the size of the tables of requests by their labels.
const REQUEST_SLOTS: usize = ROUTES * Upstream::ALL.len() * Outcome::ALL.len();

/// Where a request's labels sit in a table of every combination of them (the Prometheus
/// series and the interval sums share it; the labels' `ALL` lists read it back).
fn request_slot(route: PathTaken, upstream: Upstream, outcome: Outcome) -> usize {
    slot(&[
        (route as usize, ROUTES),
        (upstream as usize, Upstream::ALL.len()),
        (outcome as usize, Outcome::ALL.len()),
    ])
    .expect("every label's discriminant is below its count")
}

/// Token kinds, in the order of the `tokens` handles.
const TOKEN_KINDS: [&str; 4] = ["input", "output", "cache_read", "cache_write"];

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// `requests` by route × upstream × outcome, at [`request_slot`].
    request_series: Handles<Counter, REQUEST_SLOTS>,
    duration: Family<RouteLabel, Histogram>,
    duration_series: Handles<Histogram, ROUTES>,
    tokens: Family<TokenLabels, Counter>,
    /// `tokens` by provider × kind (2 × 4).
    token_series: Handles<Counter, 8>,
    bedrock_cost: Counter,
    circuit: Family<TransitionLabel, Counter>,
    gateway_errors: Family<ErrorLabel, Counter>,
    failover_skipped: Family<SkipLabels, Counter>,
    repairs: Family<RepairLabel, Counter>,
    changes: Family<ChangeLabel, Counter>,
    listener_lost: Counter,
    skip_models: Mutex<HashSet<String>>,
    /// Connections closed because a request head took longer than `CCP_HEADER_TIMEOUT_SECS`
    /// (counted by the listener, mirrored at scrape time).
    pub header_timeouts: Arc<AtomicU64>,
    header_timeouts_counter: Counter,
    // Mirrors of counters kept elsewhere, refreshed at scrape time.
    meter_written: Counter,
    meter_dropped: Counter,
    meter_write_errors: Counter,
    key_unwrap_unavailable: Counter,
    key_unwrap_rejected: Counter,
    budget_check_failures: Counter,
    in_flight: Gauge,
    open_circuits: Gauge,
    resident_bytes: Gauge,
    cpu_seconds: Gauge<f64, AtomicU64>,
    open_fds: Gauge,
    publish_failures: Counter,
    /// What the current interval has seen, for the pushed sinks (CloudWatch, the log).
    interval: Mutex<Interval>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers a metric that starts at its default (zero) and returns a handle to it.
fn register<M>(registry: &mut Registry, name: &str, help: &str) -> M
where
    M: Default + Clone + prometheus_client::registry::Metric,
{
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ccp");
        let requests: Family<RequestLabels, Counter> = register(
            &mut registry,
            "requests",
            "Authenticated requests by path taken, answering upstream and outcome",
        );
        let duration = Family::<RouteLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.005, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time from request start to the last response byte",
            duration.clone(),
        );
        let tokens: Family<TokenLabels, Counter> = register(
            &mut registry,
            "tokens",
            "Tokens reported by the upstream that answered",
        );
        let bedrock_cost: Counter = register(
            &mut registry,
            "bedrock_cost_micro_usd",
            "Estimated Bedrock cost in millionths of a US dollar",
        );
        let circuit: Family<TransitionLabel, Counter> = register(
            &mut registry,
            "circuit_transitions",
            "Circuit breaker state changes (opened, reopened, closed)",
        );
        let gateway_errors: Family<ErrorLabel, Counter> = register(
            &mut registry,
            "gateway_errors",
            "Errors the gateway answered itself, by kind (not errors relayed from an upstream)",
        );
        let failover_skipped: Family<SkipLabels, Counter> = register(
            &mut registry,
            "failover_skipped",
            "Requests that needed Bedrock but could not be sent there, by reason and model name",
        );
        let repairs: Family<RepairLabel, Counter> = register(
            &mut registry,
            "conversation_repairs",
            "Changes made to a conversation so Bedrock accepts it, by repair",
        );
        let header_timeouts_counter: Counter = register(
            &mut registry,
            "header_timeouts",
            "Client connections closed because a request head arrived too slowly",
        );
        let meter_written: Counter =
            register(&mut registry, "meter_rows_written", "Metering rows written");
        let meter_dropped: Counter = register(
            &mut registry,
            "meter_rows_dropped",
            "Metering rows dropped (queue full, or not written before shutdown)",
        );
        let meter_write_errors: Counter = register(
            &mut registry,
            "meter_write_errors",
            "Failed metering batch writes (retried)",
        );
        let key_unwrap_unavailable: Counter = register(
            &mut registry,
            "bedrock_key_unavailable",
            "Bedrock key loads that failed because the database or the key wrapper could not answer",
        );
        let key_unwrap_rejected: Counter = register(
            &mut registry,
            "bedrock_key_rejected",
            "Stored Bedrock keys that did not open for their access key (integrity alerts)",
        );
        let changes: Family<ChangeLabel, Counter> = register(
            &mut registry,
            "changes_applied",
            "Admin changes announced over PostgreSQL and applied to the caches, by kind (resync: all dropped after a reconnect)",
        );
        let listener_lost: Counter = register(
            &mut registry,
            "change_listener_lost",
            "Times the connection listening for admin changes dropped (caches fall back to their TTL until it is back)",
        );
        let budget_check_failures: Counter = register(
            &mut registry,
            "budget_check_failures",
            "Budget checks the database could not answer (a recent figure or a refusal of Bedrock stood in)",
        );
        let in_flight: Gauge =
            register(&mut registry, "in_flight_requests", "Requests in progress");
        let open_circuits: Gauge = register(
            &mut registry,
            "open_circuits",
            "Access keys whose circuit is open or half-open on this gateway (their requests go to Bedrock)",
        );
        let resident_bytes: Gauge = register(
            &mut registry,
            "process_resident_memory_bytes",
            "Resident memory",
        );
        let cpu_seconds: Gauge<f64, AtomicU64> = register(
            &mut registry,
            "process_cpu_seconds",
            "User and system CPU time",
        );
        let open_fds: Gauge = register(&mut registry, "process_open_fds", "Open file descriptors");
        let publish_failures: Counter = register(
            &mut registry,
            "metrics_publish_failures",
            "Interval metrics the sink (CloudWatch) did not take; they are dropped",
        );
        Self {
            publish_failures,
            interval: Mutex::new(Interval::default()),
            registry,
            requests,
            request_series: Handles::new(),
            duration,
            duration_series: Handles::new(),
            tokens,
            token_series: Handles::new(),
            bedrock_cost,
            circuit,
            gateway_errors,
            failover_skipped,
            repairs,
            changes,
            listener_lost,
            skip_models: Mutex::new(HashSet::new()),
            header_timeouts: Arc::new(AtomicU64::new(0)),
            header_timeouts_counter,
            meter_written,
            meter_dropped,
            meter_write_errors,
            key_unwrap_unavailable,
            key_unwrap_rejected,
            budget_check_failures,
            in_flight,
            open_circuits,
            resident_bytes,
            cpu_seconds,
            open_fds,
        }
    }

    /// Counts a finished request (called with its metering row).
    pub fn observe(&self, r: &RequestRecord) {
        let request = request_slot(r.route, r.upstream, r.outcome);
        self.request_series
            .get(Some(request), || {
                self.requests.get_or_create_owned(&RequestLabels {
                    route: r.route.as_str(),
                    upstream: r.upstream.as_str(),
                    outcome: r.outcome.as_str(),
                })
            })
            .inc();
        self.duration_series
            .get(slot(&[(r.route as usize, ROUTES)]), || {
                self.duration.get_or_create_owned(&RouteLabel {
                    route: r.route.as_str(),
                })
            })
            .observe(r.total_ms / 1e3);
        let mut interval = self.interval.lock().unwrap_or_else(|e| e.into_inner());
        interval.tally(request, r.route, r.total_ms);
        if r.route == PathTaken::PlanThenBedrock {
            interval.failovers += 1;
        }
        if let Some(u) = r.usage.as_ref().filter(|u| u.provider == Provider::Bedrock) {
            let t = &u.tokens;
            let kinds = [
                t.input,
                t.output,
                t.cache_read,
                t.cache_write_5m + t.cache_write_1h,
            ];
            for (sum, n) in interval.bedrock_tokens.iter_mut().zip(kinds) {
                *sum += n;
            }
            interval.bedrock_cost_micro_usd += u.cost_micro_usd;
        }
        drop(interval);
        if let Some(u) = &r.usage {
            let provider = u.provider.as_str();
            let counts = [
                u.tokens.input,
                u.tokens.output,
                u.tokens.cache_read,
                u.tokens.cache_write_5m + u.tokens.cache_write_1h,
            ];
            for (i, (kind, n)) in TOKEN_KINDS.into_iter().zip(counts).enumerate() {
                self.token_series
                    .get(
                        slot(&[(u.provider as usize, 2), (i, TOKEN_KINDS.len())]),
                        || {
                            self.tokens
                                .get_or_create_owned(&TokenLabels { provider, kind })
                        },
                    )
                    .inc_by(n);
            }
            if u.provider == Provider::Bedrock {
                self.bedrock_cost
                    .inc_by(u64::try_from(u.cost_micro_usd).unwrap_or(0));
            }
        }
    }

    /// Counts an error the gateway answered itself (a [`crate::error::GatewayError`] label).
    pub fn gateway_error(&self, label: &'static str) {
        self.gateway_errors
            .get_or_create(&ErrorLabel { error: label })
            .inc();
    }

    /// Counts an applied admin change (`resync` for a drop of everything).
    pub fn count_change(&self, kind: &'static str) {
        self.changes.get_or_create(&ChangeLabel { kind }).inc();
    }

    /// Counts a lost change-listening connection.
    pub fn count_listener_lost(&self) {
        self.listener_lost.inc();
    }

    /// Counts the conversation repairs of a Bedrock call.
    pub fn conversation_repairs(&self, repairs: &[&'static str]) {
        for repair in repairs {
            self.repairs.get_or_create(&RepairLabel { repair }).inc();
        }
    }

    /// Counts a failover that could not be attempted.
    pub fn failover_skipped(&self, reason: &'static str, model: Option<&str>) {
        let model = model_label(&self.skip_models, model);
        self.failover_skipped
            .get_or_create(&SkipLabels { reason, model })
            .inc();
    }

    pub fn circuit_transition(&self, t: Transition) {
        if matches!(t, Transition::Opened | Transition::Reopened) {
            self.interval
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .circuit_opens += 1;
        }
        let transition = match t {
            Transition::Opened => "opened",
            Transition::Reopened => "reopened",
            Transition::Closed => "closed",
        };
        self.circuit
            .get_or_create(&TransitionLabel { transition })
            .inc();
    }

    /// Hands over what the current interval saw and starts the next one.
    pub fn take_interval(&self) -> Snapshot {
        let interval =
            std::mem::take(&mut *self.interval.lock().unwrap_or_else(|e| e.into_inner()));
        Snapshot {
            at: SystemTime::now(),
            data: interval.into_data(),
        }
    }

    /// The text exposition, with the mirrored counters and process figures refreshed.
    pub fn render(
        &self,
        meter: &MeterStats,
        keys: &CredentialStats,
        budget_failures: &AtomicU64,
        in_flight: usize,
        open_circuits: usize,
    ) -> String {
        let mirror = |c: &Counter, v: &AtomicU64| {
            c.inner()
                .store(v.load(Ordering::Relaxed), Ordering::Relaxed)
        };
        mirror(&self.meter_written, &meter.written);
        mirror(&self.header_timeouts_counter, &self.header_timeouts);
        mirror(&self.meter_dropped, &meter.dropped);
        mirror(&self.meter_write_errors, &meter.write_errors);
        mirror(&self.key_unwrap_unavailable, &keys.unavailable);
        mirror(&self.key_unwrap_rejected, &keys.rejected);
        mirror(&self.budget_check_failures, budget_failures);
        self.in_flight
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        self.open_circuits
            .set(i64::try_from(open_circuits).unwrap_or(i64::MAX));
        let process = ProcessFigures::read();
        self.resident_bytes.set(process.resident_bytes);
        self.cpu_seconds.set(process.cpu_seconds);
        self.open_fds.set(process.open_fds);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of labels lands in its own series with its own count (the handle
    /// tables index them by position).
    #[test]
    fn each_label_combination_counts_alone() {
        use ccp_core::metering::pricing::TokenCounts;
        use ccp_core::metering::{Outcome, Upstream, UsageRecord};
        use uuid::Uuid;
        let routes = [
            PathTaken::Plan,
            PathTaken::PlanThenBedrock,
            PathTaken::BedrockDirect,
        ];
        let upstreams = [Upstream::Plan, Upstream::Bedrock, Upstream::Gateway];
        let outcomes = [
            Outcome::Complete,
            Outcome::ClientDisconnect,
            Outcome::Partial,
            Outcome::Error,
        ];
        let metrics = Metrics::new();
        let now = chrono::Utc::now();
        let mut want = Vec::new();
        let mut n = 0;
        for route in routes {
            for upstream in upstreams {
                for outcome in outcomes {
                    n += 1;
                    for _ in 0..n {
                        let mut record =
                            ccp_testkit::records::record(0, &[Uuid::nil()], &[Uuid::nil()], now);
                        record.route = route;
                        record.upstream = upstream;
                        record.outcome = outcome;
                        record.usage =
                            [Provider::Plan, Provider::Bedrock]
                                .get(n % 3)
                                .map(|&provider| UsageRecord {
                                    model: "m".into(),
                                    provider,
                                    tokens: TokenCounts {
                                        input: 1,
                                        output: 10,
                                        cache_read: 100,
                                        cache_write_5m: 1000,
                                        cache_write_1h: 10_000,
                                    },
                                    cost_micro_usd: 0,
                                });
                        metrics.observe(&record);
                    }
                    want.push(format!(
                        r#"ccp_requests_total{{route="{}",upstream="{}",outcome="{}"}} {n}"#,
                        route.as_str(),
                        upstream.as_str(),
                        outcome.as_str()
                    ));
                }
            }
        }
        let text = metrics.render(
            &MeterStats::default(),
            &CredentialStats::default(),
            &AtomicU64::new(0),
            0,
            0,
        );
        for line in &want {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        // Combination n (observed n times) reported Plan usage when n % 3 == 0, Bedrock when 1.
        let (plan, bedrock): (u64, u64) = (
            (1..=36).filter(|n| n % 3 == 0).sum(),
            (1..=36).filter(|n| n % 3 == 1).sum(),
        );
        for (provider, requests) in [("plan", plan), ("bedrock", bedrock)] {
            for (kind, each) in [
                ("input", 1),
                ("output", 10),
                ("cache_read", 100),
                ("cache_write", 11_000),
            ] {
                let line = format!(
                    r#"ccp_tokens_total{{provider="{provider}",kind="{kind}"}} {}"#,
                    requests * each
                );
                assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
            }
        }
        for route in routes {
            let line = format!(
                r#"ccp_request_duration_seconds_count{{route="{}"}} {}"#,
                route.as_str(),
                (1..=36).skip(12 * (route as usize)).take(12).sum::<u64>()
            );
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn model_labels_are_capped_and_tamed() {
        let metrics = Metrics::new();
        for i in 0..100 {
            metrics.failover_skipped("unmapped_model", Some(&format!("claude-x-{i}")));
        }
        metrics.failover_skipped("unmapped_model", Some("claude-x-0"));
        metrics.failover_skipped("bad_body", None);
        metrics.failover_skipped("unmapped_model", Some("a\"b} evil"));
        let text = metrics.render(
            &MeterStats::default(),
            &CredentialStats::default(),
            &AtomicU64::new(0),
            0,
            0,
        );
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ccp_failover_skipped_total{"))
            .collect();
        // 32 names, `other`, `-` and `invalid`.
        assert_eq!(lines.len(), MAX_MODEL_LABELS + 3, "{lines:#?}");
        assert!(text.contains(
            r#"ccp_failover_skipped_total{reason="unmapped_model",model="claude-x-0"} 2"#
        ));
        assert!(
            text.contains(
                r#"ccp_failover_skipped_total{reason="unmapped_model",model="other"} 68"#
            )
        );
        assert!(
            text.contains(
                r#"ccp_failover_skipped_total{reason="unmapped_model",model="invalid"} 1"#
            )
        );
        assert!(text.contains(r#"ccp_failover_skipped_total{reason="bad_body",model="-"} 1"#));
        assert!(!text.contains("evil"));
    }
}
