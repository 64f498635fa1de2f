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

    #[test]
    fn the_settings_list_the_raw_shape_and_the_docs_agree() {
        use std::collections::BTreeSet;
        let listed: BTreeSet<String> = KEYS.iter().map(|k| (*k).to_owned()).collect();
        let raw = serde_json::to_value(raw::RawConfig::default()).unwrap();
        let fields: BTreeSet<String> = raw.as_object().unwrap().keys().cloned().collect();
        assert_eq!(listed, fields, "KEYS and RawConfig's fields differ");
        assert!(VERBATIM.iter().all(|k| listed.contains(*k)));

        let docs = include_str!("../../../docs/configuration.md");
        let documented: BTreeSet<String> = docs
            .lines()
            .filter_map(|l| l.strip_prefix("| `CCP_"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_ascii_lowercase)
            .collect();
        // Read elsewhere: the file these settings may come from, the log filter, and the
        // console's own settings (console/src/lib/settings.ts, api.ts, its server).
        let elsewhere: BTreeSet<String> = [
            "config",
            "log",
            "console_addr",
            "console_admin_api_url",
            "console_gateway_url",
            "console_time_zone",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        let missing: Vec<_> = listed.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "settings docs/configuration.md does not document: {missing:?}"
        );
        let unknown: Vec<_> = documented
            .difference(&listed)
            .filter(|k| !elsewhere.contains(*k))
            .collect();
        assert!(
            unknown.is_empty(),
            "documented settings nothing reads: {unknown:?}"
        );
    }
}
