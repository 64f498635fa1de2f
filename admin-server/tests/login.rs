//! Admin login and session checks against a real SQLite store: one answer for every bad
//! credential, throttling per username and per address, revocation by logout and by
//! password change. (The repository calls underneath run on PostgreSQL too, in ccp-core's
//! store tests.)

#![allow(clippy::unwrap_used)]

mod common;

use ccp_admin_server::login::{LoginError, LoginService, MAX_FAILURES, SessionCheckError};
use ccp_admin_server::session::SessionKeys;
use ccp_core::secret::SecretString;
use ccp_core::store::Store;
use common::{PASSWORD, SESSION_SECRET};
use std::net::IpAddr;
use std::time::Duration;

async fn service() -> (LoginService, Store, common::stores::TestStore) {
    common::login_service().await
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s)
}

#[tokio::test]
async fn bad_credentials_get_one_answer_and_good_ones_a_session() {
    let (svc, _store, _dir) = service().await;
    let wrong = svc
        .login("ops", pw("not the passphrase!"), ip(1))
        .await
        .unwrap_err();
    let unknown = svc.login("nobody", pw(PASSWORD), ip(1)).await.unwrap_err();
    assert!(matches!(wrong, LoginError::InvalidCredentials));
    assert!(matches!(unknown, LoginError::InvalidCredentials));
    assert_eq!(wrong.to_string(), unknown.to_string());

    let (token, claims) = svc.login("OPS", pw(PASSWORD), ip(1)).await.unwrap();
    let (admin, back) = svc.authenticate(&token).await.unwrap();
    assert_eq!(admin.username, "ops");
    assert_eq!(back, claims);
    assert!(admin.last_login_at.is_some());
    assert!(matches!(
        svc.authenticate("garbage").await,
        Err(SessionCheckError::Unauthorized)
    ));
}

#[tokio::test]
async fn logout_and_password_change_revoke_earlier_tokens() {
    let (svc, store, _dir) = service().await;
    let (first, _) = svc.login("ops", pw(PASSWORD), ip(1)).await.unwrap();
    let (second, _) = svc.login("ops", pw(PASSWORD), ip(1)).await.unwrap();
    let (admin, _) = svc.authenticate(&first).await.unwrap();
    svc.logout(&admin).await.unwrap();
    for token in [&first, &second] {
        assert!(matches!(
            svc.authenticate(token).await,
            Err(SessionCheckError::Unauthorized)
        ));
    }
    let (third, _) = svc.login("ops", pw(PASSWORD), ip(1)).await.unwrap();
    assert!(svc.authenticate(&third).await.is_ok());
    let new_hash = ccp_core::password::hash(&pw("another long passphrase")).unwrap();
    store.set_admin_password(admin.id, &new_hash).await.unwrap();
    assert!(svc.authenticate(&third).await.is_err());
    assert!(svc.login("ops", pw(PASSWORD), ip(1)).await.is_err());
    assert!(
        svc.login("ops", pw("another long passphrase"), ip(1))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_token_for_an_admin_that_does_not_exist_is_refused() {
    let (svc, _store, _dir) = service().await;
    // Signed with the right secret, for an id the store does not have.
    let keys =
        SessionKeys::new(&SecretString::from(SESSION_SECRET), Duration::from_secs(60)).unwrap();
    let now = chrono::Utc::now();
    let ghost = ccp_core::domain::Admin {
        id: uuid::Uuid::now_v7(),
        username: "ghost".into(),
        token_version: 0,
        status: ccp_core::domain::UserStatus::Active,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    };
    let (token, _) = keys.issue(&ghost).unwrap();
    assert!(matches!(
        svc.authenticate(&token).await,
        Err(SessionCheckError::Unauthorized)
    ));
}

#[tokio::test]
async fn repeated_failures_throttle_the_username_and_the_address() {
    let (svc, _store, _dir) = service().await;
    // Per username: failures from many addresses lock the name, even for the right password.
    for i in 0..MAX_FAILURES {
        let err = svc
            .login("ops", pw("wrong wrong wrong"), ip(10 + i as u8))
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::InvalidCredentials));
    }
    assert!(matches!(
        svc.login("ops", pw(PASSWORD), ip(99)).await,
        Err(LoginError::Throttled)
    ));
    // Per address: failures for many names lock the address, not other addresses.
    for i in 0..MAX_FAILURES {
        let _ = svc.login(&format!("guess{i}"), pw(PASSWORD), ip(200)).await;
    }
    assert!(matches!(
        svc.login("dev", pw(PASSWORD), ip(200)).await,
        Err(LoginError::Throttled)
    ));
    assert!(svc.login("dev", pw(PASSWORD), ip(201)).await.is_ok());
}

/// Two admin servers on one database (PostgreSQL, as in production) share one limit: the
/// failures are counted in the database, not per process.
mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admin_servers_share_one_throttle() {
        super::admin_servers_share_one_throttle().await;
    }
}

async fn admin_servers_share_one_throttle() {
    let t = common::stores::postgres().await;
    common::add_admins(&t.store).await;
    let keys = std::sync::Arc::new(common::session_keys());
    let a = LoginService::new(t.store.clone(), std::sync::Arc::clone(&keys));
    let b = LoginService::new(t.store.clone(), keys);
    // Concurrent failures on both are all counted.
    let attempts = (0..MAX_FAILURES).map(|i| {
        let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            svc.login("ops", pw("wrong wrong wrong"), ip(10 + i as u8))
                .await
        })
    });
    for attempt in attempts.collect::<Vec<_>>() {
        assert!(matches!(
            attempt.await.unwrap(),
            Err(LoginError::InvalidCredentials)
        ));
    }
    for svc in [&a, &b] {
        assert!(matches!(
            svc.login("ops", pw(PASSWORD), ip(99)).await,
            Err(LoginError::Throttled)
        ));
    }
    assert!(b.login("dev", pw(PASSWORD), ip(99)).await.is_ok());
    t.cleanup().await;
}
