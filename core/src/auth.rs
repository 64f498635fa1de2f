//! Access-key authentication with two bounded caches in front of the database.
//!
//! - Positive entries (a key's grant) live for `key_cache_ttl` (default 30 s), which bounds
//!   how long a revoked key, an expired key or a deactivated user keeps working.
//! - Negative entries (digests with no key) live for `key_negative_cache_ttl`, so a flood of
//!   well-formed random keys does not become a flood of queries.
//! - Concurrent misses for one digest make one query (`try_get_with`).
//! - Malformed keys (length, prefix, alphabet, checksum) are refused before any lookup.
//!
//! Caches are keyed by digest, never by the raw key.

use crate::domain::KeyGrant;
use crate::keys::{AccessKey, DigestHashing, KeyDigest, Pepper};
use crate::store::{Store, StoreError};
use moka::future::Cache;
use std::sync::Arc;
use std::time::Duration;

/// What an authentication attempt comes to.
#[derive(Debug, Clone)]
pub enum AuthOutcome {
    /// The key is active, unexpired, and its user is active.
    Granted(Arc<KeyGrant>),
    /// Unknown, malformed, revoked, expired, or its user is disabled: all answered alike.
    Denied,
    /// The key is not cached and the database cannot be asked: not the client's fault.
    Unavailable,
}

#[derive(Debug, Clone)]
pub struct AuthCacheSettings {
    pub ttl: Duration,
    pub negative_ttl: Duration,
    pub capacity: u64,
}

impl Default for AuthCacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(30),
            capacity: 100_000,
        }
    }
}

#[derive(Debug, Clone)]
enum LoadError {
    NotFound,
    Store,
}

#[derive(Clone)]
pub struct KeyAuthenticator {
    store: Store,
    pepper: Pepper,
    granted: Cache<KeyDigest, Arc<KeyGrant>, DigestHashing>,
    unknown: Cache<KeyDigest, (), DigestHashing>,
}

impl std::fmt::Debug for KeyAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAuthenticator")
            .field("cached", &self.granted.entry_count())
            .finish_non_exhaustive()
    }
}

impl KeyAuthenticator {
    pub fn new(store: Store, pepper: Pepper, settings: &AuthCacheSettings) -> Self {
        Self {
            store,
            pepper,
            granted: Cache::builder()
                .max_capacity(settings.capacity)
                .time_to_live(settings.ttl)
                .support_invalidation_closures()
                .build_with_hasher(DigestHashing::default()),
            unknown: Cache::builder()
                .max_capacity(settings.capacity)
                .time_to_live(settings.negative_ttl)
                .build_with_hasher(DigestHashing::default()),
        }
    }

    pub async fn authenticate(&self, candidate: &str) -> AuthOutcome {
        let Ok(key) = AccessKey::parse(candidate) else {
            return AuthOutcome::Denied;
        };
        let digest = self.pepper.digest(&key);
        if self.unknown.contains_key(&digest) {
            return AuthOutcome::Denied;
        }
        let loaded = self.granted.try_get_with(digest, self.load(digest)).await;
        match loaded {
            Ok(grant) if grant.is_usable(chrono::Utc::now()) => AuthOutcome::Granted(grant),
            Ok(_) => AuthOutcome::Denied,
            Err(err) => match *err {
                LoadError::NotFound => {
                    self.unknown.insert(digest, ()).await;
                    AuthOutcome::Denied
                }
                LoadError::Store => AuthOutcome::Unavailable,
            },
        }
    }

    /// Forgets the cached grant of one access key (revoked, rotated, Bedrock key changed).
    pub fn forget_key(&self, key_id: uuid::Uuid) {
        self.forget_if(move |g| g.key_id == key_id);
    }

    /// Forgets the cached grants of every key of one user (status, routing or budget changed).
    pub fn forget_user(&self, user_id: uuid::Uuid) {
        self.forget_if(move |g| g.user_id == user_id);
    }

    /// Forgets everything, unknown keys included.
    pub fn forget_all(&self) {
        self.granted.invalidate_all();
        self.unknown.invalidate_all();
    }

    fn forget_if(&self, matches: impl Fn(&KeyGrant) -> bool + Send + Sync + 'static) {
        // Lookups never return an entry the predicate matched, from this call on.
        if let Err(err) = self
            .granted
            .invalidate_entries_if(move |_, grant| matches(grant))
        {
            tracing::warn!(error = %err, "cannot forget cached grants selectively; forgetting all");
            self.granted.invalidate_all();
        }
    }

    async fn load(&self, digest: KeyDigest) -> Result<Arc<KeyGrant>, LoadError> {
        match self.store.find_grant_by_digest(&digest).await {
            Ok(Some(grant)) => {
                if grant.is_usable(chrono::Utc::now()) {
                    // One write per cache lifetime, not per request.
                    let store = self.store.clone();
                    let key_id = grant.key_id;
                    tokio::spawn(async move {
                        if let Err(err) = store.touch_access_key(key_id, chrono::Utc::now()).await {
                            tracing::debug!(%key_id, error = %err, "could not record key use");
                        }
                    });
                }
                Ok(Arc::new(grant))
            }
            Ok(None) => Err(LoadError::NotFound),
            Err(err) => {
                log_store_error(&err);
                Err(LoadError::Store)
            }
        }
    }
}

fn log_store_error(err: &StoreError) {
    tracing::warn!(error = %err, "access key lookup failed; answering 503");
}
