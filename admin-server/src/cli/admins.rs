//! `ccp-admin admin …`: admin accounts of the admin API (passwords from standard input).

use super::*;

#[derive(Debug, Subcommand)]
pub(super) enum AdminCommand {
    /// Create an admin; the password (at least 12 characters) is read from standard input.
    Create {
        #[arg(long)]
        username: String,
    },
    /// Replace an admin's password (from standard input); ends the admin's sessions.
    SetPassword {
        #[arg(long)]
        username: String,
    },
}

pub(super) async fn run(ctx: &Ctx, command: AdminCommand) -> anyhow::Result<()> {
    let out = &ctx.out;
    match command {
        AdminCommand::Create { username } => {
            let ops = &ctx.ops().await?;
            let username = username.trim();
            crate::ops::check_username(username)?;
            let password_hash = read_password_hash_from_stdin()?;
            let admin = ops.create_admin(ACTOR, username, password_hash).await?;
            out.done(
                json!({"id": admin.id, "username": admin.username}),
                &format!("Created admin {} (id {}).", admin.username, admin.id),
            )
        }
        AdminCommand::SetPassword { username } => {
            let ops = &ctx.ops().await?;
            let password_hash = read_password_hash_from_stdin()?;
            let admin = ops
                .set_admin_password(ACTOR, &username, &password_hash)
                .await?;
            out.done(
                json!({"id": admin.id, "password_changed": true}),
                &format!(
                    "Password of {} replaced; its sessions have ended.",
                    admin.username
                ),
            )
        }
    }
}

/// An admin password from standard input, hashed (argon2id); the policy is checked first.
fn read_password_hash_from_stdin() -> anyhow::Result<String> {
    let password = read_line_from_stdin("password")?;
    ccp_core::password::hash(&password).map_err(|e| anyhow!("{e}"))
}
