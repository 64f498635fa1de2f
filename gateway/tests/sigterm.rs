//! The real `ccp-gateway` binary under a real SIGTERM: readiness fails, the in-flight stream
//! completes, the process exits 0.

#![allow(clippy::unwrap_used)]

mod common;

use ccp_testkit::Reply;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_streams_and_exits_cleanly() {
    let mut events: Vec<Vec<u8>> = (0..12)
        .map(|i| format!("event: ping\ndata: {{\"type\":\"ping\",\"n\":{i}}}\n\n").into_bytes())
        .collect();
    events.push(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_vec());
    let expected = events.concat();
    // The stream is held at the upstream until readiness has failed.
    let gate = ccp_testkit::Gate::new();
    let (served, upstream_gate) = (events.clone(), gate.clone());
    // Reuse the harness for the database, key and upstream, but run the binary, not the library.
    let mut h =
        common::Harness::start(move |_| Reply::sse_gated(served.clone(), &upstream_gate)).await;
    h.stop_gateway().await;

    let mut child = h.spawn_binary(&[]).await.child;
    let ready_url = format!("http://{}/readyz", h.addr());

    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", "k")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reader = common::read_body_in_background(resp);
    common::sigterm(&child);

    // While draining, readiness fails (the load balancer stops sending).
    common::eventually("readiness fails while draining", || async {
        let ready = h.client.get(&ready_url).send().await.unwrap();
        assert!(ready.status() == 200 || ready.status() == 503);
        ready.status() == 503
    })
    .await;
    assert!(!reader.is_finished(), "the stream is still held");
    gate.open(events.len());

    assert_eq!(
        reader.await.unwrap(),
        expected,
        "the in-flight stream completed"
    );
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

/// Repeated graceful restarts under load: every request the gateway answered has its
/// metering row (rows in the database = responses served), with no duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restarts_under_load_lose_no_metering_rows() {
    let mut h = common::Harness::start(|_| {
        Reply::json(
            200,
            r#"{"type":"message","usage":{"input_tokens":3,"output_tokens":4}}"#,
        )
        .delayed(Duration::from_millis(20))
    })
    .await;
    h.stop_gateway().await;
    let before = h.store.count_request_logs().await.unwrap();
    let served = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    for round in 0..3 {
        let mut child = h.spawn_binary(&[]).await.child;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let client = h.client.clone();
                let url = h.url("/v1/messages");
                let stop = std::sync::Arc::clone(&stop);
                let served = std::sync::Arc::clone(&served);
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let Ok(resp) = client
                            .post(&url)
                            .header("x-api-key", "k")
                            .body("{}")
                            .send()
                            .await
                        else {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        };
                        let id = resp
                            .headers()
                            .get("x-ccp-request-id")
                            .map(|v| v.to_str().unwrap().to_owned());
                        if resp.bytes().await.is_ok()
                            && let Some(id) = id
                        {
                            served.lock().unwrap().insert(id);
                        }
                    }
                })
            })
            .collect();
        // Real load first: this round serves some requests before the signal.
        let before_round = served.lock().unwrap().len();
        common::eventually("requests are served", || async {
            served.lock().unwrap().len() >= before_round + 30
        })
        .await;
        common::sigterm(&child);
        // Like a load balancer: new requests stop once /readyz fails (or nothing listens).
        let ready_url = format!("http://{}/readyz", h.addr());
        common::eventually("readiness fails", || async {
            !matches!(h.client.get(&ready_url).send().await, Ok(r) if r.status() == 200)
        })
        .await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for w in workers {
            w.await.unwrap();
        }
        let exit = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(exit.success(), "round {round}: exit status {exit:?}");
    }
    // At least 30 a round, by the waits above.
    let served = served.lock().unwrap().len() as i64;
    assert_eq!(
        h.store.count_request_logs().await.unwrap() - before,
        served,
        "rows in the database = responses served"
    );
}
