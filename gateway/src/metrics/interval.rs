//! The sums pushed to the interval sink (CloudWatch, or the log) every
//! `CCP_METRICS_INTERVAL_SECS`, and the task that pushes them.

use super::Metrics;
use ccp_core::telemetry::{Datum, DatumValue, LatencyBuckets, MetricsSink, Unit};
use std::collections::HashMap;
use std::time::Duration;

/// Sums for one push interval.
#[derive(Debug, Default)]
pub(super) struct Interval {
    pub(super) requests: HashMap<(&'static str, &'static str, &'static str), u64>,
    pub(super) latency: HashMap<&'static str, LatencyBuckets>,
    pub(super) failovers: u64,
    pub(super) circuit_opens: u64,
    pub(super) bedrock_tokens: [u64; 4],
    pub(super) bedrock_cost_micro_usd: i64,
}

const TOKEN_KINDS: [&str; 4] = ["input", "output", "cache_read", "cache_write"];

#[allow(clippy::cast_precision_loss)]
fn count(n: u64) -> DatumValue {
    DatumValue::Sum(n as f64)
}

impl Interval {
    pub(super) fn into_data(self) -> Vec<Datum> {
        let mut data = Vec::new();
        let mut requests: Vec<_> = self.requests.into_iter().collect();
        requests.sort_unstable();
        for ((route, upstream, outcome), n) in requests {
            data.push(Datum {
                name: "Requests",
                unit: Unit::Count,
                dimensions: vec![
                    ("Route", route),
                    ("Upstream", upstream),
                    ("Outcome", outcome),
                ],
                value: count(n),
            });
        }
        let mut latency: Vec<_> = self.latency.into_iter().collect();
        latency.sort_unstable_by_key(|(route, _)| *route);
        for (route, buckets) in latency {
            data.push(Datum {
                name: "Latency",
                unit: Unit::Milliseconds,
                dimensions: vec![("Route", route)],
                value: DatumValue::Distribution(buckets.pairs()),
            });
        }
        if data.is_empty() && self.circuit_opens == 0 {
            return data;
        }
        data.push(Datum {
            name: "Failovers",
            unit: Unit::Count,
            dimensions: Vec::new(),
            value: count(self.failovers),
        });
        data.push(Datum {
            name: "CircuitOpens",
            unit: Unit::Count,
            dimensions: Vec::new(),
            value: count(self.circuit_opens),
        });
        for (kind, n) in TOKEN_KINDS.iter().zip(self.bedrock_tokens) {
            data.push(Datum {
                name: "BedrockTokens",
                unit: Unit::Count,
                dimensions: vec![("Kind", kind)],
                value: count(n),
            });
        }
        #[allow(clippy::cast_precision_loss)]
        let usd = self.bedrock_cost_micro_usd as f64 / 1e6;
        data.push(Datum {
            name: "BedrockCostUSD",
            unit: Unit::None,
            dimensions: Vec::new(),
            value: DatumValue::Sum(usd),
        });
        data
    }
}

/// Pushes each interval's snapshot to `sink` until `stop` fires, then pushes the last one.
/// Runs on its own task: a sink that is slow or down delays only the next push, never a
/// request, and a failed push is counted and dropped.
pub async fn publish_intervals(
    metrics: &Metrics,
    sink: &dyn MetricsSink,
    every: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_warning: Option<std::time::Instant> = None;
    loop {
        let last = tokio::select! {
            _ = ticker.tick() => false,
            _ = &mut stop => true,
        };
        let snapshot = metrics.take_interval();
        if !snapshot.is_empty()
            && let Err(err) = sink.publish(&snapshot).await
        {
            metrics.publish_failures.inc();
            // At most one warning in five minutes while the sink stays down.
            if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(300)) {
                last_warning = Some(std::time::Instant::now());
                tracing::warn!(sink = sink.name(), error = %err, "interval metrics dropped");
            }
        }
        if last {
            return;
        }
    }
}
