//! The public listener's edge rules, probed with a raw socket: heads the strictest proxies
//! refuse are refused (and nothing reaches Plan), and a request head sent slowly is cut off
//! after `CCP_HEADER_TIMEOUT_SECS` without starving other clients.

#![allow(clippy::unwrap_used)]

mod common;

use ccp_testkit::Reply;
use common::{Harness, anthropic_error, parse_raw};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn ok(_: &ccp_testkit::RecordedRequest) -> Reply {
    Reply::json(200, r#"{"ok":true}"#)
}

/// Sends `request`, then reads until the gateway closes the connection (which it must).
async fn exchange_until_closed(h: &Harness, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(h.addr()).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
        .await
        .expect("the gateway closes the connection")
        .unwrap();
    answer
}

#[tokio::test]
async fn heads_the_strictest_proxies_refuse_are_refused_and_never_forwarded() {
    let h = Harness::start(ok).await;
    let key = h.key.expose().to_owned();
    let cases: [(String, u16, &str); 4] = [
        (
            format!(
                "POST /ak/{key}/v1/messages HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n\
                 Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
            ),
            400,
            "Content-Length and Transfer-Encoding",
        ),
        (
            format!("POST /ak/{key}/v1/messages HTTP/1.0\r\nHost: gw\r\n\r\n{{\"model\":\"x\"}}"),
            411,
            "Content-Length",
        ),
        (
            format!("POST /ak/{key}/v1/messages HTTP/1.1\nHost: gw\nContent-Length: 2\n\n{{}}"),
            400,
            "CRLF",
        ),
        (
            format!(
                "POST /ak/{key}/v1/messages HTTP/1.1\r\nHost: gw\nContent-Length: 2\r\n\r\n{{}}"
            ),
            400,
            "CRLF",
        ),
    ];
    for (request, status, words) in cases {
        let answer = exchange_until_closed(&h, request.as_bytes()).await;
        let resp = parse_raw(&answer);
        assert_eq!(resp.status, status, "{request:?}\n{}", resp.head);
        let (kind, message) = anthropic_error(&resp.body);
        assert_eq!(kind, "invalid_request_error");
        assert!(message.contains(words), "{message}");
        assert!(
            resp.head.to_ascii_lowercase().contains("connection: close"),
            "{}",
            resp.head
        );
    }
    assert_eq!(h.upstream.hits(), 0, "nothing reached Plan");
    // The same requests, well formed, do reach it.
    let fine =
        format!("POST /ak/{key}/v1/messages HTTP/1.0\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{{}}");
    let resp = parse_raw(&exchange_until_closed(&h, fine.as_bytes()).await);
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(h.upstream.hits(), 1);
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_cut_off_and_never_forwarded() {
    let h = Harness::start_with(ok, &[("header_timeout_secs", "2")]).await;
    let head = format!(
        "GET /ak/{}/v1/models HTTP/1.1\r\nHost: gw\r\nX-Slow: {}\r\n",
        h.key.expose(),
        "a".repeat(200)
    );
    let mut stream = TcpStream::connect(h.addr()).await.unwrap();
    // One byte every 200 ms: each read is quick, the head as a whole never completes. Without
    // a total deadline this loop would run through all 300 bytes (60 s).
    let mut cut = false;
    for byte in head.as_bytes() {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        let mut probe = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut probe)).await {
            Ok(Ok(0) | Err(_)) => {
                cut = true;
                break;
            }
            Ok(Ok(_)) => panic!("the gateway answered a head that never ended"),
            Err(_) => {} // still open
        }
    }
    assert!(cut, "the connection outlived the whole head");
    assert_eq!(h.upstream.hits(), 0);
}

#[tokio::test]
async fn many_slow_heads_do_not_starve_real_clients() {
    let h = Harness::start_with(ok, &[("header_timeout_secs", "120")]).await;
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(h.addr()).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Slow: 1")
            .await
            .unwrap();
        slow.push(stream);
    }
    // A real client is served while all 200 hold their connections open.
    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(h.upstream.hits(), 1);
    for stream in &mut slow {
        let mut probe = [0u8; 1];
        let still_open = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe))
            .await
            .is_err();
        assert!(still_open, "a slow connection was closed early");
    }
}

#[tokio::test]
async fn a_later_head_on_a_kept_alive_connection_has_its_own_deadline() {
    let h = Harness::start_with(ok, &[("header_timeout_secs", "2")]).await;
    let mut stream = TcpStream::connect(h.addr()).await.unwrap();
    let request = format!(
        "GET /ak/{}/v1/models HTTP/1.1\r\nHost: gw\r\n",
        h.key.expose()
    );
    // A first request, answered on a connection kept open: the timer is left at its deadline.
    stream
        .write_all(format!("{request}\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(br#"{"ok":true}"#) {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..n]);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A second head, a byte every 100 ms: the first head's deadline passes 0.5 s into it, and
    // only its own (2 s) may cut it off.
    let started = std::time::Instant::now();
    let mut cut = None;
    for byte in request.as_bytes().iter().chain(b"X-Slow: ".iter().cycle()) {
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
        if stream.write_all(&[*byte]).await.is_err() {
            cut = Some(started.elapsed());
            break;
        }
        let mut probe = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut probe)).await {
            Ok(Ok(0) | Err(_)) => {
                cut = Some(started.elapsed());
                break;
            }
            Ok(Ok(_)) => panic!("the gateway answered a head that never ended"),
            Err(_) => {}
        }
    }
    let cut = cut.expect("the second head was cut off");
    assert!(
        cut >= Duration::from_millis(1800),
        "cut after {cut:?}: at the first head's deadline, not its own"
    );
    assert_eq!(h.upstream.hits(), 1);
}
