//! The `ccp-admin` command line. Scripts can drive every command: `--json` prints one JSON
//! document on stdout; errors exit non-zero with a single line on stderr.

use crate::ops::AdminOps;
use anyhow::{Context, anyhow};
use ccp_core::config::Config;
use ccp_core::domain::{AccessKeyRecord, User};
use ccp_core::secret::SecretString;
use ccp_core::store::{
    BedrockKeyRecord, ModelMapping, NewModelMapping, Store, StoreOptions, UserQuery,
};
use clap::{Parser, Subcommand};
use serde_json::json;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "ccp-admin",
    version,
    about = "Manage ClaudeCodeProxy users, access keys, Bedrock keys and the model map"
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply database migrations (the gateway also does this at start-up).
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage access keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the Bedrock API key an access key fails over with.
    #[command(subcommand)]
    BedrockKey(BedrockKeyCommand),
    /// Manage the Anthropic model → Bedrock model id map.
    #[command(subcommand)]
    ModelMap(ModelMapCommand),
    /// Manage admin accounts of the admin API.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
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

#[derive(Debug, Subcommand)]
enum BedrockKeyCommand {
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

#[derive(Debug, Subcommand)]
enum ModelMapCommand {
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
enum FamilyName {
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

#[derive(Debug, Subcommand)]
enum UserCommand {
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

#[derive(Debug, Subcommand)]
enum KeyCommand {
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

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return fail(&anyhow!(err)),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    // One line: the chain joined, never a backtrace.
    let line: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    eprintln!("ccp-admin: {}", line.join(": ").replace('\n', " "));
    ExitCode::FAILURE
}

/// Opens the configured database with the default pool (see `Store::open`).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Ok(Store::open(config, &StoreOptions::default()).await?)
}

const ACTOR: &str = "cli";

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let store = open_store(&config).await?;
    let out = Output { json: cli.json };
    match cli.command {
        Command::Migrate => out.done(json!({"migrated": true}), "Migrations applied."),
        Command::User(UserCommand::List) => {
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
        Command::Key(KeyCommand::List { user }) => {
            let user_id = match user {
                Some(u) => Some(resolve_user(&store, &u).await?.id),
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
        Command::BedrockKey(BedrockKeyCommand::Show { access_key }) => {
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
        Command::ModelMap(ModelMapCommand::List) => {
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
        Command::ModelMap(ModelMapCommand::Unmapped) => {
            let models = crate::ops::unmapped_models(&store, 7).await?;
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
        command => {
            let ops = AdminOps::from_config(&config, store.clone()).await?;
            change(&ops, &out, command).await
        }
    }
}

/// The commands that change something: each goes through [`AdminOps`], which audits it.
async fn change(ops: &AdminOps, out: &Output, command: Command) -> anyhow::Result<()> {
    match command {
        Command::User(UserCommand::Create { name, email }) => {
            let user = ops.create_user(ACTOR, &name, &email).await?;
            out.done(
                serde_json::to_value(&user)?,
                &format!(
                    "Created user {} <{}> (id {}).",
                    user.name, user.email, user.id
                ),
            )
        }
        Command::Key(KeyCommand::Issue {
            user,
            name,
            expires_in_days,
        }) => {
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
        Command::Key(KeyCommand::Rotate { id, grace_secs }) => {
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
        Command::Key(KeyCommand::Revoke { id }) => {
            let record = ops.revoke_key(ACTOR, id).await?;
            out.done(
                serde_json::to_value(&record)?,
                &format!(
                    "Revoked access key {} (id {}).",
                    record.display_prefix, record.id
                ),
            )
        }
        Command::BedrockKey(BedrockKeyCommand::Set { access_key, region }) => {
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
        Command::BedrockKey(BedrockKeyCommand::Delete { access_key }) => {
            ops.delete_bedrock_key(ACTOR, access_key).await?;
            out.done(
                json!({"deleted": true, "access_key_id": access_key}),
                &format!("Bedrock key removed from access key {access_key}."),
            )
        }
        Command::ModelMap(ModelMapCommand::Family {
            family,
            bedrock,
            max_output_tokens,
        }) => {
            let row = set_mapping(ops, family.row_name(), bedrock, max_output_tokens, true).await?;
            out.done(
                serde_json::to_value(&row)?,
                &format!(
                    "{} → {}: models of this family without their own mapping now fail over to it.",
                    row.anthropic_model, row.bedrock_model_id
                ),
            )
        }
        Command::ModelMap(ModelMapCommand::Set {
            anthropic,
            bedrock,
            max_output_tokens,
            disabled,
        }) => {
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
        Command::ModelMap(ModelMapCommand::Delete { anthropic }) => {
            let Some(row) = ops.store.model_mapping(&anthropic).await? else {
                return Err(anyhow!("no model mapping for {anthropic:?}"));
            };
            ops.delete_model_mapping(ACTOR, row.id).await?;
            out.done(
                json!({"deleted": true, "anthropic_model": row.anthropic_model}),
                &format!("Deleted the mapping for {}.", row.anthropic_model),
            )
        }
        Command::Admin(AdminCommand::Create { username }) => {
            let username = username.trim();
            crate::ops::check_username(username)?;
            let password_hash = read_password_hash_from_stdin()?;
            let admin = ops.create_admin(ACTOR, username, password_hash).await?;
            out.done(
                json!({"id": admin.id, "username": admin.username}),
                &format!("Created admin {} (id {}).", admin.username, admin.id),
            )
        }
        Command::Admin(AdminCommand::SetPassword { username }) => {
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
        Command::Migrate
        | Command::User(UserCommand::List)
        | Command::Key(KeyCommand::List { .. })
        | Command::BedrockKey(BedrockKeyCommand::Show { .. })
        | Command::ModelMap(ModelMapCommand::List | ModelMapCommand::Unmapped) => Ok(()),
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

/// One line from standard input without its line ending; the buffer is wiped after.
fn read_line_from_stdin(what: &str) -> anyhow::Result<SecretString> {
    use std::io::BufRead;
    let mut raw = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut raw)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let line = SecretString::new(raw.trim_end_matches(['\r', '\n']).to_owned());
    zeroize::Zeroize::zeroize(&mut raw);
    Ok(line)
}

/// An admin password from standard input, hashed (argon2id); the policy is checked first.
fn read_password_hash_from_stdin() -> anyhow::Result<String> {
    let password = read_line_from_stdin("password")?;
    ccp_core::password::hash(&password).map_err(|e| anyhow!("{e}"))
}

async fn resolve_user(store: &Store, id_or_email: &str) -> anyhow::Result<User> {
    let found = match Uuid::parse_str(id_or_email) {
        Ok(id) => store.get_user(id).await?,
        Err(_) => store.find_user_by_email(id_or_email).await?,
    };
    found.ok_or_else(|| anyhow!("no user with id or email {id_or_email:?}"))
}

struct Output {
    json: bool,
}

impl Output {
    fn done(&self, value: serde_json::Value, text: &str) -> anyhow::Result<()> {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
        Ok(())
    }

    fn list<T: serde::Serialize>(
        &self,
        items: &[T],
        line: impl Fn(&T) -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string(items)?);
        } else if items.is_empty() {
            println!("(none)");
        } else {
            for item in items {
                println!("{}", line(item));
            }
        }
        Ok(())
    }
}
