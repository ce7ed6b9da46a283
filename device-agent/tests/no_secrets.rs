//! No secret reaches a log line at any level: every tracing event of a full run (wrong code,
//! pairing, exchange, refresh, rotation, CBL, local API) is captured at TRACE and searched for
//! every secret the test can see, and for anything shaped like a PKCE verifier.
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
use shared_protocol::session::HandshakeError;
use shared_protocol::setup_code::SetupCode;

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

    let Stack { emu, dir, agent } =
        Stack::start(Emulator::builder().rotate_refresh_tokens(0), |_| {}).await;
    let mut secrets: Vec<String> = vec![
        CODE.to_owned(),
        SetupCode::parse(CODE).unwrap().manual_code(),
    ];

    // A wrong code, then the pairing.
    assert!(matches!(
        connect(agent.link_addr(), WRONG_CODE).await,
        Err(HandshakeError::WrongSetupCode)
    ));
    let mut s = connect(agent.link_addr(), CODE).await.unwrap();
    let info = match request(&mut s, CompanionMessage::GetDeviceInfo).await {
        AgentMessage::DeviceInfo(i) => i,
        other => panic!("{other:?}"),
    };
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
    local_api::call(
        &socket,
        &ApiRequest::AuthFailure {
            token: first.clone(),
        },
        |_| false,
    )
    .await
    .unwrap();
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
