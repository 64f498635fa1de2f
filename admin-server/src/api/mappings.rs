//! The Anthropic model → Bedrock model id map. Rows override the built-in defaults; rows
//! named `family:opus`, `family:sonnet`, `family:haiku` set a family's default for names
//! nothing else maps. Gateways reload them every `CCP_MODEL_MAP_REFRESH_SECS`.

use super::views::{ModelMappingView, UnmappedModelView};
use super::{ApiFailure, Created, NoContent, actor, session};
use ccp_core::store::{ModelMappingPatch, NewModelMapping};
use salvo::oapi::ToSchema;
use salvo::oapi::extract::{JsonBody, PathParam};
use salvo::prelude::*;
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

pub fn routes() -> Router {
    Router::with_path("model-mappings")
        .get(list_mappings)
        .post(create_mapping)
        .push(
            Router::with_path("unmapped")
                .get(list_unmapped)
                .patch(listing_only)
                .delete(listing_only),
        )
        .push(
            Router::with_path("{id}")
                .get(get_mapping)
                .patch(update_mapping)
                .delete(delete_mapping),
        )
}

/// Every mapping, by Anthropic model name.
#[endpoint(tags("model mappings"), status_codes(200, 401, 503))]
async fn list_mappings(depot: &mut Depot) -> Result<Json<Vec<ModelMappingView>>, ApiFailure> {
    let (api, _) = session(depot)?;
    let rows = api.ops.store.list_model_mappings().await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Models clients sent in the last 7 days that no mapping row, built-in default or family
/// default sends to Bedrock: their requests cannot fail over. Most requested first.
#[endpoint(tags("model mappings"), status_codes(200, 401, 503))]
async fn list_unmapped(depot: &mut Depot) -> Result<Json<Vec<UnmappedModelView>>, ApiFailure> {
    let (api, _) = session(depot)?;
    let models = crate::ops::unmapped_models(&api.ops.store, 7).await?;
    Ok(Json(models.into_iter().map(Into::into).collect()))
}

/// `PATCH` and `DELETE` on the listing would otherwise reach `{id}` and fail to parse the
/// id: they get the 405 every undeclared method gets.
#[handler]
async fn listing_only(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    res.headers_mut().insert(
        salvo::http::header::ALLOW,
        salvo::http::HeaderValue::from_static("GET"),
    );
    ApiFailure::for_status(salvo::http::StatusCode::METHOD_NOT_ALLOWED)
        .write(req, depot, res)
        .await;
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateMapping {
    /// The model name clients send, e.g. `claude-sonnet-4-5`; or `family:opus`,
    /// `family:sonnet`, `family:haiku` for the default of names nothing else maps.
    #[salvo(schema(max_length = 200, pattern = r"^[A-Za-z0-9][A-Za-z0-9._:\[\]-]*$"))]
    pub anthropic_model: String,
    /// A Bedrock model id, inference-profile id or ARN.
    #[salvo(schema(
        max_length = 2048,
        pattern = r"^[A-Za-z0-9]([A-Za-z0-9_:/-]|\.[A-Za-z0-9_:/-])*\.?$"
    ))]
    pub bedrock_model_id: String,
    #[salvo(schema(minimum = 1, maximum = 1000000))]
    pub max_output_tokens: Option<i32>,
    /// A disabled row keeps the model off Bedrock. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// Map an Anthropic model to a Bedrock model id (one row per Anthropic model).
#[endpoint(tags("model mappings"), status_codes(201, 400, 401, 409, 422, 503))]
async fn create_mapping(
    body: JsonBody<CreateMapping>,
    depot: &mut Depot,
) -> Result<Created<ModelMappingView>, ApiFailure> {
    let (api, admin) = session(depot)?;
    let CreateMapping {
        anthropic_model,
        bedrock_model_id,
        max_output_tokens,
        enabled,
    } = body.into_inner();
    let new = NewModelMapping {
        anthropic_model,
        bedrock_model_id,
        max_output_tokens,
        enabled,
    };
    let row = api
        .ops
        .put_model_mapping(&actor(&admin), new, false)
        .await?;
    Ok(Created(row.into()))
}

fn mapping_not_found() -> ApiFailure {
    crate::ops::OpsError::NotFound("model mapping").into()
}

#[endpoint(tags("model mappings"), status_codes(200, 400, 401, 404, 503))]
async fn get_mapping(
    id: PathParam<Uuid>,
    depot: &mut Depot,
) -> Result<Json<ModelMappingView>, ApiFailure> {
    let (api, _) = session(depot)?;
    let row = api
        .ops
        .store
        .model_mapping_by_id(*id)
        .await?
        .ok_or_else(mapping_not_found)?;
    Ok(Json(row.into()))
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i32>>, D::Error> {
    Option::<i32>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMapping {
    #[salvo(schema(
        max_length = 2048,
        pattern = r"^[A-Za-z0-9]([A-Za-z0-9_:/-]|\.[A-Za-z0-9_:/-])*\.?$"
    ))]
    pub bedrock_model_id: Option<String>,
    /// A number sets the cap; `null` removes it; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Option<i32>, minimum = 1, maximum = 1000000))]
    pub max_output_tokens: Option<Option<i32>>,
    pub enabled: Option<bool>,
}

/// Change a mapping's Bedrock model id, output cap or enabled flag.
#[endpoint(tags("model mappings"), status_codes(200, 400, 401, 404, 422, 503))]
async fn update_mapping(
    id: PathParam<Uuid>,
    body: JsonBody<UpdateMapping>,
    depot: &mut Depot,
) -> Result<Json<ModelMappingView>, ApiFailure> {
    let (api, admin) = session(depot)?;
    let UpdateMapping {
        bedrock_model_id,
        max_output_tokens,
        enabled,
    } = body.into_inner();
    let patch = ModelMappingPatch {
        bedrock_model_id,
        max_output_tokens,
        enabled,
    };
    let row = api
        .ops
        .update_model_mapping(&actor(&admin), *id, patch)
        .await?;
    Ok(Json(row.into()))
}

/// Delete a mapping: the built-in default, if any, applies again.
#[endpoint(tags("model mappings"), status_codes(204, 400, 401, 404, 503))]
async fn delete_mapping(id: PathParam<Uuid>, depot: &mut Depot) -> Result<NoContent, ApiFailure> {
    let (api, admin) = session(depot)?;
    api.ops.delete_model_mapping(&actor(&admin), *id).await?;
    Ok(NoContent)
}
