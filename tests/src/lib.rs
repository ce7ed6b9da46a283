//! The avs-pair test network harness, shared by the end-to-end tests and the demo.
//!
//! - [`netns`]: a virtual home network of Linux network namespaces and veth links, removed on
//!   drop, panic and Ctrl-C.
//! - [`process`]: child processes with captured output and readiness lines.
//! - [`cleanup`]: the process-wide record that makes Ctrl-C leave nothing behind.
//! - [`bins`]: finding (or building) the real binaries.
//! - [`bench_args`]: the bench binaries' positional numbers.
//! - [`stack`]: starting the emulator and device agents, in a namespace or on loopback.
//! - [`demo`]: the one-command demo (`avs-pair-demo`).
//! - [`soak`]: the refresh soak (the agent process through thousands of refresh cycles with
//!   faults), for `tests/tests/soak.rs` and `avs-soak`.
//! - [`gatt_model`]: an agent's GATT service on the in-process GATT model.
//! - [`companion`]: the companion library as the BLE and Wi-Fi suites drive it (discovery over a
//!   model central, `pair()` with the scripted user, a scripted Wi-Fi chooser).
//! - [`world`]: namespaces + in-process emulator + agents + companion library, for e2e tests
//!   and the bench.

pub mod bench_args;
pub mod bins;
pub mod cleanup;
pub mod companion;
pub mod demo;
pub mod gatt_model;
pub mod netns;
pub mod process;
pub mod soak;
pub mod stack;
pub mod world;
