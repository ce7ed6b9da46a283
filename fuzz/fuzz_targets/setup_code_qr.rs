//! cargo-fuzz entry point: the input and the invariants are in `checks/setup_code_qr.rs` (the CI replays
//! the committed seeds through the same check on stable: `tests/tests/fuzz_seeds.rs`).
#![no_main]

#[path = "../checks/setup_code_qr.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
