//! Admin session tokens: HS256 JWTs (jsonwebtoken) with the algorithm pinned, `iss` and `aud`
//! checked, `exp` at most an hour after `iat`, and the admin's `token_version` inside, so a
//! logout or a password change (both bump the version) revokes every token issued before.
//!
//! [`SessionKeys::verify`] checks the token itself; the caller then compares `ver` with the
//! admin's current `token_version` in the store.

use ccp_core::domain::Admin;
use ccp_core::secret::SecretString;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

pub const ISSUER: &str = "ccp-admin";
pub const AUDIENCE: &str = "ccp-console";
/// The longest a session token may live.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The admin id.
    pub sub: Uuid,
    /// The admin's `token_version` when the token was issued.
    pub ver: i64,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    /// Unique per token (for audit entries).
    pub jti: Uuid,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    /// Every reason a token is refused: bad signature, wrong algorithm, expired, missing or
    /// wrong claims. One kind, so responses never tell an attacker which check failed.
    #[error("invalid or expired session token")]
    Invalid,
    #[error("the session secret must be at least 32 bytes")]
    WeakSecret,
}

pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SessionKeys {
    /// Keys from the configured secret; `ttl` is capped at [`MAX_TTL`].
    pub fn new(secret: &SecretString, ttl: Duration) -> Result<Self, SessionError> {
        let bytes = secret.expose().as_bytes();
        if bytes.len() < 32 {
            return Err(SessionError::WeakSecret);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            ttl: ttl.min(MAX_TTL),
        })
    }

    /// A token for `admin`, valid for the configured TTL.
    pub fn issue(&self, admin: &Admin) -> Result<(String, Claims), SessionError> {
        let iat = unix_now();
        let claims = Claims {
            sub: admin.id,
            ver: admin.token_version,
            iat,
            exp: iat + self.ttl.as_secs(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            jti: Uuid::now_v7(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| SessionError::Invalid)?;
        Ok((token, claims))
    }

    /// The claims of a well-formed, correctly signed, current token.
    pub fn verify(&self, token: &str) -> Result<Claims, SessionError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| SessionError::Invalid)?;
        let claims = data.claims;
        // A token that claims to live longer than we ever issue was not issued by us.
        if claims.exp.saturating_sub(claims.iat) > MAX_TTL.as_secs()
            || claims.iat > unix_now() + LEEWAY_SECS
        {
            return Err(SessionError::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    fn admin() -> Admin {
        let at = chrono::Utc::now();
        Admin {
            id: Uuid::now_v7(),
            username: "ops".into(),
            token_version: 3,
            status: ccp_core::domain::UserStatus::Active,
            created_at: at,
            updated_at: at,
            last_login_at: None,
        }
    }

    fn keys() -> SessionKeys {
        SessionKeys::new(&SecretString::from(SECRET), Duration::from_secs(600)).unwrap()
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let a = admin();
        let (token, claims) = keys().issue(&a).unwrap();
        let back = keys().verify(&token).unwrap();
        assert_eq!(back, claims);
        assert_eq!((back.sub, back.ver), (a.id, 3));
        assert_eq!(back.exp - back.iat, 600);
        // Forged and stale tokens: admin-server/tests/jwt.rs, against the API.
    }

    #[test]
    fn short_secrets_and_long_ttls_are_not_accepted() {
        assert_eq!(
            SessionKeys::new(&SecretString::from("short"), MAX_TTL).unwrap_err(),
            SessionError::WeakSecret
        );
        let keys =
            SessionKeys::new(&SecretString::from(SECRET), Duration::from_secs(86_400)).unwrap();
        let (_, claims) = keys.issue(&admin()).unwrap();
        assert_eq!(claims.exp - claims.iat, MAX_TTL.as_secs());
    }
}
