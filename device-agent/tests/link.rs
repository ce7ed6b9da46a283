//! Link server tests that need no LWA: the setup code gate, the attempt limit, the window.
//! The client is the protocol crate's `ClientHandshake`, the same code the companion uses.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use shared_protocol::frame::FrameTransport;
use shared_protocol::ids::SessionId;
use shared_protocol::message::{
    AgentMessage, AuthFailureClass, AuthResult, CompanionMessage, ErrorBody, ErrorKind,
    PairingWindow, PlainMessage, ProvideAuthorization,
};
use shared_protocol::secret::AuthorizationCode;
use shared_protocol::session::HandshakeError;

fn provide(session_id: SessionId) -> CompanionMessage {
    CompanionMessage::ProvideAuthorization(ProvideAuthorization {
        session_id,
        authorization_code: AuthorizationCode::new("ANcMJpTtVktKiZvfdYaV"),
        client_id: "amzn1.application-oa2-client.x".into(),
        redirect_uri: "http://127.0.0.1:9745/authresponse".into(),
    })
}

/// Sends a PAKE message built by hand (`pake`: base64url of spake2's side byte and the
/// element) on a connection past its Hello exchange; the agent's answer.
async fn raw_pake_start(t: &mut impl FrameTransport, pake: &str) -> PlainMessage {
    let start = serde_json::json!({"type": "pake_start", "pake": pake});
    raw_exchange(t, &start, Duration::from_secs(5))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_without_the_code_cannot_get_authorization_accepted() {
    // Back-to-back attempts (the pacing has its own test below).
    let (_dir, agent) = offline(|cfg| cfg.pairing.attempt_interval = Duration::ZERO).await;
    assert!(agent.pairing().is_open(), "unpaired agent opens its window");

    // Wrong code: the handshake fails on both ends, no session.
    match connect(agent.link_addr(), WRONG_CODE).await {
        Err(HandshakeError::WrongSetupCode) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(agent.pairing().failures(), 1, "the wrong code is counted");

    // Skipping the PAKE: a plain ProvideAuthorization right after Hello is refused.
    let mut t = plain_hello(agent.link_addr(), "raw").await;
    let sneaky = serde_json::json!({
        "type": "provide_authorization",
        "session_id": SessionId::random(),
        "authorization_code": "ANcMJpTtVktKiZvfdYaV",
        "client_id": "amzn1.application-oa2-client.x",
        "redirect_uri": "http://127.0.0.1/x"
    });
    t.send_frame(serde_json::to_vec(&sneaky).unwrap())
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), t.recv_frame())
        .await
        .unwrap();
    if let Ok(Some(frame)) = answer {
        let msg: PlainMessage = serde_json::from_slice(&frame).unwrap();
        assert!(
            matches!(msg, PlainMessage::Error(_) | PlainMessage::Unknown),
            "{msg:?}"
        );
    }
    // And the connection is over.
    let end = tokio::time::timeout(Duration::from_secs(5), t.recv_frame())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");

    // With the code, but a session id the agent never issued: refused, nothing exchanged.
    let mut s = connect(agent.link_addr(), CODE).await.expect("right code");
    // The client finishes before the agent has checked its confirmation: wait for the agent.
    let pairing = agent.pairing().clone();
    eventually(
        "right code undoes its tentative count",
        Duration::from_secs(5),
        || pairing.failures() == 1,
    )
    .await;
    match request(&mut s, provide(SessionId::random())).await {
        AgentMessage::AuthResult(AuthResult::Failed { failure, .. }) => {
            assert_eq!(failure.class, AuthFailureClass::UnknownSession)
        }
        other => panic!("{other:?}"),
    }
    assert!(!agent.delegate().is_paired());
    drop(s);
    agent.shutdown().await;
}

#[tokio::test]
async fn twenty_wrong_codes_close_the_window_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let unpaced = || {
        let mut cfg = config(dir.path(), NO_LWA);
        cfg.pairing.attempt_interval = Duration::ZERO;
        cfg
    };
    let agent = start(unpaced()).await;
    for i in 0..20 {
        match connect(agent.link_addr(), WRONG_CODE).await {
            Err(HandshakeError::WrongSetupCode) => {}
            other => panic!("attempt {i}: {other:?}"),
        }
    }
    let pairing = agent.pairing().clone();
    eventually("window locked", Duration::from_secs(5), || {
        matches!(pairing.window(), PairingWindow::LockedOut { .. })
    })
    .await;
    // Even the right code is refused now, before any PAKE answer.
    match connect(agent.link_addr(), CODE).await {
        Err(HandshakeError::Peer(body)) => {
            assert_eq!(body.kind, ErrorKind::LockedOut);
            assert!(body.retry_after_secs.unwrap_or(0) > 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        agent.pairing().open().is_err(),
        "the owner cannot reopen during the lockout"
    );
    agent.shutdown().await;

    let agent = start(unpaced()).await;
    assert!(
        matches!(agent.pairing().window(), PairingWindow::LockedOut { .. }),
        "lockout survives a restart"
    );
    let hs = hello(agent.link_addr()).await.unwrap();
    let summary = hs.peer_hello().agent.clone().expect("agent summary");
    assert!(
        matches!(summary.window, PairingWindow::LockedOut { .. }),
        "status still answered"
    );
    match connect(agent.link_addr(), CODE).await {
        Err(HandshakeError::Peer(body)) => assert_eq!(body.kind, ErrorKind::LockedOut),
        other => panic!("{other:?}"),
    }
    // The owner at the speaker: the button reopens at once, and the right code pairs.
    agent.pairing().press_button().unwrap();
    connect(agent.link_addr(), CODE)
        .await
        .expect("the button reopened the window with a fresh budget");
    agent.shutdown().await;
}

/// 12.2: guesses are paced. Twenty wrong codes sent as fast as the link allows: the agent
/// counts at most one per `attempt_interval` (1 s) and answers the others `busy`, uncounted.
#[tokio::test]
async fn wrong_codes_are_paced_one_per_second() {
    let (_dir, agent) = offline(|_| {}).await;
    let started = tokio::time::Instant::now();
    let (mut wrong, mut busy) = (0, 0);
    for i in 0..20 {
        match connect(agent.link_addr(), WRONG_CODE).await {
            Err(HandshakeError::WrongSetupCode) => wrong += 1,
            Err(HandshakeError::Peer(body)) if body.kind == ErrorKind::Busy => {
                assert_eq!(body.retry_after_secs, Some(1));
                busy += 1;
            }
            other => panic!("attempt {i}: {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs();
    assert!(busy > 0, "a burst is refused");
    assert!(
        wrong <= secs + 1,
        "{wrong} guesses counted in {secs} s: not paced"
    );
    assert_eq!(agent.pairing().failures() as u64, wrong);
    assert!(
        agent.pairing().is_open(),
        "the budget is not burnt by the burst"
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn a_closed_window_refuses_authorization_but_answers_status() {
    let (_dir, agent) = offline(|_| {}).await;
    let mut s = connect(agent.link_addr(), CODE).await.expect("session");
    let session_id = match request(&mut s, CompanionMessage::GetDeviceInfo).await {
        AgentMessage::DeviceInfo(info) => {
            assert_eq!(info.code_challenge.len(), 43);
            info.session_id
        }
        other => panic!("{other:?}"),
    };
    agent.pairing().close();

    match request(&mut s, CompanionMessage::GetStatus).await {
        AgentMessage::Status(st) => {
            assert_eq!(st.summary.window, PairingWindow::Closed);
            assert!(!st.summary.paired);
        }
        other => panic!("{other:?}"),
    }
    match request(&mut s, provide(session_id)).await {
        AgentMessage::AuthResult(AuthResult::Failed { failure, .. }) => {
            assert_eq!(failure.class, AuthFailureClass::WindowClosed);
            assert!(!failure.retry_with_same_code);
        }
        other => panic!("{other:?}"),
    }
    match request(&mut s, CompanionMessage::Reset).await {
        AgentMessage::Error(e) => assert_eq!(e.kind, ErrorKind::WindowClosed),
        other => panic!("{other:?}"),
    }
    match request(&mut s, CompanionMessage::GetDeviceInfo).await {
        AgentMessage::Error(e) => assert_eq!(e.kind, ErrorKind::WindowClosed),
        other => panic!("{other:?}"),
    }
    drop(s);

    // A new connection: the Hello still carries the status; the handshake is refused.
    let hs = hello(agent.link_addr()).await.unwrap();
    assert_eq!(
        hs.peer_hello().agent.as_ref().unwrap().window,
        PairingWindow::Closed
    );
    match connect(agent.link_addr(), CODE).await {
        Err(HandshakeError::Peer(body)) => assert_eq!(body.kind, ErrorKind::WindowClosed),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        agent.pairing().failures(),
        0,
        "a refused handshake is not a guess"
    );
    agent.shutdown().await;
}

/// `Busy` and the handshake deadline, with a valid configuration (`max_pending <
/// max_sessions`): a linked companion holds one place; a client that sends a PAKE message (the
/// Ed25519 base point, so a valid element) and then stays silent holds the other, promoted,
/// until the handshake deadline. With every place held past a PAKE message, a newcomer is
/// refused `busy`; the silent one is dropped at the deadline, and its place is free again.
#[tokio::test]
async fn limits_busy_and_handshake_timeout() {
    let (_dir, agent) = offline(|cfg| {
        cfg.link.max_sessions = 2;
        cfg.link.max_pending = 1;
        cfg.link.max_pending_per_source = 1;
        cfg.link.handshake_timeout = Duration::from_secs(1);
        cfg.pairing.attempt_interval = Duration::ZERO;
    })
    .await;
    let mut linked = connect(agent.link_addr(), CODE)
        .await
        .expect("the first companion links");
    let mut t = plain_hello(agent.link_addr(), "silent").await;
    // base64url of b"A" + the compressed Ed25519 base point.
    let reply = raw_pake_start(&mut t, "QVhmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZm").await;
    // The agent's PAKE reply: the silent one is past its PAKE message (promoted).
    assert!(matches!(reply, PlainMessage::PakeReply { .. }), "{reply:?}");
    match connect(agent.link_addr(), CODE).await {
        Err(HandshakeError::Peer(body)) => assert_eq!(body.kind, ErrorKind::Busy),
        other => panic!("{other:?}"),
    }
    // The agent drops the silent one at the deadline.
    let end = tokio::time::timeout(Duration::from_secs(5), t.recv_frame())
        .await
        .expect("closed by the agent");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    // And its place is free again.
    common::eventually_async_connect(agent.link_addr()).await;
    match request(&mut linked, CompanionMessage::GetStatus).await {
        AgentMessage::Status(_) => {}
        other => panic!("{other:?}"),
    }
    agent.shutdown().await;
}

/// The agent matches every companion message: an error from the companion answers nothing the
/// agent asked, so it is answered with `unexpected_message`, and the session goes on.
#[tokio::test]
async fn a_companion_error_is_answered_and_the_session_goes_on() {
    let (_dir, agent) = offline(|_| {}).await;
    let mut s = connect(agent.link_addr(), CODE).await.expect("session");
    let report = CompanionMessage::Error(ErrorBody::new(ErrorKind::Malformed, "bad device info"));
    match request(&mut s, report).await {
        AgentMessage::Error(e) => assert_eq!(e.kind, ErrorKind::UnexpectedMessage),
        other => panic!("{other:?}"),
    }
    match request(&mut s, CompanionMessage::GetStatus).await {
        AgentMessage::Status(_) => {}
        other => panic!("{other:?}"),
    }
    drop(s);
    agent.shutdown().await;
}

/// Issue 12 (informational): a PAKE message carrying a small-order point (here the identity,
/// compressed as 0x01 00…00, behind spake2's side byte 'A') is refused before it reaches
/// spake2, and it costs exactly one attempt. (Without the check spake2 0.4 accepts it and the
/// handshake goes on to PakeReply -> red.)
#[tokio::test]
async fn a_small_order_pake_element_ends_the_handshake_as_one_failed_attempt() {
    let (_dir, agent) = offline(|_| {}).await;
    let mut t = plain_hello(agent.link_addr(), "raw").await;
    // base64url of b"A" + 0x01 + 31 zero bytes.
    let msg = raw_pake_start(&mut t, "QQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert!(
        matches!(
            &msg,
            PlainMessage::Error(ErrorBody {
                kind: ErrorKind::Malformed,
                ..
            })
        ),
        "{msg:?}"
    );
    let pairing = agent.pairing().clone();
    eventually("one failed attempt", Duration::from_secs(5), || {
        pairing.failures() == 1
    })
    .await;
    assert!(pairing.is_open());
    agent.shutdown().await;
}
