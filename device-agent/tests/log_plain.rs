//! The agent's log on a pipe is plain text: under systemd stderr is the journal, where ANSI
//! colour codes would be stored as escape bytes. Colour is for a terminal only. The real binary,
//! its stderr piped.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;

mod common;
use common::process::{run_command, AgentProcess};
use common::NO_LWA;

#[test]
fn the_log_on_a_pipe_has_no_escape_codes() {
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentProcess::spawn(
        run_command(&dir.path().join("state"), NO_LWA, "LOG-PLAIN-1")
            .env("AVS_AGENT_LOG", "debug")
            .stderr(Stdio::piped()),
    );
    let log = agent.terminate_and_read_log();
    // The log said something (levels are words), and none of it is an escape sequence.
    assert!(log.contains("INFO"), "no log lines on stderr: {log:?}");
    assert!(
        !log.contains('\u{1b}'),
        "ESC in the piped log: {:?}",
        log.lines().find(|l| l.contains('\u{1b}'))
    );
}
