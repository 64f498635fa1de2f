//! The real `ccp-gateway` binary under a real SIGTERM: readiness fails, the in-flight stream
//! completes, the process exits 0.

#![allow(clippy::unwrap_used)]

mod common;

use ccp_testkit::Reply;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_streams_and_exits_cleanly() {
    let mut events: Vec<Vec<u8>> = (0..12)
        .map(|i| format!("event: ping\ndata: {{\"type\":\"ping\",\"n\":{i}}}\n\n").into_bytes())
        .collect();
    events.push(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_vec());
    let expected = events.concat();
    let served = events.clone();
    // Reuse the harness for the database, key and upstream, but run the binary, not the library.
    let mut h =
        common::Harness::start(move |_| Reply::sse(served.clone(), Duration::from_millis(150)))
            .await;
    h.stop_gateway().await;

    let mut child = h.spawn_binary(&[], Stdio::null()).await;
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    // While draining, readiness fails (the load balancer stops sending).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = h.client.get(&ready_url).send().await.unwrap();
    assert_eq!(ready.status(), 503);

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
        let mut child = h.spawn_binary(&[], Stdio::null()).await;
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
        tokio::time::sleep(Duration::from_millis(700)).await;
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // Like a load balancer that sees /readyz fail: new requests stop shortly after.
        tokio::time::sleep(Duration::from_millis(300)).await;
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
    let served = served.lock().unwrap().len() as i64;
    assert!(served > 100, "the load was real: {served} responses");
    assert_eq!(
        h.store.count_request_logs().await.unwrap() - before,
        served,
        "rows in the database = responses served"
    );
}
