//! The `ccp-admin` command line. Scripts can drive every command: `--json` prints one JSON
//! document on stdout; errors exit non-zero with a single line on stderr.

mod admins;
mod bedrock_keys;
mod keys;
mod model_map;
mod usage;
mod users;

use crate::ops::AdminOps;
use admins::AdminCommand;
use anyhow::{Context, anyhow};
use bedrock_keys::BedrockKeyCommand;
use ccp_core::config::Config;
use ccp_core::domain::{AccessKeyRecord, User};
use ccp_core::secret::SecretString;
use ccp_core::store::{
    BedrockKeyRecord, ModelMapping, NewModelMapping, Store, StoreOptions, UserQuery,
};
use clap::{Parser, Subcommand};
use keys::KeyCommand;
use model_map::ModelMapCommand;
use serde_json::json;
use std::process::ExitCode;
use usage::UsageCommand;
use users::UserCommand;
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
    /// Maintain the hourly usage rollups.
    #[command(subcommand)]
    Usage(UsageCommand),
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

/// What every command runs with.
struct Ctx {
    config: Config,
    store: Store,
    out: Output,
}

impl Ctx {
    /// The operations layer, for the commands that change something (each is audited).
    async fn ops(&self) -> anyhow::Result<AdminOps> {
        AdminOps::from_config(&self.config, self.store.clone()).await
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let store = open_store(&config).await?;
    let ctx = Ctx {
        config,
        store,
        out: Output { json: cli.json },
    };
    match cli.command {
        Command::Migrate => ctx
            .out
            .done(json!({"migrated": true}), "Migrations applied."),
        Command::User(command) => users::run(&ctx, command).await,
        Command::Key(command) => keys::run(&ctx, command).await,
        Command::BedrockKey(command) => bedrock_keys::run(&ctx, command).await,
        Command::ModelMap(command) => model_map::run(&ctx, command).await,
        Command::Admin(command) => admins::run(&ctx, command).await,
        Command::Usage(command) => usage::run(&ctx, command).await,
    }
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
