//! Golden translation pairs: every `request_*.anthropic.json` under
//! `fixtures/translate/golden/` must translate to its `.converse.json`, and every
//! `response_*.converse.json` to its `.anthropic.json`. Each expected file was written by
//! hand from the mapping in docs/architecture.md, not captured from the code.

#![allow(clippy::unwrap_used)]

use ccp_core::translate::request::{TranslateOptions, anthropic_to_converse};
use ccp_core::translate::response::converse_to_anthropic;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/translate/golden")
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_golden_pair_translates_exactly() {
    let options = TranslateOptions {
        max_output_tokens: 64_000,
        betas: &[],
        prompt_caching: true,
        strip_thinking: false,
    };
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let (mut requests, mut responses) = (0, 0);
    for name in &names {
        let (input, expected) = if let Some(stem) = name
            .strip_prefix("request_")
            .and_then(|n| n.strip_suffix(".anthropic.json"))
        {
            requests += 1;
            let input = read(&dir().join(name));
            let got = anthropic_to_converse(&input, &options).unwrap();
            (got, dir().join(format!("request_{stem}.converse.json")))
        } else if let Some(stem) = name
            .strip_prefix("response_")
            .and_then(|n| n.strip_suffix(".converse.json"))
        {
            responses += 1;
            let body = std::fs::read(dir().join(name)).unwrap();
            let got = converse_to_anthropic(&body, "msg_bdrk_golden", "claude-sonnet-4-5").unwrap();
            (got, dir().join(format!("response_{stem}.anthropic.json")))
        } else {
            continue;
        };
        let want = read(&expected);
        assert_eq!(
            input,
            want,
            "{name}\n got: {}\nwant: {}",
            serde_json::to_string_pretty(&input).unwrap(),
            serde_json::to_string_pretty(&want).unwrap()
        );
    }
    assert!(requests >= 2 && responses >= 1, "the pairs were found");
}
