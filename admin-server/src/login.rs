//! Admin login and session checks, independent of HTTP: the REST handlers call these.
//!
//! - One answer for an unknown user, a wrong password and a disabled admin
//!   ([`LoginError::InvalidCredentials`]), and the same argon2 work for each.
//! - Throttling: after [`MAX_FAILURES`] failed attempts for one username or from one client
//!   address, further attempts are refused ([`LoginError::Throttled`]) until
//!   [`FAILURE_WINDOW`] has passed since the last failure; the password is not checked then.
//! - A session token is accepted only while its admin exists, is active and still has the
//!   `token_version` the token was issued under (logout and password change bump it).

use crate::session::{Claims, SessionKeys};
use ccp_core::domain::{Admin, UserStatus};
use ccp_core::secret::SecretString;
use ccp_core::store::{Store, StoreError, normalize_username};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("too many failed attempts; try again later")]
    Throttled,
    #[error("the admin store is unavailable")]
    Unavailable(#[source] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum SessionCheckError {
    /// Bad, expired or revoked token, or an admin that is gone or disabled.
    #[error("invalid or expired session")]
    Unauthorized,
    #[error("the admin store is unavailable")]
    Unavailable(#[source] StoreError),
}

#[derive(Debug, Clone)]
pub struct LoginService {
    store: Store,
    keys: Arc<SessionKeys>,
    by_username: moka::future::Cache<String, u32>,
    by_address: moka::future::Cache<IpAddr, u32>,
}

/// One more failure.
fn bump<K>(entry: Option<moka::Entry<K, u32>>) -> std::future::Ready<u32> {
    std::future::ready(entry.map_or(1, |e| e.into_value().saturating_add(1)))
}

/// Failed attempts per key, forgotten [`FAILURE_WINDOW`] after the last one.
fn failure_counter<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> moka::future::Cache<K, u32>
{
    moka::future::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(FAILURE_WINDOW)
        .build()
}

impl LoginService {
    pub fn new(store: Store, keys: Arc<SessionKeys>) -> Self {
        Self {
            store,
            keys,
            by_username: failure_counter(),
            by_address: failure_counter(),
        }
    }

    /// Checks the credentials and issues a session token.
    pub async fn login(
        &self,
        username: &str,
        password: SecretString,
        client: IpAddr,
    ) -> Result<(String, Claims), LoginError> {
        let name = normalize_username(username);
        let throttled = |n: Option<u32>| n.is_some_and(|n| n >= MAX_FAILURES);
        if throttled(self.by_username.get(&name).await)
            || throttled(self.by_address.get(&client).await)
        {
            return Err(LoginError::Throttled);
        }
        let found = self
            .store
            .admin_login(&name)
            .await
            .map_err(LoginError::Unavailable)?;
        let hash = found.as_ref().map(|f| f.password_hash.clone());
        // argon2 takes tens of milliseconds of CPU: off the async workers.
        let matches = tokio::task::spawn_blocking(move || match hash {
            Some(hash) => ccp_core::password::verify(&password, &hash),
            None => ccp_core::password::verify_unknown(&password),
        })
        .await
        .unwrap_or(false);
        let admin = match found {
            Some(f) if matches && f.admin.status == UserStatus::Active => f.admin,
            _ => {
                self.count_failure(name, client).await;
                return Err(LoginError::InvalidCredentials);
            }
        };
        self.by_username.invalidate(&name).await;
        self.store
            .record_admin_login(admin.id)
            .await
            .map_err(LoginError::Unavailable)?;
        self.keys
            .issue(&admin)
            .map_err(|_| LoginError::InvalidCredentials)
    }

    /// Counts a failure against the name and the address (atomically per key, so
    /// concurrent attempts are all counted).
    async fn count_failure(&self, name: String, client: IpAddr) {
        self.by_username.entry(name).and_upsert_with(bump).await;
        self.by_address.entry(client).and_upsert_with(bump).await;
    }

    /// The admin a bearer token stands for, if the token is valid and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<(Admin, Claims), SessionCheckError> {
        let claims = self
            .keys
            .verify(token)
            .map_err(|_| SessionCheckError::Unauthorized)?;
        let admin = self
            .store
            .get_admin(claims.sub)
            .await
            .map_err(SessionCheckError::Unavailable)?
            .ok_or(SessionCheckError::Unauthorized)?;
        if admin.status != UserStatus::Active || admin.token_version != claims.ver {
            return Err(SessionCheckError::Unauthorized);
        }
        Ok((admin, claims))
    }

    /// Ends every session of the admin (tokens carry the version this bumps).
    pub async fn logout(&self, admin: &Admin) -> Result<(), StoreError> {
        self.store
            .bump_admin_token_version(admin.id)
            .await
            .map(drop)
    }
}
