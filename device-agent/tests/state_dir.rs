//! The real binary on a state directory it cannot use: a second agent on the same directory is
//! refused with the first one's pid (not a misleading "address in use"), and a directory it
//! cannot write is named with the fix. Exact stderr and exit codes.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::process::{run_command, AgentProcess};
use common::NO_LWA;

/// `avs-device-agent run` on `state`, logs off (stderr holds only the final error). Its LWA is
/// never contacted: the agent is not linked and no test here links it.
fn agent(state: &Path) -> Command {
    let mut cmd = run_command(state, NO_LWA, "STATE-DIR-TEST");
    cmd.env("AVS_AGENT_LOG", "off").stdin(Stdio::null());
    cmd
}

#[test]
fn a_second_agent_on_the_same_state_dir_names_the_first_ones_pid() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut first = AgentProcess::spawn(agent(&state).stderr(Stdio::null()));

    let second = agent(&state).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&second.stderr).trim_end(),
        format!(
            "avs-device-agent: another avs-device-agent (pid {}) is using this state dir {}",
            first.child.id(),
            state.display()
        )
    );
    assert_eq!(second.status.code(), Some(1));
    // The first agent is untouched: still running, its lock file holds its pid.
    assert!(first.child.try_wait().unwrap().is_none());
    assert_eq!(
        std::fs::read_to_string(state.join("agent.lock")).unwrap(),
        format!("{}\n", first.child.id())
    );
}

#[test]
fn a_state_dir_it_cannot_write_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let mut cmd = agent(&state);
    if nix::unistd::geteuid().is_root() {
        // Root ignores permission bits: run the agent as `nobody`, in a directory root owns.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        cmd.uid(65534).gid(65534);
    } else {
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let out = cmd.output().unwrap();
    // Let the tempdir be removed.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "avs-device-agent: cannot write {0}: permission denied; give the user the agent runs \
             as write access to it (e.g. chown that user {0}) or set state_dir to a directory it \
             can write",
            state.display()
        )
    );
    assert_eq!(out.status.code(), Some(1));
}
