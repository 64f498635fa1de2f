//! The shared state in every request, and the session check in front of the protected
//! routes; the helpers handlers use to reach both.

use super::{AdminApi, ApiFailure};
use crate::login::SessionCheckError;
use ccp_core::domain::Admin;
use salvo::prelude::*;
use std::sync::Arc;

pub(crate) fn api(depot: &Depot) -> Result<Arc<AdminApi>, ApiFailure> {
    depot
        .obtain::<Arc<AdminApi>>()
        .cloned()
        .map_err(|_| ApiFailure::unavailable())
}

/// The logged-in admin and the shared state.
pub(crate) fn session(depot: &Depot) -> Result<(Arc<AdminApi>, Admin), ApiFailure> {
    let admin = depot
        .obtain::<Admin>()
        .cloned()
        .map_err(|_| ApiFailure::unauthorized())?;
    Ok((api(depot)?, admin))
}

/// The audit actor of an admin.
pub(crate) fn actor(admin: &Admin) -> String {
    format!("admin:{}", admin.id)
}

/// Puts the shared state into every request's depot.
pub(super) struct Inject(pub(super) Arc<AdminApi>);

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
pub(super) async fn require_admin(
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
