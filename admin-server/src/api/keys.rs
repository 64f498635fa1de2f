//! Access keys: issue, show, revoke, rotate, and their Bedrock API keys.

use super::views::{AccessKeyView, BedrockKeyView, IssuedKeyView, RotatedKeyView};
use super::{ApiFailure, Created, NoContent, actor, session};
use ccp_core::secret::SecretString;
use chrono::{DateTime, Utc};
use salvo::oapi::ToSchema;
use salvo::oapi::extract::{JsonBody, PathParam};
use salvo::prelude::*;
use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;

pub fn routes() -> Router {
    Router::new()
        .push(Router::with_path("users/{id}/access-keys").post(issue_key))
        .push(
            Router::with_path("access-keys/{id}")
                .delete(revoke_key)
                .push(Router::with_path("rotate").post(rotate_key))
                .push(
                    Router::with_path("bedrock-key")
                        .post(set_bedrock_key)
                        .delete(delete_bedrock_key),
                ),
        )
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct IssueKey {
    /// A label, e.g. the laptop the key is for.
    #[salvo(schema(max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"))]
    pub name: Option<String>,
    /// When the key stops working; never when absent.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Issue an access key to a user. The raw key is in this answer only.
#[endpoint(tags("access keys"), status_codes(201, 400, 401, 404, 409, 422, 503))]
async fn issue_key(
    id: PathParam<Uuid>,
    body: JsonBody<IssueKey>,
    depot: &mut Depot,
) -> Result<Created<IssuedKeyView>, ApiFailure> {
    let (api, admin) = session(depot)?;
    let IssueKey { name, expires_at } = body.into_inner();
    let issued = api
        .ops
        .issue_key(&actor(&admin), *id, name, expires_at)
        .await?;
    Ok(Created(IssuedKeyView {
        key: issued.key.expose().to_owned(),
        access_key: AccessKeyView::new(issued.record, None),
    }))
}

/// Revoke an access key: PostgreSQL gateways refuse it at once (SQLite: within the key-cache
/// TTL).
#[endpoint(tags("access keys"), status_codes(200, 400, 401, 404, 503))]
async fn revoke_key(
    id: PathParam<Uuid>,
    depot: &mut Depot,
) -> Result<Json<AccessKeyView>, ApiFailure> {
    let (api, admin) = session(depot)?;
    let record = api.ops.revoke_key(&actor(&admin), *id).await?;
    let bedrock = api.ops.store.bedrock_key(record.id).await?;
    Ok(Json(AccessKeyView::new(record, bedrock)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RotateKey {
    /// How long the old key keeps working, in seconds (0 to 2592000); the server's
    /// `CCP_KEY_ROTATION_GRACE_SECS` when absent.
    #[salvo(schema(minimum = 0, maximum = 2592000))]
    pub grace_seconds: Option<u64>,
}

/// Replace an access key. The new key is in this answer only; the old one keeps working
/// for the grace period, then is revoked. A Bedrock key moves to the new key.
#[endpoint(tags("access keys"), status_codes(201, 400, 401, 404, 409, 422, 503))]
async fn rotate_key(
    id: PathParam<Uuid>,
    body: JsonBody<RotateKey>,
    depot: &mut Depot,
) -> Result<Created<RotatedKeyView>, ApiFailure> {
    let (api, admin) = session(depot)?;
    let grace = body.into_inner().grace_seconds.map(Duration::from_secs);
    let (issued, old) = api.ops.rotate_key(&actor(&admin), *id, grace).await?;
    let bedrock = api.ops.store.bedrock_key(issued.record.id).await?;
    let previous_bedrock = api.ops.store.bedrock_key(old.id).await?;
    Ok(Created(RotatedKeyView {
        key: issued.key.expose().to_owned(),
        access_key: AccessKeyView::new(issued.record, bedrock),
        previous: AccessKeyView::new(old, previous_bedrock),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetBedrockKey {
    /// The Bedrock API key. Write-only: stored encrypted, shown as its last 4 characters.
    #[salvo(schema(
        min_length = 8,
        max_length = 8192,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$",
        write_only
    ))]
    pub api_key: String,
    /// The AWS region the key was made in, e.g. `us-east-1`.
    #[salvo(schema(pattern = r"^[a-z]{2}(-[a-z]{1,12}){1,2}-[0-9]{1,2}$"))]
    pub region: String,
}

/// Register or replace the Bedrock API key an access key fails over with.
#[endpoint(tags("access keys"), status_codes(200, 400, 401, 404, 422, 503))]
async fn set_bedrock_key(
    id: PathParam<Uuid>,
    body: JsonBody<SetBedrockKey>,
    depot: &mut Depot,
) -> Result<Json<BedrockKeyView>, ApiFailure> {
    let (api, admin) = session(depot)?;
    let SetBedrockKey { api_key, region } = body.into_inner();
    let secret = SecretString::new(api_key);
    let record = api
        .ops
        .set_bedrock_key(&actor(&admin), *id, &secret, &region)
        .await?;
    Ok(Json(record.into()))
}

/// Remove the Bedrock API key: the access key then uses Plan only.
#[endpoint(tags("access keys"), status_codes(204, 400, 401, 404, 503))]
async fn delete_bedrock_key(
    id: PathParam<Uuid>,
    depot: &mut Depot,
) -> Result<NoContent, ApiFailure> {
    let (api, admin) = session(depot)?;
    api.ops.delete_bedrock_key(&actor(&admin), *id).await?;
    Ok(NoContent)
}
