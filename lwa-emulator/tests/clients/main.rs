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

/// Sends `request` and parses its JSON answer.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The form of a `refresh_token` grant for the default device client.
pub fn refresh_form(refresh_token: &str) -> [(&'static str, &str); 3] {
    [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        (
            "client_id",
            lwa_emulator::registry::DEFAULT_DEVICE_CLIENT_ID,
        ),
    ]
}

/// The form of an `authorization_code` grant with PKCE for the default device client.
pub fn exchange_form<'a>(
    code: &'a str,
    redirect_uri: &'a str,
    pkce: &'a shared_protocol::pkce::PkcePair,
) -> [(&'static str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        (
            "client_id",
            lwa_emulator::registry::DEFAULT_DEVICE_CLIENT_ID,
        ),
        ("code_verifier", pkce.verifier.expose_secret()),
    ]
}

/// The authorize URL for the default device client and product, with `pkce`'s challenge.
pub fn authorize_url(
    authorize: &url::Url,
    redirect_uri: &str,
    dsn: &str,
    state: &str,
    pkce: &shared_protocol::pkce::PkcePair,
) -> url::Url {
    use lwa_emulator::registry::{DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID};
    shared_protocol::lwa::AuthorizeRequest {
        client_id: DEFAULT_DEVICE_CLIENT_ID.into(),
        redirect_uri: redirect_uri.into(),
        product_id: DEFAULT_PRODUCT_ID.into(),
        dsn: dsn.into(),
        state: state.into(),
        code_challenge: pkce.challenge.clone(),
    }
    .to_url(authorize)
}

/// The `code` parameter of a redirect.
pub fn code_in(redirect: &url::Url) -> String {
    redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code in {redirect}"))
        .1
        .into_owned()
}

/// Runs the emulator binary with `args` to completion (for the ones that exit at once).
pub async fn run_emulator(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lwa-emulator"))
        .args(args)
        .output()
        .await
        .unwrap()
}

/// The stdout of `program`'s finished run, asserting it succeeded (its stdout and stderr are
/// the failure message).
#[track_caller]
pub fn stdout_of_success(program: &str, output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
