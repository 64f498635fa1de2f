//! Settings: `CCP_*` environment variables over an optional TOML file (`CCP_CONFIG`),
//! read into a raw serde shape ([`raw`]) and validated once into [`Config`] ([`validate`],
//! one function per concern), with messages that name the setting.
//! docs/configuration.md documents every setting; a test keeps the list, the raw shape and
//! the document in step.

mod raw;
mod validate;

use raw::{KEYS, VERBATIM, extract};

use crate::secret::SecretString;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Raw request rows older than this many days are deleted (rollups stay); `None` keeps
    /// them all.
    pub request_log_retention_days: Option<u32>,
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

impl Config {
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
mod tests;
