//! The `ccp-admin` command line. Scripts can drive every command: `--json` prints one JSON
//! document on stdout; errors exit non-zero with a single line on stderr.

use anyhow::{Context, anyhow};
use ccp_core::config::Config;
use ccp_core::crypto::WrapContext;
use ccp_core::domain::{AccessKeyRecord, User};
use ccp_core::keys::AccessKey;
use ccp_core::secret::SecretString;
use ccp_core::store::{
    BedrockKeyRecord, ModelMapping, NewAccessKey, NewAdmin, NewAuditEntry, NewBedrockKey,
    NewModelMapping, NewUser, Store, StoreOptions,
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
    /// Delete a row: the built-in default, if any, applies again.
    Delete { anthropic: String },
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

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if config.is_sqlite() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
    }
    let store = Store::connect(config.database_url.expose(), &StoreOptions::default())
        .await
        .context("cannot open the database (CCP_DATABASE_URL)")?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(store)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let store = open_store(&config).await?;
    let out = Output { json: cli.json };
    match cli.command {
        Command::Migrate => out.done(json!({"migrated": true}), "Migrations applied."),
        Command::User(UserCommand::Create { name, email }) => {
            validate_user(&name, &email)?;
            let user = store.create_user(NewUser { name, email }).await?;
            audit(
                &store,
                "user.create",
                "user",
                user.id,
                json!({"email": user.email}),
            )
            .await?;
            out.done(
                serde_json::to_value(&user)?,
                &format!(
                    "Created user {} <{}> (id {}).",
                    user.name, user.email, user.id
                ),
            )
        }
        Command::User(UserCommand::List) => {
            let users = store.list_users(10_000, 0).await?;
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
        Command::Key(KeyCommand::Issue {
            user,
            name,
            expires_in_days,
        }) => {
            let user = resolve_user(&store, &user).await?;
            let pepper = config
                .load_pepper()
                .context("cannot load the access-key pepper")?;
            let key = AccessKey::generate();
            let expires_at =
                expires_in_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
            let record = store
                .insert_access_key(NewAccessKey {
                    user_id: user.id,
                    name,
                    display_prefix: key.masked(),
                    digest: pepper.digest(&key),
                    expires_at,
                })
                .await?;
            audit(
                &store,
                "access_key.issue",
                "access_key",
                record.id,
                json!({"user_id": user.id, "key": record.display_prefix}),
            )
            .await?;
            out.done(
                json!({
                    "id": record.id,
                    "key": key.expose(),
                    "user_id": user.id,
                    "display_prefix": record.display_prefix,
                    "expires_at": record.expires_at,
                }),
                &format!(
                    "Issued access key {} for {} (id {}).\nKey (shown once; it is not stored): {}\n\
                     Claude Code: ANTHROPIC_BASE_URL=https://<gateway>/ak/{}",
                    record.display_prefix,
                    user.email,
                    record.id,
                    key.expose(),
                    key.expose()
                ),
            )
        }
        Command::Key(KeyCommand::Revoke { id }) => {
            let record = store.revoke_access_key(id).await?;
            audit(
                &store,
                "access_key.revoke",
                "access_key",
                record.id,
                json!({"key": record.display_prefix}),
            )
            .await?;
            out.done(
                serde_json::to_value(&record)?,
                &format!(
                    "Revoked access key {} (id {}).",
                    record.display_prefix, record.id
                ),
            )
        }
        Command::BedrockKey(command) => bedrock_key(&config, &store, &out, command).await,
        Command::ModelMap(command) => model_map(&store, &out, command).await,
        Command::Admin(command) => admin(&store, &out, command).await,
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
    }
}

async fn bedrock_key(
    config: &Config,
    store: &Store,
    out: &Output,
    command: BedrockKeyCommand,
) -> anyhow::Result<()> {
    match command {
        BedrockKeyCommand::Set { access_key, region } => {
            if !ccp_core::translate::models::is_valid_region(&region) {
                return Err(anyhow!("--region must be an AWS region such as us-east-1"));
            }
            let secret = read_secret_from_stdin()?;
            let wrapper = config
                .key_wrapper()
                .await
                .context("cannot set up the key wrapper")?;
            let ciphertext = wrapper
                .wrap(&secret, &WrapContext::new(access_key))
                .await
                .context("cannot encrypt the Bedrock key")?;
            let last4: String = {
                let chars: Vec<char> = secret.expose().chars().collect();
                chars[chars.len().saturating_sub(4)..].iter().collect()
            };
            let record = store
                .set_bedrock_key(NewBedrockKey {
                    access_key_id: access_key,
                    ciphertext,
                    wrapper: wrapper.kind().as_str(),
                    region,
                    last4,
                })
                .await?;
            audit(
                store,
                "bedrock_key.set",
                "access_key",
                access_key,
                json!({"region": record.region, "last4": record.last4, "wrapper": record.wrapper}),
            )
            .await?;
            out.done(
                bedrock_key_json(&record),
                &format!(
                    "Bedrock key …{} ({}, wrapped by {}) set for access key {}. Gateways pick it up within the key cache TTL.",
                    record.last4, record.region, record.wrapper, access_key
                ),
            )
        }
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
        BedrockKeyCommand::Delete { access_key } => {
            if !store.delete_bedrock_key(access_key).await? {
                return Err(anyhow!("access key {access_key} has no Bedrock key"));
            }
            audit(
                store,
                "bedrock_key.delete",
                "access_key",
                access_key,
                json!({}),
            )
            .await?;
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

/// The Bedrock key: one line, trimmed; refused if empty or implausible.
fn read_secret_from_stdin() -> anyhow::Result<SecretString> {
    let line = read_line_from_stdin("Bedrock key")?;
    let trimmed = line.expose().trim();
    if trimmed.len() < 8 || trimmed.len() > 8192 || trimmed.chars().any(char::is_whitespace) {
        return Err(anyhow!(
            "expected the Bedrock API key on standard input (one line, no spaces)"
        ));
    }
    Ok(SecretString::new(trimmed.to_owned()))
}

/// An admin password from standard input, hashed (argon2id); the policy is checked first.
fn read_password_hash_from_stdin() -> anyhow::Result<String> {
    let password = read_line_from_stdin("password")?;
    ccp_core::password::hash(&password).map_err(|e| anyhow!("{e}"))
}

async fn admin(store: &Store, out: &Output, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create { username } => {
            let username = username.trim().to_owned();
            if username.is_empty()
                || username.len() > 64
                || !username
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
            {
                return Err(anyhow!("a username is 1 to 64 letters, digits or . _ - @"));
            }
            let password_hash = read_password_hash_from_stdin()?;
            let admin = store
                .create_admin(NewAdmin {
                    username,
                    password_hash,
                })
                .await?;
            audit(
                store,
                "admin.create",
                "admin",
                admin.id,
                json!({"username": admin.username}),
            )
            .await?;
            out.done(
                json!({"id": admin.id, "username": admin.username}),
                &format!("Created admin {} (id {}).", admin.username, admin.id),
            )
        }
        AdminCommand::SetPassword { username } => {
            let login = store
                .admin_login(&username)
                .await?
                .ok_or_else(|| anyhow!("no admin named {username:?}"))?;
            let password_hash = read_password_hash_from_stdin()?;
            store
                .set_admin_password(login.admin.id, &password_hash)
                .await?;
            audit(
                store,
                "admin.set_password",
                "admin",
                login.admin.id,
                json!({"username": login.admin.username}),
            )
            .await?;
            out.done(
                json!({"id": login.admin.id, "password_changed": true}),
                &format!(
                    "Password of {} replaced; its sessions have ended.",
                    login.admin.username
                ),
            )
        }
    }
}

async fn model_map(store: &Store, out: &Output, command: ModelMapCommand) -> anyhow::Result<()> {
    match command {
        ModelMapCommand::Set {
            anthropic,
            bedrock,
            max_output_tokens,
            disabled,
        } => {
            let name_ok = (1..=200).contains(&anthropic.len())
                && anthropic
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
            if !name_ok {
                return Err(anyhow!(
                    "--anthropic must be a model name such as claude-opus-5-5"
                ));
            }
            if !ccp_core::translate::models::is_valid_model_id(&bedrock) {
                return Err(anyhow!(
                    "--bedrock must be a Bedrock model id, inference-profile id or ARN"
                ));
            }
            let max_output_tokens = max_output_tokens
                .map(|n| i32::try_from(n).map_err(|_| anyhow!("--max-output-tokens is too large")))
                .transpose()?;
            let row = store
                .upsert_model_mapping(NewModelMapping {
                    anthropic_model: anthropic,
                    bedrock_model_id: bedrock,
                    max_output_tokens,
                    enabled: !disabled,
                })
                .await?;
            audit(
                store,
                "model_mapping.set",
                "model_mapping",
                row.id,
                json!({"anthropic_model": row.anthropic_model, "bedrock_model_id": row.bedrock_model_id, "enabled": row.enabled}),
            )
            .await?;
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
        ModelMapCommand::Delete { anthropic } => {
            let Some(row) = store.model_mapping(&anthropic).await? else {
                return Err(anyhow!("no model mapping for {anthropic:?}"));
            };
            store.delete_model_mapping(&anthropic).await?;
            audit(
                store,
                "model_mapping.delete",
                "model_mapping",
                row.id,
                json!({"anthropic_model": row.anthropic_model}),
            )
            .await?;
            out.done(
                json!({"deleted": true, "anthropic_model": row.anthropic_model}),
                &format!("Deleted the mapping for {}.", row.anthropic_model),
            )
        }
    }
}

fn validate_user(name: &str, email: &str) -> anyhow::Result<()> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(anyhow!("--name must be 1 to 200 characters"));
    }
    let email = email.trim();
    let plausible = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(char::is_whitespace);
    if !plausible {
        return Err(anyhow!("--email must be an email address"));
    }
    Ok(())
}

async fn resolve_user(store: &Store, id_or_email: &str) -> anyhow::Result<User> {
    let found = match Uuid::parse_str(id_or_email) {
        Ok(id) => store.get_user(id).await?,
        Err(_) => store.find_user_by_email(id_or_email).await?,
    };
    found.ok_or_else(|| anyhow!("no user with id or email {id_or_email:?}"))
}

async fn audit(
    store: &Store,
    action: &'static str,
    target_type: &'static str,
    target_id: Uuid,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    store
        .append_audit(NewAuditEntry {
            actor: "cli".to_owned(),
            action,
            target_type: Some(target_type),
            target_id: Some(target_id.to_string()),
            detail: Some(detail),
        })
        .await?;
    Ok(())
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
