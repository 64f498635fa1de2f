//! `ccp-gateway --check-config`: the effective settings with secrets redacted, or the invalid
//! setting named and exit code 2. Nothing is opened or served.

use std::process::Command;

fn check(env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ccp-gateway"))
        .arg("--check-config")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run ccp-gateway")
}

#[test]
fn prints_the_effective_settings_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pepper = "CANARYpepper0123456789abcdefghijklmnop";
    let out = check(&[
        ("CCP_DATA_DIR", dir.path().to_str().expect("utf-8 path")),
        ("CCP_PEPPER", pepper),
        ("CCP_HEADER_TIMEOUT_SECS", "12"),
        ("CCP_PLAN_API_KEY", "sk-ant-CANARYplanapikey"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("header_timeout: 12s"), "{text}");
    assert!(text.contains("the settings are valid"), "{text}");
    assert!(!text.contains("CANARY"), "a secret was printed:\n{text}");
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "checking wrote nothing"
    );
}

#[test]
fn an_invalid_setting_is_named_with_exit_code_2() {
    let out = check(&[("CCP_THREADS", "0")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CCP_THREADS must be at least 1"), "{err}");
    assert!(out.stdout.is_empty());
}
