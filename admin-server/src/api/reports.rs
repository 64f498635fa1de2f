//! Read-only reports: metered usage and the audit log.

use super::users::paging;
use super::views::{AuditPage, AuditView};
use super::{ApiFailure, session};
use ccp_core::store::{AuditQuery, Granularity, UsageBucket, UsageFilter};
use chrono::{DateTime, Utc};
use salvo::oapi::{ToParameters, ToSchema};
use salvo::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn routes() -> Router {
    Router::new()
        .push(Router::with_path("usage").get(usage))
        .push(Router::with_path("audit").get(audit))
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GranularityParam {
    Hour,
    #[default]
    Day,
    Month,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderParam {
    Plan,
    Bedrock,
}

#[derive(Debug, Deserialize, ToParameters)]
#[salvo(parameters(default_parameter_in = Query))]
pub struct UsageParams {
    /// Only this user's requests.
    #[salvo(parameter(required = false, value_type = Uuid))]
    pub user: Option<Uuid>,
    /// Only this access key's requests.
    #[salvo(parameter(required = false, value_type = Uuid))]
    pub key: Option<Uuid>,
    /// Only requests for this model (as the client named it).
    #[salvo(parameter(required = false, value_type = String, max_length = 200))]
    pub model: Option<String>,
    /// Only requests this upstream answered.
    #[salvo(parameter(required = false, value_type = ProviderParam))]
    pub provider: Option<ProviderParam>,
    /// Start (inclusive), RFC 3339; default 30 days before `to`. Must be before `to`.
    #[salvo(parameter(required = false, value_type = DateTime<Utc>))]
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive), RFC 3339; default now.
    #[salvo(parameter(required = false, value_type = DateTime<Utc>))]
    pub to: Option<DateTime<Utc>>,
    /// Bucket size; default `day`.
    #[salvo(parameter(required = false, value_type = GranularityParam))]
    pub granularity: Option<GranularityParam>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct UsageNumbers {
    pub requests: i64,
    /// Requests Plan failed and Bedrock was tried for.
    pub failovers: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    /// Estimated Bedrock cost in millionths of a US dollar (exact sums).
    pub cost_micro_usd: i64,
}

impl UsageNumbers {
    fn add(&mut self, b: &UsageBucket) {
        self.requests += b.requests;
        self.failovers += b.failovers;
        self.input_tokens += b.input_tokens;
        self.output_tokens += b.output_tokens;
        self.cache_read_tokens += b.cache_read_tokens;
        self.cache_write_tokens += b.cache_write_tokens;
        self.cost_micro_usd += b.cost_micro_usd;
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsagePoint {
    /// Bucket start, RFC 3339 UTC.
    pub bucket: String,
    #[serde(flatten)]
    pub numbers: UsageNumbers,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: GranularityParam,
    /// Buckets that had requests, oldest first.
    pub series: Vec<UsagePoint>,
    pub totals: UsageNumbers,
}

/// Requests, failovers, tokens and cost over time, with totals.
#[endpoint(tags("usage"), status_codes(200, 400, 401, 422, 503))]
async fn usage(
    params: UsageParams,
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<UsageReport>, ApiFailure> {
    let (api, _) = session(depot)?;
    super::known_params(
        req,
        &[
            "user",
            "key",
            "model",
            "provider",
            "from",
            "to",
            "granularity",
        ],
    )?;
    let to = params.to.unwrap_or_else(Utc::now);
    let from = params.from.unwrap_or(to - chrono::Duration::days(30));
    if from >= to {
        return Err(ApiFailure::invalid("from must be before to"));
    }
    if params
        .model
        .as_ref()
        .is_some_and(|m| m.chars().count() > 200)
    {
        return Err(ApiFailure::invalid("model is at most 200 characters"));
    }
    let granularity = params.granularity.unwrap_or_default();
    let filter = UsageFilter {
        from: Some(from),
        to: Some(to),
        user_id: params.user,
        access_key_id: params.key,
        model: params.model,
        provider: params.provider.map(|p| match p {
            ProviderParam::Plan => "plan".to_owned(),
            ProviderParam::Bedrock => "bedrock".to_owned(),
        }),
    };
    let buckets = api
        .ops
        .store
        .usage_series(
            &filter,
            match granularity {
                GranularityParam::Hour => Granularity::Hour,
                GranularityParam::Day => Granularity::Day,
                GranularityParam::Month => Granularity::Month,
            },
        )
        .await?;
    let mut totals = UsageNumbers::default();
    let series = buckets
        .into_iter()
        .map(|b| {
            totals.add(&b);
            let mut numbers = UsageNumbers::default();
            numbers.add(&b);
            UsagePoint {
                bucket: b.bucket,
                numbers,
            }
        })
        .collect();
    Ok(Json(UsageReport {
        from,
        to,
        granularity,
        series,
        totals,
    }))
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
