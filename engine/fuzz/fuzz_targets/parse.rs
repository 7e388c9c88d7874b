#![no_main]
//! The body is `msrp_engine::fuzzing::parse`: its documentation says what the
//! input means and what is checked; `tests/fuzz_corpora.rs` replays the
//! corpus through the same function on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| msrp_engine::fuzzing::parse(data));
