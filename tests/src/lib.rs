//! The avs-pair test network harness, shared by the end-to-end tests and the demo.
//!
//! - [`netns`]: a virtual home network of Linux network namespaces and veth links, removed on
//!   drop, panic and Ctrl-C.
//! - [`process`]: child processes with captured output and readiness lines.
//! - [`cleanup`]: the process-wide record that makes Ctrl-C leave nothing behind.

pub mod cleanup;
pub mod netns;
pub mod process;
