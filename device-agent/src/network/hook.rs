//! The hook backend: an executable the platform provides, for speakers without NetworkManager
//! (wpa_supplicant scripts, iwd, a vendor daemon).
//!
//! The contract (docs/agent.md "Wi-Fi hook"): the agent runs `<wifi_hook> <verb>` with no shell,
//! a deadline per verb, and the child killed if the deadline passes.
//!
//! - `status`: one JSON line `{"interface":"wlan0","ssid":"Home","address":"192.0.2.7"}`, each
//!   field optional (`ssid_hex` instead of `ssid` for names that are not UTF-8). A non-zero exit
//!   means "not known".
//! - `scan`: one JSON line per network: `ssid` or `ssid_hex`, `signal` (0-100), `security`
//!   (`open`, `wpa2_psk`, `wpa3_sae`, `enterprise`, anything else = unsupported), `frequency`
//!   (MHz, optional), `known` (bool, optional). Lines that don't parse are skipped.
//! - `connect`: `AVS_WIFI_SSID` (the name, lossy UTF-8), `AVS_WIFI_SSID_HEX` (the exact bytes),
//!   `AVS_WIFI_HIDDEN` (`0`/`1`) in the environment; the passphrase on stdin, one line (empty
//!   for an open network) — never on the command line or in the environment, where other users
//!   could read it. It may print `stage associating|authenticating|getting_address` and
//!   `address <addr>` lines. Exit 0: joined. Exit 10 wrong password, 11 network not found,
//!   12 no address (DHCP), 13 timeout, 14 unsupported security; anything else: internal error.
//!   On failure the hook leaves the previous network active. The hook's platform stores the
//!   passphrase (wpa_supplicant.conf, iwd's files); the agent does not.
//! - `rollback`: after a join the agent found useless (no internet), go back to the network
//!   that was active before the last successful `connect`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use shared_protocol::message::{
    ConnectWifi, Ssid, WifiBand, WifiFailure, WifiNetwork, WifiSecurity, WifiStage,
};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

use super::{BackendError, BoxFuture, CurrentLink, Joined, NetworkBackend, ProgressTx, Undo};

/// Most lines read from one hook run (a scan of a crowded street stays well below).
const MAX_LINES: usize = 512;
/// Longest line read from the hook.
const MAX_LINE: usize = 4096;

/// Exit codes of `connect`, as [`WifiFailure`]s.
pub fn failure_of_exit(code: Option<i32>) -> WifiFailure {
    match code {
        Some(10) => WifiFailure::WrongPassword,
        Some(11) => WifiFailure::NetworkNotFound,
        Some(12) => WifiFailure::NoAddress,
        Some(13) => WifiFailure::Timeout,
        Some(14) => WifiFailure::UnsupportedSecurity,
        _ => WifiFailure::Internal,
    }
}

/// Deadlines per verb.
#[derive(Debug, Clone)]
pub struct HookTimeouts {
    /// `status` and `scan`.
    pub query: Duration,
    /// `connect`.
    pub connect: Duration,
    /// `rollback`.
    pub rollback: Duration,
}

impl Default for HookTimeouts {
    fn default() -> Self {
        Self {
            query: Duration::from_secs(30),
            connect: Duration::from_secs(90),
            rollback: Duration::from_secs(60),
        }
    }
}

/// The hook backend.
#[derive(Debug, Clone)]
pub struct HookBackend {
    program: PathBuf,
    timeouts: HookTimeouts,
}

#[derive(Deserialize)]
struct StatusLine {
    interface: Option<String>,
    ssid: Option<String>,
    ssid_hex: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize)]
struct ScanLine {
    ssid: Option<String>,
    ssid_hex: Option<String>,
    #[serde(default)]
    signal: u8,
    #[serde(default)]
    security: Option<String>,
    #[serde(default)]
    frequency: Option<u32>,
    #[serde(default)]
    known: bool,
}

fn ssid_of(text: Option<String>, hex: Option<String>) -> Option<Ssid> {
    match (hex, text) {
        (Some(h), _) => Ssid::from_hex(&h.to_ascii_lowercase()),
        (None, Some(t)) => Ssid::new(t.into_bytes()).ok(),
        (None, None) => None,
    }
}

fn security_of(text: Option<&str>) -> WifiSecurity {
    match text {
        None | Some("open") => WifiSecurity::Open,
        Some("wpa2_psk") | Some("wpa_psk") | Some("wpa2") => WifiSecurity::Wpa2Psk,
        Some("wpa3_sae") | Some("sae") | Some("wpa3") => WifiSecurity::Wpa3Sae,
        Some("enterprise") | Some("wpa_eap") => WifiSecurity::Enterprise,
        Some(_) => WifiSecurity::Unsupported,
    }
}

impl HookBackend {
    /// Runs `program` (an executable path, no shell).
    pub fn new(program: PathBuf, timeouts: HookTimeouts) -> Self {
        Self { program, timeouts }
    }

    /// The hook run with `verb` (no shell): stdin empty unless the verb sets it, stdout read by
    /// the agent, stderr into the agent's log, killed when dropped (at a timeout).
    fn command(&self, verb: &str) -> Command {
        let mut command = Command::new(&self.program);
        command
            .arg(verb)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        command
    }

    /// Runs a query verb; its stdout lines, or why not.
    async fn query(&self, verb: &str) -> Result<Vec<String>, BackendError> {
        let mut child = self.command(verb).spawn().map_err(|e| {
            BackendError::Hook(format!("cannot run {}: {e}", self.program.display()))
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BackendError::Hook("no stdout".to_owned()))?;
        let work = async {
            let lines = read_lines(stdout).await;
            let status = child.wait().await;
            (lines, status)
        };
        let (lines, status) = timeout(self.timeouts.query, work)
            .await
            .map_err(|_| BackendError::Timeout(self.timeouts.query))?;
        match status {
            Ok(s) if s.success() => Ok(lines),
            Ok(s) => Err(BackendError::Hook(format!("`{verb}` exited with {s}"))),
            Err(e) => Err(BackendError::Hook(format!("`{verb}`: {e}"))),
        }
    }

    async fn connect(
        &self,
        req: &ConnectWifi,
        progress: &ProgressTx,
    ) -> Result<Joined, WifiFailure> {
        let mut child = self
            .command("connect")
            .env("AVS_WIFI_SSID", req.ssid.display())
            .env("AVS_WIFI_SSID_HEX", req.ssid.to_hex())
            .env("AVS_WIFI_HIDDEN", if req.hidden { "1" } else { "0" })
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| {
                tracing::error!(error = %e, hook = %self.program.display(), "cannot run the wifi hook");
                WifiFailure::Internal
            })?;
        let _ = progress.send(WifiStage::Associating);
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(WifiFailure::Internal);
        };
        let work = async {
            send_passphrase(stdin, req).await;
            let address = follow_stages(stdout, progress).await;
            (address, child.wait().await)
        };
        let (address, status) = timeout(self.timeouts.connect, work)
            .await
            .map_err(|_| WifiFailure::Timeout)?;
        match status {
            Ok(s) if s.success() => Ok(Joined {
                address,
                undo: Undo::Hook,
            }),
            Ok(s) => Err(failure_of_exit(s.code())),
            Err(_) => Err(WifiFailure::Internal),
        }
    }
}

/// Writes the passphrase (empty for an open network) and a newline to the hook's stdin, then
/// closes it. It goes through a pipe only; the buffer is zeroized after the write.
async fn send_passphrase(mut stdin: tokio::process::ChildStdin, req: &ConnectWifi) {
    let mut secret = zeroize::Zeroizing::new(Vec::with_capacity(130));
    if let Some(p) = &req.passphrase {
        secret.extend_from_slice(p.expose_secret().as_bytes());
    }
    secret.push(b'\n');
    // A hook that does not read stdin (open networks) may close it: not an error.
    let _ = stdin.write_all(&secret).await;
    drop(stdin);
}

/// Reads the connect hook's output to its end (at most [`MAX_LINES`] lines): each new
/// `stage …` goes to `progress`; the last `address …` is the answer.
async fn follow_stages(
    stdout: tokio::process::ChildStdout,
    progress: &ProgressTx,
) -> Option<String> {
    let mut address = None;
    let mut last = Some(WifiStage::Associating);
    let mut reader = BufReader::new(stdout);
    let mut n = 0;
    while let Some(line) = next_line(&mut reader).await {
        n += 1;
        if n > MAX_LINES {
            break;
        }
        let Some(line) = line else { continue };
        let line = line.trim();
        if let Some(stage) = line.strip_prefix("stage ") {
            let stage = match stage.trim() {
                "associating" => Some(WifiStage::Associating),
                "authenticating" => Some(WifiStage::Authenticating),
                "getting_address" => Some(WifiStage::GettingAddress),
                _ => None,
            };
            if stage.is_some() && stage != last {
                last = stage;
                if let Some(s) = stage {
                    let _ = progress.send(s);
                }
            }
        } else if let Some(a) = line.strip_prefix("address ") {
            address = Some(a.trim().chars().take(64).collect::<String>());
        }
    }
    address
}

async fn read_lines(stdout: tokio::process::ChildStdout) -> Vec<String> {
    let mut out = Vec::new();
    let mut reader = BufReader::new(stdout);
    while let Some(line) = next_line(&mut reader).await {
        if out.len() >= MAX_LINES {
            break;
        }
        out.extend(line);
    }
    out
}

/// The hook's next output line without its line end: `Some(None)` for a line that is longer
/// than [`MAX_LINE`] or not UTF-8 (skipped, and never held whole in memory), `None` at the end
/// of the output or on a read error.
async fn next_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut buf)
        .await
        .ok()?;
    if n == 0 {
        return None;
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if buf.len() > MAX_LINE {
        skip_rest_of_line(reader).await?;
        return Some(None);
    }
    if buf.len() > MAX_LINE {
        return Some(None);
    }
    Some(String::from_utf8(buf).ok())
}

/// Drops input up to and including the next `\n` (or to the end), without buffering it.
async fn skip_rest_of_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<()> {
    loop {
        let chunk = reader.fill_buf().await.ok()?;
        if chunk.is_empty() {
            return Some(());
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Some(());
            }
            None => {
                let len = chunk.len();
                reader.consume(len);
            }
        }
    }
}

impl NetworkBackend for HookBackend {
    fn name(&self) -> &'static str {
        "hook"
    }

    fn current(&self) -> BoxFuture<'_, CurrentLink> {
        Box::pin(async {
            let Ok(lines) = self.query("status").await else {
                return CurrentLink::default();
            };
            let Some(s) = lines
                .iter()
                .find_map(|l| serde_json::from_str::<StatusLine>(l).ok())
            else {
                return CurrentLink::default();
            };
            CurrentLink {
                interface: s.interface,
                ssid: ssid_of(s.ssid, s.ssid_hex),
                address: s.address,
            }
        })
    }

    fn scan(&self) -> BoxFuture<'_, Result<Vec<WifiNetwork>, BackendError>> {
        Box::pin(async {
            let lines = self.query("scan").await?;
            Ok(lines
                .iter()
                .filter_map(|l| serde_json::from_str::<ScanLine>(l).ok())
                .filter_map(|s| {
                    Some(WifiNetwork {
                        ssid: ssid_of(s.ssid, s.ssid_hex)?,
                        signal: s.signal.min(100),
                        security: security_of(s.security.as_deref()),
                        band: s.frequency.map_or(WifiBand::Unknown, WifiBand::from_mhz),
                        known: s.known,
                    })
                })
                .collect())
        })
    }

    fn join<'a>(
        &'a self,
        req: &'a ConnectWifi,
        progress: &'a ProgressTx,
    ) -> BoxFuture<'a, Result<Joined, WifiFailure>> {
        Box::pin(self.connect(req, progress))
    }

    fn rollback<'a>(&'a self, _joined: &'a Joined) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async {
            let mut child = Command::new(&self.program)
                .arg("rollback")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| BackendError::Hook(e.to_string()))?;
            match timeout(self.timeouts.rollback, child.wait()).await {
                Err(_) => Err(BackendError::Timeout(self.timeouts.rollback)),
                Ok(Ok(s)) if s.success() => Ok(()),
                Ok(Ok(s)) => Err(BackendError::Hook(format!("`rollback` exited with {s}"))),
                Ok(Err(e)) => Err(BackendError::Hook(e.to_string())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all_lines(input: &[u8]) -> Vec<Option<String>> {
        let mut reader = BufReader::with_capacity(64, input);
        let mut out = Vec::new();
        while let Some(line) = next_line(&mut reader).await {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn long_or_garbled_lines_are_skipped_and_the_rest_read() {
        let mut input = b"first\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 3));
        input.extend(b"\nmid\n\xff\xfe\n");
        input.extend(std::iter::repeat_n(b'y', MAX_LINE));
        input.extend(b"\nlast");
        let lines = all_lines(&input).await;
        assert_eq!(
            lines,
            vec![
                Some("first".to_owned()),
                None,
                Some("mid".to_owned()),
                None,
                Some("y".repeat(MAX_LINE)),
                Some("last".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn a_line_one_byte_too_long_is_skipped() {
        let mut input = vec![b'z'; MAX_LINE + 1];
        input.extend(b"\nok\n");
        assert_eq!(all_lines(&input).await, vec![None, Some("ok".to_owned())]);
    }
}
