//! The real `avs-device-agent` binary as a child process, for the tests that need what only a
//! process has: its READY line, its log on stderr, signals, being SIGKILLed mid-write. One
//! command line and one READY reader, so that every such test starts the agent the same way
//! (and a new `run` setting is added here once).

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use lwa_emulator::registry::{DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID};

use super::CODE;

pub const BIN: &str = env!("CARGO_BIN_EXE_avs-device-agent");

/// `avs-device-agent run` for the emulator's default product and device client id, LWA at
/// `lwa`, state in `state`: the link on an ephemeral loopback port, no mDNS, no BLE, setup code
/// [`CODE`], log `warn`, not under systemd. Callers override any of these with `.env(…)`.
pub fn run_command(state: &Path, lwa: &str, dsn: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .env("AVS_AGENT_PRODUCT_ID", DEFAULT_PRODUCT_ID)
        .env("AVS_AGENT_CLIENT_ID", DEFAULT_DEVICE_CLIENT_ID)
        .env("AVS_AGENT_DSN", dsn)
        .env("AVS_AGENT_LWA_BASE_URL", lwa)
        .env("AVS_AGENT_STATE_DIR", state)
        .env("AVS_AGENT_LINK_BIND", "127.0.0.1:0")
        .env("AVS_AGENT_MDNS", "false")
        .env("AVS_AGENT_BLE", "false")
        .env("AVS_AGENT_SETUP_CODE", CODE)
        .env("AVS_AGENT_LOG", "warn")
        .env_remove("NOTIFY_SOCKET");
    cmd
}

/// A running agent that has printed its READY line; SIGKILLed and reaped when dropped, so an
/// assertion that fails leaves no process behind.
pub struct AgentProcess {
    pub child: Child,
    /// The `AVS_AGENT_READY …` line.
    pub ready: String,
    /// What the agent printed on stdout before its READY line.
    pub printed: Vec<String>,
    /// The rest of its stdout, line by line.
    pub stdout: Receiver<String>,
}

impl AgentProcess {
    /// Spawns `cmd` with stdout piped (stderr as the caller set it) and waits, with a deadline,
    /// for the READY line.
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("agent spawns");
        let stdout = lines(child.stdout.take().expect("piped stdout"));
        let mut printed = Vec::new();
        let ready = loop {
            let line = stdout
                .recv_timeout(Duration::from_secs(30))
                .expect("the agent prints its READY line");
            if line.starts_with("AVS_AGENT_READY ") {
                break line;
            }
            printed.push(line);
        };
        Self {
            child,
            ready,
            printed,
            stdout,
        }
    }

    /// The READY line's `key=value` field.
    pub fn field(&self, key: &str) -> String {
        self.ready
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in {}", self.ready))
            .to_owned()
    }

    /// The link's address (TCP).
    pub fn link(&self) -> SocketAddr {
        self.field("link").parse().unwrap()
    }

    /// The local API's socket path.
    pub fn socket(&self) -> String {
        self.field("socket")
    }

    /// Sends `sig` (e.g. `-TERM`) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        assert!(Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success());
    }

    /// SIGTERM, then everything the agent wrote on stderr (which the caller piped) until it
    /// exited.
    pub fn terminate_and_read_log(mut self) -> String {
        use std::io::Read as _;
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut log)
            .unwrap();
        let _ = self.child.wait();
        log
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `from`'s lines on a channel (a thread reads them), to wait on with a deadline.
pub fn lines(from: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
