//! The embedded default wrapper: AES-256-GCM under a key kept in a 0600 file.

use super::{KeyWrapper, WrapContext, WrapError, WrapperKind};
use crate::secret::SecretString;
use async_trait::async_trait;
use std::fmt;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

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
