//! Repository and authenticator behaviour, run unchanged on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

use ccp_testkit::on_both_engines;
use ccp_testkit::stores as common;

use ccp_core::auth::{AuthCacheSettings, AuthOutcome, KeyAuthenticator};
use ccp_core::domain::{KeyStatus, UserStatus};
use ccp_core::keys::{AccessKey, KeyDigest, Pepper};
use ccp_core::secret::SecretString;
use ccp_core::store::{
    AuditQuery, NewAccessKey, NewAdmin, NewAuditEntry, NewBedrockKey, NewModelMapping, NewUser,
    Store, StoreError, UserQuery,
};
use std::time::Duration;

on_both_engines!(
    users_round_trip,
    duplicate_email_is_a_conflict_whatever_its_case,
    access_key_lifecycle,
    keys_for_missing_users_are_refused,
    duplicate_digest_is_a_conflict,
    sql_looking_input_is_only_data,
    audit_entries_are_listed_newest_first,
    migrations_run_twice_without_harm,
    authenticator_grants_denies_and_caches,
    revocation_reaches_the_gateway_within_the_ttl,
    disabled_users_and_expired_keys_are_denied,
    unreachable_database_means_unavailable_not_denied,
    bedrock_keys_are_set_replaced_and_joined_into_grants,
    model_mappings_upsert_list_and_delete,
    admins_are_unique_by_username_and_revocable,
    concurrent_bootstraps_create_one_admin,
    first_circuit_failures_at_once_are_all_counted,
);

fn pepper() -> Pepper {
    Pepper::new(&SecretString::from("test-pepper-test-pepper-test-pepper")).expect("pepper")
}

async fn user(store: &Store, email: &str) -> ccp_core::domain::User {
    store
        .create_user(NewUser {
            name: "Test User".into(),
            email: email.into(),
        })
        .await
        .expect("create user")
}

async fn issue(
    store: &Store,
    user_id: uuid::Uuid,
    expires_in: Option<chrono::Duration>,
) -> (AccessKey, uuid::Uuid) {
    let key = AccessKey::generate();
    let record = store
        .insert_access_key(NewAccessKey {
            user_id,
            name: Some("laptop".into()),
            display_prefix: key.masked(),
            digest: pepper().digest(&key),
            expires_at: expires_in.map(|d| chrono::Utc::now() + d),
        })
        .await
        .expect("insert key");
    (key, record.id)
}

async fn users_round_trip(store: &Store) {
    let alice = user(store, "  Alice@Example.COM ").await;
    assert_eq!(alice.email, "alice@example.com");
    assert_eq!(alice.status, UserStatus::Active);
    assert_eq!(store.get_user(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(
        store.find_user_by_email("ALICE@example.com").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.find_user_by_email("bob@example.com").await.unwrap(),
        None
    );
    let bob = user(store, "bob@example.com").await;
    let (listed, total) = store.list_users(&UserQuery::default()).await.unwrap();
    assert_eq!(
        listed.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![alice.id, bob.id]
    );
    assert_eq!(total, 2);
    let page = UserQuery {
        offset: 1,
        ..UserQuery::default()
    };
    let (second, total) = store.list_users(&page).await.unwrap();
    assert_eq!((second.len(), total), (1, 2));
    let disabled = store
        .set_user_status(alice.id, UserStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(disabled.status, UserStatus::Disabled);
    assert!(matches!(
        store
            .set_user_status(uuid::Uuid::now_v7(), UserStatus::Active)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn duplicate_email_is_a_conflict_whatever_its_case(store: &Store) {
    user(store, "carol@example.com").await;
    let err = store
        .create_user(NewUser {
            name: "Other".into(),
            email: "CAROL@example.com".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

async fn access_key_lifecycle(store: &Store) {
    let u = user(store, "dave@example.com").await;
    let (key, id) = issue(store, u.id, None).await;
    let digest = pepper().digest(&key);

    let grant = store
        .find_grant_by_digest(&digest)
        .await
        .unwrap()
        .expect("grant");
    assert_eq!(
        (grant.key_id, grant.user_id, grant.key_status),
        (id, u.id, KeyStatus::Active)
    );
    assert!(grant.is_usable(chrono::Utc::now()));
    assert_eq!(
        store
            .find_grant_by_digest(&KeyDigest([7; 32]))
            .await
            .unwrap(),
        None
    );

    let listed = store.list_access_keys(Some(u.id)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].display_prefix, key.masked());
    assert!(!listed[0].display_prefix.contains(&key.expose()[8..40]));

    let at = chrono::Utc::now();
    store.touch_access_key(id, at).await.unwrap();
    let touched = store.get_access_key(id).await.unwrap().unwrap();
    assert!(touched.last_used_at.is_some());

    let revoked = store.revoke_access_key(id).await.unwrap();
    assert_eq!(revoked.status, KeyStatus::Revoked);
    let first_revocation = revoked.revoked_at.expect("revoked_at");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = store.revoke_access_key(id).await.unwrap();
    assert_eq!(
        again.revoked_at,
        Some(first_revocation),
        "the first revocation time is kept"
    );
    let grant = store.find_grant_by_digest(&digest).await.unwrap().unwrap();
    assert_eq!(grant.key_status, KeyStatus::Revoked);
    assert!(!grant.is_usable(chrono::Utc::now()));
    assert!(matches!(
        store.revoke_access_key(uuid::Uuid::now_v7()).await,
        Err(StoreError::NotFound(_))
    ));

    let other = user(store, "erin@example.com").await;
    issue(store, other.id, None).await;
    assert_eq!(store.list_access_keys(None).await.unwrap().len(), 2);
    assert_eq!(
        store.list_access_keys(Some(other.id)).await.unwrap().len(),
        1
    );
}

async fn keys_for_missing_users_are_refused(store: &Store) {
    let key = AccessKey::generate();
    let err = store
        .insert_access_key(NewAccessKey {
            user_id: uuid::Uuid::now_v7(),
            name: None,
            display_prefix: key.masked(),
            digest: pepper().digest(&key),
            expires_at: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
}

async fn duplicate_digest_is_a_conflict(store: &Store) {
    let u = user(store, "frank@example.com").await;
    let key = AccessKey::generate();
    let new = NewAccessKey {
        user_id: u.id,
        name: None,
        display_prefix: key.masked(),
        digest: pepper().digest(&key),
        expires_at: None,
    };
    store.insert_access_key(new.clone()).await.unwrap();
    assert!(matches!(
        store.insert_access_key(new).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn sql_looking_input_is_only_data(store: &Store) {
    let nasty = "x' OR '1'='1'; DROP TABLE users; --@example.com";
    let u = store
        .create_user(NewUser {
            name: "Robert'); DROP TABLE users;--".into(),
            email: nasty.into(),
        })
        .await
        .unwrap();
    assert_eq!(u.name, "Robert'); DROP TABLE users;--");
    assert_eq!(store.find_user_by_email("' OR '1'='1").await.unwrap(), None);
    assert_eq!(
        store.find_user_by_email(nasty).await.unwrap().map(|f| f.id),
        Some(u.id)
    );
    assert_eq!(store.list_users(&UserQuery::default()).await.unwrap().1, 1);
    // Wildcards match only themselves; quotes are data. (The user's name and email hold
    // "' OR '1'='1" and "DROP TABLE", so those match exactly it.)
    for (search, expected) in [
        ("%", 0),
        ("_", 0),
        ("\\", 0),
        ("' OR 1=1 --", 0),
        ("' OR '1'='1", 1),
        ("drop TABLE", 1),
    ] {
        let query = UserQuery {
            search: Some(search.into()),
            ..UserQuery::default()
        };
        let (found, total) = store.list_users(&query).await.unwrap();
        assert_eq!(
            (found.len() as i64, total),
            (expected, expected),
            "{search}"
        );
    }
}

async fn audit_entries_are_listed_newest_first(store: &Store) {
    for action in ["user.create", "access_key.issue"] {
        store
            .append_audit(NewAuditEntry {
                actor: "cli".into(),
                action,
                target_type: Some("user"),
                target_id: Some("t1".into()),
                detail: Some(serde_json::json!({"n": 1})),
            })
            .await
            .unwrap();
    }
    let (entries, total) = store.list_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(
        entries
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        vec!["access_key.issue", "user.create"]
    );
    assert_eq!(entries[0].detail.as_deref(), Some(r#"{"n":1}"#));
    let one = AuditQuery {
        limit: 1,
        ..AuditQuery::default()
    };
    assert_eq!(store.list_audit(&one).await.unwrap().0.len(), 1);
    let issues = AuditQuery {
        action: Some("access_key.issue".into()),
        ..AuditQuery::default()
    };
    let (only, total) = store.list_audit(&issues).await.unwrap();
    assert_eq!((only.len(), total), (1, 1));
    let nothing = AuditQuery {
        actor: Some("' OR '1'='1".into()),
        ..AuditQuery::default()
    };
    assert_eq!(store.list_audit(&nothing).await.unwrap().1, 0);
}

async fn migrations_run_twice_without_harm(store: &Store) {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

fn authenticator(store: &Store, ttl: Duration) -> KeyAuthenticator {
    KeyAuthenticator::new(
        store.clone(),
        pepper(),
        &AuthCacheSettings {
            ttl,
            negative_ttl: Duration::from_secs(30),
            capacity: 1000,
        },
    )
}

async fn authenticator_grants_denies_and_caches(store: &Store) {
    let u = user(store, "gina@example.com").await;
    let (key, id) = issue(store, u.id, None).await;
    let auth = authenticator(store, Duration::from_secs(30));
    match auth.authenticate(key.expose()).await {
        AuthOutcome::Granted(grant) => assert_eq!(grant.key_id, id),
        other => panic!("expected a grant, got {other:?}"),
    }
    assert!(matches!(
        auth.authenticate("ccp_nope").await,
        AuthOutcome::Denied
    ));
    let unknown = AccessKey::generate();
    assert!(matches!(
        auth.authenticate(unknown.expose()).await,
        AuthOutcome::Denied
    ));
    // Cached both ways: with the database gone, the known key still works and the
    // unknown one is still denied (not "unavailable").
    store.close().await;
    assert!(matches!(
        auth.authenticate(key.expose()).await,
        AuthOutcome::Granted(_)
    ));
    assert!(matches!(
        auth.authenticate(unknown.expose()).await,
        AuthOutcome::Denied
    ));
}

async fn revocation_reaches_the_gateway_within_the_ttl(store: &Store) {
    let u = user(store, "hank@example.com").await;
    let (key, id) = issue(store, u.id, None).await;
    let ttl = Duration::from_millis(400);
    let auth = authenticator(store, ttl);
    // The first call caches the grant; it outlives the revocation until the TTL ends (not
    // before), and then the key is denied.
    let cached_at = std::time::Instant::now();
    assert!(matches!(
        auth.authenticate(key.expose()).await,
        AuthOutcome::Granted(_)
    ));
    store.revoke_access_key(id).await.unwrap();
    denied_eventually(&auth, &key).await;
    assert!(
        cached_at.elapsed() >= ttl,
        "denied after {:?}, before the cached grant's TTL",
        cached_at.elapsed()
    );
}

/// Polls `key` until it is denied (every 20 ms, for at most 60 s: a deadline for a loaded
/// machine, not a speed check).
async fn denied_eventually(auth: &KeyAuthenticator, key: &AccessKey) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match auth.authenticate(key.expose()).await {
            AuthOutcome::Denied => return,
            AuthOutcome::Granted(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "revoked key still granted after 60 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            AuthOutcome::Unavailable => panic!("database unavailable"),
        }
    }
}

async fn disabled_users_and_expired_keys_are_denied(store: &Store) {
    let u = user(store, "ivy@example.com").await;
    let (key, _) = issue(store, u.id, None).await;
    let (expired, _) = issue(store, u.id, Some(chrono::Duration::seconds(-1))).await;
    let auth = authenticator(store, Duration::from_millis(1));
    assert!(matches!(
        auth.authenticate(expired.expose()).await,
        AuthOutcome::Denied
    ));
    assert!(matches!(
        auth.authenticate(key.expose()).await,
        AuthOutcome::Granted(_)
    ));
    store
        .set_user_status(u.id, UserStatus::Disabled)
        .await
        .unwrap();
    denied_eventually(&auth, &key).await;
}

async fn unreachable_database_means_unavailable_not_denied(store: &Store) {
    let u = user(store, "jack@example.com").await;
    let (key, _) = issue(store, u.id, None).await;
    let auth = authenticator(store, Duration::from_secs(30));
    store.close().await;
    assert!(matches!(
        auth.authenticate(key.expose()).await,
        AuthOutcome::Unavailable
    ));
}

async fn bedrock_keys_are_set_replaced_and_joined_into_grants(store: &Store) {
    let u = user(store, "bedrock@example.com").await;
    let (key, key_id) = issue(store, u.id, None).await;
    let digest = pepper().digest(&key);
    assert_eq!(
        store
            .find_grant_by_digest(&digest)
            .await
            .unwrap()
            .unwrap()
            .bedrock_region,
        None
    );
    let new = |region: &str, ciphertext: &[u8]| NewBedrockKey {
        access_key_id: key_id,
        ciphertext: ciphertext.to_vec(),
        wrapper: "local",
        region: region.into(),
        last4: "wxyz".into(),
    };
    let first = store
        .set_bedrock_key(new("us-east-1", b"\x01one"))
        .await
        .unwrap();
    assert_eq!(first.region, "us-east-1");
    let second = store
        .set_bedrock_key(new("eu-west-1", b"\x01two"))
        .await
        .unwrap();
    assert_eq!(second.ciphertext, b"\x01two", "replaced, not duplicated");
    assert_eq!(second.created_at, first.created_at);
    assert_eq!(
        store
            .find_grant_by_digest(&digest)
            .await
            .unwrap()
            .unwrap()
            .bedrock_region
            .as_deref(),
        Some("eu-west-1")
    );
    let missing = NewBedrockKey {
        access_key_id: uuid::Uuid::now_v7(),
        ..new("us-east-1", b"x")
    };
    assert!(matches!(
        store.set_bedrock_key(missing).await,
        Err(StoreError::NotFound("access key"))
    ));
    assert!(store.delete_bedrock_key(key_id).await.unwrap());
    assert!(!store.delete_bedrock_key(key_id).await.unwrap());
    assert!(store.bedrock_key(key_id).await.unwrap().is_none());
}

async fn model_mappings_upsert_list_and_delete(store: &Store) {
    let row = |name: &str, id: &str, enabled| NewModelMapping {
        anthropic_model: name.into(),
        bedrock_model_id: id.into(),
        max_output_tokens: Some(64_000),
        enabled,
    };
    store
        .upsert_model_mapping(row("claude-b", "global.b", true))
        .await
        .unwrap();
    let a = store
        .upsert_model_mapping(row("claude-a", "us.a", true))
        .await
        .unwrap();
    let a2 = store
        .upsert_model_mapping(row("claude-a", "eu.a", false))
        .await
        .unwrap();
    assert_eq!(a2.id, a.id, "one row per Anthropic model");
    assert_eq!(a2.bedrock_model_id, "eu.a");
    assert!(!a2.enabled);
    let names: Vec<String> = store
        .list_model_mappings()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.anthropic_model)
        .collect();
    assert_eq!(names, ["claude-a", "claude-b"]);
    assert!(store.delete_model_mapping("claude-a").await.unwrap());
    assert!(!store.delete_model_mapping("claude-a").await.unwrap());
    assert!(store.model_mapping("claude-a").await.unwrap().is_none());
}

async fn admins_are_unique_by_username_and_revocable(store: &Store) {
    let admin = store
        .create_admin(NewAdmin {
            username: " Root ".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        })
        .await
        .unwrap();
    assert_eq!(admin.username, "root");
    assert_eq!(admin.token_version, 0);
    let again = store
        .create_admin(NewAdmin {
            username: "ROOT".into(),
            password_hash: "x".into(),
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let login = store.admin_login("rOoT").await.unwrap().unwrap();
    assert_eq!(login.admin.id, admin.id);
    assert!(login.password_hash.starts_with("$argon2id$"));
    assert!(store.admin_login("nobody").await.unwrap().is_none());
    // SQL-looking usernames are data.
    assert!(store.admin_login("' OR '1'='1").await.unwrap().is_none());

    assert_eq!(store.bump_admin_token_version(admin.id).await.unwrap(), 1);
    store
        .set_admin_password(admin.id, "$argon2id$new")
        .await
        .unwrap();
    let after = store.admin_login("root").await.unwrap().unwrap();
    assert_eq!(
        after.admin.token_version, 2,
        "a password change revokes sessions"
    );
    assert_eq!(after.password_hash, "$argon2id$new");
    store.record_admin_login(admin.id).await.unwrap();
    assert!(
        store
            .get_admin(admin.id)
            .await
            .unwrap()
            .unwrap()
            .last_login_at
            .is_some()
    );
    assert!(matches!(
        store.bump_admin_token_version(uuid::Uuid::now_v7()).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn concurrent_bootstraps_create_one_admin(store: &Store) {
    // Open several pooled connections first, so the attempts really overlap.
    let warm: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.ping().await })
        })
        .collect();
    for w in warm {
        w.await.unwrap().unwrap();
    }
    let attempts = at_once(store, 8, |store, i| async move {
        store
            .create_first_admin(NewAdmin {
                username: format!("boot{i}"),
                password_hash: "h".into(),
            })
            .await
            .unwrap()
    })
    .await;
    let created = attempts.iter().filter(|a| a.is_some()).count();
    assert_eq!(created, 1);
    assert_eq!(store.count_admins().await.unwrap(), 1);
}

/// Gateways that see a key's first Plan failures at the same moment each count theirs: no
/// insert of the key's first row overwrites another's.
async fn first_circuit_failures_at_once_are_all_counted(store: &Store) {
    let settings = ccp_core::routing::circuit::BreakerSettings {
        threshold: 100,
        ..Default::default()
    };
    for round in 0..5 {
        let key = uuid::Uuid::now_v7();
        at_once(store, 6, |store, _| async move {
            store
                .record_circuit_failure(key, chrono::Utc::now(), &settings)
                .await
                .unwrap()
        })
        .await;
        let record = store.circuit(key).await.unwrap().unwrap();
        assert_eq!(record.failures_ms.len(), 6, "round {round}: {record:?}");
        assert_eq!(record.writes, 6, "round {round}");
    }
}

/// Runs `n` attempts (each given a clone of the store and its index) released at the same
/// moment; returns their results in order.
async fn at_once<T, F, Fut>(store: &Store, n: usize, attempt: F) -> Vec<T>
where
    F: Fn(Store, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let running: Vec<_> = (0..n)
        .map(|i| {
            let start = std::sync::Arc::clone(&start);
            let attempt = attempt(store.clone(), i);
            tokio::spawn(async move {
                start.wait().await;
                attempt.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for r in running {
        results.push(r.await.unwrap());
    }
    results
}

/// The PostgreSQL helper itself: a test that fails still drops its schema.
mod cleanup {
    mod postgres {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_failed_test_leaves_no_schema_behind() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let failing = tokio::spawn(async move {
                let t = crate::common::postgres().await;
                tx.send(t.pg_schema().unwrap().to_owned()).unwrap();
                panic!("a failing PostgreSQL test");
            });
            let schema = rx.await.unwrap();
            assert!(failing.await.unwrap_err().is_panic());
            let options: sqlx::postgres::PgConnectOptions =
                crate::common::pg_url().parse().unwrap();
            let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
            let left: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
            )
            .bind(&schema)
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(left, 0, "schema {schema} left behind");
        }
    }
}
