//! The sums pushed to the interval sink (CloudWatch, or the log) every
//! `CCP_METRICS_INTERVAL_SECS`, and the task that pushes them.

use super::{Metrics, REQUEST_SLOTS, ROUTES, request_slot};
use ccp_core::metering::{Outcome, PathTaken, Upstream};
use ccp_core::telemetry::{Datum, DatumValue, LatencyBuckets, MetricsSink, Unit};
use std::time::Duration;

/// Sums for one push interval. Counted in fixed slots by the labels' discriminants: a map
/// keyed by the label names hashed three strings twice a request.
#[derive(Debug)]
pub(super) struct Interval {
    /// Requests by route × upstream × outcome, at [`request_slot`].
    requests: [u64; REQUEST_SLOTS],
    /// Latency by route.
    latency: [Option<LatencyBuckets>; ROUTES],
    pub(super) failovers: u64,
    pub(super) circuit_opens: u64,
    pub(super) bedrock_tokens: [u64; 4],
    pub(super) bedrock_cost_micro_usd: i64,
}

impl Default for Interval {
    fn default() -> Self {
        Self {
            requests: [0; REQUEST_SLOTS],
            latency: Default::default(),
            failovers: 0,
            circuit_opens: 0,
            bedrock_tokens: [0; 4],
            bedrock_cost_micro_usd: 0,
        }
    }
}

const TOKEN_KINDS: [&str; 4] = ["input", "output", "cache_read", "cache_write"];

#[allow(clippy::cast_precision_loss)]
fn count(n: u64) -> DatumValue {
    DatumValue::Sum(n as f64)
}

impl Interval {
    /// Counts one finished request, whose labels sit at `request` ([`request_slot`]).
    pub(super) fn tally(&mut self, request: usize, route: PathTaken, total_ms: f64) {
        self.requests[request] += 1;
        self.latency[route as usize]
            .get_or_insert_with(LatencyBuckets::default)
            .observe(total_ms);
    }

    pub(super) fn into_data(self) -> Vec<Datum> {
        let mut data = Vec::new();
        let mut requests = Vec::new();
        for route in PathTaken::ALL {
            for upstream in Upstream::ALL {
                for outcome in Outcome::ALL {
                    let n = self.requests[request_slot(route, upstream, outcome)];
                    if n > 0 {
                        requests.push(((route.as_str(), upstream.as_str(), outcome.as_str()), n));
                    }
                }
            }
        }
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
        let mut latency: Vec<_> = PathTaken::ALL
            .iter()
            .zip(self.latency)
            .filter_map(|(route, buckets)| Some((route.as_str(), buckets?)))
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_is_summed_under_its_own_labels() {
        let mut interval = Interval::default();
        let mut tally = |route, upstream, outcome, ms| {
            interval.tally(request_slot(route, upstream, outcome), route, ms);
        };
        tally(PathTaken::Plan, Upstream::Plan, Outcome::Complete, 12.0);
        tally(PathTaken::Plan, Upstream::Plan, Outcome::Complete, 30.0);
        tally(
            PathTaken::PlanThenBedrock,
            Upstream::Bedrock,
            Outcome::Partial,
            900.0,
        );
        tally(
            PathTaken::BedrockDirect,
            Upstream::Gateway,
            Outcome::Error,
            1.0,
        );
        let data = interval.into_data();
        let requests: Vec<_> = data
            .iter()
            .filter(|d| d.name == "Requests")
            .map(|d| {
                (
                    d.dimensions.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
                    &d.value,
                )
            })
            .collect();
        assert_eq!(
            requests,
            [
                (vec!["bedrock", "gateway", "error"], &DatumValue::Sum(1.0)),
                (vec!["plan", "plan", "complete"], &DatumValue::Sum(2.0)),
                (
                    vec!["plan_bedrock", "bedrock", "partial"],
                    &DatumValue::Sum(1.0)
                ),
            ]
        );
        let latency_routes: Vec<_> = data
            .iter()
            .filter(|d| d.name == "Latency")
            .map(|d| d.dimensions[0].1)
            .collect();
        assert_eq!(latency_routes, ["bedrock", "plan", "plan_bedrock"]);
    }
}
