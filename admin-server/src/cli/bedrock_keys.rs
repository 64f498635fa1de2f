//! `ccp-admin bedrock-key …`: the Bedrock API key an access key fails over with (read from
//! standard input, stored wrapped).

use super::*;

#[derive(Debug, Subcommand)]
pub(super) enum BedrockKeyCommand {
    /// Register or replace the Bedrock API key; the key is read from standard input, never
    /// from the command line.
    Set {
        /// Access key id.
        #[arg(long)]
        access_key: Uuid,
        /// The AWS region the Bedrock key was made in, e.g. us-east-1.
        #[arg(long)]
        region: String,
    },
    /// Show the region and last four characters.
    Show {
        #[arg(long)]
        access_key: Uuid,
    },
    /// Remove it: the access key then uses Plan only.
    Delete {
        #[arg(long)]
        access_key: Uuid,
    },
}

pub(super) async fn run(ctx: &Ctx, command: BedrockKeyCommand) -> anyhow::Result<()> {
    let (store, out) = (&ctx.store, &ctx.out);
    match command {
        BedrockKeyCommand::Show { access_key } => {
            let record = store
                .bedrock_key(access_key)
                .await?
                .ok_or_else(|| anyhow!("access key {access_key} has no Bedrock key"))?;
            out.done(
                bedrock_key_json(&record),
                &format!(
                    "Bedrock key …{}  region {}  wrapper {}  updated {}",
                    record.last4,
                    record.region,
                    record.wrapper,
                    record.updated_at.to_rfc3339()
                ),
            )
        }
        BedrockKeyCommand::Set { access_key, region } => {
            let ops = &ctx.ops().await?;
            let line = read_line_from_stdin("Bedrock key")?;
            if line.expose().trim().is_empty() {
                return Err(anyhow!(
                    "expected the Bedrock API key on standard input (one line, no spaces)"
                ));
            }
            // Spaces around a pasted key are forgiven here; inside it they are refused.
            let secret = SecretString::new(line.expose().trim().to_owned());
            let record = ops
                .set_bedrock_key(ACTOR, access_key, &secret, &region)
                .await?;
            out.done(
                bedrock_key_json(&record),
                &format!(
                    "Bedrock key …{} ({}, wrapped by {}) set for access key {}. Gateways pick it up within the key cache TTL.",
                    record.last4, record.region, record.wrapper, access_key
                ),
            )
        }
        BedrockKeyCommand::Delete { access_key } => {
            let ops = &ctx.ops().await?;
            ops.delete_bedrock_key(ACTOR, access_key).await?;
            out.done(
                json!({"deleted": true, "access_key_id": access_key}),
                &format!("Bedrock key removed from access key {access_key}."),
            )
        }
    }
}

/// Never the ciphertext, never the key.
fn bedrock_key_json(record: &BedrockKeyRecord) -> serde_json::Value {
    json!({
        "access_key_id": record.access_key_id,
        "region": record.region,
        "last4": record.last4,
        "wrapper": record.wrapper,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    })
}
