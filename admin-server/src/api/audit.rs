//! The audit log: who changed what, and when.

use super::users::paging;
use super::views::{AuditPage, AuditView};
use super::{ApiFailure, session};
use ccp_core::store::AuditQuery;
use salvo::oapi::ToParameters;
use salvo::prelude::*;
use serde::Deserialize;

pub fn routes() -> Router {
    Router::new().push(Router::with_path("audit").get(audit))
}

#[derive(Debug, Deserialize, ToParameters)]
#[salvo(parameters(default_parameter_in = Query))]
pub struct AuditParams {
    /// e.g. `admin:<id>` or `cli`.
    #[salvo(parameter(required = false, value_type = String, max_length = 200))]
    pub actor: Option<String>,
    /// e.g. `access_key.revoke`.
    #[salvo(parameter(required = false, value_type = String, max_length = 200))]
    pub action: Option<String>,
    /// The id of the changed user, key, mapping or admin.
    #[salvo(parameter(required = false, value_type = String, max_length = 200))]
    pub target_id: Option<String>,
    /// 1 to 500; default 50.
    #[salvo(parameter(required = false, value_type = i64, minimum = 1, maximum = 500))]
    pub limit: Option<i64>,
    #[salvo(parameter(required = false, value_type = i64, minimum = 0, maximum = 2147483647))]
    pub offset: Option<i64>,
}

/// Who changed what, and when, newest first.
#[endpoint(tags("audit"), status_codes(200, 400, 401, 422, 503))]
async fn audit(
    params: AuditParams,
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<AuditPage>, ApiFailure> {
    let (api, _) = session(depot)?;
    super::known_params(req, &["actor", "action", "target_id", "limit", "offset"])?;
    let (limit, offset) = paging(params.limit, params.offset)?;
    let long = |v: &Option<String>| v.as_ref().is_some_and(|v| v.chars().count() > 200);
    if long(&params.actor) || long(&params.action) || long(&params.target_id) {
        return Err(ApiFailure::invalid("filters are at most 200 characters"));
    }
    let (entries, total) = api
        .ops
        .store
        .list_audit(&AuditQuery {
            actor: params.actor,
            action: params.action,
            target_id: params.target_id,
            limit,
            offset,
        })
        .await?;
    Ok(Json(AuditPage {
        items: entries.into_iter().map(AuditView::from).collect(),
        total,
        limit,
        offset,
    }))
}
