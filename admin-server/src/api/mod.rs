//! The admin REST API (salvo), first slice: login and logout. Every route but login needs a
//! valid admin session (`Authorization: Bearer <token>`); errors are
//! `{"error": {"type": …, "message": …}}` with the matching status and never internals.

use crate::login::{LoginError, LoginService, SessionCheckError};
use ccp_core::domain::Admin;
use ccp_core::secret::SecretString;
use ccp_core::store::Store;
use salvo::http::StatusCode;
use salvo::oapi::{self, EndpointOutRegister, ToSchema};
use salvo::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What the handlers share.
#[derive(Debug)]
pub struct AdminApi {
    pub store: Store,
    pub login: LoginService,
}

/// An error answer: `{"error": {"type": …, "message": …}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiFailure {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid or expired session",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the admin store is unavailable; try again",
        )
    }
}

#[async_trait]
impl Writer for ApiFailure {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        res.status_code(self.status);
        res.render(Json(ErrorBody {
            error: ErrorDetail {
                kind: self.kind,
                message: self.message,
            },
        }));
    }
}

impl EndpointOutRegister for ApiFailure {
    fn register(components: &mut oapi::Components, operation: &mut oapi::Operation) {
        for (status, what) in [
            (StatusCode::BAD_REQUEST, "Malformed request"),
            (
                StatusCode::UNAUTHORIZED,
                "Not logged in, or the session ended",
            ),
            (StatusCode::TOO_MANY_REQUESTS, "Too many failed logins"),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database cannot answer",
            ),
        ] {
            operation.responses.insert(
                status.as_str(),
                oapi::Response::new(what)
                    .add_content("application/json", ErrorBody::to_schema(components)),
            );
        }
    }
}

fn api(depot: &Depot) -> Result<Arc<AdminApi>, ApiFailure> {
    depot
        .obtain::<Arc<AdminApi>>()
        .cloned()
        .map_err(|_| ApiFailure::unavailable())
}

/// Puts the shared state into every request's depot.
struct Inject(Arc<AdminApi>);

#[async_trait]
impl Handler for Inject {
    async fn handle(
        &self,
        _req: &mut Request,
        depot: &mut Depot,
        _res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        depot.inject(Arc::clone(&self.0));
    }
}

/// Lets a request through only with a valid session; the admin goes into the depot.
#[handler]
async fn require_admin(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let outcome = match (api(depot), token) {
        (Ok(api), Some(token)) => api.login.authenticate(&token).await.map_err(|e| match e {
            SessionCheckError::Unauthorized => ApiFailure::unauthorized(),
            SessionCheckError::Unavailable(_) => ApiFailure::unavailable(),
        }),
        (Err(e), _) => Err(e),
        (_, None) => Err(ApiFailure::unauthorized()),
    };
    match outcome {
        Ok((admin, _claims)) => {
            depot.inject(admin);
        }
        Err(failure) => {
            failure.write(req, depot, res).await;
            ctrl.skip_rest();
        }
    }
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
#[endpoint(tags("auth"))]
async fn login(
    body: oapi::extract::JsonBody<LoginRequest>,
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<LoginResponse>, ApiFailure> {
    let api = api(depot)?;
    let LoginRequest { username, password } = body.into_inner();
    let client = req.remote_addr().clone().into_std().map(|a| a.ip());
    let client = client.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    match api
        .login
        .login(&username, SecretString::new(password), client)
        .await
    {
        Ok((token, claims)) => Ok(Json(LoginResponse {
            token,
            expires_at: claims.exp,
        })),
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

/// End the session (every session of this admin).
#[endpoint(tags("auth"), status_codes(204, 401, 503))]
async fn logout(depot: &mut Depot, res: &mut Response) -> Result<(), ApiFailure> {
    let api = api(depot)?;
    let admin = depot
        .obtain::<Admin>()
        .cloned()
        .map_err(|_| ApiFailure::unauthorized())?;
    api.login
        .logout(&admin)
        .await
        .map_err(|_| ApiFailure::unavailable())?;
    res.status_code(StatusCode::NO_CONTENT);
    Ok(())
}

/// The router, with the OpenAPI document at `/admin/openapi.json`.
pub fn router(api: Arc<AdminApi>) -> Router {
    let routes = Router::with_path("admin")
        .push(Router::with_path("auth/login").post(login))
        .push(
            Router::new()
                .hoop(require_admin)
                .push(Router::with_path("auth/logout").post(logout)),
        );
    let doc = oapi::OpenApi::new("ClaudeCodeProxy admin API", env!("CARGO_PKG_VERSION"))
        .merge_router(&routes);
    Router::new()
        .hoop(Inject(api))
        .push(routes)
        .push(doc.into_router("/admin/openapi.json"))
}
