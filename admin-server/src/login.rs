//! Admin login and session checks, independent of HTTP: the REST handlers call these.
//!
//! - One answer for an unknown user, a wrong password and a disabled admin
//!   ([`LoginError::InvalidCredentials`]), and the same argon2 work for each.
//! - Throttling: after [`MAX_FAILURES`] failed attempts for one username or from one client
//!   address, further attempts are refused ([`LoginError::Throttled`]) until
//!   [`FAILURE_WINDOW`] has passed since the last failure; the password is not checked then.
//!   The failures are counted in the database, so several admin servers share one limit.
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
}

/// What failed logins are counted against: the username and the client address.
fn subjects(name: &str, client: IpAddr) -> [String; 2] {
    [format!("user:{name}"), format!("addr:{client}")]
}

impl LoginService {
    pub fn new(store: Store, keys: Arc<SessionKeys>) -> Self {
        Self { store, keys }
    }

    /// Checks the credentials and issues a session token.
    pub async fn login(
        &self,
        username: &str,
        password: SecretString,
        client: IpAddr,
    ) -> Result<(String, Claims), LoginError> {
        let name = normalize_username(username);
        let [by_name, by_address] = subjects(&name, client);
        let now = chrono::Utc::now();
        for subject in [&by_name, &by_address] {
            let failures = self
                .store
                .login_failures(subject, now, FAILURE_WINDOW)
                .await
                .map_err(LoginError::Unavailable)?;
            if failures >= MAX_FAILURES {
                return Err(LoginError::Throttled);
            }
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
                for subject in [&by_name, &by_address] {
                    self.store
                        .record_login_failure(subject, chrono::Utc::now(), FAILURE_WINDOW)
                        .await
                        .map_err(LoginError::Unavailable)?;
                }
                return Err(LoginError::InvalidCredentials);
            }
        };
        self.store
            .clear_login_failures(&by_name)
            .await
            .map_err(LoginError::Unavailable)?;
        self.store
            .record_admin_login(admin.id)
            .await
            .map_err(LoginError::Unavailable)?;
        self.keys
            .issue(&admin)
            .map_err(|_| LoginError::InvalidCredentials)
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
