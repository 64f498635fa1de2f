//! `ccp-admin` as scripts use it: the real binary, `--json` output, exit codes.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn admin(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ccp-admin"))
        .args(args)
        .env_clear()
        .env("CCP_DATA_DIR", data_dir)
        .output()
        .expect("run ccp-admin")
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON document")
}

fn create_user(data_dir: &Path, name: &str, email: &str) -> serde_json::Value {
    json(&admin(
        data_dir,
        &["--json", "user", "create", "--name", name, "--email", email],
    ))
}

fn read_all_files(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

#[test]
fn issue_list_and_revoke_keys_from_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert!(admin(data, &["migrate"]).status.success());

    let user = create_user(data, "Ada", "ada@example.com");
    assert_eq!(user["email"], "ada@example.com");
    let issued = json(&admin(
        data,
        &["key", "issue", "--user", "ADA@example.com", "--json"],
    ));
    let key = issued["key"].as_str().unwrap().to_owned();
    let id = issued["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ccp_") && key.len() == ccp_core::keys::ACCESS_KEY_LEN);
    assert!(ccp_core::keys::AccessKey::parse(&key).is_ok());

    let by_id = json(&admin(
        data,
        &[
            "--json",
            "key",
            "issue",
            "--user",
            user["id"].as_str().unwrap(),
        ],
    ));
    assert_ne!(by_id["key"], issued["key"]);

    let listed = json(&admin(
        data,
        &["--json", "key", "list", "--user", "ada@example.com"],
    ));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let text = serde_json::to_string(listed).unwrap();
    assert!(!text.contains(&key), "listings never show a key");
    assert!(
        text.contains(&ccp_core::keys::mask(&key)),
        "listings show the mask"
    );

    let plain = admin(data, &["key", "list"]);
    assert!(plain.status.success());
    assert!(!String::from_utf8_lossy(&plain.stdout).contains(&key));

    let revoked = json(&admin(data, &["--json", "key", "revoke", &id]));
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["revoked_at"].is_string());

    // The key is stored only as a digest: no copy of it anywhere in the database files.
    let files = read_all_files(data);
    assert!(
        !files.windows(key.len()).any(|w| w == key.as_bytes()),
        "raw key found in the data directory"
    );
}

#[test]
fn errors_exit_non_zero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["key", "issue", "--user", "nobody@example.com"],
        vec!["key", "revoke", "0193a0a0-0000-7000-8000-000000000000"],
        vec!["user", "create", "--name", "X", "--email", "not-an-email"],
    ] {
        let out = admin(dir.path(), &args);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("ccp-admin: "), "{stderr}");
    }
    create_user(dir.path(), "A", "a@example.com");
    let dup = admin(
        dir.path(),
        &["user", "create", "--name", "B", "--email", "A@example.com"],
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
}

#[test]
fn postgres_without_a_pepper_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ccp-admin"))
        .args(["migrate"])
        .env_clear()
        .env("CCP_DATA_DIR", dir.path())
        .env(
            "CCP_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CCP_PEPPER"));
}

#[test]
fn pepper_file_is_created_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    create_user(dir.path(), "P", "p@example.com");
    json(&admin(
        dir.path(),
        &["--json", "key", "issue", "--user", "p@example.com"],
    ));
    let pepper = dir.path().join("pepper");
    let first = std::fs::read(&pepper).unwrap();
    json(&admin(
        dir.path(),
        &["--json", "key", "issue", "--user", "p@example.com"],
    ));
    assert_eq!(
        std::fs::read(&pepper).unwrap(),
        first,
        "the pepper is created once"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&pepper).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

fn admin_with_stdin(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ccp-admin"))
        .args(args)
        .env_clear()
        .env("CCP_DATA_DIR", data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ccp-admin");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn bedrock_keys_are_read_from_stdin_and_stored_wrapped() {
    const BEDROCK: &str = "ABSKQmVkcm9ja0FQSUtleS1DANARYBRzz91";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    create_user(data, "Bo", "bo@example.com");
    let issued = json(&admin(
        data,
        &["--json", "key", "issue", "--user", "bo@example.com"],
    ));
    let key_id = issued["id"].as_str().unwrap();

    // A bad region is refused before anything is read or stored.
    let bad = admin_with_stdin(
        data,
        &[
            "bedrock-key",
            "set",
            "--access-key",
            key_id,
            "--region",
            "us-east-1.evil.com",
        ],
        BEDROCK,
    );
    assert!(!bad.status.success());
    let set_args = [
        "bedrock-key",
        "set",
        "--access-key",
        key_id,
        "--region",
        "us-east-1",
    ];
    // An empty stdin is refused.
    let empty = admin_with_stdin(data, &set_args, "\n");
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("standard input"));
    // So is a key with a control character (a NUL could not even be stored in PostgreSQL).
    let control = admin_with_stdin(data, &set_args, "ABSKabcd\u{0}efgh\n");
    assert!(!control.status.success());
    assert!(String::from_utf8_lossy(&control.stderr).contains("control characters"));

    let set = admin_with_stdin(
        data,
        &[
            "--json",
            "bedrock-key",
            "set",
            "--access-key",
            key_id,
            "--region",
            "eu-west-1",
        ],
        &format!("{BEDROCK}\n"),
    );
    let set = json(&set);
    assert_eq!(set["last4"], "zz91");
    assert_eq!(set["region"], "eu-west-1");
    assert_eq!(set["wrapper"], "local");
    assert!(set.get("ciphertext").is_none());

    let shown = json(&admin(
        data,
        &["--json", "bedrock-key", "show", "--access-key", key_id],
    ));
    assert_eq!(shown["last4"], "zz91");
    let everything = String::from_utf8_lossy(&read_all_files(data)).into_owned();
    assert!(
        !everything.contains("CANARYBR"),
        "the Bedrock key is never stored in clear"
    );
    assert!(!String::from_utf8_lossy(&set.to_string().into_bytes()).contains("CANARYBR"));

    // An unknown access key is a clear error.
    let unknown = admin_with_stdin(
        data,
        &[
            "bedrock-key",
            "set",
            "--access-key",
            "00000000-0000-7000-8000-000000000000",
            "--region",
            "us-east-1",
        ],
        BEDROCK,
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("access key not found"));

    let deleted = json(&admin(
        data,
        &["--json", "bedrock-key", "delete", "--access-key", key_id],
    ));
    assert_eq!(deleted["deleted"], true);
    assert!(
        !admin(data, &["bedrock-key", "show", "--access-key", key_id])
            .status
            .success()
    );
}

#[test]
fn model_map_rows_are_validated_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let set = json(&admin(
        data,
        &[
            "--json",
            "model-map",
            "set",
            "--anthropic",
            "claude-opus-5-5",
            "--bedrock",
            "global.anthropic.claude-opus-5-5-v1",
            "--max-output-tokens",
            "128000",
        ],
    ));
    assert_eq!(
        set["bedrock_model_id"],
        "global.anthropic.claude-opus-5-5-v1"
    );
    assert_eq!(set["enabled"], true);
    for bad in ["x/../../foo", "a?b", "id#frag", "a%2Fb"] {
        let out = admin(
            data,
            &[
                "model-map",
                "set",
                "--anthropic",
                "claude-x",
                "--bedrock",
                bad,
            ],
        );
        assert!(!out.status.success(), "{bad} accepted");
    }
    let listed = json(&admin(data, &["--json", "model-map", "list"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // A family default, stored as the row `family:haiku`.
    let family = json(&admin(
        data,
        &[
            "--json",
            "model-map",
            "family",
            "haiku",
            "--bedrock",
            "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        ],
    ));
    assert_eq!(family["anthropic_model"], "family:haiku");
    let out = admin(data, &["model-map", "family", "gpt", "--bedrock", "x.y"]);
    assert!(!out.status.success());
    let unmapped = admin(data, &["model-map", "unmapped"]);
    assert!(unmapped.status.success());
    assert_eq!(String::from_utf8_lossy(&unmapped.stdout), "(none)\n");
    assert!(
        admin(data, &["model-map", "delete", "family:haiku"])
            .status
            .success()
    );
    let deleted = json(&admin(
        data,
        &["--json", "model-map", "delete", "claude-opus-5-5"],
    ));
    assert_eq!(deleted["deleted"], true);
    assert!(
        !admin(data, &["model-map", "delete", "claude-opus-5-5"])
            .status
            .success()
    );
}

#[test]
fn admins_are_created_with_a_password_from_stdin_and_only_its_hash_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let password = "CANARYADMINpassphrase 42";
    let created = json(&admin_with_stdin(
        dir.path(),
        &["--json", "admin", "create", "--username", "Ops"],
        &format!("{password}\n"),
    ));
    assert_eq!(created["username"], "ops");

    // Too short, a taken name (any case), a bad name: refused with one line, exit non-zero.
    for (args, stdin) in [
        (vec!["admin", "create", "--username", "other"], "short\n"),
        (
            vec!["admin", "create", "--username", "OPS"],
            "another long passphrase\n",
        ),
        (
            vec!["admin", "create", "--username", "bad name"],
            "another long passphrase\n",
        ),
    ] {
        let out = admin_with_stdin(dir.path(), &args, stdin);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("passphrase"), "{stderr}");
    }

    let changed = json(&admin_with_stdin(
        dir.path(),
        &["--json", "admin", "set-password", "--username", "ops"],
        "a brand new passphrase\n",
    ));
    assert_eq!(changed["password_changed"], true);

    let files = String::from_utf8_lossy(&read_all_files(dir.path())).into_owned();
    assert!(files.contains("$argon2id$"), "the hash is stored");
    for secret in [password, "CANARYADMIN", "brand new passphrase"] {
        assert!(!files.contains(secret), "{secret} is stored in clear");
    }
}

#[test]
fn keys_are_rotated_with_a_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    create_user(data, "Rae", "rae@example.com");
    let issued = json(&admin(
        data,
        &["--json", "key", "issue", "--user", "rae@example.com"],
    ));
    let old_id = issued["id"].as_str().unwrap();
    let rotated = json(&admin(
        data,
        &["--json", "key", "rotate", old_id, "--grace-secs", "600"],
    ));
    let new_key = rotated["key"].as_str().unwrap();
    assert!(ccp_core::keys::AccessKey::parse(new_key).is_ok());
    assert_ne!(new_key, issued["key"].as_str().unwrap());
    assert_eq!(rotated["old_id"], issued["id"]);
    let until: chrono::DateTime<chrono::Utc> = rotated["old_key_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = (until - chrono::Utc::now()).num_seconds();
    assert!((590..=600).contains(&left), "{left}");
    // A rotated key cannot be rotated again; the new one can.
    let again = admin(data, &["key", "rotate", old_id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("rotated"));
    let new_id = rotated["id"].as_str().unwrap();
    assert!(admin(data, &["key", "rotate", new_id]).status.success());
}

/// Against PostgreSQL (filtered out with the other PostgreSQL tests when none answers).
mod postgres {
    use sqlx::ConnectOptions;
    use sqlx::postgres::PgConnectOptions;
    use std::process::Command;

    /// What ECS injects from Aurora's secret: the database named by its pieces, the password
    /// one a lenient parser would have read as a number. A fresh database, dropped after.
    #[tokio::test]
    async fn the_database_can_be_named_by_the_pieces_of_its_secret() {
        let url = std::env::var("CCP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let server: PgConnectOptions = url.parse().unwrap();
        let mut conn = server.connect().await.expect("the test PostgreSQL");
        let name = format!("ccp_cli_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_ccp-admin"))
                .args(args)
                .env_clear()
                .env("CCP_DATA_DIR", dir.path())
                .env("CCP_DATABASE_HOST", server.get_host())
                .env("CCP_DATABASE_PORT", server.get_port().to_string())
                .env("CCP_DATABASE_USERNAME", server.get_username())
                .env("CCP_DATABASE_PASSWORD", "12345")
                .env("CCP_DATABASE_NAME", &name)
                .env("CCP_PEPPER", "a-pepper-for-the-cli-test-0123456789")
                .output()
                .unwrap()
        };
        let migrated = run(&["migrate"]);
        let created = run(&[
            "--json",
            "user",
            "create",
            "--name",
            "Pg",
            "--email",
            "pg@example.com",
        ]);
        let mut db = server.clone().database(&name).connect().await.unwrap();
        let users: i64 =
            sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'pg@example.com'")
                .fetch_one(&mut db)
                .await
                .unwrap_or(-1);
        drop(db);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        assert!(
            migrated.status.success(),
            "{}",
            String::from_utf8_lossy(&migrated.stderr)
        );
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        assert_eq!(users, 1);
    }
}

#[test]
fn routing_and_budget_are_set_from_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    create_user(data, "Ada", "ada@example.com");
    let set = json(&admin(
        data,
        &[
            "--json",
            "user",
            "set",
            "ada@example.com",
            "--routing",
            "bedrock_only",
            "--budget-usd",
            "12.5",
        ],
    ));
    assert_eq!(set["user"]["routing"], "bedrock_only");
    assert_eq!(set["monthly_budget_usd"], "12.50");
    assert_eq!(set["spend_usd"], "0.00");
    assert_eq!(set["budget"]["state"], "within");

    let text = admin(data, &["user", "show", "ada@example.com"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("routing: bedrock_only"), "{text}");
    assert!(
        text.contains("monthly Bedrock budget: $12.50 (warning at 80 %)"),
        "{text}"
    );

    let removed = json(&admin(
        data,
        &[
            "--json",
            "user",
            "set",
            "ada@example.com",
            "--budget-usd",
            "none",
        ],
    ));
    assert_eq!(removed["monthly_budget_usd"], serde_json::Value::Null);
    assert_eq!(removed["budget"]["state"], "no_budget");

    for (bad, says) in [
        (
            &["user", "set", "ada@example.com", "--budget-usd", "12,50"][..],
            "not a dollar amount",
        ),
        (&["user", "set", "ada@example.com"], "nothing to change"),
        (
            &["user", "set", "nobody@example.com", "--budget-usd", "1"],
            "no user",
        ),
    ] {
        let out = admin(data, bad);
        assert!(!out.status.success(), "{bad:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
    // An unknown routing is refused by the argument parser, naming the choices.
    let out = admin(
        data,
        &["user", "set", "ada@example.com", "--routing", "sideways"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("plan_first"));
}

#[test]
fn rollups_are_rebuilt_from_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert!(admin(data, &["migrate"]).status.success());
    let rebuilt = json(&admin(
        data,
        &["--json", "usage", "rebuild-rollups", "--from", "2026-11-01"],
    ));
    assert_eq!(rebuilt["rollup_rows"], 0);
    assert_eq!(rebuilt["from"], "2026-11-01T00:00:00Z");
    let bad = admin(data, &["usage", "rebuild-rollups", "--from", "last week"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected a date"));
}
