//! Metered usage: series over time and top lists (the audit log is in `audit.rs`).

use super::{ApiFailure, session};
use ccp_core::store::{Granularity, UsageBucket, UsageFilter, UsageGroup};
use chrono::{DateTime, Utc};
use salvo::oapi::{ToParameters, ToSchema};
use salvo::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn routes() -> Router {
    Router::new()
        .push(Router::with_path("usage").get(usage))
        .push(Router::with_path("usage/top").get(usage_top))
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
    /// `key`: one series per access key (each point names its `key_id`); needs `user`.
    #[salvo(parameter(required = false, value_type = GroupByParam))]
    pub group_by: Option<GroupByParam>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupByParam {
    Key,
}

/// The filters every usage report shares, checked.
fn usage_filter(
    user: Option<Uuid>,
    key: Option<Uuid>,
    model: Option<String>,
    provider: Option<ProviderParam>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<UsageFilter, ApiFailure> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - chrono::Duration::days(30));
    if from >= to {
        return Err(ApiFailure::invalid("from must be before to"));
    }
    if model.as_ref().is_some_and(|m| m.chars().count() > 200) {
        return Err(ApiFailure::invalid("model is at most 200 characters"));
    }
    Ok(UsageFilter {
        from: Some(from),
        to: Some(to),
        user_id: user,
        access_key_id: key,
        model,
        provider: provider.map(|p| match p {
            ProviderParam::Plan => "plan".to_owned(),
            ProviderParam::Bedrock => "bedrock".to_owned(),
        }),
    })
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct UsageNumbers {
    pub requests: i64,
    /// Requests Plan failed and Bedrock was tried for.
    pub failovers: i64,
    /// Requests sent straight to Bedrock (the key's circuit was open). The rest of
    /// `requests` went to Plan only.
    pub bedrock_direct: i64,
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
        self.bedrock_direct += b.bedrock_direct;
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
    /// With `group_by=key`: the access key this point counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
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
            "group_by",
        ],
    )?;
    let filter = usage_filter(
        params.user,
        params.key,
        params.model,
        params.provider,
        params.from,
        params.to,
    )?;
    let granularity = params.granularity.unwrap_or_default();
    let store_granularity = match granularity {
        GranularityParam::Hour => Granularity::Hour,
        GranularityParam::Day => Granularity::Day,
        GranularityParam::Month => Granularity::Month,
    };
    let store = &api.ops.store;
    let buckets = match params.group_by {
        None => store.usage_series(&filter, store_granularity).await?,
        // Bounded by one user's keys.
        Some(GroupByParam::Key) if filter.user_id.is_some() => {
            store
                .usage_series_by(&filter, store_granularity, UsageGroup::Key)
                .await?
        }
        Some(GroupByParam::Key) => {
            return Err(ApiFailure::invalid("group_by=key needs a user"));
        }
    };
    let mut totals = UsageNumbers::default();
    let series = buckets
        .into_iter()
        .map(|b| {
            totals.add(&b);
            let mut numbers = UsageNumbers::default();
            numbers.add(&b);
            UsagePoint {
                bucket: b.bucket,
                key_id: b.group_id,
                numbers,
            }
        })
        .collect();
    Ok(Json(UsageReport {
        from: filter.from.unwrap_or_default(),
        to: filter.to.unwrap_or_default(),
        granularity,
        series,
        totals,
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TopByParam {
    User,
    Key,
    Model,
}

#[derive(Debug, Deserialize, ToParameters)]
#[salvo(parameters(default_parameter_in = Query))]
pub struct TopParams {
    /// What to rank: users, access keys or models.
    #[salvo(parameter(value_type = TopByParam))]
    pub by: TopByParam,
    /// 1 to 50; default 10.
    #[salvo(parameter(required = false, value_type = i64, minimum = 1, maximum = 50))]
    pub limit: Option<i64>,
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageTopItem {
    /// The user or access key (absent for models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// For people: the user's name; the key's name and mask; the model (`(none)` for
    /// requests that named no model). Never a secret.
    pub label: String,
    /// The user's email; the key owner's user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(flatten)]
    pub numbers: UsageNumbers,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageTop {
    pub by: TopByParam,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Most requests first.
    pub items: Vec<UsageTopItem>,
}

/// The users, access keys or models with the most requests in a range.
#[endpoint(tags("usage"), status_codes(200, 400, 401, 422, 503))]
async fn usage_top(
    params: TopParams,
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<UsageTop>, ApiFailure> {
    let (api, _) = session(depot)?;
    super::known_params(
        req,
        &[
            "by", "limit", "user", "key", "model", "provider", "from", "to",
        ],
    )?;
    let limit = params.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(ApiFailure::invalid("limit must be 1 to 50"));
    }
    let filter = usage_filter(
        params.user,
        params.key,
        params.model,
        params.provider,
        params.from,
        params.to,
    )?;
    let group = match params.by {
        TopByParam::User => UsageGroup::User,
        TopByParam::Key => UsageGroup::Key,
        TopByParam::Model => UsageGroup::Model,
    };
    let store = &api.ops.store;
    let rows = store.usage_top(&filter, group, limit).await?;
    let mut items = Vec::with_capacity(rows.len());
    // At most 50 labels, each one primary-key lookup.
    for row in rows {
        let (label, detail) = match (group, row.group_id) {
            (UsageGroup::User, Some(id)) => match store.get_user(id).await? {
                Some(u) => (u.name, Some(u.email)),
                None => (format!("deleted user {id}"), None),
            },
            (UsageGroup::Key, Some(id)) => match store.get_access_key(id).await? {
                Some(k) => (
                    match k.name {
                        Some(name) => format!("{name} ({})", k.display_prefix),
                        None => k.display_prefix,
                    },
                    Some(k.user_id.to_string()),
                ),
                None => (format!("deleted key {id}"), None),
            },
            _ => (
                row.group_name
                    .clone()
                    .unwrap_or_else(|| "(none)".to_owned()),
                None,
            ),
        };
        let mut numbers = UsageNumbers::default();
        numbers.add(&row);
        items.push(UsageTopItem {
            id: row.group_id,
            label,
            detail,
            numbers,
        });
    }
    Ok(Json(UsageTop {
        by: params.by,
        from: filter.from.unwrap_or_default(),
        to: filter.to.unwrap_or_default(),
        items,
    }))
}
