//! Decrypted Bedrock API keys, cached. Plaintext lives only here, in a zeroize-on-drop
//! secret, for `ttl` (default 15 min). Concurrent misses for one access key make one
//! unwrap call (`try_get_with`). Failures are not cached: when the wrapper (KMS) is down,
//! cached keys keep working and uncached ones mean "no failover" for that request.

use crate::crypto::{KeyWrapper, WrapContext, WrapError};
use crate::secret::SecretString;
use crate::store::Store;
use moka::future::Cache;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// A usable Bedrock credential.
#[derive(Debug)]
pub struct BedrockCredential {
    pub api_key: SecretString,
    pub region: String,
}

/// Why no credential is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// The access key has no Bedrock key.
    Missing,
    /// The database or the wrapper cannot answer now.
    Unavailable,
    /// The ciphertext does not open for this access key (tampered, copied, other wrapper).
    Rejected,
}

/// Counters for the metrics endpoint and the log.
#[derive(Debug, Default)]
pub struct CredentialStats {
    pub unwraps: AtomicU64,
    pub unavailable: AtomicU64,
    pub rejected: AtomicU64,
}

#[derive(Clone)]
pub struct CredentialCache {
    store: Store,
    wrapper: Arc<dyn KeyWrapper>,
    cache: Cache<Uuid, Arc<BedrockCredential>>,
    stats: Arc<CredentialStats>,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("wrapper", &self.wrapper.kind())
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl CredentialCache {
    pub fn new(store: Store, wrapper: Arc<dyn KeyWrapper>, ttl: Duration) -> Self {
        Self {
            store,
            wrapper,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> &CredentialStats {
        &self.stats
    }

    pub async fn get(
        &self,
        access_key_id: Uuid,
    ) -> Result<Arc<BedrockCredential>, CredentialError> {
        self.cache
            .try_get_with(access_key_id, self.load(access_key_id))
            .await
            .map_err(|e| *e)
    }

    /// Forgets a key, e.g. after it was replaced.
    pub async fn invalidate(&self, access_key_id: Uuid) {
        self.cache.invalidate(&access_key_id).await;
    }

    /// Forgets every key (the change listener reconnected and may have missed changes).
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }

    async fn load(&self, access_key_id: Uuid) -> Result<Arc<BedrockCredential>, CredentialError> {
        let row = match self.store.bedrock_key(access_key_id).await {
            Ok(Some(row)) => row,
            Ok(None) => return Err(CredentialError::Missing),
            Err(err) => {
                self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%access_key_id, error = %err, "cannot read the Bedrock key; no failover for this request");
                return Err(CredentialError::Unavailable);
            }
        };
        if self.wrapper.kind() == crate::crypto::WrapperKind::Unconfigured {
            self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%access_key_id, "no key wrapper configured; no failover");
            return Err(CredentialError::Unavailable);
        }
        if row.wrapper != self.wrapper.kind().as_str() {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%access_key_id, stored = %row.wrapper, configured = self.wrapper.kind().as_str(),
                "the Bedrock key was wrapped by another wrapper; set it again");
            return Err(CredentialError::Rejected);
        }
        self.stats.unwraps.fetch_add(1, Ordering::Relaxed);
        match self
            .wrapper
            .unwrap(&row.ciphertext, &WrapContext::new(access_key_id))
            .await
        {
            Ok(api_key) => Ok(Arc::new(BedrockCredential {
                api_key,
                region: row.region,
            })),
            Err(WrapError::Rejected(why)) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%access_key_id, reason = %why,
                    "integrity alert: the stored Bedrock key does not open for this access key");
                Err(CredentialError::Rejected)
            }
            Err(err) => {
                self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%access_key_id, error = %err, "cannot unwrap the Bedrock key; no failover for this request");
                Err(CredentialError::Unavailable)
            }
        }
    }
}
