//! `ccp-admin key …`: list, issue, rotate and revoke access keys.

use super::*;

#[derive(Debug, Subcommand)]
pub(super) enum KeyCommand {
    /// Issue an access key; the key is printed once and never stored.
    Issue {
        /// User id or email.
        #[arg(long)]
        user: String,
        /// A label for the key, e.g. the laptop it is for.
        #[arg(long)]
        name: Option<String>,
        /// Make the key stop working after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke an access key by id.
    Revoke { id: Uuid },
    /// Issue a replacement key; the old one keeps working for the grace period.
    Rotate {
        id: Uuid,
        /// How long the old key keeps working (default CCP_KEY_ROTATION_GRACE_SECS).
        #[arg(long)]
        grace_secs: Option<u64>,
    },
    /// List access keys (masked).
    List {
        /// User id or email.
        #[arg(long)]
        user: Option<String>,
    },
}

pub(super) async fn run(ctx: &Ctx, command: KeyCommand) -> anyhow::Result<()> {
    let (store, out) = (&ctx.store, &ctx.out);
    match command {
        KeyCommand::List { user } => {
            let user_id = match user {
                Some(u) => Some(resolve_user(store, &u).await?.id),
                None => None,
            };
            let keys = store.list_access_keys(user_id).await?;
            out.list(&keys, |k: &AccessKeyRecord| {
                format!(
                    "{}  {:<7}  {}  user {}  last used {}",
                    k.id,
                    k.status.as_str(),
                    k.display_prefix,
                    k.user_id,
                    k.last_used_at
                        .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339())
                )
            })
        }
        KeyCommand::Issue {
            user,
            name,
            expires_in_days,
        } => {
            let ops = &ctx.ops().await?;
            let user = resolve_user(&ops.store, &user).await?;
            let expires_at =
                expires_in_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
            let issued = ops.issue_key(ACTOR, user.id, name, expires_at).await?;
            let (record, key) = (&issued.record, issued.key.expose());
            out.done(
                json!({
                    "id": record.id,
                    "key": key,
                    "user_id": user.id,
                    "display_prefix": record.display_prefix,
                    "expires_at": record.expires_at,
                }),
                &format!(
                    "Issued access key {} for {} (id {}).\nKey (shown once; it is not stored): {key}\n\
                     Claude Code: ANTHROPIC_BASE_URL=https://<gateway>/ak/{key}",
                    record.display_prefix, user.email, record.id,
                ),
            )
        }
        KeyCommand::Rotate { id, grace_secs } => {
            let ops = &ctx.ops().await?;
            let grace = grace_secs.map(std::time::Duration::from_secs);
            let (issued, old) = ops.rotate_key(ACTOR, id, grace).await?;
            let (record, key) = (&issued.record, issued.key.expose());
            let until = old
                .expires_at
                .map_or_else(|| "now".to_owned(), |t| t.to_rfc3339());
            out.done(
                json!({
                    "id": record.id,
                    "key": key,
                    "display_prefix": record.display_prefix,
                    "old_id": old.id,
                    "old_key_expires_at": old.expires_at,
                }),
                &format!(
                    "Issued {} (id {}) to replace {}; the old key works until {until}.\n\
                     Key (shown once; it is not stored): {key}",
                    record.display_prefix, record.id, old.display_prefix,
                ),
            )
        }
        KeyCommand::Revoke { id } => {
            let ops = &ctx.ops().await?;
            let record = ops.revoke_key(ACTOR, id).await?;
            out.done(
                serde_json::to_value(&record)?,
                &format!(
                    "Revoked access key {} (id {}).",
                    record.display_prefix, record.id
                ),
            )
        }
    }
}
