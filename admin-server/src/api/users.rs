//! Users: list, create, show (with masked keys), update and (de)activate.

use super::views::{
    AccessKeyView, CircuitView, RoutingView, UserDetail, UserPage, UserStatusView, UserView,
};
use super::{ApiFailure, Created, actor, session};
use ccp_core::store::{UserPatch, UserQuery};
use salvo::oapi::extract::{JsonBody, PathParam};
use salvo::oapi::{ToParameters, ToSchema};
use salvo::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

pub fn routes() -> Router {
    Router::with_path("users")
        .get(list_users)
        .post(create_user)
        .push(Router::with_path("{id}").get(get_user).patch(update_user))
}

/// Page size bounds shared by the listings.
pub(super) const MAX_LIMIT: i64 = 500;

/// Checks `limit` (1 to 500, default 50) and `offset` (0 or more).
pub(super) fn paging(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiFailure> {
    let limit = limit.unwrap_or(50);
    let offset = offset.unwrap_or(0);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiFailure::invalid("limit must be 1 to 500"));
    }
    if !(0..=i64::from(i32::MAX)).contains(&offset) {
        return Err(ApiFailure::invalid("offset must be 0 to 2147483647"));
    }
    Ok((limit, offset))
}

#[derive(Debug, Deserialize, ToParameters)]
#[salvo(parameters(default_parameter_in = Query))]
pub struct ListUsers {
    /// A part of the name or email (case-insensitive).
    #[salvo(parameter(required = false, value_type = String, max_length = 200))]
    pub search: Option<String>,
    #[salvo(parameter(required = false, value_type = UserStatusView))]
    pub status: Option<UserStatusView>,
    /// 1 to 500; default 50.
    #[salvo(parameter(required = false, value_type = i64, minimum = 1, maximum = 500))]
    pub limit: Option<i64>,
    #[salvo(parameter(required = false, value_type = i64, minimum = 0, maximum = 2147483647))]
    pub offset: Option<i64>,
}

/// List users, oldest first.
#[endpoint(tags("users"), status_codes(200, 400, 401, 422, 503))]
async fn list_users(
    query: ListUsers,
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<UserPage>, ApiFailure> {
    let (api, _) = session(depot)?;
    super::known_params(req, &["search", "status", "limit", "offset"])?;
    let (limit, offset) = paging(query.limit, query.offset)?;
    if query
        .search
        .as_ref()
        .is_some_and(|s| s.chars().count() > 200)
    {
        return Err(ApiFailure::invalid("search is at most 200 characters"));
    }
    let (users, total) = api
        .ops
        .store
        .list_users(&UserQuery {
            search: query.search.filter(|s| !s.trim().is_empty()),
            status: query.status.map(Into::into),
            limit,
            offset,
        })
        .await?;
    Ok(Json(UserPage {
        items: users.into_iter().map(UserView::from).collect(),
        total,
        limit,
        offset,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUser {
    #[salvo(schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    #[salvo(schema(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]*\.[^@\s\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub email: String,
}

/// Create a user (active). The email must be unique.
#[endpoint(tags("users"), status_codes(201, 400, 401, 409, 422, 503))]
async fn create_user(
    body: JsonBody<CreateUser>,
    depot: &mut Depot,
) -> Result<Created<UserView>, ApiFailure> {
    let (api, admin) = session(depot)?;
    let CreateUser { name, email } = body.into_inner();
    let user = api.ops.create_user(&actor(&admin), &name, &email).await?;
    Ok(Created(user.into()))
}

/// A user with its access keys (masked) and their Bedrock key status.
#[endpoint(tags("users"), status_codes(200, 400, 401, 404, 503))]
async fn get_user(id: PathParam<Uuid>, depot: &mut Depot) -> Result<Json<UserDetail>, ApiFailure> {
    let (api, _) = session(depot)?;
    let store = &api.ops.store;
    let user = store.get_user(*id).await?.ok_or_else(user_not_found)?;
    let keys = store.list_access_keys(Some(user.id)).await?;
    let circuits = store.circuits_of_user(user.id).await?;
    let now = chrono::Utc::now();
    let mut access_keys = Vec::with_capacity(keys.len());
    for key in keys {
        let bedrock = store.bedrock_key(key.id).await?;
        let circuit = circuits
            .iter()
            .find(|c| c.access_key_id == key.id)
            .map(|c| CircuitView::new(c, now));
        access_keys.push(AccessKeyView {
            circuit,
            ..AccessKeyView::new(key, bedrock)
        });
    }
    let budget = crate::ops::budget_status(store, &user).await?.into();
    Ok(Json(UserDetail {
        user: user.into(),
        budget,
        access_keys,
    }))
}

pub(super) fn user_not_found() -> ApiFailure {
    crate::ops::OpsError::NotFound("user").into()
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUser {
    #[salvo(schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Option<String>,
    #[salvo(schema(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]*\.[^@\s\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub email: Option<String>,
    /// `disabled` stops every key of the user (at once on PostgreSQL gateways, within the
    /// key-cache TTL on SQLite).
    pub status: Option<UserStatusView>,
    /// Takes effect at once on PostgreSQL gateways, within the key-cache TTL on SQLite.
    pub routing: Option<RoutingView>,
    /// USD as an exact decimal string (`"25"`, `"12.50"`) over the estimated Bedrock cost of
    /// a calendar month (UTC); null removes the budget.
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(
        value_type = Option<String>,
        pattern = r"^(1000000(\.0{1,6})?|[0-9]{1,6}(\.[0-9]{1,6})?)$"
    ))]
    pub monthly_budget_usd: Option<Option<String>>,
    #[salvo(schema(minimum = 1, maximum = 100))]
    pub budget_warning_percent: Option<i32>,
}

/// A field that may be absent (`None`: leave it), null (`Some(None)`: clear it) or a value.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Change a user's name or email, or activate / deactivate it.
#[endpoint(tags("users"), status_codes(200, 400, 401, 404, 409, 422, 503))]
async fn update_user(
    id: PathParam<Uuid>,
    body: JsonBody<UpdateUser>,
    depot: &mut Depot,
) -> Result<Json<UserView>, ApiFailure> {
    let (api, admin) = session(depot)?;
    let UpdateUser {
        name,
        email,
        status,
        routing,
        monthly_budget_usd,
        budget_warning_percent,
    } = body.into_inner();
    let monthly_budget_micro_usd = match monthly_budget_usd {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => Some(Some(
            ccp_core::money::parse_usd(&text).map_err(|e| ApiFailure::invalid(e.to_string()))?,
        )),
    };
    let patch = UserPatch {
        name,
        email,
        status: status.map(Into::into),
        routing: routing.map(Into::into),
        monthly_budget_micro_usd,
        budget_warning_percent,
    };
    let user = api.ops.update_user(&actor(&admin), *id, patch).await?;
    Ok(Json(user.into()))
}
