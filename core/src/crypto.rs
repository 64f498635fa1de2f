//! Wrapping of per-key Bedrock API keys: AWS KMS in production, a local AES-256-GCM key file
//! as the embedded default. Both bind every ciphertext to its access key through an
//! encryption context (KMS) or the same context as AES-GCM associated data (local), so a
//! ciphertext copied to another row does not decrypt.
//!
//! The context holds ids only, never a secret: KMS writes it to CloudTrail.

use crate::secret::SecretString;
use async_trait::async_trait;
use std::fmt;
use std::path::Path;
use uuid::Uuid;

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
    fn aad(&self) -> Vec<u8> {
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

/// AES-256-GCM under a 32-byte key kept in a 0600 file. Ciphertext layout:
/// `0x01 | 12-byte random nonce | ciphertext and 16-byte tag`.
pub struct LocalWrapper {
    cipher: aes_gcm::Aes256Gcm,
}

const LOCAL_FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

impl fmt::Debug for LocalWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalWrapper([REDACTED])")
    }
}

impl LocalWrapper {
    pub fn from_key(key: &[u8; 32]) -> Self {
        use aes_gcm::KeyInit;
        Self {
            cipher: aes_gcm::Aes256Gcm::new(key.into()),
        }
    }

    /// Reads the hex key file, creating it (mode 0600) on first use when `create` is set.
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self, WrapError> {
        let setup = |what: &str, e: &dyn fmt::Display| {
            WrapError::Setup(format!("{what} {}: {e}", path.display()))
        };
        let text = if create {
            // 32 random bytes as hex, created once (race-free across processes).
            crate::keys::load_or_create_secret(path).map_err(|e| setup("cannot create", &e))?
        } else {
            crate::secret::SecretString::new(
                std::fs::read_to_string(path).map_err(|e| setup("cannot read", &e))?,
            )
        };
        let text = text.expose();
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), key.as_mut())
            .map_err(|_| setup("must hold 64 hex characters:", &"malformed key file"))?;
        Ok(Self::from_key(&key))
    }

    fn seal(&self, plaintext: &[u8], context: &WrapContext) -> Result<Vec<u8>, WrapError> {
        use aes_gcm::aead::{Aead, Payload};
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| WrapError::Unavailable(e.to_string()))?;
        let aad = context.aad();
        let sealed = self
            .cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| WrapError::Unavailable("encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(LOCAL_FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open(&self, ciphertext: &[u8], context: &WrapContext) -> Result<SecretString, WrapError> {
        use aes_gcm::aead::{Aead, Payload};
        let rejected = |why: &str| WrapError::Rejected(why.to_owned());
        let (&version, rest) = ciphertext
            .split_first()
            .ok_or_else(|| rejected("empty ciphertext"))?;
        if version != LOCAL_FORMAT_V1 || rest.len() < NONCE_LEN + 16 {
            return Err(rejected("not a local-wrapper ciphertext"));
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let aad = context.aad();
        let plain = zeroize::Zeroizing::new(
            self.cipher
                .decrypt(
                    nonce.into(),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| rejected("authentication failed (wrong key or context)"))?,
        );
        String::from_utf8(plain.to_vec())
            .map(SecretString::new)
            .map_err(|_| rejected("plaintext is not UTF-8"))
    }
}

#[async_trait]
impl KeyWrapper for LocalWrapper {
    fn kind(&self) -> WrapperKind {
        WrapperKind::Local
    }

    async fn wrap(
        &self,
        plaintext: &SecretString,
        context: &WrapContext,
    ) -> Result<Vec<u8>, WrapError> {
        self.seal(plaintext.expose().as_bytes(), context)
    }

    async fn unwrap(
        &self,
        ciphertext: &[u8],
        context: &WrapContext,
    ) -> Result<SecretString, WrapError> {
        self.open(ciphertext, context)
    }
}

/// AWS KMS `Encrypt`/`Decrypt` with the encryption context.
#[cfg(feature = "kms")]
#[derive(Debug, Clone)]
pub struct KmsWrapper {
    client: aws_sdk_kms::Client,
    key_id: String,
}

#[cfg(feature = "kms")]
impl KmsWrapper {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }

    /// A client from the standard AWS configuration chain (environment, ECS task role, …),
    /// optionally against another endpoint (a local emulator in tests).
    pub async fn from_environment(key_id: &str, endpoint: Option<&str>) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let mut builder = aws_sdk_kms::config::Builder::from(&shared);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self::new(aws_sdk_kms::Client::from_conf(builder.build()), key_id)
    }
}

/// KMS errors that say "this ciphertext will never open here" rather than "try later".
#[cfg(feature = "kms")]
fn kms_error<E>(err: aws_sdk_kms::error::SdkError<E>) -> WrapError
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + fmt::Debug,
{
    use aws_sdk_kms::error::SdkError;
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            match code {
                "InvalidCiphertextException"
                | "IncorrectKeyException"
                | "InvalidKeyUsageException"
                | "NotFoundException"
                | "DisabledException"
                | "KMSInvalidStateException" => WrapError::Rejected(code.to_owned()),
                _ => WrapError::Unavailable(code.to_owned()),
            }
        }
        SdkError::TimeoutError(_) => WrapError::Unavailable("timeout".into()),
        SdkError::DispatchFailure(_) => WrapError::Unavailable("cannot reach KMS".into()),
        _ => WrapError::Unavailable("KMS call failed".into()),
    }
}

#[cfg(feature = "kms")]
#[async_trait]
impl KeyWrapper for KmsWrapper {
    fn kind(&self) -> WrapperKind {
        WrapperKind::Kms
    }

    async fn wrap(
        &self,
        plaintext: &SecretString,
        context: &WrapContext,
    ) -> Result<Vec<u8>, WrapError> {
        let mut call = self.client.encrypt().key_id(&self.key_id).plaintext(
            aws_sdk_kms::primitives::Blob::new(plaintext.expose().as_bytes()),
        );
        for (k, v) in context.pairs() {
            call = call.encryption_context(k, v);
        }
        let out = call.send().await.map_err(kms_error)?;
        out.ciphertext_blob
            .map(aws_sdk_kms::primitives::Blob::into_inner)
            .ok_or_else(|| WrapError::Unavailable("KMS returned no ciphertext".into()))
    }

    async fn unwrap(
        &self,
        ciphertext: &[u8],
        context: &WrapContext,
    ) -> Result<SecretString, WrapError> {
        let mut call = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(ciphertext));
        for (k, v) in context.pairs() {
            call = call.encryption_context(k, v);
        }
        let out = call.send().await.map_err(kms_error)?;
        let plain = zeroize::Zeroizing::new(
            out.plaintext
                .map(aws_sdk_kms::primitives::Blob::into_inner)
                .ok_or_else(|| WrapError::Unavailable("KMS returned no plaintext".into()))?,
        );
        String::from_utf8(plain.to_vec())
            .map(SecretString::new)
            .map_err(|_| WrapError::Rejected("plaintext is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapper() -> LocalWrapper {
        LocalWrapper::from_key(&[7u8; 32])
    }

    #[tokio::test]
    async fn local_round_trip_and_context_binding() {
        let w = wrapper();
        let a = WrapContext::new(Uuid::now_v7());
        let b = WrapContext::new(Uuid::now_v7());
        let secret = SecretString::from("ABSKbedrock-key-value-1234");
        let sealed = w.wrap(&secret, &a).await.unwrap();
        assert!(!sealed.windows(8).any(|s| s == b"ABSKbedr"));
        assert_eq!(
            w.unwrap(&sealed, &a).await.unwrap().expose(),
            secret.expose()
        );
        // Copied to another row: the context differs, so it does not open.
        assert!(matches!(
            w.unwrap(&sealed, &b).await,
            Err(WrapError::Rejected(_))
        ));
        // Another wrapping key does not open it either.
        let other = LocalWrapper::from_key(&[8u8; 32]);
        assert!(matches!(
            other.unwrap(&sealed, &a).await,
            Err(WrapError::Rejected(_))
        ));
        // Every flipped byte is caught.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(w.unwrap(&bad, &a).await.is_err(), "byte {i}");
        }
        // Two wraps of the same value differ (random nonce).
        assert_ne!(sealed, w.wrap(&secret, &a).await.unwrap());
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wrap.key");
        assert!(LocalWrapper::load_or_create(&path, false).is_err());
        let first = LocalWrapper::load_or_create(&path, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = LocalWrapper::load_or_create(&path, true).unwrap();
        let ctx = WrapContext::new(Uuid::now_v7());
        let sealed = first.seal(b"value", &ctx).unwrap();
        assert_eq!(again.open(&sealed, &ctx).unwrap().expose(), "value");
        assert!(format!("{first:?}").contains("REDACTED"));
    }
}
