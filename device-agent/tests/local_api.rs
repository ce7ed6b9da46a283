//! The local Unix-socket API: subscribe gets the current state at once and then changes;
//! bad and oversized lines get an error answer, not a crash; the socket is 0660.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use device_agent::local_api::{self, ApiRequest, ApiResponse};
use device_agent::lwa_client::TokenGrant;
use lwa_emulator::registry::{ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID};
use lwa_emulator::Emulator;
use shared_protocol::lwa::AuthState;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_token_and_bad_input() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = common::start(common::config(dir.path(), emu.base_url())).await;
    let socket = agent.socket_path().to_path_buf();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o660
    );

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sub_socket = socket.clone();
    let sub = tokio::spawn(async move {
        local_api::call(&sub_socket, &ApiRequest::Subscribe, |r| {
            if let ApiResponse::AuthState { state, .. } = r {
                let _ = tx.send(*state);
            }
            true
        })
        .await
    });
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first,
        AuthState::Uninitialized,
        "current state on subscribe"
    );

    let t = emu
        .mint_tokens(ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID)
        .unwrap();
    agent
        .delegate()
        .install(
            TokenGrant {
                access_token: t.access_token.clone(),
                refresh_token: t.refresh_token,
                expires_in: Duration::from_secs(t.expires_in.0),
                requested_at: tokio::time::Instant::now(),
            },
            DEFAULT_DEVICE_CLIENT_ID.into(),
            None,
            true,
        )
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next, AuthState::Refreshed);

    let mut got = None;
    local_api::call(&socket, &ApiRequest::Token, |r| {
        got = Some(r.clone());
        false
    })
    .await
    .unwrap();
    match got.unwrap() {
        ApiResponse::Token {
            access_token,
            expires_in_secs,
        } => {
            assert_eq!(access_token, t.access_token);
            assert!(expires_in_secs > 3000);
        }
        other => panic!("{other:?}"),
    }

    // Garbage, then an oversized line: answered with errors, the agent lives on.
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"{\"op\":\"fly\"}\n").await.unwrap();
    let l = lines.next_line().await.unwrap().unwrap();
    assert!(l.contains("\"type\":\"error\""), "{l}");
    w.write_all(&vec![b'x'; local_api::MAX_LINE + 10])
        .await
        .unwrap();
    let l = lines.next_line().await.unwrap().unwrap();
    assert!(l.contains("longer than"), "{l}");
    let mut st = None;
    local_api::call(&socket, &ApiRequest::Status, |r| {
        st = Some(r.clone());
        false
    })
    .await
    .unwrap();
    assert!(matches!(st, Some(ApiResponse::Status(s)) if s.paired));

    agent.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), sub).await;
    assert!(!socket.exists());
}

/// A refresh that swaps the token while the state stays `REFRESHED` is an event for
/// subscribers (the C++ client used to poll around the silence): a line with a new `token_gen`
/// and the same state, and `token` then answers the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_of_every_new_token() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = common::start(common::config(dir.path(), emu.base_url())).await;
    let socket = agent.socket_path().to_path_buf();
    let t = emu
        .mint_tokens(ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID)
        .unwrap();
    agent
        .delegate()
        .install(
            TokenGrant {
                access_token: t.access_token.clone(),
                refresh_token: t.refresh_token,
                expires_in: Duration::from_secs(t.expires_in.0),
                requested_at: tokio::time::Instant::now(),
            },
            DEFAULT_DEVICE_CLIENT_ID.into(),
            None,
            true,
        )
        .await
        .unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sub_socket = socket.clone();
    let sub = tokio::spawn(async move {
        local_api::call(&sub_socket, &ApiRequest::Subscribe, |r| {
            if let ApiResponse::AuthState {
                state, token_gen, ..
            } = r
            {
                let _ = tx.send((*state, *token_gen));
            }
            true
        })
        .await
    });
    let (state, gen1) = next(&mut rx).await;
    assert_eq!(state, AuthState::Refreshed, "current state on subscribe");

    let current = || async {
        let mut got = None;
        local_api::call(&socket, &ApiRequest::Token, |r| {
            got = Some(r.clone());
            false
        })
        .await
        .unwrap();
        match got {
            Some(ApiResponse::Token { access_token, .. }) => access_token,
            other => panic!("{other:?}"),
        }
    };
    let old = current().await;
    assert_eq!(old, t.access_token);

    // AVS refused the token: the agent refreshes and stays REFRESHED throughout.
    local_api::call(
        &socket,
        &ApiRequest::AuthFailure { token: old.clone() },
        |_| false,
    )
    .await
    .unwrap();
    let (state, gen2) = next(&mut rx).await;
    assert_eq!(state, AuthState::Refreshed, "the state did not change");
    assert!(gen2 > gen1, "a new token_gen: {gen1} -> {gen2}");
    let new = current().await;
    assert_ne!(new, old, "token answers the new token after the event");

    // A second swap is a second event.
    local_api::call(
        &socket,
        &ApiRequest::AuthFailure { token: new.clone() },
        |_| false,
    )
    .await
    .unwrap();
    let (state, gen3) = next(&mut rx).await;
    assert_eq!((state, gen3 > gen2), (AuthState::Refreshed, true));
    assert_ne!(current().await, new);

    agent.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), sub).await;
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<(AuthState, u64)>) -> (AuthState, u64) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an auth_state line within 10 s")
        .expect("subscription open")
}
