#![allow(clippy::unwrap_used)]
//! The CloudWatch metrics sink through the real aws-sdk-cloudwatch client against moto's
//! CloudWatch (a local AWS API emulator from PyPI): what is pushed is what CloudWatch
//! statistics then report.

use aws_sdk_cloudwatch::types::Statistic;
use ccp_core::telemetry::{
    CloudWatchSink, Datum, DatumValue, LatencyBuckets, MetricsSink, Snapshot, Unit,
};
use ccp_testkit::moto::cloudwatch_client as client;
use std::time::{Duration, SystemTime};

async fn statistic(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dims: &[(&str, &str)],
    stat: Statistic,
) -> Option<f64> {
    ccp_testkit::moto::cloudwatch_statistic(cw, namespace, name, dims, stat).await
}

#[tokio::test]
async fn pushed_sums_and_distributions_come_back_as_cloudwatch_statistics() {
    let Some(moto) = ccp_testkit::moto::start("the CloudWatch sink test") else {
        return;
    };
    let cw = client(&moto.url);
    let sink = CloudWatchSink::new(cw.clone(), "CCP/Test");

    let mut latency = LatencyBuckets::default();
    for ms in [3.0, 3.1, 250.0, 1_800.0] {
        latency.observe(ms);
    }
    // More data than one PutMetricData call carries, so the sink must split them.
    let routes: Vec<&'static str> = (0..CloudWatchSink::DATA_PER_CALL + 20)
        .map(|i| &*Box::leak(format!("route{i}").into_boxed_str()))
        .collect();
    let mut data: Vec<Datum> = routes
        .iter()
        .map(|route| Datum {
            name: "Requests",
            unit: Unit::Count,
            dimensions: vec![("Route", route), ("Outcome", "complete")],
            value: DatumValue::Sum(2.0),
        })
        .collect();
    data.push(Datum {
        name: "Latency",
        unit: Unit::Milliseconds,
        dimensions: vec![("Route", "plan")],
        value: DatumValue::Distribution(latency.pairs()),
    });
    data.push(Datum {
        name: "BedrockCostUSD",
        unit: Unit::None,
        dimensions: Vec::new(),
        value: DatumValue::Sum(0.042735),
    });
    let snapshot = Snapshot {
        at: SystemTime::now(),
        data,
    };
    sink.publish(&snapshot).await.unwrap();
    sink.publish(&snapshot).await.unwrap();

    let last = routes.last().unwrap();
    for route in [routes[0], *last] {
        assert_eq!(
            statistic(
                &cw,
                "CCP/Test",
                "Requests",
                &[("Route", route), ("Outcome", "complete")],
                Statistic::Sum
            )
            .await,
            Some(4.0),
            "{route}"
        );
    }
    assert_eq!(
        statistic(
            &cw,
            "CCP/Test",
            "Latency",
            &[("Route", "plan")],
            Statistic::SampleCount
        )
        .await,
        Some(8.0)
    );
    let max = statistic(
        &cw,
        "CCP/Test",
        "Latency",
        &[("Route", "plan")],
        Statistic::Maximum,
    )
    .await
    .unwrap();
    assert!((max / 1_800.0 - 1.0).abs() < 0.1, "max latency {max}");
    let cost = statistic(&cw, "CCP/Test", "BedrockCostUSD", &[], Statistic::Sum)
        .await
        .unwrap();
    assert!((cost - 0.08547).abs() < 1e-9, "{cost}");
    let listed = cw
        .list_metrics()
        .namespace("CCP/Test")
        .metric_name("Requests")
        .send()
        .await
        .unwrap();
    assert!(!listed.metrics().is_empty());
}

#[tokio::test]
async fn an_unreachable_cloudwatch_is_an_error_naming_the_sink_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Nothing listens there any more.
    let sink = CloudWatchSink::new(client(&format!("http://127.0.0.1:{port}")), "CCP/Test");
    let snapshot = Snapshot {
        at: SystemTime::now(),
        data: vec![Datum {
            name: "Requests",
            unit: Unit::Count,
            dimensions: Vec::new(),
            value: DatumValue::Sum(1.0),
        }],
    };
    let err = tokio::time::timeout(Duration::from_secs(30), sink.publish(&snapshot))
        .await
        .expect("the SDK gives up on a refused connection")
        .unwrap_err();
    assert_eq!(err.sink, "cloudwatch");
}
