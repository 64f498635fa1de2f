//! The gateway honours what the admin API does, within the key-cache TTL (1 s here): a key
//! issued through the API works, a revoked one gets 404, a rotated one works next to its
//! replacement until the grace period ends, and a deactivated user's keys get 404. The API
//! runs in-process (salvo's test client) on the same SQLite database and pepper as the
//! gateway, built from the same configuration the way `ccp-admin-server` builds it.

#![allow(clippy::unwrap_used)]

mod common;

use ccp_testkit::Reply;
use common::{Admin, Harness};
use serde_json::json;
use std::time::{Duration, Instant};

async fn status_of(h: &Harness, key: &str) -> u16 {
    common::models_status(&h.client, &h.addr().to_string(), key).await
}

/// Waits (with the tests' generous deadline) until `key` answers `want`.
async fn becomes(h: &Harness, key: &str, want: u16) {
    common::eventually(&format!("the key answers {want}"), || async {
        status_of(h, key).await == want
    })
    .await;
}

/// Waits until `key` is refused, and checks it was not refused before the 1 s TTL of the
/// grant cached at `cached_at` ran out.
async fn refused_after_the_ttl(h: &Harness, key: &str, cached_at: Instant) {
    becomes(h, key, 404).await;
    let after = cached_at.elapsed();
    assert!(
        after >= Duration::from_secs(1),
        "refused after {after:?}, before the cached grant's 1 s TTL"
    );
}

fn ok(_: &ccp_testkit::RecordedRequest) -> Reply {
    Reply::json(200, r#"{"data":[],"has_more":false}"#)
}

const TTL: [(&str, &str); 2] = [
    ("key_cache_ttl_secs", "1"),
    ("key_negative_cache_ttl_secs", "1"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_and_revoke_through_the_api() {
    let h = Harness::start_with(ok, &TTL).await;
    let admin = Admin::start(&h).await;
    let user = h.user_id;
    let (status, issued) = admin
        .call(
            "POST",
            &format!("/admin/users/{user}/access-keys"),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let key = issued["key"].as_str().unwrap();
    let cached_at = Instant::now();
    assert_eq!(
        status_of(&h, key).await,
        200,
        "a key issued through the API works at once"
    );

    let id = issued["access_key"]["id"].as_str().unwrap();
    assert_eq!(
        admin
            .call("DELETE", &format!("/admin/access-keys/{id}"), json!({}))
            .await
            .0,
        200
    );
    refused_after_the_ttl(&h, key, cached_at).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_both_keys_during_the_grace_only() {
    let h = Harness::start_with(ok, &TTL).await;
    let admin = Admin::start(&h).await;
    let old = h.key.expose().to_owned();
    assert_eq!(status_of(&h, &old).await, 200);
    // The grace ends 3 s after the server's clock read during the call, so at least 3 s
    // after `asked_at`: an answer that arrives before that was given during the grace.
    let asked_at = Instant::now();
    let (status, rotated) = admin
        .call(
            "POST",
            &format!("/admin/access-keys/{}/rotate", h.key_id),
            json!({"grace_seconds": 3}),
        )
        .await;
    assert_eq!(status, 201, "{rotated}");
    let new = rotated["key"].as_str().unwrap();
    let mut checked = 0;
    for _ in 0..5 {
        let (old_status, new_status) = (status_of(&h, &old).await, status_of(&h, new).await);
        if asked_at.elapsed() < Duration::from_secs(3) {
            assert_eq!(old_status, 200, "old key during the grace");
            assert_eq!(new_status, 200, "new key during the grace");
            checked += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(checked > 0, "no answer arrived during the grace to check");
    // Then only the new one, and the old one not before its grace ended.
    becomes(&h, &old, 404).await;
    assert!(
        asked_at.elapsed() >= Duration::from_millis(2_900),
        "old key refused before its grace ended"
    );
    assert_eq!(status_of(&h, new).await, 200);
    // The sweeper's job, done by hand: the lapsed key is marked revoked.
    assert_eq!(
        h.store
            .revoke_lapsed_rotations(chrono::Utc::now())
            .await
            .unwrap(),
        1
    );
    let record = h.store.get_access_key(h.key_id).await.unwrap().unwrap();
    assert_eq!(record.status, ccp_core::domain::KeyStatus::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivating_a_user_stops_its_keys() {
    let h = Harness::start_with(ok, &TTL).await;
    let admin = Admin::start(&h).await;
    let key = h.key.expose().to_owned();
    let cached_at = Instant::now();
    assert_eq!(status_of(&h, &key).await, 200);
    let (status, body) = admin
        .call(
            "PATCH",
            &format!("/admin/users/{}", h.user_id),
            json!({"status": "disabled"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    refused_after_the_ttl(&h, &key, cached_at).await;
    // And back.
    admin
        .call(
            "PATCH",
            &format!("/admin/users/{}", h.user_id),
            json!({"status": "active"}),
        )
        .await;
    becomes(&h, &key, 200).await;
}
