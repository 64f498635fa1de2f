//! `ccp-admin user …`: list, create and show users, and set their routing and budget.

use super::*;

#[derive(Debug, Subcommand)]
pub(super) enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
    },
    /// List users.
    List,
    /// Show a user's routing, budget and this month's Bedrock spend.
    Show {
        /// The user's id or email.
        user: String,
    },
    /// Set a user's routing policy or monthly Bedrock budget (effective within the
    /// gateways' key-cache TTL).
    Set {
        /// The user's id or email.
        user: String,
        /// plan_first (default: Plan, failing over to Bedrock), bedrock_only (no Anthropic
        /// plan: every request to Bedrock), plan_only (never Bedrock).
        #[arg(long)]
        routing: Option<RoutingArg>,
        /// The estimated Bedrock cost a calendar month (UTC) may reach, in USD (`25`,
        /// `12.50`); `none` removes the budget.
        #[arg(long)]
        budget_usd: Option<String>,
        /// Report the user as near the budget from this share (1–100, default 80).
        #[arg(long)]
        budget_warning_percent: Option<i32>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub(super) enum RoutingArg {
    PlanFirst,
    BedrockOnly,
    PlanOnly,
}

impl From<RoutingArg> for ccp_core::domain::Routing {
    fn from(arg: RoutingArg) -> Self {
        match arg {
            RoutingArg::PlanFirst => Self::PlanFirst,
            RoutingArg::BedrockOnly => Self::BedrockOnly,
            RoutingArg::PlanOnly => Self::PlanOnly,
        }
    }
}

pub(super) async fn run(ctx: &Ctx, command: UserCommand) -> anyhow::Result<()> {
    let (store, out) = (&ctx.store, &ctx.out);
    match command {
        UserCommand::List => {
            let query = UserQuery {
                limit: i64::MAX,
                ..UserQuery::default()
            };
            let (users, _) = store.list_users(&query).await?;
            out.list(&users, |u: &User| {
                format!(
                    "{}  {:<8}  {} <{}>",
                    u.id,
                    u.status.as_str(),
                    u.name,
                    u.email
                )
            })
        }
        UserCommand::Show { user } => {
            let user = resolve_user(store, &user).await?;
            show_policy(ctx, &user).await
        }
        UserCommand::Set {
            user,
            routing,
            budget_usd,
            budget_warning_percent,
        } => {
            let user = resolve_user(store, &user).await?;
            let budget = match budget_usd.as_deref() {
                None => None,
                Some("none") => Some(None),
                Some(text) => Some(Some(ccp_core::money::parse_usd(text)?)),
            };
            let patch = ccp_core::store::UserPatch {
                routing: routing.map(Into::into),
                monthly_budget_micro_usd: budget,
                budget_warning_percent,
                ..Default::default()
            };
            if patch.is_empty() {
                anyhow::bail!(
                    "nothing to change: give --routing, --budget-usd or --budget-warning-percent"
                );
            }
            let user = ctx.ops().await?.update_user(ACTOR, user.id, patch).await?;
            show_policy(ctx, &user).await
        }
        UserCommand::Create { name, email } => {
            let ops = &ctx.ops().await?;
            let user = ops.create_user(ACTOR, &name, &email).await?;
            out.done(
                serde_json::to_value(&user)?,
                &format!(
                    "Created user {} <{}> (id {}).",
                    user.name, user.email, user.id
                ),
            )
        }
    }
}

/// The user's policy and this month's spend: one JSON document, or a few lines.
async fn show_policy(ctx: &Ctx, user: &User) -> anyhow::Result<()> {
    use ccp_core::money::format_usd;
    let budget = crate::ops::budget_status(&ctx.store, user).await?;
    let limit = budget
        .monthly_budget_micro_usd
        .map_or_else(|| "none".to_owned(), |b| format!("${}", format_usd(b)));
    let text = format!(
        "{} <{}> (id {}), {}\n  routing: {}\n  monthly Bedrock budget: {limit} (warning at {} %)\n  Bedrock spend since {} UTC: ${} ({})",
        user.name,
        user.email,
        user.id,
        user.status.as_str(),
        user.routing.as_str(),
        user.budget_warning_percent,
        budget.month_start.format("%Y-%m-%d"),
        format_usd(budget.spend_micro_usd),
        match budget.state {
            crate::ops::BudgetState::NoBudget => "no budget",
            crate::ops::BudgetState::Within => "within budget",
            crate::ops::BudgetState::Warning => "near the budget",
            crate::ops::BudgetState::Over => "over budget: no Bedrock until the month turns",
        },
    );
    ctx.out.done(
        json!({"user": user, "budget": budget, "monthly_budget_usd": budget.monthly_budget_micro_usd.map(format_usd), "spend_usd": format_usd(budget.spend_micro_usd)}),
        &text,
    )
}
