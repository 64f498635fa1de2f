//! The admin REST API in-process through salvo's test client, on a real SQLite store:
//! login, logout, the session guard and the error shape.

#![allow(clippy::unwrap_used)]

mod common;

use ccp_admin_server::api::{AdminApi, router};
use common::PASSWORD;
use salvo::prelude::*;
use salvo::test::{ResponseExt, TestClient};
use serde_json::{Value, json};
use std::sync::Arc;

const BASE: &str = "http://127.0.0.1:5801";

async fn service() -> (Service, tempfile::TempDir) {
    let (login, store, dir) = common::login_service().await;
    let api = AdminApi { login, store };
    (Service::new(router(Arc::new(api))), dir)
}

async fn login(service: &Service, username: &str, password: &str) -> (u16, Value) {
    let mut res = TestClient::post(format!("{BASE}/admin/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send(service)
        .await;
    let status = res.status_code.map_or(0, |s| s.as_u16());
    (status, res.take_json().await.unwrap_or(Value::Null))
}

async fn logout(service: &Service, token: Option<&str>) -> (u16, Value) {
    let mut req = TestClient::post(format!("{BASE}/admin/auth/logout"));
    if let Some(token) = token {
        req = req.add_header("authorization", format!("Bearer {token}"), true);
    }
    let mut res = req.send(service).await;
    let status = res.status_code.map_or(0, |s| s.as_u16());
    (status, res.take_json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn login_gives_a_session_that_logout_ends() {
    let (service, _dir) = service().await;
    let (status, body) = login(&service, "ops", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(body["expires_at"].as_u64().unwrap() > 0);

    assert_eq!(logout(&service, Some(&token)).await.0, 204);
    // The same token no longer works.
    let (status, body) = logout(&service, Some(&token)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "authentication_error");
}

#[tokio::test]
async fn bad_logins_and_missing_sessions_get_the_error_shape() {
    let (service, _dir) = service().await;
    let (wrong, wrong_body) = login(&service, "ops", "not the passphrase").await;
    let (unknown, unknown_body) = login(&service, "nobody", PASSWORD).await;
    assert_eq!((wrong, unknown), (401, 401));
    assert_eq!(wrong_body, unknown_body, "no hint which part was wrong");
    assert_eq!(
        wrong_body["error"]["message"],
        "invalid username or password"
    );
    // Malformed bodies are refused without a 500.
    let res = TestClient::post(format!("{BASE}/admin/auth/login"))
        .raw_json("{not json")
        .send(&service)
        .await;
    let status = res.status_code.map_or(0, |s| s.as_u16());
    assert!((400..500).contains(&status), "{status}");

    assert_eq!(logout(&service, None).await.0, 401);
    assert_eq!(logout(&service, Some("garbage")).await.0, 401);
    // After the throttle limit, even the right password is refused with 429.
    for _ in 0..ccp_admin_server::login::MAX_FAILURES {
        login(&service, "ops", "wrong wrong wrong").await;
    }
    let (status, body) = login(&service, "ops", PASSWORD).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn the_openapi_document_lists_the_routes() {
    let (service, _dir) = service().await;
    let mut res = TestClient::get(format!("{BASE}/admin/openapi.json"))
        .send(&service)
        .await;
    let doc: Value = res.take_json().await.unwrap();
    assert!(
        doc["paths"]["/admin/auth/login"]["post"].is_object(),
        "{doc}"
    );
    assert!(
        doc["paths"]["/admin/auth/logout"]["post"].is_object(),
        "{doc}"
    );
}
