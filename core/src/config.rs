//! Settings: `CCP_*` environment variables over an optional TOML file (`CCP_CONFIG`),
//! read into a raw serde shape and validated once into [`Config`], with messages that name
//! the setting. docs/configuration.md documents every field.

use crate::secret::SecretString;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every setting, by its TOML name; the environment variable is `CCP_` + upper case.
const KEYS: &[&str] = &[
    "data_dir",
    "database_url",
    "database_host",
    "database_port",
    "database_username",
    "database_password",
    "database_name",
    "gateway_addr",
    "admin_addr",
    "plan_base_url",
    "plan_api_key",
    "plan_connect_timeout_secs",
    "plan_read_timeout_secs",
    "bedrock_endpoint",
    "pepper",
    "pepper_file",
    "key_cache_ttl_secs",
    "key_negative_cache_ttl_secs",
    "max_body_bytes",
    "client_read_timeout_secs",
    "header_timeout_secs",
    "shutdown_grace_secs",
    "threads",
    "log_format",
    "db_max_connections",
    "db_acquire_timeout_ms",
    "bedrock_connect_timeout_secs",
    "bedrock_read_timeout_secs",
    "bedrock_key_cache_ttl_secs",
    "model_map_refresh_secs",
    "circuit_failure_threshold",
    "circuit_window_secs",
    "circuit_open_secs",
    "key_wrapper",
    "wrap_key_file",
    "kms_key_id",
    "kms_endpoint",
    "metrics_addr",
    "metering",
    "metrics_sink",
    "metrics_interval_secs",
    "cloudwatch_namespace",
    "cloudwatch_endpoint",
    "pricing_file",
    "session_secret",
    "session_secret_file",
    "session_ttl_secs",
    "bootstrap_secret",
    "console_origin",
    "key_rotation_grace_secs",
    "admin_trust_forwarded_for",
];

/// Settings taken exactly as written, never parsed: the database pieces from Secrets Manager,
/// where a generated password may look like a number, a list or a quoted string to the
/// lenient parser the other settings go through (which also trims).
const VERBATIM: &[&str] = &[
    "database_host",
    "database_username",
    "database_password",
    "database_name",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_host: Option<String>,
    database_port: Option<u16>,
    database_username: Option<String>,
    database_password: Option<String>,
    database_name: Option<String>,
    gateway_addr: Option<String>,
    admin_addr: Option<String>,
    plan_base_url: Option<String>,
    plan_api_key: Option<String>,
    plan_connect_timeout_secs: Option<u64>,
    plan_read_timeout_secs: Option<u64>,
    bedrock_endpoint: Option<String>,
    pepper: Option<String>,
    pepper_file: Option<PathBuf>,
    key_cache_ttl_secs: Option<u64>,
    key_negative_cache_ttl_secs: Option<u64>,
    max_body_bytes: Option<u64>,
    client_read_timeout_secs: Option<u64>,
    header_timeout_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    threads: Option<usize>,
    log_format: Option<String>,
    db_max_connections: Option<u32>,
    db_acquire_timeout_ms: Option<u64>,
    bedrock_connect_timeout_secs: Option<u64>,
    bedrock_read_timeout_secs: Option<u64>,
    bedrock_key_cache_ttl_secs: Option<u64>,
    model_map_refresh_secs: Option<u64>,
    circuit_failure_threshold: Option<usize>,
    circuit_window_secs: Option<u64>,
    circuit_open_secs: Option<u64>,
    key_wrapper: Option<String>,
    wrap_key_file: Option<PathBuf>,
    kms_key_id: Option<String>,
    kms_endpoint: Option<String>,
    metrics_addr: Option<String>,
    metering: Option<String>,
    metrics_sink: Option<String>,
    metrics_interval_secs: Option<u64>,
    cloudwatch_namespace: Option<String>,
    cloudwatch_endpoint: Option<String>,
    pricing_file: Option<PathBuf>,
    session_secret: Option<String>,
    session_secret_file: Option<PathBuf>,
    session_ttl_secs: Option<u64>,
    bootstrap_secret: Option<String>,
    console_origin: Option<String>,
    key_rotation_grace_secs: Option<u64>,
    admin_trust_forwarded_for: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: {setting} {problem}")]
    Invalid {
        setting: &'static str,
        problem: String,
    },
}

fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        problem: problem.into(),
    }
}

/// Where a server-side secret (the HMAC pepper, the admin session key) comes from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// The value itself (`CCP_PEPPER`, `CCP_SESSION_SECRET`), e.g. injected from Secrets
    /// Manager.
    Value(SecretString),
    /// A file that must exist and be readable (`CCP_PEPPER_FILE`, `CCP_SESSION_SECRET_FILE`).
    File(PathBuf),
    /// Embedded default only: a file in the data directory, generated once with mode 0600.
    DataDir(PathBuf),
    /// Not configured, and not generated (PostgreSQL: every instance must share it).
    Missing,
}

impl SecretSource {
    /// The secret, generating the data-directory file the first time.
    pub fn read(&self) -> Result<SecretString, crate::keys::SecretFileError> {
        use crate::keys::{SecretFileError, load_or_create_secret};
        match self {
            Self::Value(value) => Ok(value.clone()),
            Self::File(path) => std::fs::read_to_string(path)
                .map(SecretString::new)
                .map_err(|source| SecretFileError::Read {
                    path: path.display().to_string(),
                    source,
                }),
            Self::DataDir(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|source| SecretFileError::Create {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                load_or_create_secret(path)
            }
            Self::Missing => Err(SecretFileError::Missing),
        }
    }
}

/// The Anthropic API ("Plan") upstream, parsed from `CCP_PLAN_BASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// A path prefix put before `/v1/...`; empty for the real API.
    pub base_path: String,
}

impl UpstreamUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let uri: http::Uri = raw.parse().map_err(|_| "is not a URL".to_owned())?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("must start with https:// or http://".to_owned()),
        };
        let host = uri.host().ok_or("has no host")?.to_owned();
        if uri.query().is_some() || raw.contains('@') {
            return Err("must not carry a query or user info".to_owned());
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            tls,
            host,
            port,
            base_path,
        })
    }

    /// The `Host` header value for requests to this upstream.
    pub fn authority(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Which key wrapper protects stored Bedrock keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrapperSetting {
    /// AES-256-GCM under a key file; `create` only for the embedded default.
    Local { key_file: PathBuf, create: bool },
    /// None configured (PostgreSQL without `CCP_KEY_WRAPPER`): stored Bedrock keys cannot be
    /// opened, so there is no failover, and none can be set.
    Unconfigured,
    /// AWS KMS, with the standard AWS credential chain.
    Kms {
        key_id: String,
        endpoint: Option<String>,
    },
}

/// Where interval metrics are pushed (the Prometheus endpoint is separate and always on
/// unless `CCP_METRICS_ADDR=off`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsSinkSetting {
    Off,
    /// One log line per interval: the default.
    Log,
    /// `PutMetricData` with the standard AWS credential chain.
    CloudWatch {
        namespace: String,
        endpoint: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// May carry a database password, so it is held as a secret.
    pub database_url: SecretString,
    pub gateway_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub plan_base_url: UpstreamUrl,
    /// Sent as `x-api-key` only on requests that carry no client credential.
    pub plan_api_key: Option<SecretString>,
    pub plan_connect_timeout: Duration,
    /// Longest wait for Plan response bytes: long enough for a non-streaming answer or a
    /// long thinking pause.
    pub plan_read_timeout: Duration,
    pub bedrock_endpoint: Option<String>,
    pub pepper: SecretSource,
    pub key_cache_ttl: Duration,
    pub key_negative_cache_ttl: Duration,
    pub max_body_bytes: u64,
    pub client_read_timeout: Duration,
    /// The whole request head must arrive within this (slow-header clients are closed).
    pub header_timeout: Duration,
    pub shutdown_grace: Duration,
    pub threads: usize,
    pub log_format: LogFormat,
    pub db_max_connections: u32,
    pub db_acquire_timeout: Duration,
    pub bedrock_connect_timeout: Duration,
    /// Longest gap between Bedrock response bytes.
    pub bedrock_read_timeout: Duration,
    pub bedrock_key_cache_ttl: Duration,
    pub model_map_refresh: Duration,
    pub circuit: crate::routing::circuit::BreakerSettings,
    pub key_wrapper: WrapperSetting,
    /// Where Prometheus metrics are served; `None` when set to `off`.
    pub metrics_addr: Option<SocketAddr>,
    /// Whether request and token-usage rows are written (`CCP_METERING=off` only for
    /// benchmarking the cost of metering).
    pub metering: bool,
    pub metrics_sink: MetricsSinkSetting,
    /// How often interval metrics go to the sink.
    pub metrics_interval: Duration,
    /// Replaces the built-in Bedrock price table (TOML, docs/configuration.md).
    pub pricing_file: Option<PathBuf>,
    /// Signs admin session tokens (HS256).
    pub session_secret: SecretSource,
    /// Lifetime of an admin session token (at most an hour).
    pub session_ttl: Duration,
    /// Lets `POST /admin/auth/bootstrap` create the first admin while there is none.
    pub bootstrap_secret: Option<SecretString>,
    /// The one origin the admin API answers cross-origin requests from (the console).
    pub console_origin: Option<String>,
    /// How long a rotated access key keeps working next to its replacement.
    pub key_rotation_grace: Duration,
    /// Whether the admin server takes the client address from `X-Forwarded-For` (only
    /// behind a load balancer that appends it).
    pub admin_trust_forwarded_for: bool,
}

pub const DEFAULT_MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

impl Config {
    /// Reads `CCP_CONFIG` (if set) and the `CCP_*` environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = std::env::var_os("CCP_CONFIG").map(PathBuf::from);
        let parsed: Vec<&str> = KEYS
            .iter()
            .copied()
            .filter(|k| !VERBATIM.contains(k))
            .collect();
        let verbatim = VERBATIM
            .iter()
            .filter_map(|k| Some((*k, std::env::var(format!("CCP_{}", k.to_uppercase())).ok()?)))
            .collect::<Vec<_>>();
        Self::load(
            file.as_deref(),
            Env::prefixed("CCP_").only(&parsed),
            &verbatim,
        )
    }

    /// Reads only the given `(setting, value)` pairs, as if they were `CCP_*` variables.
    /// Tests and embedders use this to stay independent of the process environment.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            if !KEYS.contains(key) {
                return Err(ConfigError::Load(format!("unknown setting {key}")));
            }
            // Parsed the way figment parses environment values, so "3" becomes a number;
            // verbatim settings stay as written, as `from_env` keeps them.
            let value: figment::value::Value = if VERBATIM.contains(key) {
                (*value).into()
            } else {
                value
                    .parse()
                    .map_err(|_| ConfigError::Load(format!("unparsable value for {key}")))?
            };
            figment = figment.merge(figment::providers::Serialized::default(key, value));
        }
        let raw = extract(figment)?;
        raw.validate()
    }

    fn load(
        file: Option<&Path>,
        env: Env,
        verbatim: &[(&str, String)],
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "CCP_CONFIG names {}, which does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let mut figment = figment.merge(env);
        for (key, value) in verbatim {
            figment = figment.merge(figment::providers::Serialized::default(key, value));
        }
        extract(figment)?.validate()
    }
}

fn extract(figment: Figment) -> Result<RawConfig, ConfigError> {
    figment
        .extract::<RawConfig>()
        .map_err(|e| ConfigError::Load(e.to_string()))
}

fn positive_secs(
    setting: &'static str,
    value: Option<u64>,
    default: u64,
) -> Result<Duration, ConfigError> {
    match value.unwrap_or(default) {
        0 => Err(invalid(setting, "must be at least 1")),
        n => Ok(Duration::from_secs(n)),
    }
}

fn parse_addr(
    setting: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_owned());
    text.parse().map_err(|_| {
        invalid(
            setting,
            format!("must be host:port with an IP host, got {text:?}"),
        )
    })
}

/// A PostgreSQL URL from the pieces a managed database's secret holds (Aurora's: `host`,
/// `port`, `username`, `password`, `dbname`), which ECS injects as separate variables, so no
/// task definition carries a password inside a URL. `None` when no host is set.
fn database_url_from_parts(
    host: Option<String>,
    port: Option<u16>,
    username: Option<String>,
    password: Option<String>,
    name: Option<String>,
) -> Result<Option<String>, ConfigError> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let Some(host) = host else {
        if username.is_some() || password.is_some() || name.is_some() || port.is_some() {
            return Err(invalid(
                "CCP_DATABASE_HOST",
                "is required with CCP_DATABASE_PORT, _USERNAME, _PASSWORD or _NAME",
            ));
        }
        return Ok(None);
    };
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(invalid(
            "CCP_DATABASE_HOST",
            "must be a host name or IPv4 address",
        ));
    }
    let username = username.ok_or_else(|| {
        invalid(
            "CCP_DATABASE_USERNAME",
            "is required with CCP_DATABASE_HOST",
        )
    })?;
    let password = password.ok_or_else(|| {
        invalid(
            "CCP_DATABASE_PASSWORD",
            "is required with CCP_DATABASE_HOST",
        )
    })?;
    let encode = |text: &str| utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
    Ok(Some(format!(
        "postgres://{}:{}@{host}:{}/{}",
        encode(&username),
        encode(&password),
        port.unwrap_or(5432),
        encode(name.as_deref().unwrap_or("postgres")),
    )))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        let from_parts = database_url_from_parts(
            non_empty(self.database_host),
            self.database_port,
            non_empty(self.database_username),
            self.database_password.filter(|p| !p.is_empty()),
            non_empty(self.database_name),
        )?;
        let database_url = match (non_empty(self.database_url), from_parts) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "CCP_DATABASE_URL",
                    "set either CCP_DATABASE_URL or CCP_DATABASE_HOST and its parts, not both",
                ));
            }
            (Some(url), None) | (None, Some(url)) => url,
            (None, None) => format!("sqlite://{}?mode=rwc", data_dir.join("ccp.db").display()),
        };
        let is_sqlite = database_url.starts_with("sqlite:");
        if !is_sqlite
            && !database_url.starts_with("postgres://")
            && !database_url.starts_with("postgresql://")
        {
            return Err(invalid(
                "CCP_DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite:",
            ));
        }

        let plan_base_url = UpstreamUrl::parse(
            self.plan_base_url
                .as_deref()
                .unwrap_or("https://api.anthropic.com"),
        )
        .map_err(|p| invalid("CCP_PLAN_BASE_URL", p))?;

        if let Some(endpoint) = &self.bedrock_endpoint {
            UpstreamUrl::parse(endpoint).map_err(|p| invalid("CCP_BEDROCK_ENDPOINT", p))?;
        }

        let session_secret = match (non_empty(self.session_secret), self.session_secret_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "CCP_SESSION_SECRET",
                    "and CCP_SESSION_SECRET_FILE are both set; set one",
                ));
            }
            (Some(value), None) => {
                if value.trim().len() < 32 {
                    return Err(invalid(
                        "CCP_SESSION_SECRET",
                        "must be at least 32 characters",
                    ));
                }
                SecretSource::Value(SecretString::new(value))
            }
            (None, Some(path)) => SecretSource::File(path),
            // Like the pepper: generated only when this machine owns the database.
            (None, None) if is_sqlite => SecretSource::DataDir(data_dir.join("session.key")),
            // Only the admin server needs it; it refuses to start without (load_session_secret).
            (None, None) => SecretSource::Missing,
        };
        let session_ttl = positive_secs("CCP_SESSION_TTL_SECS", self.session_ttl_secs, 3600)?;
        if session_ttl > Duration::from_secs(3600) {
            return Err(invalid("CCP_SESSION_TTL_SECS", "must be at most 3600"));
        }
        let bootstrap_secret = match non_empty(self.bootstrap_secret) {
            Some(value) if value.trim().len() < 32 => {
                return Err(invalid(
                    "CCP_BOOTSTRAP_SECRET",
                    "must be at least 32 characters",
                ));
            }
            other => other.map(SecretString::new),
        };
        let console_origin = match non_empty(self.console_origin) {
            Some(origin) => {
                let parsed =
                    UpstreamUrl::parse(&origin).map_err(|p| invalid("CCP_CONSOLE_ORIGIN", p))?;
                if !parsed.base_path.is_empty() {
                    return Err(invalid(
                        "CCP_CONSOLE_ORIGIN",
                        "must be scheme://host[:port] without a path",
                    ));
                }
                Some(origin.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        let key_rotation_grace =
            Duration::from_secs(self.key_rotation_grace_secs.unwrap_or(24 * 3600));
        if key_rotation_grace > Duration::from_secs(30 * 24 * 3600) {
            return Err(invalid(
                "CCP_KEY_ROTATION_GRACE_SECS",
                "must be at most 2592000 (30 days)",
            ));
        }

        let pepper = match (non_empty(self.pepper), self.pepper_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "CCP_PEPPER",
                    "and CCP_PEPPER_FILE are both set; set one",
                ));
            }
            (Some(value), None) => {
                if value.trim().len() < crate::keys::MIN_PEPPER_LEN {
                    return Err(invalid("CCP_PEPPER", "must be at least 32 characters"));
                }
                SecretSource::Value(SecretString::new(value))
            }
            (None, Some(path)) => SecretSource::File(path),
            // Generating a pepper is only safe when this machine owns the database too:
            // with a shared PostgreSQL every instance must use the same, managed pepper.
            (None, None) if is_sqlite => SecretSource::DataDir(data_dir.join("pepper")),
            (None, None) => {
                return Err(invalid(
                    "CCP_PEPPER",
                    "is required with PostgreSQL (set CCP_PEPPER or CCP_PEPPER_FILE); \
                     keys are never stored without a pepper",
                ));
            }
        };

        let key_cache_ttl = positive_secs("CCP_KEY_CACHE_TTL_SECS", self.key_cache_ttl_secs, 30)?;
        if key_cache_ttl > Duration::from_secs(300) {
            return Err(invalid(
                "CCP_KEY_CACHE_TTL_SECS",
                "must be at most 300 (it bounds how long a revoked key keeps working)",
            ));
        }
        let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            return Err(invalid("CCP_MAX_BODY_BYTES", "must be at least 1024"));
        }
        let log_format = match self.log_format.as_deref().unwrap_or("text") {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => {
                return Err(invalid(
                    "CCP_LOG_FORMAT",
                    format!("must be json or text, got {other:?}"),
                ));
            }
        };
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
        if threads == 0 {
            return Err(invalid("CCP_THREADS", "must be at least 1"));
        }

        let default_wrapper = if is_sqlite { "local" } else { "none" };
        let key_wrapper = match self.key_wrapper.as_deref().unwrap_or(default_wrapper) {
            "none" => WrapperSetting::Unconfigured,
            "local" => match (self.wrap_key_file, is_sqlite) {
                (Some(key_file), _) => WrapperSetting::Local {
                    key_file,
                    create: false,
                },
                (None, true) => WrapperSetting::Local {
                    key_file: data_dir.join("wrap.key"),
                    create: true,
                },
                (None, false) => {
                    return Err(invalid(
                        "CCP_KEY_WRAPPER",
                        "local needs CCP_WRAP_KEY_FILE with PostgreSQL (every instance must \
                         share it); or use kms with CCP_KMS_KEY_ID",
                    ));
                }
            },
            "kms" => {
                let key_id = non_empty(self.kms_key_id).ok_or_else(|| {
                    invalid("CCP_KMS_KEY_ID", "is required with CCP_KEY_WRAPPER=kms")
                })?;
                let endpoint = non_empty(self.kms_endpoint);
                if let Some(endpoint) = &endpoint {
                    UpstreamUrl::parse(endpoint).map_err(|p| invalid("CCP_KMS_ENDPOINT", p))?;
                }
                WrapperSetting::Kms { key_id, endpoint }
            }
            other => {
                return Err(invalid(
                    "CCP_KEY_WRAPPER",
                    format!("must be local, kms or none, got {other:?}"),
                ));
            }
        };
        let circuit = crate::routing::circuit::BreakerSettings {
            threshold: match self.circuit_failure_threshold.unwrap_or(3) {
                0 => {
                    return Err(invalid(
                        "CCP_CIRCUIT_FAILURE_THRESHOLD",
                        "must be at least 1",
                    ));
                }
                n => n,
            },
            window: positive_secs("CCP_CIRCUIT_WINDOW_SECS", self.circuit_window_secs, 60)?,
            open_for: positive_secs("CCP_CIRCUIT_OPEN_SECS", self.circuit_open_secs, 1800)?,
        };

        let metrics_addr = match self.metrics_addr.as_deref().map(str::trim) {
            Some("off") => None,
            other => Some(parse_addr(
                "CCP_METRICS_ADDR",
                other.map(str::to_owned),
                "127.0.0.1:9464",
            )?),
        };

        let metering = match self.metering.as_deref().unwrap_or("on") {
            "on" => true,
            "off" => false,
            other => {
                return Err(invalid(
                    "CCP_METERING",
                    format!("must be on or off, got {other:?}"),
                ));
            }
        };

        let metrics_sink = match self.metrics_sink.as_deref().map(str::trim).unwrap_or("log") {
            "off" => MetricsSinkSetting::Off,
            "log" => MetricsSinkSetting::Log,
            "cloudwatch" => {
                let namespace = non_empty(self.cloudwatch_namespace)
                    .unwrap_or_else(|| "ClaudeCodeProxy".to_owned());
                if namespace.len() > 255
                    || namespace.starts_with("AWS/")
                    || namespace.starts_with(':')
                {
                    return Err(invalid(
                        "CCP_CLOUDWATCH_NAMESPACE",
                        "must be at most 255 characters and not start with AWS/ or :",
                    ));
                }
                let endpoint = non_empty(self.cloudwatch_endpoint);
                if let Some(endpoint) = &endpoint {
                    UpstreamUrl::parse(endpoint)
                        .map_err(|p| invalid("CCP_CLOUDWATCH_ENDPOINT", p))?;
                }
                MetricsSinkSetting::CloudWatch {
                    namespace,
                    endpoint,
                }
            }
            other => {
                return Err(invalid(
                    "CCP_METRICS_SINK",
                    format!("must be log, cloudwatch or off, got {other:?}"),
                ));
            }
        };

        let admin_trust_forwarded_for =
            match self.admin_trust_forwarded_for.as_deref().unwrap_or("off") {
                "on" => true,
                "off" => false,
                other => {
                    return Err(invalid(
                        "CCP_ADMIN_TRUST_FORWARDED_FOR",
                        format!("must be on or off, got {other:?}"),
                    ));
                }
            };
        Ok(Config {
            admin_trust_forwarded_for,
            session_secret,
            session_ttl,
            bootstrap_secret,
            console_origin,
            key_rotation_grace,
            metering,
            metrics_sink,
            metrics_interval: positive_secs(
                "CCP_METRICS_INTERVAL_SECS",
                self.metrics_interval_secs,
                60,
            )?,
            pricing_file: self.pricing_file,
            metrics_addr,
            bedrock_connect_timeout: positive_secs(
                "CCP_BEDROCK_CONNECT_TIMEOUT_SECS",
                self.bedrock_connect_timeout_secs,
                10,
            )?,
            bedrock_read_timeout: positive_secs(
                "CCP_BEDROCK_READ_TIMEOUT_SECS",
                self.bedrock_read_timeout_secs,
                300,
            )?,
            bedrock_key_cache_ttl: positive_secs(
                "CCP_BEDROCK_KEY_CACHE_TTL_SECS",
                self.bedrock_key_cache_ttl_secs,
                900,
            )?,
            model_map_refresh: positive_secs(
                "CCP_MODEL_MAP_REFRESH_SECS",
                self.model_map_refresh_secs,
                30,
            )?,
            circuit,
            key_wrapper,
            database_url: SecretString::new(database_url),
            gateway_addr: parse_addr("CCP_GATEWAY_ADDR", self.gateway_addr, "0.0.0.0:8080")?,
            admin_addr: parse_addr("CCP_ADMIN_ADDR", self.admin_addr, "127.0.0.1:8081")?,
            plan_base_url,
            plan_api_key: non_empty(self.plan_api_key).map(SecretString::new),
            plan_connect_timeout: positive_secs(
                "CCP_PLAN_CONNECT_TIMEOUT_SECS",
                self.plan_connect_timeout_secs,
                10,
            )?,
            plan_read_timeout: positive_secs(
                "CCP_PLAN_READ_TIMEOUT_SECS",
                self.plan_read_timeout_secs,
                600,
            )?,
            bedrock_endpoint: non_empty(self.bedrock_endpoint),
            pepper,
            key_cache_ttl,
            key_negative_cache_ttl: positive_secs(
                "CCP_KEY_NEGATIVE_CACHE_TTL_SECS",
                self.key_negative_cache_ttl_secs,
                30,
            )?,
            max_body_bytes,
            client_read_timeout: positive_secs(
                "CCP_CLIENT_READ_TIMEOUT_SECS",
                self.client_read_timeout_secs,
                60,
            )?,
            header_timeout: positive_secs("CCP_HEADER_TIMEOUT_SECS", self.header_timeout_secs, 10)?,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs.unwrap_or(60)),
            threads,
            log_format,
            db_max_connections: self.db_max_connections.unwrap_or(10).max(1),
            db_acquire_timeout: Duration::from_millis(
                self.db_acquire_timeout_ms.unwrap_or(2_000).max(1),
            ),
            data_dir,
        })
    }
}

impl Config {
    /// Builds the configured Bedrock-key wrapper.
    pub async fn key_wrapper(
        &self,
    ) -> Result<std::sync::Arc<dyn crate::crypto::KeyWrapper>, crate::crypto::WrapError> {
        use crate::crypto::{LocalWrapper, UnconfiguredWrapper};
        Ok(match &self.key_wrapper {
            WrapperSetting::Unconfigured => std::sync::Arc::new(UnconfiguredWrapper),
            WrapperSetting::Local { key_file, create } => {
                if *create && let Some(dir) = key_file.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        crate::crypto::WrapError::Setup(format!("{}: {e}", dir.display()))
                    })?;
                }
                std::sync::Arc::new(LocalWrapper::load_or_create(key_file, *create)?)
            }
            #[cfg(feature = "kms")]
            WrapperSetting::Kms { key_id, endpoint } => std::sync::Arc::new(
                crate::crypto::KmsWrapper::from_environment(key_id, endpoint.as_deref()).await,
            ),
            #[cfg(not(feature = "kms"))]
            WrapperSetting::Kms { .. } => {
                return Err(crate::crypto::WrapError::Setup(
                    "this build has no KMS support (feature kms)".into(),
                ));
            }
        })
    }

    /// Builds the interval-metrics sink this configuration names.
    pub async fn metrics_sink(
        &self,
    ) -> Result<Option<std::sync::Arc<dyn crate::telemetry::MetricsSink>>, ConfigError> {
        Ok(match &self.metrics_sink {
            MetricsSinkSetting::Off => None,
            MetricsSinkSetting::Log => Some(std::sync::Arc::new(crate::telemetry::LogSink)),
            #[cfg(feature = "cloudwatch")]
            MetricsSinkSetting::CloudWatch {
                namespace,
                endpoint,
            } => Some(std::sync::Arc::new(
                crate::telemetry::CloudWatchSink::from_environment(namespace, endpoint.as_deref())
                    .await,
            )),
            #[cfg(not(feature = "cloudwatch"))]
            MetricsSinkSetting::CloudWatch { .. } => {
                return Err(invalid(
                    "CCP_METRICS_SINK",
                    "this build has no CloudWatch support (feature cloudwatch)",
                ));
            }
        })
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose().starts_with("sqlite:")
    }

    /// Loads the pepper this configuration names; fails rather than run without one.
    pub fn load_pepper(&self) -> Result<crate::keys::Pepper, crate::keys::SecretFileError> {
        crate::keys::Pepper::new(&self.pepper.read()?)
    }

    /// The admin session signing secret (generated in the data directory on the embedded
    /// default).
    pub fn load_session_secret(&self) -> Result<SecretString, crate::keys::SecretFileError> {
        let secret = self.session_secret.read()?;
        if secret.expose().trim().len() < 32 {
            return Err(crate::keys::SecretFileError::TooShort);
        }
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = Config::from_pairs(&[]).unwrap();
        assert!(c.is_sqlite());
        assert_eq!(c.gateway_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.plan_base_url.host, "api.anthropic.com");
        assert!(c.plan_base_url.tls);
        assert_eq!(c.plan_base_url.port, 443);
        assert_eq!(c.max_body_bytes, 32 * 1024 * 1024);
        assert!(c.key_cache_ttl <= Duration::from_secs(60));
        assert!(matches!(c.pepper, SecretSource::DataDir(_)));
        assert_eq!(
            c.key_wrapper,
            WrapperSetting::Local {
                key_file: PathBuf::from("data/wrap.key"),
                create: true
            }
        );
        assert_eq!(c.circuit.threshold, 3);
        assert_eq!(c.circuit.window, Duration::from_secs(60));
        assert_eq!(c.circuit.open_for, Duration::from_secs(1800));
    }

    #[test]
    fn key_wrapper_choices() {
        let pg = [
            ("database_url", "postgres://db/ccp"),
            ("pepper", &"p".repeat(40)),
        ];
        let c = Config::from_pairs(&pg).unwrap();
        assert_eq!(c.key_wrapper, WrapperSetting::Unconfigured);
        let mut kms = pg.to_vec();
        kms.extend([("key_wrapper", "kms"), ("kms_key_id", "alias/ccp")]);
        assert_eq!(
            Config::from_pairs(&kms).unwrap().key_wrapper,
            WrapperSetting::Kms {
                key_id: "alias/ccp".into(),
                endpoint: None
            }
        );
        let mut local = pg.to_vec();
        local.push(("key_wrapper", "local"));
        let err = Config::from_pairs(&local).unwrap_err().to_string();
        assert!(err.contains("CCP_WRAP_KEY_FILE"), "{err}");
        local.push(("wrap_key_file", "/run/secrets/wrap.key"));
        assert!(matches!(
            Config::from_pairs(&local).unwrap().key_wrapper,
            WrapperSetting::Local { create: false, .. }
        ));
        for (pairs, setting) in [
            (vec![("key_wrapper", "kms")], "CCP_KMS_KEY_ID"),
            (vec![("key_wrapper", "vault")], "CCP_KEY_WRAPPER"),
            (
                vec![("circuit_failure_threshold", "0")],
                "CCP_CIRCUIT_FAILURE_THRESHOLD",
            ),
            (vec![("circuit_open_secs", "0")], "CCP_CIRCUIT_OPEN_SECS"),
        ] {
            let err = Config::from_pairs(&pairs).unwrap_err().to_string();
            assert!(err.contains(setting), "{err}");
        }
    }

    #[test]
    fn session_secret_is_generated_only_for_the_embedded_default() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let embedded = Config::from_pairs(&[("data_dir", &data)]).unwrap();
        let first = embedded.load_session_secret().unwrap();
        let again = embedded.load_session_secret().unwrap();
        assert_eq!(first.expose(), again.expose());
        assert_eq!(first.expose().len(), 64);
        let pg = Config::from_pairs(&[
            ("database_url", "postgres://db/ccp"),
            ("pepper", &"p".repeat(40)),
        ])
        .unwrap();
        let err = pg.load_session_secret().unwrap_err().to_string();
        assert!(err.contains("CCP_SESSION_SECRET"), "{err}");
        assert_eq!(pg.session_ttl, Duration::from_secs(3600));
        assert_eq!(pg.console_origin, None);
    }

    #[test]
    fn postgres_without_pepper_is_refused() {
        let err = Config::from_pairs(&[("database_url", "postgres://db/ccp")]).unwrap_err();
        assert!(err.to_string().contains("CCP_PEPPER"), "{err}");
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (pairs, setting) in [
            (vec![("gateway_addr", "nope")], "CCP_GATEWAY_ADDR"),
            (vec![("plan_base_url", "ftp://x")], "CCP_PLAN_BASE_URL"),
            (vec![("database_url", "mysql://x")], "CCP_DATABASE_URL"),
            (vec![("pepper", "short")], "CCP_PEPPER"),
            (vec![("log_format", "xml")], "CCP_LOG_FORMAT"),
            (vec![("key_cache_ttl_secs", "0")], "CCP_KEY_CACHE_TTL_SECS"),
            (vec![("session_ttl_secs", "3601")], "CCP_SESSION_TTL_SECS"),
            (vec![("session_secret", "short")], "CCP_SESSION_SECRET"),
            (vec![("bootstrap_secret", "short")], "CCP_BOOTSTRAP_SECRET"),
            (
                vec![("console_origin", "https://console.example.com/app")],
                "CCP_CONSOLE_ORIGIN",
            ),
            (
                vec![("console_origin", "console.example.com")],
                "CCP_CONSOLE_ORIGIN",
            ),
            (
                vec![("key_rotation_grace_secs", "2592001")],
                "CCP_KEY_ROTATION_GRACE_SECS",
            ),
        ] {
            let err = Config::from_pairs(&pairs).unwrap_err().to_string();
            assert!(err.contains(setting), "{err}");
        }
    }

    #[test]
    fn database_url_from_the_pieces_of_a_managed_secret() {
        let parts = [
            (
                "database_host",
                "db.cluster-abc.us-east-1.rds.amazonaws.com",
            ),
            ("database_port", "5433"),
            ("database_username", "ccp_app"),
            ("database_password", "p@ss:w/rd?#%CANARYPW"),
            ("database_name", "ccp"),
            ("pepper", "p".repeat(40).leak()),
        ];
        let c = Config::from_pairs(&parts).unwrap();
        let url = c.database_url.expose();
        assert_eq!(
            url,
            "postgres://ccp%5Fapp:p%40ss%3Aw%2Frd%3F%23%25CANARYPW@db.cluster-abc.us-east-1.rds.amazonaws.com:5433/ccp"
        );
        // The URL parses back to the same pieces.
        let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        assert_eq!(
            opts.get_host(),
            "db.cluster-abc.us-east-1.rds.amazonaws.com"
        );
        assert_eq!(opts.get_port(), 5433);
        assert_eq!(opts.get_username(), "ccp_app");
        assert_eq!(opts.get_database(), Some("ccp"));
        assert!(!format!("{c:?}").contains("CANARYPW"));
        // Defaults: port 5432, database postgres.
        let c = Config::from_pairs(&[
            ("database_host", "10.0.0.5"),
            ("database_username", "u"),
            ("database_password", "pw"),
            ("pepper", "p".repeat(40).leak()),
        ])
        .unwrap();
        assert_eq!(
            c.database_url.expose(),
            "postgres://u:pw@10.0.0.5:5432/postgres"
        );
    }

    #[test]
    fn database_passwords_are_taken_as_written() {
        // Generated passwords may look like numbers, booleans or lists to a lenient parser.
        for password in ["12345", "true", "[abc]", "{x}", "-1.5e3", "a,b"] {
            let c = Config::from_pairs(&[
                ("database_host", "db"),
                ("database_username", "u"),
                ("database_password", password),
                ("pepper", "p".repeat(40).leak()),
            ])
            .unwrap_or_else(|e| panic!("{password}: {e}"));
            let opts: sqlx::postgres::PgConnectOptions = c.database_url.expose().parse().unwrap();
            assert_eq!(opts.get_host(), "db", "{password}");
            let encoded =
                percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            assert!(
                c.database_url.expose().contains(&format!(":{encoded}@")),
                "{password}"
            );
        }
    }

    #[test]
    fn database_pieces_are_all_or_nothing() {
        for (pairs, setting) in [
            (
                vec![("database_host", "db"), ("database_password", "pw")],
                "CCP_DATABASE_USERNAME",
            ),
            (
                vec![("database_host", "db"), ("database_username", "u")],
                "CCP_DATABASE_PASSWORD",
            ),
            (vec![("database_password", "pw")], "CCP_DATABASE_HOST"),
            (
                vec![
                    ("database_host", "db/evil?x="),
                    ("database_username", "u"),
                    ("database_password", "p"),
                ],
                "CCP_DATABASE_HOST",
            ),
            (
                vec![
                    ("database_url", "postgres://db/ccp"),
                    ("database_host", "db"),
                    ("database_username", "u"),
                    ("database_password", "p"),
                ],
                "CCP_DATABASE_URL",
            ),
        ] {
            let err = Config::from_pairs(&pairs).unwrap_err().to_string();
            assert!(err.contains(setting), "{pairs:?}: {err}");
            assert!(!err.contains("pw"), "no password in the message: {err}");
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let c = Config::from_pairs(&[
            ("plan_api_key", "sk-ant-CANARYCT-123"),
            ("pepper", "CANARYPEPPER-CANARYPEPPER-CANARYPEPPER"),
            ("database_url", "postgres://u:CANARYPW@db/ccp"),
        ])
        .unwrap();
        let debug = format!("{c:?}");
        for canary in ["CANARYCT", "CANARYPEPPER", "CANARYPW"] {
            assert!(!debug.contains(canary), "{canary} leaked: {debug}");
        }
    }

    #[test]
    fn upstream_url_parts() {
        let u = UpstreamUrl::parse("http://127.0.0.1:9999/prefix/").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.base_path.as_str()),
            (false, "127.0.0.1", 9999, "/prefix")
        );
        assert_eq!(u.authority(), "127.0.0.1:9999");
        assert_eq!(
            UpstreamUrl::parse("https://api.anthropic.com")
                .unwrap()
                .authority(),
            "api.anthropic.com"
        );
        assert!(UpstreamUrl::parse("https://user:pw@host").is_err());
    }

    #[test]
    fn toml_file_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ccp.toml");
        std::fs::write(&path, "gateway_addr = \"127.0.0.1:9000\"\nthreads = 3\n").unwrap();
        let c = Config::load(Some(&path), Env::prefixed("CCP_UNUSED_IN_TEST_"), &[]).unwrap();
        assert_eq!(c.gateway_addr.port(), 9000);
        assert_eq!(c.threads, 3);
        std::fs::write(&path, "gatway_addr = \"127.0.0.1:9000\"\n").unwrap();
        assert!(Config::load(Some(&path), Env::prefixed("CCP_UNUSED_IN_TEST_"), &[]).is_err());
    }
}
