#![allow(clippy::unwrap_used)]
//! The AWS KMS key wrapper through the real aws-sdk-kms client against moto's KMS server (a
//! local AWS API emulator from PyPI), and the decrypted-key cache's behaviour under misses
//! and wrapper outages.

use ccp_testkit::stores as common;

use async_trait::async_trait;
use ccp_core::crypto::{KeyWrapper, KmsWrapper, LocalWrapper, WrapContext, WrapError, WrapperKind};
use ccp_core::routing::credentials::{CredentialCache, CredentialError};
use ccp_core::secret::SecretString;
use ccp_core::store::{NewAccessKey, NewBedrockKey, NewUser, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use uuid::Uuid;

fn kms_client(url: &str) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .endpoint_url(url)
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

#[tokio::test]
async fn kms_wrapper_round_trips_and_enforces_the_encryption_context() {
    let Some(moto) = ccp_testkit::moto::start("the KMS wrapper test") else {
        return;
    };
    let client = kms_client(&moto.url);
    let key = client
        .create_key()
        .description("ccp test")
        .send()
        .await
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let wrapper = KmsWrapper::new(client.clone(), key_id);
    assert_eq!(wrapper.kind(), WrapperKind::Kms);

    let a = WrapContext::new(Uuid::now_v7());
    let b = WrapContext::new(Uuid::now_v7());
    let secret = SecretString::from("ABSK-CANARYBR-kms-round-trip");
    let sealed = wrapper.wrap(&secret, &a).await.unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("CANARYBR"));
    assert_eq!(
        wrapper.unwrap(&sealed, &a).await.unwrap().expose(),
        secret.expose()
    );
    // Copied to another access key's row: KMS refuses it.
    match wrapper.unwrap(&sealed, &b).await {
        Err(WrapError::Rejected(code)) => assert_eq!(code, "InvalidCiphertextException"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    // KMS gone: a transient failure, not a rejection.
    drop(moto);
    assert!(matches!(
        wrapper.unwrap(&sealed, &a).await,
        Err(WrapError::Unavailable(_))
    ));
}

/// Counts unwraps, can be switched off, and is slow enough for misses to pile up.
#[derive(Debug)]
struct Flaky {
    inner: LocalWrapper,
    calls: AtomicUsize,
    down: AtomicBool,
}

#[async_trait]
impl KeyWrapper for Flaky {
    fn kind(&self) -> WrapperKind {
        WrapperKind::Local
    }
    async fn wrap(&self, p: &SecretString, c: &WrapContext) -> Result<Vec<u8>, WrapError> {
        self.inner.wrap(p, c).await
    }
    async fn unwrap(&self, c: &[u8], ctx: &WrapContext) -> Result<SecretString, WrapError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        if self.down.load(Ordering::SeqCst) {
            return Err(WrapError::Unavailable("down".into()));
        }
        self.inner.unwrap(c, ctx).await
    }
}

async fn key_with_bedrock(store: &Store, wrapper: &dyn KeyWrapper, n: u8) -> Uuid {
    let user = store
        .create_user(NewUser {
            name: "K".into(),
            email: format!("k{n}@example.com"),
        })
        .await
        .unwrap();
    let key = store
        .insert_access_key(NewAccessKey {
            user_id: user.id,
            name: None,
            display_prefix: format!("ccp_{n}…"),
            digest: ccp_core::keys::KeyDigest([n; 32]),
            expires_at: None,
        })
        .await
        .unwrap();
    let ciphertext = wrapper
        .wrap(
            &SecretString::from(format!("bedrock-key-{n}")),
            &WrapContext::new(key.id),
        )
        .await
        .unwrap();
    store
        .set_bedrock_key(NewBedrockKey {
            access_key_id: key.id,
            ciphertext,
            wrapper: "local",
            region: "us-east-1".into(),
            last4: "ey-1".into(),
        })
        .await
        .unwrap();
    key.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_misses_make_one_unwrap_and_outages_spare_cached_keys() {
    let test_store = common::sqlite().await;
    let store = test_store.store.clone();
    let flaky = Arc::new(Flaky {
        inner: LocalWrapper::from_key(&[9; 32]),
        calls: AtomicUsize::new(0),
        down: AtomicBool::new(false),
    });
    let warm = key_with_bedrock(&store, flaky.as_ref(), 1).await;
    let cold = key_with_bedrock(&store, flaky.as_ref(), 2).await;
    let cache = CredentialCache::new(store.clone(), flaky.clone(), Duration::from_secs(900));

    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                cache.get(warm).await.map(|c| c.api_key.expose().clone())
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "bedrock-key-1");
    }
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 1, "single flight");

    flaky.down.store(true, Ordering::SeqCst);
    assert_eq!(
        cache.get(warm).await.unwrap().region,
        "us-east-1",
        "cached keys keep working"
    );
    assert_eq!(
        cache.get(cold).await.unwrap_err(),
        CredentialError::Unavailable
    );
    assert_eq!(cache.stats().unavailable.load(Ordering::SeqCst), 1);
    // Failures are not cached: once the wrapper is back, the key opens.
    flaky.down.store(false, Ordering::SeqCst);
    assert_eq!(
        cache.get(cold).await.unwrap().api_key.expose(),
        "bedrock-key-2"
    );
    assert_eq!(
        cache.get(Uuid::now_v7()).await.unwrap_err(),
        CredentialError::Missing
    );
}
