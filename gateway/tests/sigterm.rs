//! The real `ccp-gateway` binary under a real SIGTERM: readiness fails, the in-flight stream
//! completes, the process exits 0.

#![allow(clippy::unwrap_used)]

mod common;

use ccp_testkit::Reply;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_streams_and_exits_cleanly() {
    let events: Vec<Vec<u8>> = (0..12)
        .map(|i| format!("event: ping\ndata: {{\"type\":\"ping\",\"n\":{i}}}\n\n").into_bytes())
        .collect();
    let expected = events.concat();
    let served = events.clone();
    // Reuse the harness for the database, key and upstream, but run the binary, not the library.
    let mut h =
        common::Harness::start(move |_| Reply::sse(served.clone(), Duration::from_millis(150)))
            .await;
    h.stop_gateway().await;

    let mut child = Command::new(env!("CARGO_BIN_EXE_ccp-gateway"))
        .env_clear()
        .env("CCP_DATA_DIR", &h.config.data_dir)
        .env("CCP_GATEWAY_ADDR", h.addr().to_string())
        .env("CCP_PLAN_BASE_URL", h.upstream.url())
        .env("CCP_THREADS", "2")
        .env("CCP_SHUTDOWN_GRACE_SECS", "10")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready_url = format!("http://{}/readyz", h.addr());
    while !matches!(h.client.get(&ready_url).send().await, Ok(r) if r.status() == 200) {
        assert!(
            Instant::now() < deadline,
            "gateway binary did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

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
