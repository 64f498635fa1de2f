//! `request_filter`'s decision: the health endpoints, the key check, the request's limits,
//! and the route: Plan, or Bedrock direct when the user routes `bedrock_only` or the key's
//! circuit is open; Bedrock only within the user's monthly budget.

use super::Gateway;
use super::ctx::RequestCtx;
use super::failover::Failover;
use crate::bedrock::Operation;
use crate::error::GatewayError;
use crate::path::{self, Route};
use ccp_core::auth::AuthOutcome;
use ccp_core::domain::{KeyGrant, Routing};
use ccp_core::routing::budget::Verdict;
use ccp_core::routing::circuit;
use pingora::proxy::Session;
use std::time::{Duration, Instant};

/// What `request_filter` decided.
pub(super) enum Decision {
    Proxy,
    /// The circuit is open: straight to Bedrock.
    BedrockDirect,
    Answer(GatewayError),
    Health,
    Ready(bool),
}

impl Gateway {
    pub(super) async fn decide(&self, session: &Session, ctx: &mut RequestCtx) -> Decision {
        let req = session.req_header();
        let keyed = match path::parse(req.uri.path()) {
            Route::Health => return Decision::Health,
            Route::Ready => return Decision::Ready(self.is_ready().await),
            Route::NotFound => return Decision::Answer(GatewayError::NotFound),
            Route::KeyedUnknown { key } => {
                ctx.template = "/ak/{key}/(unknown)";
                return match self.authenticate(key, ctx).await {
                    Ok(()) => Decision::Answer(GatewayError::UnknownApiPath),
                    Err(answer) => Decision::Answer(answer),
                };
            }
            Route::Keyed(keyed) => keyed,
        };
        ctx.template = keyed.template;
        if let Err(answer) = self.authenticate(keyed.key, ctx).await {
            return Decision::Answer(answer);
        }
        if req.headers.contains_key(http::header::UPGRADE) {
            return Decision::Answer(GatewayError::UpgradeRefused);
        }
        if let Some(length) = req.headers.get(http::header::CONTENT_LENGTH) {
            match length.to_str().ok().and_then(|v| v.parse::<u64>().ok()) {
                Some(n) if n > self.state.max_body_bytes => {
                    return Decision::Answer(GatewayError::TooLarge);
                }
                Some(n) => ctx.coalescer.expect(n),
                None => return Decision::Answer(GatewayError::BadContentLength),
            }
        }
        // Pieces pushed, not `format!`ed: the formatting machinery cost about 1 000
        // instructions a request here (docs/benchmarks.md, round twelve).
        let base = self.state.plan.base_path();
        let query = req.uri.query();
        let mut target = String::with_capacity(
            base.len() + keyed.upstream_path.len() + query.map_or(0, |q| q.len() + 1),
        );
        target.push_str(base);
        target.push_str(keyed.upstream_path);
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        ctx.upstream_target = target.into();
        let operation = match keyed.upstream_path {
            "/v1/messages" => Some(Operation::Messages),
            "/v1/messages/count_tokens" => Some(Operation::CountTokens),
            _ => None,
        };
        let (Some(operation), true, Some(grant)) =
            (operation, req.method == "POST", ctx.grant.clone())
        else {
            return Decision::Proxy;
        };
        self.route_messages(operation, &grant, ctx).await
    }

    /// A Messages request: where the user's policy, budget and circuit send it.
    async fn route_messages(
        &self,
        operation: Operation,
        grant: &KeyGrant,
        ctx: &mut RequestCtx,
    ) -> Decision {
        let has_bedrock = grant.bedrock_region.is_some();
        match grant.routing {
            Routing::PlanOnly => {
                if has_bedrock {
                    ctx.bedrock_withheld = Some("plan_only");
                }
                Decision::Proxy
            }
            Routing::BedrockOnly => {
                if !has_bedrock {
                    return Decision::Answer(GatewayError::NoBedrockKey);
                }
                match self.budget(grant).await {
                    Verdict::Over {
                        spend,
                        budget,
                        resets_at,
                    } => Decision::Answer(GatewayError::over_budget(
                        budget,
                        spend,
                        resets_at,
                        self.state.clock.now(),
                    )),
                    Verdict::Unknown => Decision::Answer(GatewayError::BudgetUnknown),
                    Verdict::NoBudget | Verdict::Within { .. } => {
                        ctx.failover =
                            Some(Failover::new(operation, circuit::Route::BedrockDirect));
                        Decision::BedrockDirect
                    }
                }
            }
            Routing::PlanFirst if !has_bedrock => Decision::Proxy,
            Routing::PlanFirst => {
                let route = match self.state.breaker.route(&grant.key_id) {
                    // One probe across all gateways: ask the database whose it is.
                    circuit::Route::Probe => {
                        super::circuits::claim_probe(&self.state, grant.key_id).await
                    }
                    route => route,
                };
                if route == circuit::Route::BedrockDirect {
                    // This request would go to Bedrock now: the budget decides.
                    if let Some(refusal) = self.budget(grant).await.refusal() {
                        // Plan stays open (their plan is not the admin's spend).
                        ctx.bedrock_withheld = Some(refusal);
                        return Decision::Proxy;
                    }
                    ctx.failover = Some(Failover::new(operation, route));
                    return Decision::BedrockDirect;
                }
                // Plan first: the budget is asked only when Plan fails (`budget_refusal`), so
                // a request Plan answers never waits for it.
                ctx.failover = Some(Failover::new(operation, route));
                Decision::Proxy
            }
        }
    }

    /// After a Plan failure: why the user's budget refuses the failover, if it does.
    pub(super) async fn budget_refusal(&self, ctx: &RequestCtx) -> Option<&'static str> {
        let grant = ctx.grant.as_ref()?;
        grant.monthly_budget_micro_usd?;
        self.budget(grant).await.refusal()
    }

    async fn budget(&self, grant: &KeyGrant) -> Verdict {
        self.state
            .budgets
            .check(grant.user_id, grant.monthly_budget_micro_usd)
            .await
    }

    async fn authenticate(&self, key: &str, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
        let started = Instant::now();
        let outcome = self.state.auth.authenticate(key).await;
        ctx.auth_time = Some(started.elapsed());
        match outcome {
            AuthOutcome::Granted(grant) => {
                ctx.grant = Some(grant);
                Ok(())
            }
            AuthOutcome::Denied => Err(GatewayError::KeyRejected),
            AuthOutcome::Unavailable => Err(GatewayError::AuthUnavailable),
        }
    }

    async fn is_ready(&self) -> bool {
        !self.state.lifecycle.is_draining()
            && matches!(
                tokio::time::timeout(Duration::from_secs(2), self.state.store.ping()).await,
                Ok(Ok(()))
            )
    }
}
