//! The raw settings: their names, and the serde shape they are read into before validation.

use super::ConfigError;
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every setting, by its TOML name; the environment variable is `CCP_` + upper case.
pub(super) const KEYS: &[&str] = &[
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
    "request_log_retention_days",
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
pub(super) const VERBATIM: &[&str] = &[
    "database_host",
    "database_username",
    "database_password",
    "database_name",
];

/// The settings as read, before validation: every field optional.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) database_url: Option<String>,
    pub(super) database_host: Option<String>,
    pub(super) database_port: Option<u16>,
    pub(super) database_username: Option<String>,
    pub(super) database_password: Option<String>,
    pub(super) database_name: Option<String>,
    pub(super) gateway_addr: Option<String>,
    pub(super) admin_addr: Option<String>,
    pub(super) plan_base_url: Option<String>,
    pub(super) plan_api_key: Option<String>,
    pub(super) plan_connect_timeout_secs: Option<u64>,
    pub(super) plan_read_timeout_secs: Option<u64>,
    pub(super) bedrock_endpoint: Option<String>,
    pub(super) pepper: Option<String>,
    pub(super) pepper_file: Option<PathBuf>,
    pub(super) key_cache_ttl_secs: Option<u64>,
    pub(super) key_negative_cache_ttl_secs: Option<u64>,
    pub(super) max_body_bytes: Option<u64>,
    pub(super) client_read_timeout_secs: Option<u64>,
    pub(super) header_timeout_secs: Option<u64>,
    pub(super) shutdown_grace_secs: Option<u64>,
    pub(super) threads: Option<usize>,
    pub(super) log_format: Option<String>,
    pub(super) db_max_connections: Option<u32>,
    pub(super) db_acquire_timeout_ms: Option<u64>,
    pub(super) bedrock_connect_timeout_secs: Option<u64>,
    pub(super) bedrock_read_timeout_secs: Option<u64>,
    pub(super) bedrock_key_cache_ttl_secs: Option<u64>,
    pub(super) model_map_refresh_secs: Option<u64>,
    pub(super) circuit_failure_threshold: Option<usize>,
    pub(super) circuit_window_secs: Option<u64>,
    pub(super) circuit_open_secs: Option<u64>,
    pub(super) key_wrapper: Option<String>,
    pub(super) wrap_key_file: Option<PathBuf>,
    pub(super) kms_key_id: Option<String>,
    pub(super) kms_endpoint: Option<String>,
    pub(super) metrics_addr: Option<String>,
    pub(super) metering: Option<String>,
    pub(super) request_log_retention_days: Option<u32>,
    pub(super) metrics_sink: Option<String>,
    pub(super) metrics_interval_secs: Option<u64>,
    pub(super) cloudwatch_namespace: Option<String>,
    pub(super) cloudwatch_endpoint: Option<String>,
    pub(super) pricing_file: Option<PathBuf>,
    pub(super) session_secret: Option<String>,
    pub(super) session_secret_file: Option<PathBuf>,
    pub(super) session_ttl_secs: Option<u64>,
    pub(super) bootstrap_secret: Option<String>,
    pub(super) console_origin: Option<String>,
    pub(super) key_rotation_grace_secs: Option<u64>,
    pub(super) admin_trust_forwarded_for: Option<String>,
}

pub(super) fn extract(figment: Figment) -> Result<RawConfig, ConfigError> {
    figment
        .extract::<RawConfig>()
        .map_err(|e| ConfigError::Load(e.to_string()))
}
