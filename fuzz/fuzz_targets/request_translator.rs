#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ccp_core::fuzzing::request_translator(data));
