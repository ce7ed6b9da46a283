//! Handshake and session tests over an in-memory duplex.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, DuplexStream};

use super::*;
use crate::frame::{FrameError, FrameTransport, StreamTransport};
use crate::ids::{DeviceId, SessionId};
use crate::message::{
    AgentSummary, ErrorBody, ErrorKind, Hello, PairingWindow, PlainMessage, ProtocolVersion, Role,
    SecureMessage, VersionMismatch,
};
use crate::setup_code::SetupCode;

type Log = Arc<Mutex<Vec<String>>>;

/// A transport that logs the type of each frame it sends and can hold frames back, so a test
/// can drop, replay, reorder or alter them.
struct Wire {
    inner: StreamTransport<DuplexStream>,
    log: Log,
    hold: bool,
    held: Vec<Vec<u8>>,
}

impl Wire {
    fn new(inner: DuplexStream, log: Log) -> Self {
        Self {
            inner: StreamTransport::new(inner),
            log,
            hold: false,
            held: Vec::new(),
        }
    }

    async fn forward(&mut self, frame: Vec<u8>) {
        self.inner.send_frame(frame).await.unwrap();
    }
}

impl FrameTransport for Wire {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), FrameError> {
        let kind = serde_json::from_slice::<serde_json::Value>(&frame)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "sealed".to_owned());
        self.log.lock().unwrap().push(format!("send:{kind}"));
        if self.hold {
            self.held.push(frame);
            Ok(())
        } else {
            self.inner.send_frame(frame).await
        }
    }

    async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.inner.recv_frame().await
    }
}

/// Logs guard calls; refuses with `refuse` if set.
struct Guard {
    log: Log,
    refuse: Option<ErrorBody>,
}

impl AttemptGuard for Guard {
    fn before_reply(&mut self) -> Result<(), ErrorBody> {
        self.log.lock().unwrap().push("guard:before_reply".into());
        match &self.refuse {
            Some(body) => Err(body.clone()),
            None => Ok(()),
        }
    }
    fn on_success(&mut self) {
        self.log.lock().unwrap().push("guard:on_success".into());
    }
}

fn code(digits: &str) -> SetupCode {
    SetupCode::from_digits(digits).unwrap()
}

fn agent_hello() -> Hello {
    let mut hello = Hello::new(Role::Agent, "avs-device-agent test");
    hello.agent = Some(AgentSummary {
        device_id: DeviceId::new("a1b2c3"),
        friendly_name: "Kitchen".into(),
        paired: false,
        window: PairingWindow::Open {
            closes_in_secs: 900,
        },
    });
    hello
}

fn companion_hello() -> Hello {
    Hello::new(Role::Companion, "avs-companion test")
}

struct Outcome {
    companion: Result<SecureSession<Wire>, HandshakeError>,
    agent: Result<SecureSession<Wire>, HandshakeError>,
    agent_log: Vec<String>,
}

async fn handshake(
    companion_code: &str,
    agent_code: &str,
    companion_hello: Hello,
    agent_hello: Hello,
    refuse: Option<ErrorBody>,
) -> Outcome {
    let (a, b) = tokio::io::duplex(4096);
    let companion_log = Log::default();
    let agent_log = Log::default();
    let c_code = code(companion_code);
    let a_code = code(agent_code);
    let companion_wire = Wire::new(a, companion_log);
    let agent_wire = Wire::new(b, agent_log.clone());
    let companion = async move {
        let hs = ClientHandshake::start(companion_wire, companion_hello).await?;
        assert_eq!(hs.peer_hello().role, Role::Agent);
        hs.authenticate(&c_code).await
    };
    let guard_log = agent_log.clone();
    let agent = async move {
        let hs = ServerHandshake::accept(agent_wire, agent_hello).await?;
        assert_eq!(hs.peer_hello().role, Role::Companion);
        let mut guard = Guard {
            log: guard_log,
            refuse,
        };
        hs.authenticate(&a_code, &mut guard).await
    };
    let (companion, agent) = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        tokio::join!(companion, agent)
    })
    .await
    .expect("handshake must finish");
    let agent_log = agent_log.lock().unwrap().clone();
    Outcome {
        companion,
        agent,
        agent_log,
    }
}

async fn paired() -> (SecureSession<Wire>, SecureSession<Wire>) {
    let out = handshake(
        "40710839",
        "40710839",
        companion_hello(),
        agent_hello(),
        None,
    )
    .await;
    (out.companion.unwrap(), out.agent.unwrap())
}

fn sample_status() -> SecureMessage {
    SecureMessage::Progress(crate::message::Progress {
        session_id: SessionId::random(),
        stage: crate::message::ProgressStage::ExchangingCode,
    })
}

#[tokio::test]
async fn full_handshake_and_messages_both_ways() {
    let out = handshake(
        "40710839",
        "40710839",
        companion_hello(),
        agent_hello(),
        None,
    )
    .await;
    assert_eq!(
        out.agent_log,
        [
            "send:hello",
            "guard:before_reply",
            "send:pake_reply",
            "guard:on_success"
        ]
    );
    let (mut companion, mut agent) = (out.companion.unwrap(), out.agent.unwrap());
    assert_eq!(
        companion.peer_hello().agent.as_ref().unwrap().friendly_name,
        "Kitchen"
    );
    assert_eq!(agent.peer_hello().role, Role::Companion);

    for _ in 0..3 {
        companion.send(&SecureMessage::GetDeviceInfo).await.unwrap();
        assert_eq!(agent.recv().await.unwrap(), SecureMessage::GetDeviceInfo);
        let msg = sample_status();
        agent.send(&msg).await.unwrap();
        assert_eq!(companion.recv().await.unwrap(), msg);
    }
    drop(agent);
    assert!(matches!(companion.recv().await, Err(SessionError::Closed)));
    assert!(matches!(companion.recv().await, Err(SessionError::Dead)));
}

#[tokio::test]
async fn sealed_frames_are_not_plaintext() {
    let (mut companion, mut agent) = paired().await;
    companion.transport_mut().hold = true;
    let secret = "ANcMJpTtVktKiZvfdYaV";
    let msg = SecureMessage::ProvideAuthorization(crate::message::ProvideAuthorization {
        session_id: SessionId::random(),
        authorization_code: crate::secret::AuthorizationCode::new(secret),
        client_id: "amzn1.application-oa2-client.x".into(),
        redirect_uri: "http://127.0.0.1:1/cb".into(),
    });
    companion.send(&msg).await.unwrap();
    let frame = companion.transport_mut().held.pop().unwrap();
    assert!(!frame.windows(secret.len()).any(|w| w == secret.as_bytes()));
    companion.transport_mut().forward(frame).await;
    assert_eq!(agent.recv().await.unwrap(), msg);
}

#[tokio::test]
async fn wrong_code_fails_on_both_ends_and_is_counted() {
    let out = handshake(
        "40710839",
        "40710838",
        companion_hello(),
        agent_hello(),
        None,
    )
    .await;
    assert!(matches!(out.companion, Err(HandshakeError::WrongSetupCode)));
    assert!(matches!(out.agent, Err(HandshakeError::WrongSetupCode)));
    assert_eq!(
        out.agent_log,
        ["send:hello", "guard:before_reply", "send:pake_reply"],
        "the failure stays on record: no on_success"
    );
}

#[tokio::test]
async fn guard_refusal_reaches_the_companion_before_any_pake_reply() {
    let mut body = ErrorBody::new(ErrorKind::LockedOut, "too many wrong setup codes");
    body.retry_after_secs = Some(60);
    let out = handshake(
        "40710839",
        "40710839",
        companion_hello(),
        agent_hello(),
        Some(body.clone()),
    )
    .await;
    match out.companion {
        Err(HandshakeError::Peer(got)) => assert_eq!(got, body),
        other => panic!("expected Peer(LockedOut), got {other:?}"),
    }
    match out.agent {
        Err(HandshakeError::Refused(got)) => assert_eq!(got, body),
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(
        out.agent_log,
        ["send:hello", "guard:before_reply", "send:error"]
    );
}

/// A hand-driven companion that knows the code but sends a bad confirmation: the agent must
/// detect it itself and say so.
#[tokio::test]
async fn agent_detects_a_bad_companion_confirmation() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use spake2::{Ed25519Group, Identity, Password, Spake2};

    let (a, b) = tokio::io::duplex(4096);
    let agent_log = Log::default();
    let agent_wire = Wire::new(b, agent_log.clone());
    let guard_log = agent_log.clone();
    let agent = tokio::spawn(async move {
        let hs = ServerHandshake::accept(agent_wire, agent_hello()).await?;
        let mut guard = Guard {
            log: guard_log,
            refuse: None,
        };
        hs.authenticate(&code("40710839"), &mut guard).await
    });
    let mut raw = StreamTransport::new(a);
    let send = |msg: PlainMessage| serde_json::to_vec(&msg).unwrap();
    raw.send_frame(send(PlainMessage::Hello(companion_hello())))
        .await
        .unwrap();
    let _hello = raw.recv_frame().await.unwrap().unwrap();
    let (_spake, msg_a) = Spake2::<Ed25519Group>::start_a(
        &Password::new(b"40710839"),
        &Identity::new(COMPANION_IDENTITY),
        &Identity::new(AGENT_IDENTITY),
    );
    raw.send_frame(send(PlainMessage::PakeStart {
        pake: URL_SAFE_NO_PAD.encode(&msg_a),
    }))
    .await
    .unwrap();
    let reply: PlainMessage =
        serde_json::from_slice(&raw.recv_frame().await.unwrap().unwrap()).unwrap();
    assert!(matches!(reply, PlainMessage::PakeReply { .. }));
    raw.send_frame(send(PlainMessage::PakeConfirm {
        confirm: URL_SAFE_NO_PAD.encode([0u8; 32]),
    }))
    .await
    .unwrap();
    let answer: PlainMessage =
        serde_json::from_slice(&raw.recv_frame().await.unwrap().unwrap()).unwrap();
    match answer {
        PlainMessage::Error(body) => assert_eq!(body.kind, ErrorKind::WrongSetupCode),
        other => panic!("expected Error, got {other:?}"),
    }
    assert!(matches!(
        agent.await.unwrap(),
        Err(HandshakeError::WrongSetupCode)
    ));
    assert!(!agent_log
        .lock()
        .unwrap()
        .contains(&"guard:on_success".to_owned()));
}

#[tokio::test]
async fn altered_frame_kills_the_session() {
    let (mut companion, mut agent) = paired().await;
    companion.transport_mut().hold = true;
    companion.send(&SecureMessage::GetStatus).await.unwrap();
    let mut frame = companion.transport_mut().held.pop().unwrap();
    frame[0] ^= 0x01;
    companion.transport_mut().forward(frame).await;
    assert!(matches!(agent.recv().await, Err(SessionError::Tampered)));
    assert!(agent.is_dead());
    assert!(matches!(
        agent.send(&SecureMessage::Reset).await,
        Err(SessionError::Dead)
    ));
}

#[tokio::test]
async fn replayed_frame_kills_the_session() {
    let (mut companion, mut agent) = paired().await;
    companion.transport_mut().hold = true;
    companion.send(&SecureMessage::GetStatus).await.unwrap();
    let frame = companion.transport_mut().held.pop().unwrap();
    companion.transport_mut().forward(frame.clone()).await;
    assert_eq!(agent.recv().await.unwrap(), SecureMessage::GetStatus);
    companion.transport_mut().forward(frame).await;
    assert!(matches!(agent.recv().await, Err(SessionError::Tampered)));
}

#[tokio::test]
async fn reordered_or_dropped_frames_kill_the_session() {
    let (mut companion, mut agent) = paired().await;
    companion.transport_mut().hold = true;
    companion.send(&SecureMessage::GetStatus).await.unwrap();
    companion.send(&SecureMessage::GetDeviceInfo).await.unwrap();
    let second = companion.transport_mut().held.pop().unwrap();
    // Deliver the second frame first (the first is reordered after it, or dropped).
    companion.transport_mut().forward(second).await;
    assert!(matches!(agent.recv().await, Err(SessionError::Tampered)));
}

#[tokio::test]
async fn frames_sealed_for_the_other_direction_do_not_open() {
    let (mut companion, mut agent) = paired().await;
    // Reflect the agent's own sealed frame back at it.
    agent.transport_mut().hold = true;
    agent.send(&SecureMessage::ResetDone).await.unwrap();
    let frame = agent.transport_mut().held.pop().unwrap();
    companion.transport_mut().forward(frame).await;
    assert!(matches!(agent.recv().await, Err(SessionError::Tampered)));
}

#[tokio::test]
async fn truncated_frames_kill_the_session() {
    // A frame cut short but still framed: the tag does not verify.
    let (mut companion, mut agent) = paired().await;
    companion.transport_mut().hold = true;
    companion.send(&SecureMessage::GetStatus).await.unwrap();
    let mut frame = companion.transport_mut().held.pop().unwrap();
    frame.truncate(frame.len() - 1);
    companion.transport_mut().forward(frame).await;
    assert!(matches!(agent.recv().await, Err(SessionError::Tampered)));

    // Shorter than a tag.
    let (mut companion, mut agent) = paired().await;
    companion.transport_mut().forward(vec![1, 2, 3]).await;
    assert!(matches!(agent.recv().await, Err(SessionError::Tampered)));

    // The stream ends in the middle of a frame.
    let (mut companion, mut agent) = paired().await;
    let stream = companion.transport_mut().inner.get_mut();
    stream.write_all(&[0, 0, 0, 40, 1, 2, 3]).await.unwrap();
    stream.shutdown().await.unwrap();
    assert!(matches!(
        agent.recv().await,
        Err(SessionError::Frame(FrameError::Truncated))
    ));
}

#[tokio::test]
async fn oversize_frame_header_kills_the_session_without_allocating() {
    let (mut companion, mut agent) = paired().await;
    let stream = companion.transport_mut().inner.get_mut();
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert!(matches!(
        agent.recv().await,
        Err(SessionError::Frame(FrameError::Oversize { .. }))
    ));
}

#[tokio::test]
async fn oversize_message_is_refused_locally_and_the_session_survives() {
    let (mut companion, mut agent) = paired().await;
    let huge = SecureMessage::Error(ErrorBody::new(
        ErrorKind::Internal,
        "x".repeat(crate::frame::MAX_FRAME_LEN),
    ));
    assert!(matches!(
        companion.send(&huge).await,
        Err(SessionError::Frame(FrameError::Oversize { .. }))
    ));
    companion.send(&SecureMessage::GetStatus).await.unwrap();
    assert_eq!(agent.recv().await.unwrap(), SecureMessage::GetStatus);
}

#[tokio::test]
async fn unknown_and_malformed_authentic_messages_keep_the_session() {
    let (mut companion, mut agent) = paired().await;
    companion
        .send_sealed_bytes(br#"{"type":"teleport","to":"mars"}"#)
        .await
        .unwrap();
    assert_eq!(agent.recv().await.unwrap(), SecureMessage::Unknown);
    companion
        .send_sealed_bytes(br#"{"type":"device_info","secret":"Atza|x"}"#)
        .await
        .unwrap();
    match agent.recv().await {
        Err(SessionError::Malformed(why)) => assert!(!why.contains("Atza"), "{why}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert!(!agent.is_dead());
    companion.send(&SecureMessage::GetStatus).await.unwrap();
    assert_eq!(agent.recv().await.unwrap(), SecureMessage::GetStatus);
}

#[tokio::test]
async fn newer_companion_is_told_to_update_the_agent() {
    let mut hello = companion_hello();
    hello.version = ProtocolVersion { major: 2, minor: 0 };
    hello.min_major = 2;
    let out = handshake("40710839", "40710839", hello, agent_hello(), None).await;
    match out.agent {
        Err(HandshakeError::Incompatible(VersionMismatch::PeerTooNew { .. })) => {}
        other => panic!("agent: {other:?}"),
    }
    match out.companion {
        Err(HandshakeError::Peer(body)) => {
            assert_eq!(body.kind, ErrorKind::IncompatibleVersion);
            assert!(
                body.message.contains("update the speaker"),
                "{}",
                body.message
            );
        }
        other => panic!("companion: {other:?}"),
    }
}

#[tokio::test]
async fn older_companion_is_told_to_update_the_companion() {
    let mut hello = companion_hello();
    hello.version = ProtocolVersion { major: 0, minor: 9 };
    hello.min_major = 0;
    let out = handshake("40710839", "40710839", hello, agent_hello(), None).await;
    match out.companion {
        Err(HandshakeError::Peer(body)) => {
            assert_eq!(body.kind, ErrorKind::IncompatibleVersion);
            assert!(
                body.message.contains("update the companion app"),
                "{}",
                body.message
            );
        }
        other => panic!("companion: {other:?}"),
    }
    assert!(matches!(
        out.agent,
        Err(HandshakeError::Incompatible(
            VersionMismatch::PeerTooOld { .. }
        ))
    ));
}

#[tokio::test]
async fn companion_checks_the_agents_version_too() {
    let (a, b) = tokio::io::duplex(4096);
    let companion = tokio::spawn(async move {
        ClientHandshake::start(StreamTransport::new(a), companion_hello())
            .await
            .map(|_| ())
    });
    let mut raw = StreamTransport::new(b);
    let _ = raw.recv_frame().await.unwrap().unwrap();
    let mut hello = agent_hello();
    hello.version = ProtocolVersion { major: 3, minor: 0 };
    hello.min_major = 3;
    raw.send_frame(serde_json::to_vec(&PlainMessage::Hello(hello)).unwrap())
        .await
        .unwrap();
    let err = companion.await.unwrap().unwrap_err();
    assert!(
        err.to_string().contains("update the companion app"),
        "{err}"
    );
    let told: PlainMessage =
        serde_json::from_slice(&raw.recv_frame().await.unwrap().unwrap()).unwrap();
    assert!(matches!(told, PlainMessage::Error(ref b) if b.kind == ErrorKind::IncompatibleVersion));
}

#[tokio::test]
async fn out_of_order_and_malformed_plain_messages_are_answered() {
    // PakeStart before Hello.
    let (a, b) = tokio::io::duplex(4096);
    let agent = tokio::spawn(ServerHandshake::accept(
        StreamTransport::new(b),
        agent_hello(),
    ));
    let mut raw = StreamTransport::new(a);
    raw.send_frame(serde_json::to_vec(&PlainMessage::PakeStart { pake: "AA".into() }).unwrap())
        .await
        .unwrap();
    assert!(matches!(
        agent.await.unwrap(),
        Err(HandshakeError::Unexpected(_))
    ));
    let told: PlainMessage =
        serde_json::from_slice(&raw.recv_frame().await.unwrap().unwrap()).unwrap();
    assert!(matches!(told, PlainMessage::Error(ref b) if b.kind == ErrorKind::UnexpectedMessage));

    // Not JSON.
    let (a, b) = tokio::io::duplex(4096);
    let agent = tokio::spawn(ServerHandshake::accept(
        StreamTransport::new(b),
        agent_hello(),
    ));
    let mut raw = StreamTransport::new(a);
    raw.send_frame(b"\xff not json".to_vec()).await.unwrap();
    assert!(matches!(
        agent.await.unwrap(),
        Err(HandshakeError::Malformed(_))
    ));
    let told: PlainMessage =
        serde_json::from_slice(&raw.recv_frame().await.unwrap().unwrap()).unwrap();
    assert!(matches!(told, PlainMessage::Error(ref b) if b.kind == ErrorKind::Malformed));

    // A Hello from the wrong role.
    let (a, b) = tokio::io::duplex(4096);
    let agent = tokio::spawn(ServerHandshake::accept(
        StreamTransport::new(b),
        agent_hello(),
    ));
    let mut raw = StreamTransport::new(a);
    raw.send_frame(serde_json::to_vec(&PlainMessage::Hello(agent_hello())).unwrap())
        .await
        .unwrap();
    assert!(matches!(
        agent.await.unwrap(),
        Err(HandshakeError::Unexpected(_))
    ));
}

#[tokio::test]
async fn malformed_pake_is_refused_without_counting_an_attempt() {
    let (a, b) = tokio::io::duplex(4096);
    let log = Log::default();
    let guard_log = log.clone();
    let agent = tokio::spawn(async move {
        let hs = ServerHandshake::accept(StreamTransport::new(b), agent_hello()).await?;
        let mut guard = Guard {
            log: guard_log,
            refuse: None,
        };
        hs.authenticate(&code("40710839"), &mut guard).await
    });
    let mut raw = StreamTransport::new(a);
    raw.send_frame(serde_json::to_vec(&PlainMessage::Hello(companion_hello())).unwrap())
        .await
        .unwrap();
    let _ = raw.recv_frame().await.unwrap().unwrap();
    raw.send_frame(
        serde_json::to_vec(&PlainMessage::PakeStart {
            pake: "not*base64".into(),
        })
        .unwrap(),
    )
    .await
    .unwrap();
    assert!(matches!(
        agent.await.unwrap(),
        Err(HandshakeError::Malformed(_))
    ));
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn peer_closing_mid_handshake_is_closed() {
    let (a, b) = tokio::io::duplex(4096);
    drop(a);
    assert!(matches!(
        ServerHandshake::accept(StreamTransport::new(b), agent_hello()).await,
        Err(HandshakeError::Closed)
    ));
}

#[test]
fn debug_output_has_no_keys() {
    let key = crate::secret::SecretKey::from_bytes([0x5a; 32]);
    let keys = super::keys::SessionKeys::derive(key.expose_secret(), &[1; 32]);
    assert!(!format!("{:?}", keys.agent_confirm).contains("5a"));
}
