//! Integration tests of the emulator's HTTP API, over real HTTP on loopback ports.

mod authorize;
mod cbl;
mod common;
mod resources;
mod token;
