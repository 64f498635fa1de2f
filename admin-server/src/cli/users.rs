//! `ccp-admin user …`: list and create users.

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
