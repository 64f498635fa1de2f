//! A fresh SQLite store with two admins (`ops`, `dev`, password [`PASSWORD`]) and the login
//! service over it, for the login and API tests.

use ccp_admin_server::login::LoginService;
use ccp_admin_server::session::SessionKeys;
use ccp_core::secret::SecretString;
use ccp_core::store::{NewAdmin, Store, StoreOptions};
use std::sync::Arc;
use std::time::Duration;

pub const PASSWORD: &str = "a long enough passphrase";
pub const SESSION_SECRET: &str = "0123456789abcdef0123456789abcdef";

#[allow(clippy::unwrap_used)]
pub async fn login_service() -> (LoginService, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ccp.db?mode=rwc", dir.path().display());
    let store = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    for name in ["ops", "dev"] {
        store
            .create_admin(NewAdmin {
                username: name.into(),
                password_hash: ccp_core::password::hash(&SecretString::from(PASSWORD)).unwrap(),
            })
            .await
            .unwrap();
    }
    let keys = SessionKeys::new(
        &SecretString::from(SESSION_SECRET),
        Duration::from_secs(900),
    )
    .unwrap();
    (LoginService::new(store.clone(), Arc::new(keys)), store, dir)
}
