//! Interval metrics for sinks that take aggregates pushed to them, rather than scraping:
//! CloudWatch (`PutMetricData`, batched) and the log.
//!
//! The gateway sums what it observes into an interval aggregate and, once per interval,
//! hands a [`Snapshot`] to a [`MetricsSink`] from a background task. Requests only ever touch
//! the aggregate, so a sink that is slow or down never delays one.

use async_trait::async_trait;
use std::fmt;
use std::time::SystemTime;

/// The unit of a datum, as CloudWatch names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    /// A plain number (US dollars, for cost).
    None,
}

/// A datum's value for one interval.
#[derive(Debug, Clone, PartialEq)]
pub enum DatumValue {
    /// A total over the interval.
    Sum(f64),
    /// Observations as (value, how many times) pairs: at most [`LatencyBuckets::BUCKETS`]
    /// distinct values, inside CloudWatch's 150 per datum. CloudWatch computes percentiles
    /// from these.
    Distribution(Vec<(f64, f64)>),
}

/// One metric for one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub name: &'static str,
    pub unit: Unit,
    /// (name, value) pairs; values are route names and outcomes, never a key or a user.
    pub dimensions: Vec<(&'static str, &'static str)>,
    pub value: DatumValue,
}

/// What one interval observed, stamped with the interval's end.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: SystemTime,
    pub data: Vec<Datum>,
}

impl Snapshot {
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("metrics sink {sink}: {reason}")]
pub struct SinkError {
    pub sink: &'static str,
    pub reason: String,
}

/// Where interval snapshots go.
#[async_trait]
pub trait MetricsSink: Send + Sync + fmt::Debug {
    fn name(&self) -> &'static str;
    async fn publish(&self, snapshot: &Snapshot) -> Result<(), SinkError>;
}

/// Latency observations in log-spaced buckets: four per doubling from 0.1 ms (each bucket
/// about 19 % wide), reported at the bucket's geometric middle. Values past the last bucket
/// (about 23 minutes) land in it.
#[derive(Debug, Clone)]
pub struct LatencyBuckets {
    counts: [u64; Self::BUCKETS],
}

impl Default for LatencyBuckets {
    fn default() -> Self {
        Self {
            counts: [0; Self::BUCKETS],
        }
    }
}

impl LatencyBuckets {
    pub const BUCKETS: usize = 96;
    const FLOOR_MS: f64 = 0.1;
    const PER_DOUBLING: f64 = 4.0;

    pub fn observe(&mut self, ms: f64) {
        let index = if ms.is_finite() && ms > Self::FLOOR_MS {
            let i = ((ms / Self::FLOOR_MS).log2() * Self::PER_DOUBLING).floor();
            // In range by the clamp; the cast only drops the fraction.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = i.clamp(0.0, (Self::BUCKETS - 1) as f64) as usize;
            i
        } else {
            0
        };
        if let Some(slot) = self.counts.get_mut(index) {
            *slot += 1;
        }
    }

    /// The middle of bucket `index`, in milliseconds.
    pub fn representative(index: usize) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let exponent = (index as f64 + 0.5) / Self::PER_DOUBLING;
        Self::FLOOR_MS * exponent.exp2()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (representative value, count) for every non-empty bucket.
    pub fn pairs(&self) -> Vec<(f64, f64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                #[allow(clippy::cast_precision_loss)]
                let n = *n as f64;
                (Self::representative(i), n)
            })
            .collect()
    }
}

/// User plus system CPU seconds of this process, every thread included (Linux; 0 elsewhere).
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime: fields 14 and 15 of stat, 11 and 12 after the command name, in
    // clock ticks (100 a second on Linux).
    (ticks(11) + ticks(12)) / 100.0
}

/// Writes each snapshot as one structured log line (`target: ccp::metrics`): the embedded
/// default, where no CloudWatch is configured.
#[derive(Debug, Default)]
pub struct LogSink;

#[async_trait]
impl MetricsSink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn publish(&self, snapshot: &Snapshot) -> Result<(), SinkError> {
        let data: Vec<serde_json::Value> = snapshot
            .data
            .iter()
            .map(|d| {
                let dims: serde_json::Map<String, serde_json::Value> = d
                    .dimensions
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).into()))
                    .collect();
                let value = match &d.value {
                    DatumValue::Sum(v) => serde_json::json!(v),
                    DatumValue::Distribution(pairs) => {
                        let count: f64 = pairs.iter().map(|(_, n)| n).sum();
                        let weighted: f64 = pairs.iter().map(|(v, n)| v * n).sum();
                        serde_json::json!({
                            "count": count,
                            "mean": if count > 0.0 { weighted / count } else { 0.0 },
                        })
                    }
                };
                serde_json::json!({ "name": d.name, "dimensions": dims, "value": value })
            })
            .collect();
        tracing::info!(
            target: "ccp::metrics",
            metrics = %serde_json::Value::Array(data),
            "interval metrics"
        );
        Ok(())
    }
}

/// `PutMetricData` through aws-sdk-cloudwatch, in calls of at most [`Self::DATA_PER_CALL`]
/// data.
#[cfg(feature = "cloudwatch")]
#[derive(Debug, Clone)]
pub struct CloudWatchSink {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
}

#[cfg(feature = "cloudwatch")]
impl CloudWatchSink {
    /// CloudWatch allows 1 000 data and 1 MB per call; 500 keeps well inside both.
    pub const DATA_PER_CALL: usize = 500;

    pub fn new(client: aws_sdk_cloudwatch::Client, namespace: impl Into<String>) -> Self {
        Self {
            client,
            namespace: namespace.into(),
        }
    }

    /// A client from the standard AWS configuration chain (environment, ECS task role, …),
    /// optionally against another endpoint (a local emulator in tests). Calls give up after
    /// 10 s: they run on their own task, but a hung endpoint must not pile them up.
    pub async fn from_environment(namespace: &str, endpoint: Option<&str>) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(std::time::Duration::from_secs(10))
                    .build(),
            )
            .load()
            .await;
        let mut builder = aws_sdk_cloudwatch::config::Builder::from(&shared);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self::new(
            aws_sdk_cloudwatch::Client::from_conf(builder.build()),
            namespace,
        )
    }

    fn datum(
        d: &Datum,
        at: aws_sdk_cloudwatch::primitives::DateTime,
    ) -> aws_sdk_cloudwatch::types::MetricDatum {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
        let unit = match d.unit {
            Unit::Count => StandardUnit::Count,
            Unit::Milliseconds => StandardUnit::Milliseconds,
            Unit::None => StandardUnit::None,
        };
        let mut datum = MetricDatum::builder()
            .metric_name(d.name)
            .unit(unit)
            .timestamp(at)
            .storage_resolution(60);
        for (name, value) in &d.dimensions {
            datum = datum.dimensions(Dimension::builder().name(*name).value(*value).build());
        }
        match &d.value {
            DatumValue::Sum(v) => datum = datum.value(*v),
            DatumValue::Distribution(pairs) => {
                datum = datum
                    .set_values(Some(pairs.iter().map(|(v, _)| *v).collect()))
                    .set_counts(Some(pairs.iter().map(|(_, n)| *n).collect()));
            }
        }
        datum.build()
    }
}

#[cfg(feature = "cloudwatch")]
#[async_trait]
impl MetricsSink for CloudWatchSink {
    fn name(&self) -> &'static str {
        "cloudwatch"
    }

    async fn publish(&self, snapshot: &Snapshot) -> Result<(), SinkError> {
        use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
        let at = aws_sdk_cloudwatch::primitives::DateTime::from(snapshot.at);
        for chunk in snapshot.data.chunks(Self::DATA_PER_CALL) {
            let data = chunk.iter().map(|d| Self::datum(d, at)).collect();
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(data))
                .send()
                .await
                .map_err(|err| SinkError {
                    sink: "cloudwatch",
                    // The error code only: messages can echo request content.
                    reason: err.code().unwrap_or("request failed").to_owned(),
                })?;
        }
        Ok(())
    }
}

/// Builds the interval-metrics sink a configuration names (`None` when metrics are off).
pub async fn sink_for(
    setting: &crate::config::MetricsSinkSetting,
) -> Result<Option<std::sync::Arc<dyn MetricsSink>>, SinkError> {
    use crate::config::MetricsSinkSetting;
    Ok(match setting {
        MetricsSinkSetting::Off => None,
        MetricsSinkSetting::Log => Some(std::sync::Arc::new(LogSink)),
        #[cfg(feature = "cloudwatch")]
        MetricsSinkSetting::CloudWatch {
            namespace,
            endpoint,
        } => Some(std::sync::Arc::new(
            CloudWatchSink::from_environment(namespace, endpoint.as_deref()).await,
        )),
        #[cfg(not(feature = "cloudwatch"))]
        MetricsSinkSetting::CloudWatch { .. } => {
            return Err(SinkError {
                sink: "cloudwatch",
                reason: "this build has no CloudWatch support (feature cloudwatch)".into(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_stay_within_a_fifth_of_the_value() {
        for ms in [0.25, 1.0, 3.7, 42.0, 250.0, 1_234.5, 60_000.0] {
            let mut b = LatencyBuckets::default();
            b.observe(ms);
            let pairs = b.pairs();
            assert_eq!(pairs.len(), 1);
            let (v, n) = pairs[0];
            assert!((n - 1.0).abs() < f64::EPSILON);
            assert!((v / ms - 1.0).abs() < 0.1, "{ms} ms reported as {v}");
        }
    }

    #[test]
    fn latency_buckets_count_every_observation_within_cloudwatch_limits() {
        let mut b = LatencyBuckets::default();
        for i in 0..10_000u32 {
            b.observe(f64::from(i) * 0.37);
        }
        b.observe(f64::NAN);
        b.observe(-3.0);
        b.observe(1e12);
        assert_eq!(b.total(), 10_003);
        let pairs = b.pairs();
        assert!(pairs.len() <= 150);
        let counted: f64 = pairs.iter().map(|(_, n)| n).sum();
        assert!((counted - 10_003.0).abs() < f64::EPSILON);
    }
}
