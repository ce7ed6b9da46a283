//! Tests that re-execute their own binary to run one ignored test as a child process (a store
//! writer to kill at random, a writer to trace with strace): the parent passes a directory in
//! an environment variable; run as a plain test (no variable) the child test does nothing.

use std::path::Path;

/// Runs `body` with the directory the parent passed in `env`, when this process is such a
/// child; does nothing otherwise.
pub fn as_child(env: &str, body: impl FnOnce(&Path)) {
    if let Some(dir) = std::env::var_os(env) {
        body(Path::new(&dir));
    }
}

/// The arguments that make this test binary run only the ignored test `name`, with its output.
pub fn args(name: &str) -> [&str; 6] {
    [
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ]
}
