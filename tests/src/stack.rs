//! Starting the real processes of an avs-pair setup: the LWA emulator and device agents, in the
//! root namespace (loopback) or inside a [`TestNet`] host, waiting for their readiness lines.
//!
//! Readiness is the line each binary prints once it serves (`LWA_EMULATOR_READY base_url=… [ca=…]`,
//! `AVS_AGENT_READY device_id=… link=… socket=…`), waited for with a deadline: no sleeps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shared_protocol::setup_code::SetupCode;

use crate::netns::TestNet;
use crate::process::{ManagedProcess, Stream};

/// How long a process may take to print its readiness line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a process runs.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// The root network namespace (loopback only: never mDNS here).
    Root {
        /// Where its logs go.
        log_dir: &'a Path,
    },
    /// A host of a test network.
    Host {
        /// The network.
        net: &'a TestNet,
        /// The host's name.
        host: &'a str,
    },
}

impl Place<'_> {
    /// A command for `program` that will run here.
    pub fn command(&self, program: &Path) -> Result<Command, StackError> {
        match self {
            Place::Root { .. } => Ok(Command::new(program)),
            Place::Host { net, host } => Ok(net.command(host, program)?),
        }
    }

    /// Starts it with captured output.
    pub fn spawn(&self, command: Command, label: &str) -> Result<ManagedProcess, StackError> {
        match self {
            Place::Root { log_dir } => Ok(ManagedProcess::spawn(command, label, log_dir)?),
            Place::Host { net, .. } => Ok(net.spawn(command, label)?),
        }
    }

    /// True when this is a network-namespace host.
    pub fn is_namespaced(&self) -> bool {
        matches!(self, Place::Host { .. })
    }
}

/// A failure starting or talking to a process.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The network harness failed.
    #[error(transparent)]
    Net(#[from] crate::netns::NetError),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The process did not get ready.
    #[error(transparent)]
    Wait(#[from] crate::process::WaitError),
    /// Its readiness line did not parse.
    #[error("readiness line {line:?}: {problem}")]
    Parse {
        /// The line as printed.
        line: String,
        /// What is wrong with it.
        #[source]
        problem: ReadyLineError,
    },
    /// A CLI call exited unsuccessfully.
    #[error("avs-device-agent {verb} failed ({status}): {output}")]
    Cli {
        /// The verb run (`status`, `pair`, …).
        verb: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// Its stdout then stderr, trimmed.
        output: String,
    },
}

/// What is wrong with a readiness line.
#[derive(Debug, thiserror::Error)]
pub enum ReadyLineError {
    /// A field the line must carry is not there.
    #[error("no {0}= field")]
    Missing(&'static str),
    /// A field that must be a socket address is not one.
    #[error("{field}= is not a socket address")]
    NotAnAddress {
        /// The field's name.
        field: &'static str,
        /// Why it does not parse.
        #[source]
        source: std::net::AddrParseError,
    },
}

/// Parses `KEY=value` fields of a readiness line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The `key=` field of readiness line `line`, or [`StackError::Parse`] naming it.
fn required<'a>(line: &'a str, key: &'static str) -> Result<&'a str, StackError> {
    field(line, key).ok_or_else(|| StackError::Parse {
        line: line.to_owned(),
        problem: ReadyLineError::Missing(key),
    })
}

/// The agent's `AVS_AGENT_READY` line: device id, link address, socket path.
fn agent_ready(line: &str) -> Result<(String, SocketAddr, PathBuf), StackError> {
    let device_id = required(line, "device_id")?.to_owned();
    let link = required(line, "link")?
        .parse()
        .map_err(|source| StackError::Parse {
            line: line.to_owned(),
            problem: ReadyLineError::NotAnAddress {
                field: "link",
                source,
            },
        })?;
    Ok((device_id, link, PathBuf::from(required(line, "socket")?)))
}

/// Emulator options.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Listen address.
    pub bind: SocketAddr,
    /// Serve HTTPS with a generated CA.
    pub https: bool,
    /// Extra certificate names/IPs.
    pub sans: Vec<String>,
    /// Where to write the CA (HTTPS).
    pub ca_out: Option<PathBuf>,
    /// More arguments (`--token-lifetime 5`, …).
    pub extra_args: Vec<String>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            https: false,
            sans: Vec::new(),
            ca_out: None,
            extra_args: Vec::new(),
        }
    }
}

/// A running `lwa-emulator` process.
#[derive(Debug)]
pub struct EmulatorProcess {
    /// The process.
    pub process: ManagedProcess,
    /// `http(s)://127.0.0.1:PORT` (loopback of its own namespace).
    pub base_url: String,
    /// Its CA certificate (HTTPS).
    pub ca: Option<PathBuf>,
}

impl EmulatorProcess {
    /// The port it listens on.
    pub fn port(&self) -> Option<u16> {
        url::Url::parse(&self.base_url).ok()?.port()
    }
}

/// Starts `lwa-emulator` and waits for `LWA_EMULATOR_READY`.
pub fn start_emulator(
    place: Place<'_>,
    bin: &Path,
    opts: &EmulatorOptions,
) -> Result<EmulatorProcess, StackError> {
    let mut cmd = place.command(bin)?;
    cmd.arg("serve").arg("--bind").arg(opts.bind.to_string());
    if opts.https {
        cmd.arg("--https");
    }
    for san in &opts.sans {
        cmd.arg("--tls-san").arg(san);
    }
    if let Some(ca) = &opts.ca_out {
        cmd.arg("--ca-out").arg(ca);
    }
    cmd.args(&opts.extra_args);
    let process = place.spawn(cmd, "lwa-emulator")?;
    let line = process.wait_for_line(Stream::Stdout, READY_TIMEOUT, |l| {
        l.starts_with("LWA_EMULATOR_READY")
    })?;
    let base_url = required(&line, "base_url")?.to_owned();
    let ca = field(&line, "ca").map(PathBuf::from);
    Ok(EmulatorProcess {
        process,
        base_url,
        ca,
    })
}

/// Device agent options.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// LWA base URL as the agent reaches it.
    pub lwa_base_url: String,
    /// Extra CA for LWA's HTTPS.
    pub lwa_ca_file: Option<PathBuf>,
    /// State directory (created 0700 by the agent).
    pub state_dir: PathBuf,
    /// A setup code to provision; `None` = let the agent generate one on first start.
    pub setup_code: Option<SetupCode>,
    /// Friendly name.
    pub friendly_name: String,
    /// AVS product id (must be one the emulator knows).
    pub product_id: String,
    /// Serial number (distinct per speaker: it determines the device id).
    pub dsn: String,
    /// Advertise over mDNS (only inside a namespace!).
    pub mdns: bool,
    /// Restrict mDNS to these interfaces.
    pub mdns_interfaces: Option<Vec<String>>,
    /// Link listener, e.g. `127.0.0.1:0` (default: the agent's, `[::]:0`).
    pub link_bind: Option<String>,
    /// Pairing window length.
    pub pairing_window_secs: Option<u64>,
    /// Extra `key = value` TOML lines.
    pub extra_toml: Vec<String>,
}

impl AgentOptions {
    /// Setup-code attempts back to back (`attempt_interval_secs = 0`): for tests where a right
    /// code follows a wrong one at once (the 1 s pacing has its own test in
    /// device-agent/tests/link.rs).
    pub fn unpaced(&mut self) {
        self.extra_toml.push("attempt_interval_secs = 0".into());
    }

    /// Defaults for a speaker in `state_dir` using LWA at `base_url`.
    pub fn new(state_dir: PathBuf, base_url: &str) -> Self {
        Self {
            lwa_base_url: base_url.to_owned(),
            lwa_ca_file: None,
            state_dir,
            setup_code: None,
            friendly_name: "Living room speaker".into(),
            product_id: lwa_emulator::registry::DEFAULT_PRODUCT_ID.into(),
            dsn: "DEMO-0001".into(),
            mdns: false,
            mdns_interfaces: None,
            link_bind: None,
            pairing_window_secs: None,
            extra_toml: Vec::new(),
        }
    }

    /// These options, advertising over mDNS on the test network's link only.
    pub fn advertised_on_link(mut self) -> Self {
        self.mdns = true;
        self.mdns_interfaces = Some(vec![crate::netns::LINK_NAME.into()]);
        self
    }

    /// The config file's text.
    pub fn to_toml(&self) -> String {
        let q = |s: &str| format!("{s:?}");
        let mut lines = vec![
            format!("product_id = {}", q(&self.product_id)),
            format!("dsn = {}", q(&self.dsn)),
            format!("friendly_name = {}", q(&self.friendly_name)),
            format!("lwa_base_url = {}", q(&self.lwa_base_url)),
            format!("state_dir = {}", q(&self.state_dir.display().to_string())),
            format!("mdns = {}", self.mdns),
        ];
        if let Some(ca) = &self.lwa_ca_file {
            lines.push(format!("lwa_ca_file = {}", q(&ca.display().to_string())));
        }
        if let Some(ifs) = &self.mdns_interfaces {
            let list: Vec<String> = ifs.iter().map(|i| q(i)).collect();
            lines.push(format!("mdns_interfaces = [{}]", list.join(", ")));
        }
        if let Some(b) = &self.link_bind {
            lines.push(format!("link_bind = {}", q(b)));
        }
        if let Some(w) = self.pairing_window_secs {
            lines.push(format!("pairing_window_secs = {w}"));
        }
        lines.extend(self.extra_toml.iter().cloned());
        lines.join("\n") + "\n"
    }
}

/// A running `avs-device-agent run`.
#[derive(Debug)]
pub struct AgentProcess {
    /// The process.
    pub process: ManagedProcess,
    /// Its device id.
    pub device_id: String,
    /// The link listener (as the agent reports it: may be `[::]:PORT`).
    pub link: SocketAddr,
    /// The local API socket.
    pub socket: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The setup code file.
    pub setup_code_file: PathBuf,
}

impl AgentProcess {
    /// The link port.
    pub fn port(&self) -> u16 {
        self.link.port()
    }

    /// Runs `avs-device-agent <verb> --socket … --json` (from anywhere: the socket is a file)
    /// and returns its stdout, or the error with its output.
    pub fn cli(&self, bin: &Path, verb: &str) -> Result<String, StackError> {
        let out = Command::new(bin)
            .arg(verb)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(StackError::Cli {
                verb: verb.to_owned(),
                status: out.status,
                output: format!(
                    "{}{}",
                    stdout.trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })
        }
    }
}

/// [`start_agent`] on `host` of `net`, labelled `avs-device-agent`.
pub fn start_agent_on(
    net: &crate::netns::TestNet,
    host: &str,
    bin: &Path,
    opts: &AgentOptions,
) -> Result<AgentProcess, StackError> {
    start_agent(Place::Host { net, host }, bin, opts, "avs-device-agent")
}

/// Writes the config (and setup code file) and starts the agent; waits for `AVS_AGENT_READY`.
pub fn start_agent(
    place: Place<'_>,
    bin: &Path,
    opts: &AgentOptions,
    label: &str,
) -> Result<AgentProcess, StackError> {
    let setup_code_file = match &opts.setup_code {
        Some(code) => provision_setup_code(&opts.state_dir, code)?,
        None => {
            std::fs::create_dir_all(&opts.state_dir)?;
            set_mode(&opts.state_dir, 0o700)?;
            setup_code_file(&opts.state_dir)
        }
    };
    let config = opts.state_dir.join("agent.toml");
    std::fs::write(&config, opts.to_toml())?;
    let mut cmd = place.command(bin)?;
    cmd.arg("run").arg("--config").arg(&config);
    // Settings come from the file only, not from a stray environment.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AVS_AGENT_") {
            cmd.env_remove(k);
        }
    }
    let process = place.spawn(cmd, label)?;
    let line = process.wait_for_line(Stream::Stdout, READY_TIMEOUT, |l| {
        l.starts_with("AVS_AGENT_READY")
    })?;
    let (device_id, link, socket) = agent_ready(&line)?;
    Ok(AgentProcess {
        process,
        device_id,
        link,
        socket,
        state_dir: opts.state_dir.clone(),
        setup_code_file,
    })
}

/// Where the agent keeps its setup code (the agent's default: `<state_dir>/setup-code`).
pub fn setup_code_file(state_dir: &Path) -> PathBuf {
    state_dir.join("setup-code")
}

/// Writes a setup code where the agent reads it (as a factory would before printing the
/// label): `<state_dir>/setup-code`, 0600 in a 0700 directory. Returns the file.
pub fn provision_setup_code(state_dir: &Path, code: &SetupCode) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(state_dir)?;
    set_mode(state_dir, 0o700)?;
    let file = setup_code_file(state_dir);
    std::fs::write(&file, format!("{}\n", code.expose_secret()))?;
    set_mode(&file, 0o600)?;
    Ok(file)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Writes a Wi-Fi hook for the agent's hook backend (contract in docs/agent.md) to `path`,
/// executable: `scan` shows one network, Home-5G; `connect` reads the passphrase from stdin,
/// refuses any but `passphrase` (exit 10, wrong password), then runs the shell lines `join`
/// and reports the address 192.0.2.20; `rollback` runs `rollback`.
pub fn write_home_wifi_hook(
    path: &Path,
    passphrase: &str,
    join: &str,
    rollback: &str,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let script = format!(
        r#"#!/bin/sh
case "$1" in
scan) echo '{{"ssid":"Home-5G","signal":70,"security":"wpa2_psk","frequency":5180}}' ;;
connect)
  read -r pass
  echo "stage authenticating"
  [ "$pass" = "{passphrase}" ] || exit 10
  echo "stage getting_address"
{join}
  echo "address 192.0.2.20" ;;
rollback) {rollback} ;;
status) echo '{{"interface":"wlan0"}}' ;;
esac
"#
    );
    std::fs::write(path, script)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_readiness_fields() {
        let l = "AVS_AGENT_READY device_id=ab12 link=[::]:4100 socket=/tmp/x/agent.sock";
        assert_eq!(field(l, "device_id"), Some("ab12"));
        assert_eq!(field(l, "link"), Some("[::]:4100"));
        assert_eq!(field(l, "nope"), None);
        let e = "LWA_EMULATOR_READY base_url=https://127.0.0.1:9 ca=/tmp/ca.pem";
        assert_eq!(field(e, "base_url"), Some("https://127.0.0.1:9"));
        assert_eq!(field(e, "ca"), Some("/tmp/ca.pem"));
    }

    #[test]
    fn a_readiness_line_that_does_not_parse_is_a_typed_error_with_its_cause() {
        let ok = "AVS_AGENT_READY device_id=ab12 link=127.0.0.1:4100 socket=/tmp/x/agent.sock";
        let (id, link, socket) = agent_ready(ok).unwrap();
        assert_eq!((id.as_str(), link.port()), ("ab12", 4100));
        assert_eq!(socket, PathBuf::from("/tmp/x/agent.sock"));

        let missing = "AVS_AGENT_READY device_id=ab12 socket=/tmp/x/agent.sock";
        let err = agent_ready(missing).unwrap_err();
        assert!(
            matches!(&err, StackError::Parse { line, problem: ReadyLineError::Missing("link") } if line == missing),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("readiness line {missing:?}: no link= field")
        );

        let bad = "AVS_AGENT_READY device_id=ab12 link=nowhere socket=/tmp/x/agent.sock";
        let err = agent_ready(bad).unwrap_err();
        let cause = std::error::Error::source(&err)
            .and_then(std::error::Error::source)
            .expect("the address error is kept");
        assert!(
            cause.downcast_ref::<std::net::AddrParseError>().is_some(),
            "{cause:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("readiness line {bad:?}: link= is not a socket address")
        );
    }

    #[test]
    fn agent_config_is_valid_toml() {
        let mut o = AgentOptions::new("/tmp/s".into(), "http://127.0.0.1:1");
        o.mdns_interfaces = Some(vec!["avs0".into()]);
        o.lwa_ca_file = Some("/tmp/ca \"x\".pem".into());
        let v: toml::Value = toml::from_str(&o.to_toml()).unwrap();
        assert_eq!(v["mdns_interfaces"][0].as_str(), Some("avs0"));
        assert_eq!(v["lwa_ca_file"].as_str(), Some("/tmp/ca \"x\".pem"));
    }
}
