//! Replays the committed cargo-fuzz corpus (fuzz/corpus/<target>/) through the same entry
//! points the fuzzers run, so every interesting input found so far is checked on each test
//! run, on stable Rust.

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the {target} corpus is empty");
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
    eprintln!("{target}: {} corpus inputs replayed", files.len());
}

#[test]
fn eventstream_decoder_corpus() {
    replay(
        "eventstream_decoder",
        ccp_core::fuzzing::eventstream_decoder,
    );
}

#[test]
fn stream_translator_corpus() {
    replay("stream_translator", ccp_core::fuzzing::stream_translator);
}

#[test]
fn request_translator_corpus() {
    replay("request_translator", ccp_core::fuzzing::request_translator);
}

#[test]
fn response_translator_corpus() {
    replay(
        "response_translator",
        ccp_core::fuzzing::response_translator,
    );
}
