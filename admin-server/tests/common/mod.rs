//! Test set-ups for the admin plane: a store on SQLite or PostgreSQL (the repository tests'
//! helpers) with two admins (`ops`, `dev`, password [`PASSWORD`]), the login service over it,
//! and the whole API in-process behind salvo's test client.

#![allow(dead_code, clippy::unwrap_used)]

pub use ccp_testkit::stores;

use ccp_admin_server::api::{AdminApi, service};
use ccp_admin_server::login::LoginService;
use ccp_admin_server::ops::AdminOps;
use ccp_admin_server::session::SessionKeys;
use ccp_core::crypto::LocalWrapper;
use ccp_core::keys::Pepper;
use ccp_core::secret::SecretString;
use ccp_core::store::{NewAdmin, Store};
use salvo::prelude::*;
use salvo::test::{ResponseExt, TestClient};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub const PASSWORD: &str = "a long enough passphrase";
pub const SESSION_SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const PEPPER: &str = "test-pepper-test-pepper-test-pepper!";
pub const BOOTSTRAP_SECRET: &str = "bootstrap-secret-bootstrap-secret-0001";
pub const CONSOLE_ORIGIN: &str = "https://console.example.com";
pub const BASE: &str = "http://127.0.0.1:5801";

pub async fn add_admins(store: &Store) {
    for name in ["ops", "dev"] {
        store
            .create_admin(NewAdmin {
                username: name.into(),
                password_hash: ccp_core::password::hash(&SecretString::from(PASSWORD)).unwrap(),
            })
            .await
            .unwrap();
    }
}

pub fn session_keys() -> SessionKeys {
    SessionKeys::new(
        &SecretString::from(SESSION_SECRET),
        Duration::from_secs(900),
    )
    .unwrap()
}

/// A fresh SQLite store with the two admins, and the login service over it.
pub async fn login_service() -> (LoginService, Store, stores::TestStore) {
    let t = stores::sqlite().await;
    add_admins(&t.store).await;
    let login = LoginService::new(t.store.clone(), Arc::new(session_keys()));
    (login, t.store.clone(), t)
}

/// The API state over `store`: a fixed pepper, a local key wrapper, a 60 s rotation grace
/// and a bootstrap secret.
pub fn admin_api(store: &Store) -> Arc<AdminApi> {
    let ops = AdminOps::new(
        store.clone(),
        Pepper::new(&SecretString::from(PEPPER)).unwrap(),
        Arc::new(LocalWrapper::from_key(&[7; 32])),
        Duration::from_secs(60),
    );
    Arc::new(AdminApi {
        ops,
        login: LoginService::new(store.clone(), Arc::new(session_keys())),
        bootstrap_secret: Some(SecretString::from(BOOTSTRAP_SECRET)),
        trust_forwarded_for: true,
    })
}

/// The API in-process, with an answer helper.
pub struct Api {
    pub service: Service,
    pub store: Store,
}

/// Status and JSON body (`Null` when there is none).
pub type Answer = (u16, Value);

impl Api {
    pub fn new(store: &Store) -> Self {
        Self {
            service: service(admin_api(store), Some(CONSOLE_ORIGIN)),
            store: store.clone(),
        }
    }

    /// A store with the two admins, and the API over it.
    pub async fn with_admins(store: &Store) -> Self {
        add_admins(store).await;
        Self::new(store)
    }

    pub async fn send(&self, req: salvo::test::RequestBuilder) -> Answer {
        let mut res = req.send(&self.service).await;
        let status = res.status_code.map_or(0, |s| s.as_u16());
        let body = res.take_string().await.unwrap_or_default();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// `method path` with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let url = format!("{BASE}{path}");
        let mut req = match method {
            "GET" => TestClient::get(url),
            "POST" => TestClient::post(url),
            "PATCH" => TestClient::patch(url),
            "DELETE" => TestClient::delete(url),
            "PUT" => TestClient::put(url),
            other => panic!("method {other}"),
        };
        if let Some(token) = token {
            req = req.add_header("authorization", format!("Bearer {token}"), true);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.call("PATCH", path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call("DELETE", path, Some(token), None).await
    }

    /// A login attempt.
    pub async fn login(&self, username: &str, password: &str) -> Answer {
        let body = serde_json::json!({"username": username, "password": password});
        self.call("POST", "/admin/auth/login", None, Some(&body))
            .await
    }

    /// Logs in as `username` and returns the token.
    pub async fn token(&self, username: &str) -> String {
        let (status, answer) = self.login(username, PASSWORD).await;
        assert_eq!(status, 200, "{answer}");
        answer["token"].as_str().unwrap().to_owned()
    }
}

/// Runs each listed `async fn(&Api)` on a fresh SQLite store and on a fresh PostgreSQL
/// schema (failing when no PostgreSQL answers), each with the two admins.
#[macro_export]
macro_rules! api_on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = $crate::common::stores::sqlite().await;
                    let api = $crate::common::Api::with_admins(&t.store).await;
                    super::$name(&api).await;
                    t.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = $crate::common::stores::postgres().await;
                    let api = $crate::common::Api::with_admins(&t.store).await;
                    super::$name(&api).await;
                    t.cleanup().await;
                }
            )*
        }
    };
}
