//! The agent's log on a pipe is plain text: under systemd stderr is the journal, where ANSI
//! colour codes would be stored as escape bytes. Colour is for a terminal only. The real binary,
//! its stderr piped.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_avs-device-agent");

#[test]
fn the_log_on_a_pipe_has_no_escape_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("run")
        .env("AVS_AGENT_PRODUCT_ID", "log_plain_test")
        .env("AVS_AGENT_DSN", "LOG-PLAIN-1")
        .env("AVS_AGENT_LWA_BASE_URL", "http://127.0.0.1:9")
        .env("AVS_AGENT_STATE_DIR", dir.path().join("state"))
        .env("AVS_AGENT_LINK_BIND", "127.0.0.1:0")
        .env("AVS_AGENT_MDNS", "false")
        .env("AVS_AGENT_BLE", "false")
        .env("AVS_AGENT_SETUP_CODE", "24681357")
        .env("AVS_AGENT_LOG", "debug")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    while !ready.starts_with("AVS_AGENT_READY ") {
        ready.clear();
        assert!(stdout.read_line(&mut ready).unwrap() > 0, "no READY line");
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = child.wait();
    // The log said something (levels are words), and none of it is an escape sequence.
    assert!(log.contains("INFO"), "no log lines on stderr: {log:?}");
    assert!(
        !log.contains('\u{1b}'),
        "ESC in the piped log: {:?}",
        log.lines().find(|l| l.contains('\u{1b}'))
    );
}
