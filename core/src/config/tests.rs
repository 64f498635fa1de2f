//! The settings: defaults, validation messages, secrets kept out of output, and the
//! settings list kept in step with the raw shape and docs/configuration.md.

use super::*;

#[test]
fn defaults_are_the_embedded_setup() {
    let c = Config::from_pairs(&[]).unwrap();
    assert!(c.is_sqlite());
    assert_eq!(c.gateway_addr.to_string(), "0.0.0.0:8080");
    assert_eq!(c.plan_base_url.host, "api.anthropic.com");
    assert!(c.plan_base_url.tls);
    assert_eq!(c.plan_base_url.port, 443);
    assert_eq!(c.max_body_bytes, 32 * 1024 * 1024);
    assert!(c.key_cache_ttl <= Duration::from_secs(60));
    assert!(matches!(c.pepper, SecretSource::DataDir(_)));
    assert_eq!(
        c.key_wrapper,
        WrapperSetting::Local {
            key_file: PathBuf::from("data/wrap.key"),
            create: true
        }
    );
    assert_eq!(c.circuit.threshold, 3);
    assert_eq!(c.circuit.window, Duration::from_secs(60));
    assert_eq!(c.circuit.open_for, Duration::from_secs(1800));
}

#[test]
fn key_wrapper_choices() {
    let pg = [
        ("database_url", "postgres://db/ccp"),
        ("pepper", &"p".repeat(40)),
    ];
    let c = Config::from_pairs(&pg).unwrap();
    assert_eq!(c.key_wrapper, WrapperSetting::Unconfigured);
    let mut kms = pg.to_vec();
    kms.extend([("key_wrapper", "kms"), ("kms_key_id", "alias/ccp")]);
    assert_eq!(
        Config::from_pairs(&kms).unwrap().key_wrapper,
        WrapperSetting::Kms {
            key_id: "alias/ccp".into(),
            endpoint: None
        }
    );
    let mut local = pg.to_vec();
    local.push(("key_wrapper", "local"));
    let err = Config::from_pairs(&local).unwrap_err().to_string();
    assert!(err.contains("CCP_WRAP_KEY_FILE"), "{err}");
    local.push(("wrap_key_file", "/run/secrets/wrap.key"));
    assert!(matches!(
        Config::from_pairs(&local).unwrap().key_wrapper,
        WrapperSetting::Local { create: false, .. }
    ));
    for (pairs, setting) in [
        (vec![("key_wrapper", "kms")], "CCP_KMS_KEY_ID"),
        (vec![("key_wrapper", "vault")], "CCP_KEY_WRAPPER"),
        (
            vec![("circuit_failure_threshold", "0")],
            "CCP_CIRCUIT_FAILURE_THRESHOLD",
        ),
        (vec![("circuit_open_secs", "0")], "CCP_CIRCUIT_OPEN_SECS"),
    ] {
        let err = Config::from_pairs(&pairs).unwrap_err().to_string();
        assert!(err.contains(setting), "{err}");
    }
}

#[test]
fn session_secret_is_generated_only_for_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let embedded = Config::from_pairs(&[("data_dir", &data)]).unwrap();
    let first = embedded.load_session_secret().unwrap();
    let again = embedded.load_session_secret().unwrap();
    assert_eq!(first.expose(), again.expose());
    assert_eq!(first.expose().len(), 64);
    let pg = Config::from_pairs(&[
        ("database_url", "postgres://db/ccp"),
        ("pepper", &"p".repeat(40)),
    ])
    .unwrap();
    let err = pg.load_session_secret().unwrap_err().to_string();
    assert!(err.contains("CCP_SESSION_SECRET"), "{err}");
    assert_eq!(pg.session_ttl, Duration::from_secs(3600));
    assert_eq!(pg.console_origin, None);
}

#[test]
fn postgres_without_pepper_is_refused() {
    let err = Config::from_pairs(&[("database_url", "postgres://db/ccp")]).unwrap_err();
    assert!(err.to_string().contains("CCP_PEPPER"), "{err}");
}

#[test]
fn bad_values_name_their_setting() {
    for (pairs, setting) in [
        (vec![("gateway_addr", "nope")], "CCP_GATEWAY_ADDR"),
        (vec![("plan_base_url", "ftp://x")], "CCP_PLAN_BASE_URL"),
        (vec![("database_url", "mysql://x")], "CCP_DATABASE_URL"),
        (vec![("pepper", "short")], "CCP_PEPPER"),
        (vec![("log_format", "xml")], "CCP_LOG_FORMAT"),
        (vec![("key_cache_ttl_secs", "0")], "CCP_KEY_CACHE_TTL_SECS"),
        (vec![("session_ttl_secs", "3601")], "CCP_SESSION_TTL_SECS"),
        (vec![("session_secret", "short")], "CCP_SESSION_SECRET"),
        (vec![("bootstrap_secret", "short")], "CCP_BOOTSTRAP_SECRET"),
        (
            vec![("console_origin", "https://console.example.com/app")],
            "CCP_CONSOLE_ORIGIN",
        ),
        (
            vec![("console_origin", "console.example.com")],
            "CCP_CONSOLE_ORIGIN",
        ),
        (
            vec![("key_rotation_grace_secs", "2592001")],
            "CCP_KEY_ROTATION_GRACE_SECS",
        ),
    ] {
        let err = Config::from_pairs(&pairs).unwrap_err().to_string();
        assert!(err.contains(setting), "{err}");
    }
}

#[test]
fn database_url_from_the_pieces_of_a_managed_secret() {
    let parts = [
        (
            "database_host",
            "db.cluster-abc.us-east-1.rds.amazonaws.com",
        ),
        ("database_port", "5433"),
        ("database_username", "ccp_app"),
        ("database_password", "p@ss:w/rd?#%CANARYPW"),
        ("database_name", "ccp"),
        ("pepper", "p".repeat(40).leak()),
    ];
    let c = Config::from_pairs(&parts).unwrap();
    let url = c.database_url.expose();
    assert_eq!(
        url,
        "postgres://ccp%5Fapp:p%40ss%3Aw%2Frd%3F%23%25CANARYPW@db.cluster-abc.us-east-1.rds.amazonaws.com:5433/ccp"
    );
    // The URL parses back to the same pieces.
    let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    assert_eq!(
        opts.get_host(),
        "db.cluster-abc.us-east-1.rds.amazonaws.com"
    );
    assert_eq!(opts.get_port(), 5433);
    assert_eq!(opts.get_username(), "ccp_app");
    assert_eq!(opts.get_database(), Some("ccp"));
    assert!(!format!("{c:?}").contains("CANARYPW"));
    // Defaults: port 5432, database postgres.
    let c = Config::from_pairs(&[
        ("database_host", "10.0.0.5"),
        ("database_username", "u"),
        ("database_password", "pw"),
        ("pepper", "p".repeat(40).leak()),
    ])
    .unwrap();
    assert_eq!(
        c.database_url.expose(),
        "postgres://u:pw@10.0.0.5:5432/postgres"
    );
}

#[test]
fn database_passwords_are_taken_as_written() {
    // Generated passwords may look like numbers, booleans or lists to a lenient parser.
    for password in ["12345", "true", "[abc]", "{x}", "-1.5e3", "a,b"] {
        let c = Config::from_pairs(&[
            ("database_host", "db"),
            ("database_username", "u"),
            ("database_password", password),
            ("pepper", "p".repeat(40).leak()),
        ])
        .unwrap_or_else(|e| panic!("{password}: {e}"));
        let opts: sqlx::postgres::PgConnectOptions = c.database_url.expose().parse().unwrap();
        assert_eq!(opts.get_host(), "db", "{password}");
        let encoded =
            percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert!(
            c.database_url.expose().contains(&format!(":{encoded}@")),
            "{password}"
        );
    }
}

#[test]
fn database_pieces_are_all_or_nothing() {
    for (pairs, setting) in [
        (
            vec![("database_host", "db"), ("database_password", "pw")],
            "CCP_DATABASE_USERNAME",
        ),
        (
            vec![("database_host", "db"), ("database_username", "u")],
            "CCP_DATABASE_PASSWORD",
        ),
        (vec![("database_password", "pw")], "CCP_DATABASE_HOST"),
        (
            vec![
                ("database_host", "db/evil?x="),
                ("database_username", "u"),
                ("database_password", "p"),
            ],
            "CCP_DATABASE_HOST",
        ),
        (
            vec![
                ("database_url", "postgres://db/ccp"),
                ("database_host", "db"),
                ("database_username", "u"),
                ("database_password", "p"),
            ],
            "CCP_DATABASE_URL",
        ),
    ] {
        let err = Config::from_pairs(&pairs).unwrap_err().to_string();
        assert!(err.contains(setting), "{pairs:?}: {err}");
        assert!(!err.contains("pw"), "no password in the message: {err}");
    }
}

#[test]
fn secrets_do_not_show_in_debug() {
    let c = Config::from_pairs(&[
        ("plan_api_key", "sk-ant-CANARYCT-123"),
        ("pepper", "CANARYPEPPER-CANARYPEPPER-CANARYPEPPER"),
        ("database_url", "postgres://u:CANARYPW@db/ccp"),
    ])
    .unwrap();
    let debug = format!("{c:?}");
    for canary in ["CANARYCT", "CANARYPEPPER", "CANARYPW"] {
        assert!(!debug.contains(canary), "{canary} leaked: {debug}");
    }
}

#[test]
fn upstream_url_parts() {
    let u = UpstreamUrl::parse("http://127.0.0.1:9999/prefix/").unwrap();
    assert_eq!(
        (u.tls, u.host.as_str(), u.port, u.base_path.as_str()),
        (false, "127.0.0.1", 9999, "/prefix")
    );
    assert_eq!(u.authority(), "127.0.0.1:9999");
    assert_eq!(
        UpstreamUrl::parse("https://api.anthropic.com")
            .unwrap()
            .authority(),
        "api.anthropic.com"
    );
    assert!(UpstreamUrl::parse("https://user:pw@host").is_err());
}

#[test]
fn toml_file_and_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ccp.toml");
    std::fs::write(&path, "gateway_addr = \"127.0.0.1:9000\"\nthreads = 3\n").unwrap();
    let c = Config::load(Some(&path), Env::prefixed("CCP_UNUSED_IN_TEST_"), &[]).unwrap();
    assert_eq!(c.gateway_addr.port(), 9000);
    assert_eq!(c.threads, 3);
    std::fs::write(&path, "gatway_addr = \"127.0.0.1:9000\"\n").unwrap();
    assert!(Config::load(Some(&path), Env::prefixed("CCP_UNUSED_IN_TEST_"), &[]).is_err());
}

#[test]
fn the_settings_list_the_raw_shape_and_the_docs_agree() {
    use std::collections::BTreeSet;
    let listed: BTreeSet<String> = KEYS.iter().map(|k| (*k).to_owned()).collect();
    let raw = serde_json::to_value(raw::RawConfig::default()).unwrap();
    let fields: BTreeSet<String> = raw.as_object().unwrap().keys().cloned().collect();
    assert_eq!(listed, fields, "KEYS and RawConfig's fields differ");
    assert!(VERBATIM.iter().all(|k| listed.contains(*k)));

    let docs = include_str!("../../../docs/configuration.md");
    let documented: BTreeSet<String> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("| `CCP_"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_ascii_lowercase)
        .collect();
    // Read elsewhere: the file these settings may come from, the log filter, and the
    // console's own settings (console/src/lib/settings.ts, api.ts, its server).
    let elsewhere: BTreeSet<String> = [
        "config",
        "log",
        "console_addr",
        "console_admin_api_url",
        "console_gateway_url",
        "console_time_zone",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let missing: Vec<_> = listed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "settings docs/configuration.md does not document: {missing:?}"
    );
    let unknown: Vec<_> = documented
        .difference(&listed)
        .filter(|k| !elsewhere.contains(*k))
        .collect();
    assert!(
        unknown.is_empty(),
        "documented settings nothing reads: {unknown:?}"
    );
}
