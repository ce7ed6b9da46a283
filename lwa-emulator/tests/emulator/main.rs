//! Integration tests of the emulator's HTTP API, over real HTTP on loopback ports.

// Helpers outside #[test] functions panic on purpose when the emulator misbehaves.
#![allow(clippy::unwrap_used)]

mod authorize;
mod authorize_rules;
mod cbl;
mod codepair_rules;
mod common;
mod errors;
mod faults;
mod https;
mod observe;
mod resources;
mod signin_consent;
mod start;
mod token;
