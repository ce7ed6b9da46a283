//! The real binary on a state directory it cannot use: a second agent on the same directory is
//! refused with the first one's pid (not a misleading "address in use"), and a directory it
//! cannot write is named with the fix. Exact stderr and exit codes.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lwa_emulator::registry::{DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID};

const BIN: &str = env!("CARGO_BIN_EXE_avs-device-agent");

/// `avs-device-agent run` on `state`, logs off (stderr holds only the final error).
fn agent(state: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .env("AVS_AGENT_PRODUCT_ID", DEFAULT_PRODUCT_ID)
        .env("AVS_AGENT_CLIENT_ID", DEFAULT_DEVICE_CLIENT_ID)
        .env("AVS_AGENT_DSN", "STATE-DIR-TEST")
        // Never contacted: the agent is not linked and no test here links it.
        .env("AVS_AGENT_LWA_BASE_URL", "http://127.0.0.1:9")
        .env("AVS_AGENT_STATE_DIR", state)
        .env("AVS_AGENT_LINK_BIND", "127.0.0.1:0")
        .env("AVS_AGENT_MDNS", "false")
        .env("AVS_AGENT_BLE", "false")
        .env("AVS_AGENT_LOG", "off")
        .env("AVS_AGENT_SETUP_CODE", "24681357")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null());
    cmd
}

/// Kills the first agent even when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_second_agent_on_the_same_state_dir_names_the_first_ones_pid() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut first = Running(
        agent(&state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = first.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the first agent's READY line");
        if line.starts_with("AVS_AGENT_READY ") {
            break;
        }
    }

    let second = agent(&state).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&second.stderr).trim_end(),
        format!(
            "avs-device-agent: another avs-device-agent (pid {}) is using this state dir {}",
            first.0.id(),
            state.display()
        )
    );
    assert_eq!(second.status.code(), Some(1));
    // The first agent is untouched: still running, its lock file holds its pid.
    assert!(first.0.try_wait().unwrap().is_none());
    assert_eq!(
        std::fs::read_to_string(state.join("agent.lock")).unwrap(),
        format!("{}\n", first.0.id())
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
