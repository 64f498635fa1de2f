#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ccp_core::fuzzing::response_translator(data));
