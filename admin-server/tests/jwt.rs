//! Forged and stale session tokens against the live API (salvo's test client, SQLite and
//! PostgreSQL): each must get the same 401 on a protected route. A control token forged the
//! same way with the right key and claims gets 200, so the table tests the checks and not the
//! forging.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ccp_admin_server::session::{AUDIENCE, ISSUER};
use common::{Api, PASSWORD, SESSION_SECRET};
use serde_json::{Value, json};

/// A token signed with HMAC-SHA256 under `secret` over hand-made header and claims.
fn forge(header: &Value, claims: &Value, secret: &[u8]) -> String {
    use hmac::Mac;
    let head = B64.encode(header.to_string());
    let body = B64.encode(claims.to_string());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{head}.{body}").as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    format!("{head}.{body}.{sig}")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn status_with(api: &Api, token: &str) -> u16 {
    let (status, body) = api.call("GET", "/admin/users", Some(token), None).await;
    if status == 401 {
        assert_eq!(body["error"]["type"], "authentication_error", "{body}");
        assert_eq!(
            body["error"]["message"], "invalid or expired session",
            "{body}"
        );
    }
    status
}

async fn forged_and_stale_tokens_are_refused(api: &Api) {
    let admin = api.store.admin_login("ops").await.unwrap().unwrap().admin;
    let claims = |exp_offset: i64| {
        json!({
            "sub": admin.id, "ver": admin.token_version, "iat": now(), "exp": now() + exp_offset,
            "iss": ISSUER, "aud": AUDIENCE, "jti": uuid::Uuid::now_v7(),
        })
    };
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let key = SESSION_SECRET.as_bytes();

    let control = forge(&hs256, &claims(600), key);
    assert_eq!(
        status_with(api, &control).await,
        200,
        "the control token must work"
    );

    let mut no_exp = claims(600);
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut wrong_aud = claims(600);
    wrong_aud["aud"] = "someone-else".into();
    let mut wrong_iss = claims(600);
    wrong_iss["iss"] = "someone-else".into();
    let mut old_version = claims(600);
    old_version["ver"] = json!(admin.token_version - 1);
    let mut other_admin = claims(600);
    other_admin["sub"] = json!(uuid::Uuid::now_v7());
    let tampered = {
        let mut parts: Vec<String> = control.split('.').map(str::to_owned).collect();
        let mut payload: Value = serde_json::from_slice(&B64.decode(&parts[1]).unwrap()).unwrap();
        payload["exp"] = json!(now() + 86_400 * 365);
        parts[1] = B64.encode(payload.to_string());
        parts.join(".")
    };
    let none_alg = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(claims(600).to_string())
    );
    let cases = [
        ("alg none", none_alg),
        (
            "HS512 header",
            forge(&json!({"alg": "HS512"}), &claims(600), key),
        ),
        (
            "wrong key",
            forge(&hs256, &claims(600), b"another-secret-another-secret-xx"),
        ),
        ("expired", forge(&hs256, &claims(-60), key)),
        ("missing exp", forge(&hs256, &no_exp, key)),
        ("lifetime over an hour", forge(&hs256, &claims(7_200), key)),
        ("wrong audience", forge(&hs256, &wrong_aud, key)),
        ("wrong issuer", forge(&hs256, &wrong_iss, key)),
        ("revoked version", forge(&hs256, &old_version, key)),
        ("unknown admin", forge(&hs256, &other_admin, key)),
        ("tampered payload", tampered),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (name, token) in cases {
        assert_eq!(status_with(api, &token).await, 401, "{name}");
    }

    // After logout, the session (and the control token, same version) is dead.
    let session = api.token("ops").await;
    assert_eq!(status_with(api, &session).await, 200);
    assert_eq!(
        api.call("POST", "/admin/auth/logout", Some(&session), None)
            .await
            .0,
        204
    );
    assert_eq!(status_with(api, &session).await, 401, "token after logout");
    assert_eq!(
        status_with(api, &control).await,
        401,
        "older token after logout"
    );

    // A password change ends sessions too.
    let dev = api.token("dev").await;
    let hash = ccp_core::password::hash(&PASSWORD.into()).unwrap();
    api.store
        .set_admin_password(
            api.store
                .admin_login("dev")
                .await
                .unwrap()
                .unwrap()
                .admin
                .id,
            &hash,
        )
        .await
        .unwrap();
    assert_eq!(
        status_with(api, &dev).await,
        401,
        "token after password change"
    );
}

api_on_both_engines!(forged_and_stale_tokens_are_refused);
