//! Outside clients against the emulator: its own binary (READY line, --log, browse), curl in the
//! AVS tutorial's shape, and a stock Python OAuth 2.0 client.

// Helpers outside #[test] functions panic on purpose when something misbehaves.
#![allow(clippy::unwrap_used)]

mod binary;
mod curl;
mod python;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

/// A running `lwa-emulator` process, killed on drop.
#[derive(Debug)]
pub struct EmulatorProcess {
    pub child: Child,
    pub base_url: String,
    pub ca: Option<String>,
    pub stderr: Option<ChildStderr>,
}

/// Spawns the binary and waits (with a deadline) for its READY line.
pub async fn spawn_emulator(args: &[&str]) -> EmulatorProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lwa-emulator"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn lwa-emulator");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("READY line within 20 s")
        .unwrap()
        .expect("a line on stdout");
    let mut fields = line.split(' ');
    assert_eq!(fields.next(), Some("LWA_EMULATOR_READY"), "{line}");
    let mut base_url = None;
    let mut ca = None;
    for field in fields {
        match field.split_once('=') {
            Some(("base_url", v)) => base_url = Some(v.to_owned()),
            Some(("ca", v)) => ca = Some(v.to_owned()),
            _ => panic!("unexpected field in {line}"),
        }
    }
    let stderr = child.stderr.take();
    EmulatorProcess {
        child,
        base_url: base_url.expect("base_url"),
        ca,
        stderr,
    }
}

impl EmulatorProcess {
    /// SIGTERM, then the exit status and everything it wrote to stderr.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut stderr = String::new();
        if let Some(mut pipe) = self.stderr.take() {
            tokio::time::timeout(Duration::from_secs(20), pipe.read_to_string(&mut stderr))
                .await
                .expect("stderr closes")
                .unwrap();
        }
        let exit = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap();
        (exit, stderr)
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}
