//! Validation: the raw settings into a [`Config`], one function per concern (database,
//! secrets, admin, upstreams, limits, breaker, key wrapper, telemetry). Every message names
//! the setting it is about. Nothing here does I/O. (Over 400 lines because `validate` names
//! every field of `Config` once, with its default; the per-concern checks are below it.)

use super::raw::RawConfig;
use super::{
    Config, ConfigError, DEFAULT_MAX_BODY_BYTES, LogFormat, MetricsSinkSetting, SecretSource,
    UpstreamUrl, WrapperSetting, invalid,
};
use crate::routing::circuit::BreakerSettings;
use crate::secret::SecretString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the database is: its URL, and whether it is the embedded SQLite one (which decides
/// what may be generated on this machine).
struct Database {
    url: String,
    is_sqlite: bool,
}

struct Secrets {
    pepper: SecretSource,
    session_secret: SecretSource,
    bootstrap_secret: Option<SecretString>,
}

impl RawConfig {
    pub(super) fn validate(mut self) -> Result<Config, ConfigError> {
        let data_dir = self
            .data_dir
            .take()
            .unwrap_or_else(|| PathBuf::from("data"));
        let database = self.database(&data_dir)?;
        let secrets = self.secrets(&data_dir, database.is_sqlite)?;
        let key_wrapper = self.key_wrapper(&data_dir, database.is_sqlite)?;
        let circuit = self.breaker()?;
        let plan_base_url = UpstreamUrl::parse(
            self.plan_base_url
                .as_deref()
                .unwrap_or("https://api.anthropic.com"),
        )
        .map_err(|p| invalid("CCP_PLAN_BASE_URL", p))?;
        if let Some(endpoint) = &self.bedrock_endpoint {
            UpstreamUrl::parse(endpoint).map_err(|p| invalid("CCP_BEDROCK_ENDPOINT", p))?;
        }
        let session_ttl = positive_secs("CCP_SESSION_TTL_SECS", self.session_ttl_secs, 3600)?;
        if session_ttl > Duration::from_secs(3600) {
            return Err(invalid("CCP_SESSION_TTL_SECS", "must be at most 3600"));
        }
        let key_rotation_grace =
            Duration::from_secs(self.key_rotation_grace_secs.unwrap_or(24 * 3600));
        if key_rotation_grace > Duration::from_secs(30 * 24 * 3600) {
            return Err(invalid(
                "CCP_KEY_ROTATION_GRACE_SECS",
                "must be at most 2592000 (30 days)",
            ));
        }
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
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
        if threads == 0 {
            return Err(invalid("CCP_THREADS", "must be at least 1"));
        }
        Ok(Config {
            admin_trust_forwarded_for: on_off(
                "CCP_ADMIN_TRUST_FORWARDED_FOR",
                self.admin_trust_forwarded_for.as_deref(),
                false,
            )?,
            console_origin: self.console_origin()?,
            session_secret: secrets.session_secret,
            session_ttl,
            bootstrap_secret: secrets.bootstrap_secret,
            key_rotation_grace,
            metering: on_off("CCP_METERING", self.metering.as_deref(), true)?,
            metrics_sink: self.metrics_sink()?,
            metrics_interval: positive_secs(
                "CCP_METRICS_INTERVAL_SECS",
                self.metrics_interval_secs,
                60,
            )?,
            metrics_addr: match self.metrics_addr.as_deref().map(str::trim) {
                Some("off") => None,
                other => Some(parse_addr(
                    "CCP_METRICS_ADDR",
                    other.map(str::to_owned),
                    "127.0.0.1:9464",
                )?),
            },
            log_format: match self.log_format.as_deref().unwrap_or("text") {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => {
                    return Err(invalid(
                        "CCP_LOG_FORMAT",
                        format!("must be json or text, got {other:?}"),
                    ));
                }
            },
            pricing_file: self.pricing_file,
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
            request_log_retention_days: match self.request_log_retention_days {
                Some(0) => {
                    return Err(invalid(
                        "CCP_REQUEST_LOG_RETENTION_DAYS",
                        "must be at least 1 (leave it unset to keep every row)",
                    ));
                }
                days => days,
            },
            key_wrapper,
            database_url: SecretString::new(database.url),
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
            pepper: secrets.pepper,
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
            db_max_connections: self.db_max_connections.unwrap_or(10).max(1),
            db_acquire_timeout: Duration::from_millis(
                self.db_acquire_timeout_ms.unwrap_or(2_000).max(1),
            ),
            data_dir,
        })
    }

    /// `CCP_DATABASE_URL`, or one built from the pieces of a managed secret, or the embedded
    /// SQLite file under the data directory.
    fn database(&mut self, data_dir: &Path) -> Result<Database, ConfigError> {
        let from_parts = database_url_from_parts(
            non_empty(self.database_host.take()),
            self.database_port,
            non_empty(self.database_username.take()),
            self.database_password.take().filter(|p| !p.is_empty()),
            non_empty(self.database_name.take()),
        )?;
        let url = match (non_empty(self.database_url.take()), from_parts) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "CCP_DATABASE_URL",
                    "set either CCP_DATABASE_URL or CCP_DATABASE_HOST and its parts, not both",
                ));
            }
            (Some(url), None) | (None, Some(url)) => url,
            (None, None) => format!("sqlite://{}?mode=rwc", data_dir.join("ccp.db").display()),
        };
        let is_sqlite = url.starts_with("sqlite:");
        if !is_sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(invalid(
                "CCP_DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite:",
            ));
        }
        Ok(Database { url, is_sqlite })
    }

    /// The pepper and the session secret: a value, a file, or (only when this machine owns the
    /// database) one generated under the data directory; and the optional bootstrap secret.
    fn secrets(&mut self, data_dir: &Path, is_sqlite: bool) -> Result<Secrets, ConfigError> {
        // Generating a pepper is only safe when this machine owns the database too: with a
        // shared PostgreSQL every instance must use the same, managed pepper.
        let pepper = secret_source(
            ("CCP_PEPPER", "CCP_PEPPER_FILE"),
            non_empty(self.pepper.take()),
            self.pepper_file.take(),
            crate::keys::MIN_PEPPER_LEN,
            is_sqlite.then(|| data_dir.join("pepper")),
        )?
        .ok_or_else(|| {
            invalid(
                "CCP_PEPPER",
                "is required with PostgreSQL (set CCP_PEPPER or CCP_PEPPER_FILE); \
                 keys are never stored without a pepper",
            )
        })?;
        // Only the admin server needs the session secret; it refuses to start without
        // (`load_session_secret`).
        let session_secret = secret_source(
            ("CCP_SESSION_SECRET", "CCP_SESSION_SECRET_FILE"),
            non_empty(self.session_secret.take()),
            self.session_secret_file.take(),
            32,
            is_sqlite.then(|| data_dir.join("session.key")),
        )?
        .unwrap_or(SecretSource::Missing);
        let bootstrap_secret = match non_empty(self.bootstrap_secret.take()) {
            Some(value) if value.trim().len() < 32 => {
                return Err(invalid(
                    "CCP_BOOTSTRAP_SECRET",
                    "must be at least 32 characters",
                ));
            }
            other => other.map(SecretString::new),
        };
        Ok(Secrets {
            pepper,
            session_secret,
            bootstrap_secret,
        })
    }

    fn console_origin(&mut self) -> Result<Option<String>, ConfigError> {
        let Some(origin) = non_empty(self.console_origin.take()) else {
            return Ok(None);
        };
        let parsed = UpstreamUrl::parse(&origin).map_err(|p| invalid("CCP_CONSOLE_ORIGIN", p))?;
        if !parsed.base_path.is_empty() {
            return Err(invalid(
                "CCP_CONSOLE_ORIGIN",
                "must be scheme://host[:port] without a path",
            ));
        }
        Ok(Some(origin.trim_end_matches('/').to_owned()))
    }

    fn key_wrapper(
        &mut self,
        data_dir: &Path,
        is_sqlite: bool,
    ) -> Result<WrapperSetting, ConfigError> {
        let default_wrapper = if is_sqlite { "local" } else { "none" };
        match self.key_wrapper.as_deref().unwrap_or(default_wrapper) {
            "none" => Ok(WrapperSetting::Unconfigured),
            "local" => match (self.wrap_key_file.take(), is_sqlite) {
                (Some(key_file), _) => Ok(WrapperSetting::Local {
                    key_file,
                    create: false,
                }),
                (None, true) => Ok(WrapperSetting::Local {
                    key_file: data_dir.join("wrap.key"),
                    create: true,
                }),
                (None, false) => Err(invalid(
                    "CCP_KEY_WRAPPER",
                    "local needs CCP_WRAP_KEY_FILE with PostgreSQL (every instance must \
                     share it); or use kms with CCP_KMS_KEY_ID",
                )),
            },
            "kms" => {
                let key_id = non_empty(self.kms_key_id.take()).ok_or_else(|| {
                    invalid("CCP_KMS_KEY_ID", "is required with CCP_KEY_WRAPPER=kms")
                })?;
                let endpoint = non_empty(self.kms_endpoint.take());
                if let Some(endpoint) = &endpoint {
                    UpstreamUrl::parse(endpoint).map_err(|p| invalid("CCP_KMS_ENDPOINT", p))?;
                }
                Ok(WrapperSetting::Kms { key_id, endpoint })
            }
            other => Err(invalid(
                "CCP_KEY_WRAPPER",
                format!("must be local, kms or none, got {other:?}"),
            )),
        }
    }

    fn breaker(&self) -> Result<BreakerSettings, ConfigError> {
        Ok(BreakerSettings {
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
        })
    }

    fn metrics_sink(&mut self) -> Result<MetricsSinkSetting, ConfigError> {
        match self.metrics_sink.as_deref().map(str::trim).unwrap_or("log") {
            "off" => Ok(MetricsSinkSetting::Off),
            "log" => Ok(MetricsSinkSetting::Log),
            "cloudwatch" => {
                let namespace = non_empty(self.cloudwatch_namespace.take())
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
                let endpoint = non_empty(self.cloudwatch_endpoint.take());
                if let Some(endpoint) = &endpoint {
                    UpstreamUrl::parse(endpoint)
                        .map_err(|p| invalid("CCP_CLOUDWATCH_ENDPOINT", p))?;
                }
                Ok(MetricsSinkSetting::CloudWatch {
                    namespace,
                    endpoint,
                })
            }
            other => Err(invalid(
                "CCP_METRICS_SINK",
                format!("must be log, cloudwatch or off, got {other:?}"),
            )),
        }
    }
}

/// A secret given as a value or as a file (not both), or generated at `generated` when that
/// is allowed; `None` when none of these applies. A value shorter than `min_len` is refused.
fn secret_source(
    (value_setting, file_setting): (&'static str, &'static str),
    value: Option<String>,
    file: Option<PathBuf>,
    min_len: usize,
    generated: Option<PathBuf>,
) -> Result<Option<SecretSource>, ConfigError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(invalid(
            value_setting,
            format!("and {file_setting} are both set; set one"),
        )),
        (Some(value), None) if value.trim().len() < min_len => Err(invalid(
            value_setting,
            format!("must be at least {min_len} characters"),
        )),
        (Some(value), None) => Ok(Some(SecretSource::Value(SecretString::new(value)))),
        (None, Some(path)) => Ok(Some(SecretSource::File(path))),
        (None, None) => Ok(generated.map(SecretSource::DataDir)),
    }
}

fn on_off(setting: &'static str, value: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match value {
        None => Ok(default),
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(invalid(
            setting,
            format!("must be on or off, got {other:?}"),
        )),
    }
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
