//! Login, logout and the one-time bootstrap of the first admin.

use super::{ApiFailure, Created, NoContent, api, session};
use crate::login::LoginError;
use ccp_core::secret::SecretString;
use salvo::http::StatusCode;
use salvo::oapi::ToSchema;
use salvo::oapi::extract::JsonBody;
use salvo::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn public_routes() -> Router {
    Router::with_path("auth")
        .push(Router::with_path("login").post(login))
        .push(Router::with_path("bootstrap").post(bootstrap))
}

pub fn routes() -> Router {
    Router::with_path("auth/logout").post(logout)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The session token, for `Authorization: Bearer …`.
    pub token: String,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Log in with a username and password.
#[endpoint(tags("auth"), status_codes(200, 400, 401, 429, 503))]
async fn login(
    body: JsonBody<LoginRequest>,
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<LoginResponse>, ApiFailure> {
    let api = api(depot)?;
    let LoginRequest { username, password } = body.into_inner();
    let client = client_address(req, api.trust_forwarded_for);
    match api
        .login
        .login(&username, SecretString::new(password), client)
        .await
    {
        Ok((token, claims)) => {
            let detail = serde_json::json!({"client": client.to_string(), "session": claims.jti});
            api.ops
                .record_session(claims.sub, "admin.login", detail)
                .await?;
            Ok(Json(LoginResponse {
                token,
                expires_at: claims.exp,
            }))
        }
        Err(LoginError::InvalidCredentials) => Err(ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid username or password",
        )),
        Err(LoginError::Throttled) => Err(ApiFailure::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "too many failed attempts; try again later",
        )),
        Err(LoginError::Unavailable(_)) => Err(ApiFailure::unavailable()),
    }
}

/// The address login throttling counts against: the peer, or behind a load balancer
/// (`CCP_ADMIN_TRUST_FORWARDED_FOR=on`) the last address in `X-Forwarded-For`, the one the
/// load balancer itself appended (earlier entries come from the client and prove nothing).
fn client_address(req: &Request, trust_forwarded_for: bool) -> std::net::IpAddr {
    let forwarded = trust_forwarded_for
        .then(|| {
            req.headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|last| last.trim().parse().ok())
        })
        .flatten();
    forwarded
        .or_else(|| req.remote_addr().clone().into_std().map(|a| a.ip()))
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
}

/// End the session (every session of this admin).
#[endpoint(tags("auth"), status_codes(204, 401, 503))]
async fn logout(depot: &mut Depot) -> Result<NoContent, ApiFailure> {
    let (api, admin) = session(depot)?;
    api.login
        .logout(&admin)
        .await
        .map_err(|_| ApiFailure::unavailable())?;
    api.ops
        .record_session(admin.id, "admin.logout", serde_json::json!({}))
        .await?;
    Ok(NoContent)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BootstrapRequest {
    /// `CCP_BOOTSTRAP_SECRET`.
    #[salvo(schema(write_only))]
    pub secret: String,
    #[salvo(schema(pattern = r"^[A-Za-z0-9._@-]{1,64}$"))]
    pub username: String,
    #[salvo(schema(min_length = 12, max_length = 256, write_only))]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BootstrapResponse {
    pub id: Uuid,
    pub username: String,
}

/// Create the first admin with the configured bootstrap secret. Works only while no admin
/// exists and only when `CCP_BOOTSTRAP_SECRET` is set; refused (403) otherwise.
#[endpoint(tags("auth"), status_codes(201, 400, 403, 422, 503))]
async fn bootstrap(
    body: JsonBody<BootstrapRequest>,
    depot: &mut Depot,
) -> Result<Created<BootstrapResponse>, ApiFailure> {
    let api = api(depot)?;
    let BootstrapRequest {
        secret,
        username,
        password,
    } = body.into_inner();
    let refused = || {
        ApiFailure::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "bootstrap is closed: it needs CCP_BOOTSTRAP_SECRET and no admin yet",
        )
    };
    let Some(expected) = &api.bootstrap_secret else {
        return Err(refused());
    };
    let secret = SecretString::new(secret);
    if !ccp_core::secret::constant_time_eq(secret.expose().as_bytes(), expected.expose().as_bytes())
    {
        return Err(refused());
    }
    let password = SecretString::new(password);
    let hash = tokio::task::spawn_blocking(move || ccp_core::password::hash(&password))
        .await
        .map_err(|_| ApiFailure::unavailable())?
        .map_err(|e| ApiFailure::invalid(e.to_string()))?;
    let admin = api
        .ops
        .bootstrap_admin(&username, hash)
        .await?
        .ok_or_else(refused)?;
    Ok(Created(BootstrapResponse {
        id: admin.id,
        username: admin.username,
    }))
}
