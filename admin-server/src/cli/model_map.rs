//! `ccp-admin model-map …`: the Anthropic model → Bedrock model map, family defaults, and the
//! models that cannot fail over.

use super::*;

#[derive(Debug, Subcommand)]
pub(super) enum ModelMapCommand {
    /// Map an Anthropic model name to a Bedrock model id (replaces an existing row).
    Set {
        /// e.g. claude-opus-5-5
        #[arg(long)]
        anthropic: String,
        /// e.g. global.anthropic.claude-opus-5-5-v1 (an inference-profile id or ARN)
        #[arg(long)]
        bedrock: String,
        #[arg(long)]
        max_output_tokens: Option<u32>,
        /// Store the row disabled: the model then never goes to Bedrock.
        #[arg(long)]
        disabled: bool,
    },
    /// List the rows (they override the built-in defaults).
    List,
    /// Set the Bedrock model for names of a family that nothing else maps (e.g. a model
    /// newer than this gateway, such as Claude Code's default). Stored as the row
    /// `family:<family>`; remove it with `model-map delete family:<family>`.
    Family {
        family: FamilyName,
        /// e.g. global.anthropic.claude-opus-4-7
        #[arg(long)]
        bedrock: String,
        #[arg(long)]
        max_output_tokens: Option<u32>,
    },
    /// Models clients sent in the last 7 days that cannot fail over for want of a mapping.
    Unmapped,
    /// Delete a row: the built-in default, if any, applies again.
    Delete { anthropic: String },
}
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum FamilyName {
    Opus,
    Sonnet,
    Haiku,
}

impl FamilyName {
    fn row_name(self) -> String {
        let family = match self {
            Self::Opus => "opus",
            Self::Sonnet => "sonnet",
            Self::Haiku => "haiku",
        };
        format!("{}{family}", ccp_core::routing::model_map::FAMILY_PREFIX)
    }
}

pub(super) async fn run(ctx: &Ctx, command: ModelMapCommand) -> anyhow::Result<()> {
    let (store, out) = (&ctx.store, &ctx.out);
    match command {
        ModelMapCommand::List => {
            let rows = store.list_model_mappings().await?;
            out.list(&rows, |r: &ModelMapping| {
                format!(
                    "{:<32} {:<60} max_out {:<7} {}",
                    r.anthropic_model,
                    r.bedrock_model_id,
                    r.max_output_tokens
                        .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                    if r.enabled { "enabled" } else { "disabled" }
                )
            })
        }
        ModelMapCommand::Unmapped => {
            let models = crate::ops::unmapped_models(store, 7).await?;
            out.list(&models, |m| {
                let fix = m.family.map_or_else(
                    || format!("model-map set --anthropic {} --bedrock <id>", m.model),
                    |f| {
                        format!(
                            "model-map set --anthropic {} … or model-map family {f} …",
                            m.model
                        )
                    },
                );
                format!(
                    "{:<32} {:>8} requests {:>6} missed failovers  last {}  fix: {fix}",
                    m.model,
                    m.requests,
                    m.missed_failovers,
                    m.last_seen.format("%Y-%m-%d %H:%M UTC"),
                )
            })
        }
        ModelMapCommand::Family {
            family,
            bedrock,
            max_output_tokens,
        } => {
            let ops = &ctx.ops().await?;
            let row = set_mapping(ops, family.row_name(), bedrock, max_output_tokens, true).await?;
            out.done(
                serde_json::to_value(&row)?,
                &format!(
                    "{} → {}: models of this family without their own mapping now fail over to it.",
                    row.anthropic_model, row.bedrock_model_id
                ),
            )
        }
        ModelMapCommand::Set {
            anthropic,
            bedrock,
            max_output_tokens,
            disabled,
        } => {
            let ops = &ctx.ops().await?;
            let row = set_mapping(ops, anthropic, bedrock, max_output_tokens, !disabled).await?;
            out.done(
                serde_json::to_value(&row)?,
                &format!(
                    "{} → {} ({}).",
                    row.anthropic_model,
                    row.bedrock_model_id,
                    if row.enabled { "enabled" } else { "disabled" }
                ),
            )
        }
        ModelMapCommand::Delete { anthropic } => {
            let ops = &ctx.ops().await?;
            let Some(row) = ops.store.model_mapping(&anthropic).await? else {
                return Err(anyhow!("no model mapping for {anthropic:?}"));
            };
            ops.delete_model_mapping(ACTOR, row.id).await?;
            out.done(
                json!({"deleted": true, "anthropic_model": row.anthropic_model}),
                &format!("Deleted the mapping for {}.", row.anthropic_model),
            )
        }
    }
}

async fn set_mapping(
    ops: &AdminOps,
    anthropic_model: String,
    bedrock_model_id: String,
    max_output_tokens: Option<u32>,
    enabled: bool,
) -> anyhow::Result<ModelMapping> {
    let max_output_tokens = max_output_tokens
        .map(|n| i32::try_from(n).map_err(|_| anyhow!("--max-output-tokens is too large")))
        .transpose()?;
    let new = NewModelMapping {
        anthropic_model,
        bedrock_model_id,
        max_output_tokens,
        enabled,
    };
    Ok(ops.put_model_mapping(ACTOR, new, true).await?)
}
