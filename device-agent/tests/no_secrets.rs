//! No secret reaches a log line at any level: every tracing event of a full run (wrong code,
//! pairing, exchange, refresh, rotation, a stale auth_failure, CBL, local API) is captured at
//! TRACE and searched for
//! - every secret the test can see (setup code in all its printed forms: 8 digits, `2468 1357`,
//!   `2468-1357`, the manual code, the QR text; the authorization code; every token it held),
//! - every secret the emulator was sent during the run, which the test never sees itself (the CBL
//!   `device_code`, PKCE verifiers, refresh tokens, bearer tokens): the emulator's request log
//!   keeps each one's length, first characters and a SHA-256 fingerprint, and every stretch of
//!   the logs with that length is fingerprinted and compared,
//! - and anything shaped like a PKCE verifier.
//!
//! The companion's `-vv` log is searched in `tests/tests/cli.rs`, the desktop app's event stream
//! in `companion-app/src-tauri/tests/commands.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use device_agent::local_api::{self, ApiRequest, ApiResponse};
use device_agent::store::{LoadOutcome, TokenStore};
use lwa_emulator::registry::{ALICE_EMAIL, ALICE_PASSWORD, DEFAULT_DEVICE_CLIENT_ID};
use lwa_emulator::Emulator;
use shared_protocol::message::{AgentMessage, AuthResult, CompanionMessage, ProvideAuthorization};
use shared_protocol::message::{ConnectWifi, Ssid, WifiResult};
use shared_protocol::secret::WifiPassphrase;
use shared_protocol::session::HandshakeError;
use shared_protocol::setup_code::SetupCode;

const WIFI_PASS: &str = "wifi-Secret-Passphrase-42";
const WIFI_WRONG: &str = "wifi-Wrong-Passphrase-17";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_captured_logs() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,lwa_emulator=warn",
        ))
        .with_writer(capture.clone())
        .with_ansi(false)
        .init();

    // The Wi-Fi step through a hook that accepts one passphrase (read from stdin).
    let hook_dir = tempfile::tempdir().unwrap();
    let hook = hook_dir.path().join("wifi-hook");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\n[ \"$1\" = connect ] || exit 0\nread -r p\n[ \"$p\" = \"{WIFI_PASS}\" ] || exit 10\n"),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let Stack { emu, dir, agent } =
        Stack::start(Emulator::builder().rotate_refresh_tokens(0), |cfg| {
            cfg.network.backend = device_agent::config::NetworkBackendKind::Hook(hook.clone());
            // The right code follows the wrong one at once (pacing: link.rs).
            cfg.pairing.attempt_interval = Duration::ZERO;
        })
        .await;
    let setup = SetupCode::parse(CODE).unwrap();
    let mut secrets: Vec<String> = vec![
        CODE.to_owned(),
        format!("{} {}", &CODE[..4], &CODE[4..]),
        format!("{}-{}", &CODE[..4], &CODE[4..]),
        setup.manual_code(),
        setup.qr_payload(agent.device_id()),
    ];

    // A wrong code, then the pairing.
    assert!(matches!(
        connect(agent.link_addr(), WRONG_CODE).await,
        Err(HandshakeError::WrongSetupCode)
    ));
    let mut s = connect(agent.link_addr(), CODE)
        .await
        .expect("the right code after the wrong one");
    let info = match request(&mut s, CompanionMessage::GetDeviceInfo).await {
        AgentMessage::DeviceInfo(i) => i,
        other => panic!("{other:?}"),
    };
    // A wrong Wi-Fi passphrase, then the right one: neither may reach a log line.
    for pass in [WIFI_WRONG, WIFI_PASS] {
        secrets.push(pass.to_owned());
        s.send(&CompanionMessage::ConnectWifi(ConnectWifi {
            ssid: Ssid::new(b"Home-5G".to_vec()).unwrap(),
            passphrase: Some(WifiPassphrase::new(pass)),
            hidden: false,
        }))
        .await
        .unwrap();
        loop {
            match recv(&mut s).await {
                AgentMessage::WifiProgress(_) => {}
                AgentMessage::WifiResult(r) => {
                    assert_eq!(
                        matches!(r, WifiResult::Connected { .. }),
                        pass == WIFI_PASS,
                        "{r:?}"
                    );
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    let redirect = "http://127.0.0.1:9745/authresponse";
    let code = login(
        emu.base_url(),
        DEFAULT_DEVICE_CLIENT_ID,
        redirect,
        ALICE_EMAIL,
        ALICE_PASSWORD,
        &info,
    )
    .await;
    secrets.push(code.expose_secret().to_owned());
    s.send(&CompanionMessage::ProvideAuthorization(
        ProvideAuthorization {
            session_id: info.session_id,
            authorization_code: code.clone(),
            client_id: DEFAULT_DEVICE_CLIENT_ID.into(),
            redirect_uri: redirect.into(),
        },
    ))
    .await
    .unwrap();
    loop {
        match recv(&mut s).await {
            AgentMessage::AuthResult(r) => {
                assert!(matches!(r, AuthResult::Linked { .. }), "{r:?}");
                break;
            }
            AgentMessage::Progress(_) => {}
            other => panic!("{other:?}"),
        }
    }
    let store = TokenStore::open(dir.path()).unwrap();
    let stored = |store: &TokenStore| match store.load().unwrap() {
        LoadOutcome::Loaded(t) => t.refresh_token.expose_secret().to_owned(),
        other => panic!("{other:?}"),
    };
    secrets.push(stored(&store));

    // Refresh (rotating), through the local API's auth_failure and token ops.
    let first = agent.delegate().auth_token().unwrap().token().clone();
    secrets.push(first.expose_secret().to_owned());
    let socket = agent.socket_path().to_path_buf();
    common::report_auth_failure(&socket, &first).await;
    let d = agent.delegate().clone();
    eventually("rotated", Duration::from_secs(5), || {
        d.auth_token().is_some_and(|t| *t.token() != first)
    })
    .await;
    let mut via_socket = None;
    local_api::call(&socket, &ApiRequest::Token, |r| {
        if let ApiResponse::Token { access_token, .. } = r {
            via_socket = Some(access_token.expose_secret().to_owned());
        }
        false
    })
    .await
    .unwrap();
    secrets.push(via_socket.expect("token over the socket"));
    secrets.push(stored(&store));
    // An error path: a stale token reported again (already replaced; ignored).
    common::report_auth_failure(&socket, &first).await;
    local_api::call(&socket, &ApiRequest::Check, |_| false)
        .await
        .unwrap();

    // Reset and CBL.
    local_api::call(&socket, &ApiRequest::Reset, |_| false)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let approve = async {
        let p: device_agent::cbl::CblPrompt = rx.await.unwrap();
        emu.approve_user_code(&p.user_code, ALICE_EMAIL).unwrap();
    };
    let (r, ()) = tokio::join!(
        agent.run_cbl(move |p| {
            let _ = tx.send(p.clone());
        }),
        approve
    );
    r.unwrap();
    eventually("cbl refreshed", Duration::from_secs(5), || {
        d.auth_token().is_some()
    })
    .await;
    secrets.push(
        d.auth_token()
            .unwrap()
            .token()
            .clone()
            .expose_secret()
            .to_owned(),
    );
    secrets.push(stored(&store));
    drop(s);
    agent.shutdown().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.len() > 2000,
        "the run was logged ({} bytes)",
        logs.len()
    );
    assert!(logs.contains("linked"), "device-agent events are captured");
    // Every secret the emulator received, by its recorded fingerprint.
    let sent = sent_secrets(&emu.requests());
    assert!(
        sent.iter().any(|(_, name)| name == "device_code"),
        "the CBL polls are in the record: {sent:?}"
    );
    for (fp, name) in &sent {
        assert!(
            !appears(&logs, fp),
            "the {name} sent to LWA appears in the logs ({fp})"
        );
    }
    for secret in &secrets {
        assert!(secret.len() >= 8);
        assert!(
            !logs.contains(secret.as_str()),
            "a secret ({} bytes) appears in the logs",
            secret.len()
        );
    }
    // Anything shaped like a PKCE verifier (43 base64url characters) other than the public
    // challenge would be a leak.
    for word in logs.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
        if word.len() == 43 && word != info.code_challenge {
            panic!("a 43-character base64url string appears in the logs");
        }
    }
}

/// `(fingerprint, parameter name)` of every secret value in the emulator's request record
/// (parameters, query and headers; a `Bearer` scheme dropped), e.g. `("Atzr…(365,
/// sha256:1a2b3c4d)", "refresh_token")`.
fn sent_secrets(reqs: &[lwa_emulator::RecordedRequest]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in reqs {
        for (name, value) in r.params.iter().chain(&r.query).chain(&r.headers) {
            if !value.contains("sha256:") {
                continue;
            }
            let fp = match value.split_once(' ') {
                Some((scheme, rest)) if !scheme.contains('…') => rest.to_owned(),
                _ => value.clone(),
            };
            if !out.iter().any(|(f, _)| *f == fp) {
                out.push((fp, name.clone()));
            }
        }
    }
    out
}

/// Whether a stretch of `logs` has the fingerprint `fp` (`head…(len, sha256:x)` or
/// `…(len, sha256:x)` for values shorter than 12 characters). Long values are looked for where
/// their first 4 characters occur; short ones at every offset.
fn appears(logs: &str, fp: &str) -> bool {
    let (head, rest) = fp.split_once('…').expect("a fingerprint");
    let len: usize = rest
        .trim_start_matches('(')
        .split(',')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a length in the fingerprint");
    let chars: Vec<char> = logs.chars().collect();
    let head: Vec<char> = head.chars().collect();
    (0..chars.len().saturating_sub(len - 1)).any(|i| {
        chars[i..].starts_with(&head) && {
            let candidate: String = chars[i..i + len].iter().collect();
            lwa_emulator::redact::fingerprint(&candidate) == fp
        }
    })
}
