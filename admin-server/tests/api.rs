//! The admin REST API in-process through salvo's test client, on real SQLite and real
//! PostgreSQL: every endpoint's happy path and its 400/401/403/404/409/422 answers, the error
//! shape, audit rows, CORS, and SQL-looking input in every filter and name field.

#![allow(clippy::unwrap_used)]

mod common;
use ccp_testkit::records;

use common::{Answer, Api, BASE, BOOTSTRAP_SECRET, CONSOLE_ORIGIN, PASSWORD};
use salvo::test::TestClient;
use serde_json::{Value, json};

const NO_ID: &str = "0190c0de-0000-7000-8000-000000000000";

/// Asserts the status and the error shape (`{"error": {"type", "message"}}`) of an answer.
fn assert_error(answer: &Answer, status: u16, kind: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["type"], kind, "{}", answer.1);
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

async fn create_user(api: &Api, token: &str, name: &str, email: &str) -> Value {
    let (status, body) = api
        .post(
            "/admin/users",
            token,
            &json!({"name": name, "email": email}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn issue_key(api: &Api, token: &str, user_id: &str) -> Value {
    let (status, body) = api
        .post(
            &format!("/admin/users/{user_id}/access-keys"),
            token,
            &json!({"name": "laptop"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn audit_actions(api: &Api, token: &str) -> Vec<(String, String)> {
    let (status, body) = api.get("/admin/audit?limit=500", token).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn users_are_created_listed_shown_and_updated(api: &Api) {
    let token = api.token("ops").await;
    let ada = create_user(api, &token, "Ada Lovelace", "Ada@Example.com").await;
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["status"], "active");
    let bob = create_user(api, &token, "Bob", "bob@example.com").await;
    let id = ada["id"].as_str().unwrap();

    // Duplicate email, bad input, malformed JSON, wrong content type.
    let dup = api
        .post(
            "/admin/users",
            &token,
            &json!({"name": "A", "email": "ADA@example.com"}),
        )
        .await;
    assert_error(&dup, 409, "conflict_error");
    for bad in [
        json!({"name": "", "email": "x@example.com"}),
        json!({"name": "X", "email": "not-an-email"}),
        json!({"name": "X\u{7}", "email": "x@example.com"}),
    ] {
        assert_error(
            &api.post("/admin/users", &token, &bad).await,
            422,
            "invalid_request_error",
        );
    }
    let missing = api
        .post("/admin/users", &token, &json!({"name": "X"}))
        .await;
    assert_error(&missing, 400, "invalid_request_error");
    for raw in ["{\"name\": ", "[\"Eve\", \"eve@example.com\"]", "null"] {
        let req = TestClient::post(format!("{BASE}/admin/users"))
            .add_header("authorization", format!("Bearer {token}"), true)
            .raw_json(raw);
        assert_error(&api.send(req).await, 400, "invalid_request_error");
    }

    // List, search, filter, page.
    let (status, page) = api.get("/admin/users", &token).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["id"], ada["id"]);
    let (_, found) = api.get("/admin/users?search=LOVE", &token).await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["id"], ada["id"]);
    let (_, second) = api.get("/admin/users?limit=1&offset=1", &token).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0]["id"], bob["id"]);
    assert_error(
        &api.get("/admin/users?limit=0", &token).await,
        422,
        "invalid_request_error",
    );
    assert_error(
        &api.get("/admin/users?limit=abc", &token).await,
        400,
        "invalid_request_error",
    );
    assert_error(
        &api.get("/admin/users?status=gone", &token).await,
        400,
        "invalid_request_error",
    );

    // Show: the user with masked keys.
    let issued = issue_key(api, &token, id).await;
    let (status, detail) = api.get(&format!("/admin/users/{id}"), &token).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["user"]["id"], ada["id"]);
    assert_eq!(
        detail["access_keys"][0]["display_prefix"],
        issued["access_key"]["display_prefix"]
    );
    assert!(
        !detail.to_string().contains(issued["key"].as_str().unwrap()),
        "raw key shown again"
    );
    assert_error(
        &api.get(&format!("/admin/users/{NO_ID}"), &token).await,
        404,
        "not_found_error",
    );
    assert_error(
        &api.get("/admin/users/not-a-uuid", &token).await,
        400,
        "invalid_request_error",
    );

    // Update and deactivate.
    let (status, renamed) = api
        .patch(
            &format!("/admin/users/{id}"),
            &token,
            &json!({"name": "Ada King", "email": "ada@king.example"}),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(
        (renamed["name"].as_str(), renamed["email"].as_str()),
        (Some("Ada King"), Some("ada@king.example"))
    );
    let (status, off) = api
        .patch(
            &format!("/admin/users/{id}"),
            &token,
            &json!({"status": "disabled"}),
        )
        .await;
    assert_eq!((status, off["status"].as_str()), (200, Some("disabled")));
    let (_, disabled) = api.get("/admin/users?status=disabled", &token).await;
    assert_eq!(disabled["total"], 1);
    let clash = api
        .patch(
            &format!("/admin/users/{id}"),
            &token,
            &json!({"email": "bob@example.com"}),
        )
        .await;
    assert_error(&clash, 409, "conflict_error");
    assert_error(
        &api.patch(&format!("/admin/users/{id}"), &token, &json!({}))
            .await,
        422,
        "invalid_request_error",
    );
    assert_error(
        &api.patch(
            &format!("/admin/users/{NO_ID}"),
            &token,
            &json!({"name": "X"}),
        )
        .await,
        404,
        "not_found_error",
    );
    // A disabled user gets no new key.
    let refused = api
        .post(
            &format!("/admin/users/{id}/access-keys"),
            &token,
            &json!({}),
        )
        .await;
    assert_error(&refused, 409, "conflict_error");

    let actions = audit_actions(api, &token).await;
    let ops_id = api
        .store
        .admin_login("ops")
        .await
        .unwrap()
        .unwrap()
        .admin
        .id;
    let actor = format!("admin:{ops_id}");
    for action in ["user.create", "access_key.issue", "user.update"] {
        assert!(
            actions.contains(&(actor.clone(), action.to_owned())),
            "{action}: {actions:?}"
        );
    }
    // Refused changes leave no audit row: two creates, one issue, two updates (and the login).
    let changes: Vec<_> = actions.iter().filter(|(_, a)| a != "admin.login").collect();
    assert_eq!(changes.len(), 5, "{actions:?}");
    assert!(
        actions.contains(&(actor, "admin.login".to_owned())),
        "{actions:?}"
    );
}

async fn access_keys_are_issued_revoked_and_rotated(api: &Api) {
    let token = api.token("ops").await;
    let user = create_user(api, &token, "Cy", "cy@example.com").await;
    let user_id = user["id"].as_str().unwrap();
    let issued = issue_key(api, &token, user_id).await;
    let key = issued["key"].as_str().unwrap();
    assert!(key.starts_with("ccp_") && key.len() == 53, "{key}");
    let key_id = issued["access_key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(issued["access_key"]["status"], "active");

    assert_error(
        &api.post(
            &format!("/admin/users/{NO_ID}/access-keys"),
            &token,
            &json!({}),
        )
        .await,
        404,
        "not_found_error",
    );
    let past = api
        .post(
            &format!("/admin/users/{user_id}/access-keys"),
            &token,
            &json!({"expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(&past, 422, "invalid_request_error");
    let (status, got) = api.get(&format!("/admin/users/{user_id}"), &token).await;
    assert_eq!(
        (status, got["access_keys"][0]["bedrock_key"].clone()),
        (200, Value::Null),
        "{got}"
    );

    // Bedrock key: write-only, last four shown.
    let secret = "CANARYBRsecret-bedrock-key-Zq9w";
    let (status, bedrock) = api
        .post(
            &format!("/admin/access-keys/{key_id}/bedrock-key"),
            &token,
            &json!({"api_key": secret, "region": "eu-west-1"}),
        )
        .await;
    assert_eq!(status, 200, "{bedrock}");
    assert_eq!(
        (bedrock["last4"].as_str(), bedrock["region"].as_str()),
        (Some("Zq9w"), Some("eu-west-1"))
    );
    assert_eq!(bedrock["wrapper"], "local");
    let bad_region = api
        .post(
            &format!("/admin/access-keys/{key_id}/bedrock-key"),
            &token,
            &json!({"api_key": secret, "region": "mars'--"}),
        )
        .await;
    assert_error(&bad_region, 422, "invalid_request_error");
    let short = api
        .post(
            &format!("/admin/access-keys/{key_id}/bedrock-key"),
            &token,
            &json!({"api_key": "abc", "region": "us-east-1"}),
        )
        .await;
    assert_error(&short, 422, "invalid_request_error");
    let unknown = api
        .post(
            &format!("/admin/access-keys/{NO_ID}/bedrock-key"),
            &token,
            &json!({"api_key": secret, "region": "us-east-1"}),
        )
        .await;
    assert_error(&unknown, 404, "not_found_error");
    let (_, detail) = api.get(&format!("/admin/users/{user_id}"), &token).await;
    assert_eq!(detail["access_keys"][0]["bedrock_key"]["last4"], "Zq9w");

    // Rotate: new key once, old key with a grace deadline, the Bedrock key moved along.
    let (status, rotated) = api
        .post(
            &format!("/admin/access-keys/{key_id}/rotate"),
            &token,
            &json!({"grace_seconds": 120}),
        )
        .await;
    assert_eq!(status, 201, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap();
    assert_ne!(new_key, key);
    assert_eq!(rotated["previous"]["id"], key_id.as_str());
    assert_eq!(
        rotated["previous"]["replaced_by"],
        rotated["access_key"]["id"]
    );
    assert_eq!(rotated["previous"]["status"], "active");
    let deadline: chrono::DateTime<chrono::Utc> = rotated["previous"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = (deadline - chrono::Utc::now()).num_seconds();
    assert!((100..=120).contains(&left), "grace left {left}s");
    assert_eq!(rotated["access_key"]["bedrock_key"]["last4"], "Zq9w");
    let again = api
        .post(
            &format!("/admin/access-keys/{key_id}/rotate"),
            &token,
            &json!({}),
        )
        .await;
    assert_error(&again, 409, "conflict_error");
    let too_long = api
        .post(
            &format!(
                "/admin/access-keys/{}/rotate",
                rotated["access_key"]["id"].as_str().unwrap()
            ),
            &token,
            &json!({"grace_seconds": 99_999_999}),
        )
        .await;
    assert_error(&too_long, 422, "invalid_request_error");
    assert_error(
        &api.post(
            &format!("/admin/access-keys/{NO_ID}/rotate"),
            &token,
            &json!({}),
        )
        .await,
        404,
        "not_found_error",
    );

    // Revoke.
    let (status, revoked) = api
        .delete(&format!("/admin/access-keys/{key_id}"), &token)
        .await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (200, Some("revoked")),
        "{revoked}"
    );
    assert_error(
        &api.delete(&format!("/admin/access-keys/{NO_ID}"), &token)
            .await,
        404,
        "not_found_error",
    );
    let revoked_rotate = api
        .post(
            &format!("/admin/access-keys/{key_id}/rotate"),
            &token,
            &json!({}),
        )
        .await;
    assert_error(&revoked_rotate, 409, "conflict_error");

    // Remove the Bedrock key.
    let (status, _) = api
        .delete(&format!("/admin/access-keys/{key_id}/bedrock-key"), &token)
        .await;
    assert_eq!(status, 204);
    assert_error(
        &api.delete(&format!("/admin/access-keys/{key_id}/bedrock-key"), &token)
            .await,
        404,
        "not_found_error",
    );

    // The audit trail names every change and holds no secret.
    let (_, audit) = api.get("/admin/audit?limit=500", &token).await;
    let text = audit.to_string();
    for secret_text in [key, new_key, secret] {
        assert!(!text.contains(secret_text), "secret in the audit log");
    }
    let actions = audit_actions(api, &token).await;
    for action in [
        "access_key.issue",
        "bedrock_key.set",
        "access_key.rotate",
        "access_key.revoke",
        "bedrock_key.delete",
    ] {
        assert!(
            actions.iter().any(|(_, a)| a == action),
            "{action}: {actions:?}"
        );
    }
    let (_, only) = api
        .get(
            &format!("/admin/audit?action=access_key.rotate&target_id={key_id}"),
            &token,
        )
        .await;
    assert_eq!(only["total"], 1, "{only}");
}

async fn model_mappings_are_managed(api: &Api) {
    let token = api.token("dev").await;
    let row = json!({"anthropic_model": "claude-opus-9", "bedrock_model_id": "us.anthropic.claude-opus-9-v1:0", "max_output_tokens": 8192});
    let (status, created) = api.post("/admin/model-mappings", &token, &row).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["enabled"], true);
    let id = created["id"].as_str().unwrap();
    assert_error(
        &api.post("/admin/model-mappings", &token, &row).await,
        409,
        "conflict_error",
    );
    for bad in [
        json!({"anthropic_model": "claude'; DROP TABLE model_mappings;--", "bedrock_model_id": "us.anthropic.x-v1:0"}),
        json!({"anthropic_model": "claude-x", "bedrock_model_id": "not a model id"}),
        json!({"anthropic_model": "claude-x", "bedrock_model_id": "us.anthropic.x-v1:0", "max_output_tokens": 0}),
    ] {
        assert_error(
            &api.post("/admin/model-mappings", &token, &bad).await,
            422,
            "invalid_request_error",
        );
    }
    let (status, list) = api.get("/admin/model-mappings", &token).await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 1));
    let (status, got) = api
        .get(&format!("/admin/model-mappings/{id}"), &token)
        .await;
    assert_eq!(
        (status, got["max_output_tokens"].as_i64()),
        (200, Some(8192))
    );

    let (status, patched) = api
        .patch(
            &format!("/admin/model-mappings/{id}"),
            &token,
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (
            patched["enabled"].as_bool(),
            patched["max_output_tokens"].as_i64()
        ),
        (Some(false), Some(8192))
    );
    let (_, cleared) = api
        .patch(
            &format!("/admin/model-mappings/{id}"),
            &token,
            &json!({"max_output_tokens": null}),
        )
        .await;
    assert_eq!(cleared["max_output_tokens"], Value::Null, "{cleared}");
    assert_error(
        &api.patch(&format!("/admin/model-mappings/{id}"), &token, &json!({}))
            .await,
        422,
        "invalid_request_error",
    );
    assert_error(
        &api.patch(
            &format!("/admin/model-mappings/{NO_ID}"),
            &token,
            &json!({"enabled": true}),
        )
        .await,
        404,
        "not_found_error",
    );

    let (status, _) = api
        .delete(&format!("/admin/model-mappings/{id}"), &token)
        .await;
    assert_eq!(status, 204);
    assert_error(
        &api.get(&format!("/admin/model-mappings/{id}"), &token)
            .await,
        404,
        "not_found_error",
    );
    assert_error(
        &api.delete(&format!("/admin/model-mappings/{id}"), &token)
            .await,
        404,
        "not_found_error",
    );
    let actions = audit_actions(api, &token).await;
    let names: Vec<&str> = actions
        .iter()
        .map(|(_, a)| a.as_str())
        .filter(|a| a.starts_with("model_mapping."))
        .collect();
    assert_eq!(
        names,
        [
            "model_mapping.delete",
            "model_mapping.update",
            "model_mapping.update",
            "model_mapping.set"
        ]
    );
}

async fn unmapped_models_are_listed_until_a_row_or_family_default_covers_them(api: &Api) {
    let token = api.token("ops").await;
    let (user, key) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    // Claude Code's default (no built-in mapping): 3 requests, 2 of them missed failovers.
    for n in 0..3 {
        let mut r = records::record(n, &[user], &[key], now - chrono::Duration::hours(1));
        r.request_id = format!("unmapped-{n}");
        r.model = Some("claude-opus-5-5".into());
        r.failover_skip = (n < 2).then_some("unmapped_model");
        rows.push(r);
    }
    // A model with a built-in mapping, and one only seen 8 days ago.
    let mut mapped = records::record(3, &[user], &[key], now);
    mapped.request_id = "mapped".into();
    mapped.model = Some("claude-sonnet-4-5".into());
    let mut old = records::record(4, &[user], &[key], now - chrono::Duration::days(8));
    old.request_id = "old".into();
    old.model = Some("claude-haiku-5-5".into());
    rows.extend([mapped, old]);
    api.store.insert_request_records(&rows).await.unwrap();

    let (status, list) = api.get("/admin/model-mappings/unmapped", &token).await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["model"], "claude-opus-5-5");
    assert_eq!(list[0]["requests"], 3);
    assert_eq!(list[0]["missed_failovers"], 2);
    assert_eq!(list[0]["family"], "opus");
    assert_eq!(
        list[0]["suggested_bedrock_model_id"],
        "global.anthropic.claude-opus-4-7"
    );

    // Only the three families have defaults.
    for bad in ["family:gpt", "family:", "family:Opus"] {
        assert_error(
            &api.post(
                "/admin/model-mappings",
                &token,
                &json!({"anthropic_model": bad, "bedrock_model_id": "global.anthropic.claude-opus-4-7"}),
            )
            .await,
            422,
            "invalid_request_error",
        );
    }
    let (status, family) = api
        .post(
            "/admin/model-mappings",
            &token,
            &json!({"anthropic_model": "family:opus", "bedrock_model_id": "global.anthropic.claude-opus-4-7"}),
        )
        .await;
    assert_eq!(status, 201, "{family}");
    let (_, list) = api.get("/admin/model-mappings/unmapped", &token).await;
    assert_eq!(list, json!([]), "the family default covers claude-opus-5-5");
    // The listing is read-only: other methods are 405, not a bad `{id}`.
    for method in ["PATCH", "DELETE", "POST"] {
        assert_error(
            &api.call(
                method,
                "/admin/model-mappings/unmapped",
                Some(&token),
                Some(&json!({})),
            )
            .await,
            405,
            "invalid_request_error",
        );
    }
}

async fn usage_reports_series_and_totals_with_filters(api: &Api) {
    let token = api.token("ops").await;
    let user = create_user(api, &token, "Dee", "dee@example.com").await;
    let user_id: uuid::Uuid = user["id"].as_str().unwrap().parse().unwrap();
    let key_id = uuid::Uuid::now_v7();
    let at = |d: u32, h: u32| {
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, d, h, 0, 0).unwrap()
    };
    // Row n: 0 a failover (sonnet, 40 000 µUSD), 1 Bedrock direct (opus, 40 000 µUSD),
    // 2 Plan (haiku, free); 1 200 input tokens each.
    let records = vec![
        records::record(0, &[user_id], &[key_id], at(20, 10)),
        records::record(1, &[user_id], &[key_id], at(20, 11)),
        records::record(2, &[user_id], &[key_id], at(21, 9)),
    ];
    api.store.insert_request_records(&records).await.unwrap();

    let range = "from=2026-11-20T00:00:00Z&to=2026-11-22T00:00:00Z";
    let (status, report) = api
        .get(&format!("/admin/usage?{range}&granularity=day"), &token)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["series"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report["series"][0]["bucket"], "2026-11-20T00:00:00Z");
    assert_eq!(report["series"][0]["requests"], 2);
    assert_eq!(report["series"][0]["failovers"], 1);
    assert_eq!(report["totals"]["requests"], 3);
    assert_eq!(report["totals"]["failovers"], 1);
    assert_eq!(report["totals"]["bedrock_direct"], 1);
    assert!(report["series"][0].get("key_id").is_none(), "{report}");
    assert_eq!(report["totals"]["input_tokens"], 3_600);
    assert_eq!(report["totals"]["cost_micro_usd"], 80_000);
    let (_, hourly) = api
        .get(&format!("/admin/usage?{range}&granularity=hour"), &token)
        .await;
    assert_eq!(hourly["series"].as_array().unwrap().len(), 3);
    let (_, bedrock) = api
        .get(
            &format!("/admin/usage?{range}&provider=bedrock&user={user_id}&key={key_id}"),
            &token,
        )
        .await;
    assert_eq!(bedrock["totals"]["requests"], 2, "{bedrock}");
    let (_, other_model) = api
        .get(&format!("/admin/usage?{range}&model=claude-opus-4"), &token)
        .await;
    assert_eq!(other_model["totals"]["requests"], 0);
    let (_, opus) = api
        .get(
            &format!("/admin/usage?{range}&model=claude-opus-5-5"),
            &token,
        )
        .await;
    assert_eq!(opus["totals"]["cost_micro_usd"], 40_000, "{opus}");
    let backwards = api
        .get(
            "/admin/usage?from=2026-11-22T00:00:00Z&to=2026-11-20T00:00:00Z",
            &token,
        )
        .await;
    assert_error(&backwards, 422, "invalid_request_error");
    assert_error(
        &api.get("/admin/usage?granularity=week", &token).await,
        400,
        "invalid_request_error",
    );
    assert_error(
        &api.get("/admin/usage?from=yesterday", &token).await,
        400,
        "invalid_request_error",
    );
}

/// One series per access key of a user, and the top users, keys and models, labelled for
/// people (names, masks; never a key).
async fn usage_per_key_and_top_lists(api: &Api) {
    let token = api.token("ops").await;
    let dee = create_user(api, &token, "Dee", "dee@example.com").await;
    let eve = create_user(api, &token, "Eve", "eve@example.com").await;
    let id = |v: &Value| -> uuid::Uuid { v["id"].as_str().unwrap().parse().unwrap() };
    let (dee_id, eve_id) = (id(&dee), id(&eve));
    let laptop = issue_key(api, &token, &dee_id.to_string()).await;
    let laptop_id = id(&laptop["access_key"]);
    let other = issue_key(api, &token, &dee_id.to_string()).await;
    let other_id = id(&other["access_key"]);
    let eves = issue_key(api, &token, &eve_id.to_string()).await;
    let eves_id = id(&eves["access_key"]);
    let at =
        |h: u32| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 20, h, 0, 0).unwrap();
    // Dee: 3 on the laptop key, 1 on the other; Eve: 2. Models by n % 3.
    let rows: Vec<_> = [
        (dee_id, laptop_id),
        (dee_id, laptop_id),
        (dee_id, laptop_id),
        (dee_id, other_id),
        (eve_id, eves_id),
        (eve_id, eves_id),
    ]
    .into_iter()
    .enumerate()
    .map(|(n, (user, key))| records::record(n, &[user], &[key], at(9 + n as u32 % 2)))
    .collect();
    api.store.insert_request_records(&rows).await.unwrap();
    let range = "from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z";

    let (status, per_key) = api
        .get(
            &format!("/admin/usage?{range}&user={dee_id}&group_by=key&granularity=day"),
            &token,
        )
        .await;
    assert_eq!(status, 200, "{per_key}");
    let mut points: Vec<(String, i64)> = per_key["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["key_id"].as_str().unwrap().to_owned(),
                p["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    points.sort();
    let mut want = vec![(laptop_id.to_string(), 3), (other_id.to_string(), 1)];
    want.sort();
    assert_eq!(points, want);
    assert_eq!(per_key["totals"]["requests"], 4);
    assert_error(
        &api.get(&format!("/admin/usage?{range}&group_by=key"), &token)
            .await,
        422,
        "invalid_request_error",
    );

    let (status, users) = api
        .get(&format!("/admin/usage/top?by=user&{range}"), &token)
        .await;
    assert_eq!(status, 200, "{users}");
    let users: Vec<(&str, &str, i64)> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["label"].as_str().unwrap(),
                i["detail"].as_str().unwrap(),
                i["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [("Dee", "dee@example.com", 4), ("Eve", "eve@example.com", 2)]
    );

    let (_, keys) = api
        .get(&format!("/admin/usage/top?by=key&limit=1&{range}"), &token)
        .await;
    assert_eq!(keys["items"].as_array().unwrap().len(), 1, "{keys}");
    assert_eq!(keys["items"][0]["id"], laptop_id.to_string());
    let mask = laptop["access_key"]["display_prefix"].as_str().unwrap();
    assert_eq!(keys["items"][0]["label"], format!("laptop ({mask})"));
    assert_eq!(keys["items"][0]["detail"], dee_id.to_string());
    assert!(
        !keys.to_string().contains(laptop["key"].as_str().unwrap()),
        "never the key"
    );

    let (_, models) = api
        .get(
            &format!("/admin/usage/top?by=model&{range}&user={dee_id}"),
            &token,
        )
        .await;
    let models: Vec<(&str, i64)> = models["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["label"].as_str().unwrap(),
                i["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    // Dee's rows are n = 0..3: sonnet (0, 3), opus (1), haiku (2).
    assert_eq!(
        models,
        [
            ("claude-sonnet-5-5", 2),
            ("claude-haiku-5-5", 1),
            ("claude-opus-5-5", 1)
        ]
    );

    for bad in ["by=team", "by=user&limit=0", "by=user&limit=51", "limit=5"] {
        let (status, body) = api.get(&format!("/admin/usage/top?{bad}"), &token).await;
        assert!(status == 400 || status == 422, "{bad}: {status} {body}");
        assert!(body["error"]["type"].is_string(), "{bad}: {body}");
    }
}

async fn sql_looking_input_is_only_data(api: &Api) {
    let token = api.token("ops").await;
    let nasty = [
        "' OR '1'='1",
        "'; DROP TABLE users;--",
        "%' UNION SELECT password_hash FROM admins--",
        "\\",
        "%",
        "_",
        "nul\u{0}byte",
    ];
    // The users so far (name, email): the oracle for what a search must find.
    let mut users = vec![(
        "Robert'); DROP TABLE users;--".to_owned(),
        "bobby@example.com".to_owned(),
    )];
    create_user(api, &token, &users[0].0, &users[0].1).await;
    for text in nasty {
        let q = urlencode(text);
        let nul = text.contains('\0');
        // Each path with its one expected answer: a status, and for a 200 the count it holds.
        let found = users
            .iter()
            .filter(|(name, email)| {
                let needle = text.to_lowercase();
                name.to_lowercase().contains(&needle) || email.to_lowercase().contains(&needle)
            })
            .count() as i64;
        let listing = |count: i64| if nul { (400, None) } else { (200, Some(count)) };
        let cases = [
            (format!("/admin/users?search={q}"), listing(found)),
            (format!("/admin/users?status={q}"), (400, None)),
            (
                format!("/admin/audit?actor={q}&action={q}&target_id={q}"),
                listing(0),
            ),
            (format!("/admin/usage?model={q}"), listing(0)),
            (format!("/admin/usage?provider={q}"), (400, None)),
            (format!("/admin/usage?user={q}"), (400, None)),
            (format!("/admin/users/{q}"), (400, None)),
            (format!("/admin/model-mappings/{q}"), (400, None)),
        ];
        for (path, (want, count)) in cases {
            let (status, body) = api.get(&path, &token).await;
            assert_eq!(status, want, "{path}: {body}");
            match count {
                Some(count) => {
                    let total = body["total"]
                        .as_i64()
                        .or_else(|| body["totals"]["requests"].as_i64());
                    assert_eq!(total, Some(count), "{path}: {body}");
                }
                None => assert!(body["error"]["type"].is_string(), "{path}: {body}"),
            }
        }
        let email = format!("{}@example.com", text.len());
        let taken = users.iter().any(|(_, e)| *e == email);
        let user = api
            .post(
                "/admin/users",
                &token,
                &json!({"name": text, "email": email}),
            )
            .await;
        let want = match (nul, taken) {
            (true, _) => 400,
            (false, true) => 409,
            (false, false) => 201,
        };
        assert_eq!(user.0, want, "{text}: {user:?}");
        if want == 201 {
            users.push((text.to_owned(), email));
        }
        let mapping = api
            .post(
                "/admin/model-mappings",
                &token,
                &json!({"anthropic_model": text, "bedrock_model_id": text}),
            )
            .await;
        let status = if text.contains('\0') { 400 } else { 422 };
        assert_error(&mapping, status, "invalid_request_error");
    }
    // NUL characters are refused before they reach the database (PostgreSQL cannot store them
    // in text, which would otherwise surface as a 503), in logins and secrets too.
    let nul = api.login("ops\0", PASSWORD).await;
    assert_error(&nul, 400, "invalid_request_error");
    let user = create_user(api, &token, "Nul", "nul@example.com").await;
    let issued = issue_key(api, &token, user["id"].as_str().unwrap()).await;
    let key_id = issued["access_key"]["id"].as_str().unwrap();
    let bedrock = api
        .post(
            &format!("/admin/access-keys/{key_id}/bedrock-key"),
            &token,
            &json!({"api_key": "abcd\u{0}efgh", "region": "us-east-1"}),
        )
        .await;
    assert_error(&bedrock, 400, "invalid_request_error");
    let (_, search) = api
        .get(
            &format!("/admin/users?search={}", urlencode("' OR '1'='1")),
            &token,
        )
        .await;
    assert_eq!(
        search["total"], 1,
        "only the user whose name holds that text: {search}"
    );
    let (_, all) = api.get("/admin/users?limit=500", &token).await;
    assert!(
        all["total"].as_i64().unwrap() >= 2,
        "the users table is intact"
    );
    assert_eq!(api.store.count_admins().await.unwrap(), 2);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn every_route_needs_a_session(api: &Api) {
    for (method, path) in [
        ("GET", "/admin/users".to_owned()),
        ("POST", "/admin/users".to_owned()),
        ("GET", format!("/admin/users/{NO_ID}")),
        ("PATCH", format!("/admin/users/{NO_ID}")),
        ("POST", format!("/admin/users/{NO_ID}/access-keys")),
        ("DELETE", format!("/admin/access-keys/{NO_ID}")),
        ("POST", format!("/admin/access-keys/{NO_ID}/rotate")),
        ("POST", format!("/admin/access-keys/{NO_ID}/bedrock-key")),
        ("DELETE", format!("/admin/access-keys/{NO_ID}/bedrock-key")),
        ("GET", "/admin/usage".to_owned()),
        ("GET", "/admin/model-mappings".to_owned()),
        ("GET", "/admin/model-mappings/unmapped".to_owned()),
        ("POST", "/admin/model-mappings".to_owned()),
        ("GET", format!("/admin/model-mappings/{NO_ID}")),
        ("PATCH", format!("/admin/model-mappings/{NO_ID}")),
        ("DELETE", format!("/admin/model-mappings/{NO_ID}")),
        ("GET", "/admin/audit".to_owned()),
        ("POST", "/admin/auth/logout".to_owned()),
    ] {
        let body = json!({});
        for token in [None, Some("garbage"), Some("")] {
            let answer = api.call(method, &path, token, Some(&body)).await;
            assert_error(&answer, 401, "authentication_error");
        }
    }
    // Unknown routes and methods get the shape too.
    let token = api.token("ops").await;
    assert_error(
        &api.get("/admin/nothing-here", &token).await,
        404,
        "not_found_error",
    );
    assert_error(
        &api.call("PUT", "/admin/users", Some(&token), Some(&json!({})))
            .await,
        405,
        "invalid_request_error",
    );
}

async fn bootstrap_creates_one_first_admin(api: &Api) {
    // This store already has admins: bootstrap is closed.
    let body = json!({"secret": BOOTSTRAP_SECRET, "username": "root", "password": PASSWORD});
    let closed = api
        .call("POST", "/admin/auth/bootstrap", None, Some(&body))
        .await;
    assert_error(&closed, 403, "permission_error");
    assert_eq!(api.store.count_admins().await.unwrap(), 2);
}

async fn user_routing_and_budgets_are_set_shown_and_audited(api: &Api) {
    let token = api.token("ops").await;
    let ada = create_user(api, &token, "Ada", "ada@example.com").await;
    assert_eq!(ada["routing"], "plan_first");
    assert_eq!(ada["monthly_budget_usd"], Value::Null);
    assert_eq!(ada["budget_warning_percent"], 80);
    let id = ada["id"].as_str().unwrap();
    let path = format!("/admin/users/{id}");

    let (status, set) = api
        .patch(
            &path,
            &token,
            &json!({"routing": "bedrock_only", "monthly_budget_usd": "25.5", "budget_warning_percent": 90}),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["routing"], "bedrock_only");
    assert_eq!(set["monthly_budget_usd"], "25.50");
    assert_eq!(set["budget_warning_percent"], 90);

    // This month's Bedrock spend against the budget; Plan rows and last month do not count.
    let user_id: uuid::Uuid = id.parse().unwrap();
    let keys = [uuid::Uuid::now_v7()];
    let now = chrono::Utc::now();
    let month = ccp_core::routing::budget::month_start(now);
    let mut rows = Vec::new();
    for (n, (at, bedrock, cost)) in [
        (now, true, 20_000_000),
        (now, true, 3_500_000),
        (now, false, 0),
        (month - chrono::Duration::hours(1), true, 9_000_000),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = records::record(n * 10 + usize::from(!bedrock) * 2, &[user_id], &keys, at);
        if let Some(u) = r.usage.as_mut() {
            u.cost_micro_usd = cost;
        }
        rows.push(r);
    }
    api.store.insert_request_records(&rows).await.unwrap();
    let (status, shown) = api.get(&path, &token).await;
    assert_eq!(status, 200, "{shown}");
    let budget = &shown["budget"];
    assert_eq!(budget["spend_usd"], "23.50", "{budget}");
    assert_eq!(budget["monthly_budget_usd"], "25.50");
    assert_eq!(budget["used_percent"], 92);
    assert_eq!(budget["state"], "warning");
    assert_eq!(
        budget["month_start"].as_str().unwrap(),
        month.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );

    let (_, over) = api
        .patch(&path, &token, &json!({"monthly_budget_usd": "23.5"}))
        .await;
    assert_eq!(over["monthly_budget_usd"], "23.50");
    let (_, shown) = api.get(&path, &token).await;
    assert_eq!(shown["budget"]["state"], "over");

    // null removes the budget; leaving the field out leaves it.
    let (_, kept) = api
        .patch(&path, &token, &json!({"routing": "plan_only"}))
        .await;
    assert_eq!(kept["monthly_budget_usd"], "23.50");
    assert_eq!(kept["routing"], "plan_only");
    let (_, removed) = api
        .patch(&path, &token, &json!({"monthly_budget_usd": null}))
        .await;
    assert_eq!(removed["monthly_budget_usd"], Value::Null);
    let (_, shown) = api.get(&path, &token).await;
    assert_eq!(shown["budget"]["state"], "no_budget");
    assert_eq!(shown["budget"]["used_percent"], Value::Null);

    for bad in [
        json!({"monthly_budget_usd": "abc"}),
        json!({"monthly_budget_usd": "-1"}),
        json!({"monthly_budget_usd": "1000000.01"}),
        json!({"monthly_budget_usd": "0.0000001"}),
        json!({"budget_warning_percent": 0}),
        json!({"budget_warning_percent": 101}),
    ] {
        assert_error(
            &api.patch(&path, &token, &bad).await,
            422,
            "invalid_request_error",
        );
    }
    for bad in [
        json!({"routing": "sideways"}),
        json!({"monthly_budget_usd": 25}),
    ] {
        let answer = api.patch(&path, &token, &bad).await;
        assert!(matches!(answer.0, 400 | 422), "{bad}: {}", answer.1);
        assert_eq!(answer.1["error"]["type"], "invalid_request_error");
    }
    let (_, shown) = api.get(&path, &token).await;
    assert_eq!(
        shown["user"]["routing"], "plan_only",
        "refused changes change nothing"
    );

    let (status, audit) = api
        .get(
            &format!("/admin/audit?target_id={id}&action=user.update"),
            &token,
        )
        .await;
    assert_eq!(status, 200);
    let details: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["detail"])
        .collect();
    assert_eq!(details.len(), 4, "{details:?}");
    assert!(
        details
            .iter()
            .any(|d| d["monthly_budget_usd"] == "25.50" && d["routing"] == "bedrock_only"),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| **d == json!({"monthly_budget_usd": null})),
        "{details:?}"
    );
}

api_on_both_engines!(
    users_are_created_listed_shown_and_updated,
    user_routing_and_budgets_are_set_shown_and_audited,
    access_keys_are_issued_revoked_and_rotated,
    model_mappings_are_managed,
    unmapped_models_are_listed_until_a_row_or_family_default_covers_them,
    usage_reports_series_and_totals_with_filters,
    usage_per_key_and_top_lists,
    sql_looking_input_is_only_data,
    every_route_needs_a_session,
    bootstrap_creates_one_first_admin,
);

/// On an empty store: wrong secret refused, two concurrent calls make exactly one admin,
/// who can then log in.
async fn bootstrap_on_an_empty_store(store: &ccp_core::store::Store) {
    let api = Api::new(store);
    let wrong = json!({"secret": "x".repeat(40), "username": "root", "password": PASSWORD});
    assert_error(
        &api.call("POST", "/admin/auth/bootstrap", None, Some(&wrong))
            .await,
        403,
        "permission_error",
    );
    let weak = json!({"secret": BOOTSTRAP_SECRET, "username": "root", "password": "short"});
    assert_error(
        &api.call("POST", "/admin/auth/bootstrap", None, Some(&weak))
            .await,
        422,
        "invalid_request_error",
    );
    let a = json!({"secret": BOOTSTRAP_SECRET, "username": "first", "password": PASSWORD});
    let b = json!({"secret": BOOTSTRAP_SECRET, "username": "second", "password": PASSWORD});
    let (one, two) = tokio::join!(
        api.call("POST", "/admin/auth/bootstrap", None, Some(&a)),
        api.call("POST", "/admin/auth/bootstrap", None, Some(&b)),
    );
    let mut statuses = [one.0, two.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 403], "{one:?} {two:?}");
    assert_eq!(store.count_admins().await.unwrap(), 1);
    let winner = if one.0 == 201 { "first" } else { "second" };
    let (_, audit) = api
        .get(
            "/admin/audit?action=admin.bootstrap",
            &api.token(winner).await,
        )
        .await;
    assert_eq!(audit["total"], 1, "{audit}");
    assert_eq!(audit["items"][0]["actor"], "bootstrap");
}

/// Named `bootstrap::{sqlite,postgres}::on_an_empty_store`, so the PostgreSQL one is filtered
/// with the others (`--skip postgres::`).
mod bootstrap {
    mod sqlite {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn on_an_empty_store() {
            let t = crate::common::stores::sqlite().await;
            crate::bootstrap_on_an_empty_store(&t.store).await;
            t.cleanup().await;
        }
    }
    mod postgres {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn on_an_empty_store() {
            let t = crate::common::stores::postgres().await;
            crate::bootstrap_on_an_empty_store(&t.store).await;
            t.cleanup().await;
        }
    }
}

#[tokio::test]
async fn cors_answers_only_the_console_origin() {
    let t = common::stores::sqlite().await;
    let api = Api::with_admins(&t.store).await;
    let preflight = |origin: &str| {
        TestClient::options(format!("{BASE}/admin/users"))
            .add_header("origin", origin, true)
            .add_header("access-control-request-method", "POST", true)
            .add_header(
                "access-control-request-headers",
                "authorization, content-type",
                true,
            )
    };
    let res = preflight(CONSOLE_ORIGIN).send(&api.service).await;
    assert_eq!(
        res.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(CONSOLE_ORIGIN)
    );
    let res = preflight("https://evil.example").send(&api.service).await;
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        res.headers()
    );
    let res = TestClient::get(format!("{BASE}/admin/users"))
        .add_header("origin", "https://evil.example", true)
        .send(&api.service)
        .await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let t = common::stores::sqlite().await;
    let api = Api::new(&t.store);
    let (status, doc) = api.call("GET", "/admin/openapi.json", None, None).await;
    assert_eq!(status, 200);
    for (path, method) in [
        ("/admin/auth/login", "post"),
        ("/admin/auth/logout", "post"),
        ("/admin/auth/bootstrap", "post"),
        ("/admin/users", "get"),
        ("/admin/users", "post"),
        ("/admin/users/{id}", "get"),
        ("/admin/users/{id}", "patch"),
        ("/admin/users/{id}/access-keys", "post"),
        ("/admin/access-keys/{id}", "delete"),
        ("/admin/access-keys/{id}/rotate", "post"),
        ("/admin/access-keys/{id}/bedrock-key", "post"),
        ("/admin/usage", "get"),
        ("/admin/model-mappings", "get"),
        ("/admin/model-mappings", "post"),
        ("/admin/model-mappings/{id}", "patch"),
        ("/admin/model-mappings/{id}", "delete"),
        ("/admin/audit", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert!(doc["paths"]["/admin/users"]["post"]["responses"]["201"].is_object());
    // Filters are optional, and optional references may be null (salvo's own output says
    // neither; the served document is repaired).
    for path in ["/admin/users", "/admin/usage", "/admin/audit"] {
        for parameter in doc["paths"][path]["get"]["parameters"].as_array().unwrap() {
            assert_eq!(parameter["required"], false, "{path}: {parameter}");
        }
    }
    let text = doc.to_string();
    assert!(
        !text.contains(r#""allOf":[{"type":"null"}"#),
        "unsatisfiable nullable refs"
    );
}

#[tokio::test]
async fn login_gives_a_session_that_logout_ends() {
    let t = common::stores::sqlite().await;
    let api = Api::with_admins(&t.store).await;
    let token = api.token("ops").await;
    assert_eq!(
        api.call("POST", "/admin/auth/logout", Some(&token), None)
            .await
            .0,
        204
    );
    let again = api.get("/admin/users", &token).await;
    assert_error(&again, 401, "authentication_error");
}

#[tokio::test]
async fn bad_logins_get_one_answer_and_then_throttling() {
    let t = common::stores::sqlite().await;
    let api = Api::with_admins(&t.store).await;
    let wrong = api.login("ops", "not the passphrase").await;
    let unknown = api.login("nobody", PASSWORD).await;
    assert_error(&wrong, 401, "authentication_error");
    assert_eq!(wrong, unknown, "no hint which part was wrong");
    for _ in 0..ccp_admin_server::login::MAX_FAILURES {
        api.login("ops", "wrong wrong wrong").await;
    }
    let throttled = api.login("ops", PASSWORD).await;
    assert_error(&throttled, 429, "rate_limit_error");
}

#[tokio::test]
async fn a_wrong_method_gets_405_with_allow() {
    let t = common::stores::sqlite().await;
    let api = Api::with_admins(&t.store).await;
    let token = api.token("ops").await;
    for (path, allow) in [
        ("/admin/users", "GET, POST"),
        (&*format!("/admin/users/{NO_ID}"), "GET, PATCH"),
        (
            &*format!("/admin/model-mappings/{NO_ID}"),
            "GET, DELETE, PATCH",
        ),
    ] {
        let res = TestClient::put(format!("{BASE}{path}"))
            .add_header("authorization", format!("Bearer {token}"), true)
            .send(&api.service)
            .await;
        assert_eq!(res.status_code.map(|s| s.as_u16()), Some(405), "{path}");
        let got = res.headers().get("allow").and_then(|v| v.to_str().ok());
        assert_eq!(got, Some(allow), "{path}");
    }
}

#[tokio::test]
async fn login_throttling_counts_the_address_the_load_balancer_appended() {
    let t = common::stores::sqlite().await;
    let api = Api::with_admins(&t.store).await;
    let attempt = |forwarded: &'static str, username: &str, password: &str| {
        TestClient::post(format!("{BASE}/admin/auth/login"))
            .add_header("x-forwarded-for", forwarded, true)
            .json(&json!({"username": username, "password": password}))
    };
    // Failures for five different names from one client (its own first entry is forged and
    // changes each time; the load balancer's last entry does not).
    for (n, forged) in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
        .into_iter()
        .enumerate()
    {
        let forwarded: &'static str = Box::leak(format!("{forged}, 203.0.113.7").into_boxed_str());
        let answer = api
            .send(attempt(forwarded, &format!("user{n}"), "wrong wrong wrong"))
            .await;
        assert_error(&answer, 401, "authentication_error");
    }
    let blocked = api
        .send(attempt("198.51.100.1, 203.0.113.7", "dev", PASSWORD))
        .await;
    assert_error(&blocked, 429, "rate_limit_error");
    // Another client behind the same load balancer is not affected.
    let other = api.send(attempt("203.0.113.8", "dev", PASSWORD)).await;
    assert_eq!(other.0, 200, "{}", other.1);
}
