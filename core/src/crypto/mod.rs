//! Wrapping of per-key Bedrock API keys: AWS KMS in production, a local AES-256-GCM key file
//! as the embedded default. Both bind every ciphertext to its access key through an
//! encryption context (KMS) or the same context as AES-GCM associated data (local), so a
//! ciphertext copied to another row does not decrypt.
//!
//! The context holds ids only, never a secret: KMS writes it to CloudTrail.

use crate::secret::SecretString;
use async_trait::async_trait;
use std::fmt;
use uuid::Uuid;

#[cfg(feature = "kms")]
mod kms;
mod local;

#[cfg(feature = "kms")]
pub use kms::KmsWrapper;
pub use local::LocalWrapper;

/// What a ciphertext is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapContext {
    pub access_key_id: Uuid,
}

impl WrapContext {
    pub const PURPOSE: &'static str = "bedrock-api-key";

    pub fn new(access_key_id: Uuid) -> Self {
        Self { access_key_id }
    }

    /// The context as KMS `EncryptionContext` pairs.
    pub fn pairs(&self) -> [(&'static str, String); 2] {
        [
            ("purpose", Self::PURPOSE.to_owned()),
            ("access_key_id", self.access_key_id.to_string()),
        ]
    }

    /// The same pairs as one canonical byte string, the AES-GCM associated data.
    pub(crate) fn aad(&self) -> Vec<u8> {
        let [(k1, v1), (k2, v2)] = self.pairs();
        format!("{k1}={v1};{k2}={v2}").into_bytes()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    /// The wrapper could not be reached or failed transiently (KMS down, throttled).
    #[error("key wrapper unavailable: {0}")]
    Unavailable(String),
    /// The ciphertext does not open under this context: tampered, copied from another row,
    /// or wrapped by another key.
    #[error("ciphertext rejected: {0}")]
    Rejected(String),
    /// Local key file problems at start-up.
    #[error("key wrapper setup: {0}")]
    Setup(String),
}

/// Which implementation made a ciphertext; stored beside it in `bedrock_keys.wrapper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapperKind {
    Local,
    Kms,
    /// No wrapper configured: nothing can be wrapped or opened.
    Unconfigured,
}

impl WrapperKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Kms => "kms",
            Self::Unconfigured => "none",
        }
    }
}

/// Stands in when no wrapper is configured; every call says so.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnconfiguredWrapper;

const NOT_CONFIGURED: &str = "no key wrapper is configured (set CCP_KEY_WRAPPER=kms and CCP_KMS_KEY_ID, or local with CCP_WRAP_KEY_FILE)";

#[async_trait]
impl KeyWrapper for UnconfiguredWrapper {
    fn kind(&self) -> WrapperKind {
        WrapperKind::Unconfigured
    }

    async fn wrap(&self, _: &SecretString, _: &WrapContext) -> Result<Vec<u8>, WrapError> {
        Err(WrapError::Setup(NOT_CONFIGURED.into()))
    }

    async fn unwrap(&self, _: &[u8], _: &WrapContext) -> Result<SecretString, WrapError> {
        Err(WrapError::Unavailable(NOT_CONFIGURED.into()))
    }
}

#[async_trait]
pub trait KeyWrapper: Send + Sync + fmt::Debug {
    fn kind(&self) -> WrapperKind;
    async fn wrap(
        &self,
        plaintext: &SecretString,
        context: &WrapContext,
    ) -> Result<Vec<u8>, WrapError>;
    async fn unwrap(
        &self,
        ciphertext: &[u8],
        context: &WrapContext,
    ) -> Result<SecretString, WrapError>;
}

/// Builds the wrapper a configuration names (a KMS client from the standard AWS chain, or
/// the local key file, created on first use when the setting allows it).
pub async fn wrapper_for(
    setting: &crate::config::WrapperSetting,
) -> Result<std::sync::Arc<dyn KeyWrapper>, WrapError> {
    use crate::config::WrapperSetting;
    use std::sync::Arc;
    Ok(match setting {
        WrapperSetting::Unconfigured => Arc::new(UnconfiguredWrapper),
        WrapperSetting::Local { key_file, create } => {
            if *create && let Some(dir) = key_file.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| WrapError::Setup(format!("{}: {e}", dir.display())))?;
            }
            Arc::new(LocalWrapper::load_or_create(key_file, *create)?)
        }
        #[cfg(feature = "kms")]
        WrapperSetting::Kms { key_id, endpoint } => {
            Arc::new(KmsWrapper::from_environment(key_id, endpoint.as_deref()).await)
        }
        #[cfg(not(feature = "kms"))]
        WrapperSetting::Kms { .. } => {
            return Err(WrapError::Setup(
                "this build has no KMS support (feature kms)".into(),
            ));
        }
    })
}
