//! Handshake and session tests over an in-memory duplex.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use spake2::{Ed25519Group, Identity, Password, Spake2};
use tokio::io::{AsyncWriteExt, DuplexStream};

use super::*;
use crate::frame::{FrameError, FrameTransport, StreamTransport};
use crate::ids::{DeviceId, SessionId};
use crate::message::{
    AgentMessage, AgentSummary, CompanionMessage, ErrorBody, ErrorKind, Hello, PairingWindow,
    PlainMessage, ProtocolVersion, Role, VersionMismatch,
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
    fn wrong_code_answer(&mut self) -> ErrorBody {
        self.log
            .lock()
            .unwrap()
            .push("guard:wrong_code_answer".into());
        ErrorBody::new(ErrorKind::WrongSetupCode, "wrong").with_attempts(3, 60)
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
    companion: Result<CompanionSession<Wire>, HandshakeError>,
    agent: Result<AgentSession<Wire>, HandshakeError>,
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

/// The handshake with these codes, default Hellos and an agent that does not refuse.
async fn codes(companion_code: &str, agent_code: &str) -> Outcome {
    handshake(
        companion_code,
        agent_code,
        companion_hello(),
        agent_hello(),
        None,
    )
    .await
}

async fn paired() -> (CompanionSession<Wire>, AgentSession<Wire>) {
    let out = codes("40710839", "40710839").await;
    (out.companion.unwrap(), out.agent.unwrap())
}

/// Seals `msg` on the companion's side and hands back the frame instead of sending it.
async fn seal(companion: &mut CompanionSession<Wire>, msg: &CompanionMessage) -> Vec<u8> {
    companion.transport_mut().hold = true;
    companion.send(msg).await.unwrap();
    companion.transport_mut().held.pop().unwrap()
}

/// Puts `frame` on the wire to the agent, which must find it tampered with.
async fn refused(
    companion: &mut CompanionSession<Wire>,
    agent: &mut AgentSession<Wire>,
    frame: Vec<u8>,
) {
    companion.transport_mut().forward(frame).await;
    assert!(matches!(agent.recv().await, Err(SessionError::Tampered)));
}

/// `Spake2::start_a` or `start_b`.
type PakeStart = fn(&Password, &Identity, &Identity) -> (Spake2<Ed25519Group>, Vec<u8>);

/// The PAKE message, base64 as on the wire, of a hand-driven peer that knows the code
/// 40710839: `start` is `Spake2::start_a` for the companion's side, `start_b` for the agent's.
fn hand_pake(start: PakeStart) -> String {
    let (_spake, msg) = start(
        &Password::new(b"40710839"),
        &Identity::new(COMPANION_IDENTITY),
        &Identity::new(AGENT_IDENTITY),
    );
    URL_SAFE_NO_PAD.encode(msg)
}

/// `hello` as a build that speaks only protocol `major.minor` sends it.
fn speaking_only(mut hello: Hello, major: u16, minor: u16) -> Hello {
    hello.version = ProtocolVersion { major, minor };
    hello.min_major = major;
    hello
}

/// The session is still up: the agent is not dead and a request crosses to it.
async fn still_up(companion: &mut CompanionSession<Wire>, agent: &mut AgentSession<Wire>) {
    assert!(!agent.is_dead());
    companion.send(&CompanionMessage::GetStatus).await.unwrap();
    assert_eq!(agent.recv().await.unwrap(), CompanionMessage::GetStatus);
}

/// `json` sealed by the companion as if it were a message; what the agent makes of it.
async fn agent_reads(
    companion: &mut CompanionSession<Wire>,
    agent: &mut AgentSession<Wire>,
    json: &[u8],
) -> Result<CompanionMessage, SessionError> {
    companion.send_sealed_bytes(json).await.unwrap();
    agent.recv().await
}

/// The companion's handshake ended in the agent's `incompatible_version` answer, which says
/// `update_what`.
fn told_to_update<T: std::fmt::Debug>(companion: Result<T, HandshakeError>, update_what: &str) {
    match companion {
        Err(HandshakeError::Peer(body)) => {
            assert_eq!(body.kind, ErrorKind::IncompatibleVersion);
            assert!(body.message.contains(update_what), "{}", body.message);
        }
        other => panic!("companion: {other:?}"),
    }
}

fn sample_status() -> AgentMessage {
    AgentMessage::Progress(crate::message::Progress {
        session_id: SessionId::random(),
        stage: crate::message::ProgressStage::ExchangingCode,
    })
}

#[tokio::test]
async fn full_handshake_and_messages_both_ways() {
    let out = codes("40710839", "40710839").await;
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
        companion
            .send(&CompanionMessage::GetDeviceInfo)
            .await
            .unwrap();
        assert_eq!(agent.recv().await.unwrap(), CompanionMessage::GetDeviceInfo);
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
    let secret = "ANcMJpTtVktKiZvfdYaV";
    let msg = CompanionMessage::ProvideAuthorization(crate::message::ProvideAuthorization {
        session_id: SessionId::random(),
        authorization_code: crate::secret::AuthorizationCode::new(secret),
        client_id: "amzn1.application-oa2-client.x".into(),
        redirect_uri: "http://127.0.0.1:1/cb".into(),
    });
    let frame = seal(&mut companion, &msg).await;
    assert!(!frame.windows(secret.len()).any(|w| w == secret.as_bytes()));
    companion.transport_mut().forward(frame).await;
    assert_eq!(agent.recv().await.unwrap(), msg);
}

#[tokio::test]
async fn wrong_code_fails_on_both_ends_and_is_counted() {
    let out = codes("40710839", "40710838").await;
    assert!(matches!(out.companion, Err(HandshakeError::WrongSetupCode)));
    assert!(matches!(out.agent, Err(HandshakeError::WrongSetupCode)));
    assert_eq!(
        out.agent_log,
        [
            "send:hello",
            "guard:before_reply",
            "send:pake_reply",
            "guard:wrong_code_answer",
            "send:error"
        ],
        "the failure stays on record (no on_success), and the companion hears what it cost"
    );
}

/// Issue 15.7: the companion finds a wrong code first, but only the agent knows how many tries
/// are left; its answer to the companion's `Error{wrong_setup_code}` carries the count.
#[tokio::test]
async fn a_wrong_code_brings_back_the_attempts_left() {
    let (a, b) = tokio::io::duplex(4096);
    let agent_wire = Wire::new(b, Log::default());
    let agent = tokio::spawn(async move {
        let hs = ServerHandshake::accept(agent_wire, agent_hello()).await?;
        let mut guard = Guard {
            log: Log::default(),
            refuse: None,
        };
        hs.authenticate(&code("40710839"), &mut guard).await
    });
    let hs = ClientHandshake::start(StreamTransport::new(a), companion_hello())
        .await
        .unwrap();
    let failure = hs
        .authenticate_with_answer(&code("40710838"))
        .await
        .expect_err("wrong code");
    assert!(matches!(failure.error, HandshakeError::WrongSetupCode));
    let answer = failure.agent_answer.expect("the agent's count");
    assert_eq!(answer.kind, ErrorKind::WrongSetupCode);
    assert_eq!(
        (answer.attempts_left, answer.lockout_secs),
        (Some(3), Some(60))
    );
    assert!(matches!(
        agent.await.unwrap(),
        Err(HandshakeError::WrongSetupCode)
    ));
}

/// An agent from before the count (protocol 1.1) closes after the companion's error: the
/// companion reports the wrong code without a count, at once (no waiting out the answer wait).
#[tokio::test]
async fn an_old_agent_that_just_closes_gives_a_wrong_code_without_a_count() {
    let (a, b) = tokio::io::duplex(4096);
    let old_agent = tokio::spawn(async move {
        let mut raw = StreamTransport::new(b);
        let _hello = raw.recv_frame().await.unwrap().unwrap();
        raw.send_frame(serde_json::to_vec(&PlainMessage::Hello(agent_hello())).unwrap())
            .await
            .unwrap();
        let _start = raw.recv_frame().await.unwrap().unwrap();
        let reply = PlainMessage::PakeReply {
            pake: hand_pake(Spake2::start_b),
            confirm: URL_SAFE_NO_PAD.encode([7u8; 32]),
        };
        raw.send_frame(serde_json::to_vec(&reply).unwrap())
            .await
            .unwrap();
        let error = raw.recv_frame().await.unwrap().unwrap();
        drop(raw); // a 1.1 agent closes here
        error
    });
    let hs = ClientHandshake::start(StreamTransport::new(a), companion_hello())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let failure = hs
        .authenticate_with_answer(&code("40710839"))
        .await
        .expect_err("a bad agent tag is a wrong code");
    assert!(matches!(failure.error, HandshakeError::WrongSetupCode));
    assert!(failure.agent_answer.is_none());
    assert!(
        started.elapsed() < WRONG_CODE_ANSWER_WAIT,
        "the close ends the wait: {:?}",
        started.elapsed()
    );
    let sent: PlainMessage = serde_json::from_slice(&old_agent.await.unwrap()).unwrap();
    assert!(matches!(sent, PlainMessage::Error(b) if b.kind == ErrorKind::WrongSetupCode));
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
    raw.send_frame(send(PlainMessage::PakeStart {
        pake: hand_pake(Spake2::start_a),
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
    let mut frame = seal(&mut companion, &CompanionMessage::GetStatus).await;
    frame[0] ^= 0x01;
    refused(&mut companion, &mut agent, frame).await;
    assert!(agent.is_dead());
    assert!(matches!(
        agent.send(&AgentMessage::ResetDone).await,
        Err(SessionError::Dead)
    ));
}

#[tokio::test]
async fn replayed_frame_kills_the_session() {
    let (mut companion, mut agent) = paired().await;
    let frame = seal(&mut companion, &CompanionMessage::GetStatus).await;
    companion.transport_mut().forward(frame.clone()).await;
    assert_eq!(agent.recv().await.unwrap(), CompanionMessage::GetStatus);
    refused(&mut companion, &mut agent, frame).await;
}

#[tokio::test]
async fn reordered_or_dropped_frames_kill_the_session() {
    let (mut companion, mut agent) = paired().await;
    let _first = seal(&mut companion, &CompanionMessage::GetStatus).await;
    let second = seal(&mut companion, &CompanionMessage::GetDeviceInfo).await;
    // Deliver the second frame first (the first is reordered after it, or dropped).
    refused(&mut companion, &mut agent, second).await;
}

#[tokio::test]
async fn frames_sealed_for_the_other_direction_do_not_open() {
    let (mut companion, mut agent) = paired().await;
    // Reflect the agent's own sealed frame back at it.
    agent.transport_mut().hold = true;
    agent.send(&AgentMessage::ResetDone).await.unwrap();
    let frame = agent.transport_mut().held.pop().unwrap();
    refused(&mut companion, &mut agent, frame).await;
}

#[tokio::test]
async fn truncated_frames_kill_the_session() {
    // A frame cut short but still framed: the tag does not verify.
    let (mut companion, mut agent) = paired().await;
    let mut frame = seal(&mut companion, &CompanionMessage::GetStatus).await;
    frame.truncate(frame.len() - 1);
    refused(&mut companion, &mut agent, frame).await;

    // Shorter than a tag.
    let (mut companion, mut agent) = paired().await;
    refused(&mut companion, &mut agent, vec![1, 2, 3]).await;

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
    let huge = CompanionMessage::Error(ErrorBody::new(
        ErrorKind::Internal,
        "x".repeat(crate::frame::MAX_FRAME_LEN),
    ));
    assert!(matches!(
        companion.send(&huge).await,
        Err(SessionError::Frame(FrameError::Oversize { .. }))
    ));
    still_up(&mut companion, &mut agent).await;
}

#[tokio::test]
async fn unknown_and_malformed_authentic_messages_keep_the_session() {
    let (mut companion, mut agent) = paired().await;
    let teleport = br#"{"type":"teleport","to":"mars"}"#;
    assert_eq!(
        agent_reads(&mut companion, &mut agent, teleport)
            .await
            .unwrap(),
        CompanionMessage::Unknown
    );
    let no_code = br#"{"type":"provide_authorization","secret":"Atza|x"}"#;
    match agent_reads(&mut companion, &mut agent, no_code).await {
        Err(SessionError::Malformed(why)) => assert!(!why.contains("Atza"), "{why}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    still_up(&mut companion, &mut agent).await;
}

#[tokio::test]
async fn messages_of_the_other_direction_are_named_and_keep_the_session() {
    let (mut companion, mut agent) = paired().await;
    // An answer sent to the agent: authentic, well-formed, but only the agent sends it.
    match agent_reads(&mut companion, &mut agent, br#"{"type":"reset_done"}"#).await {
        Err(SessionError::WrongDirection(name)) => assert_eq!(name, "reset_done"),
        other => panic!("expected WrongDirection, got {other:?}"),
    }
    assert!(!agent.is_dead());
    // A request sent to the companion.
    agent
        .send_sealed_bytes(br#"{"type":"get_status"}"#)
        .await
        .unwrap();
    match companion.recv().await {
        Err(SessionError::WrongDirection(name)) => assert_eq!(name, "get_status"),
        other => panic!("expected WrongDirection, got {other:?}"),
    }
    // Both sessions go on.
    still_up(&mut companion, &mut agent).await;
    agent.send(&AgentMessage::ResetDone).await.unwrap();
    assert_eq!(companion.recv().await.unwrap(), AgentMessage::ResetDone);
}

#[tokio::test]
async fn newer_companion_is_told_to_update_the_agent() {
    let hello = speaking_only(companion_hello(), 2, 0);
    let out = handshake("40710839", "40710839", hello, agent_hello(), None).await;
    match out.agent {
        Err(HandshakeError::Incompatible(VersionMismatch::PeerTooNew { .. })) => {}
        other => panic!("agent: {other:?}"),
    }
    told_to_update(out.companion, "update the speaker");
}

#[tokio::test]
async fn older_companion_is_told_to_update_the_companion() {
    let hello = speaking_only(companion_hello(), 0, 9);
    let out = handshake("40710839", "40710839", hello, agent_hello(), None).await;
    told_to_update(out.companion, "update the companion app");
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
    let hello = speaking_only(agent_hello(), 3, 0);
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

/// Feeds an agent's handshake one raw first frame; returns how the agent ended and what it told
/// the peer.
async fn agent_answers_first_frame(
    frame: Vec<u8>,
) -> (
    Result<ServerHandshake<StreamTransport<DuplexStream>>, HandshakeError>,
    PlainMessage,
) {
    let (a, b) = tokio::io::duplex(4096);
    let agent = tokio::spawn(ServerHandshake::accept(
        StreamTransport::new(b),
        agent_hello(),
    ));
    let mut raw = StreamTransport::new(a);
    raw.send_frame(frame).await.unwrap();
    let ended = agent.await.unwrap();
    let told = serde_json::from_slice(&raw.recv_frame().await.unwrap().unwrap()).unwrap();
    (ended, told)
}

#[tokio::test]
async fn out_of_order_and_malformed_plain_messages_are_answered() {
    let told_kind = |told: &PlainMessage| match told {
        PlainMessage::Error(body) => Some(body.kind),
        _ => None,
    };

    // PakeStart before Hello.
    let frame = serde_json::to_vec(&PlainMessage::PakeStart { pake: "AA".into() }).unwrap();
    let (ended, told) = agent_answers_first_frame(frame).await;
    assert!(matches!(ended, Err(HandshakeError::Unexpected(_))));
    assert_eq!(told_kind(&told), Some(ErrorKind::UnexpectedMessage));

    // Not JSON.
    let (ended, told) = agent_answers_first_frame(b"\xff not json".to_vec()).await;
    assert!(matches!(ended, Err(HandshakeError::Malformed(_))));
    assert_eq!(told_kind(&told), Some(ErrorKind::Malformed));

    // A Hello from the wrong role.
    let frame = serde_json::to_vec(&PlainMessage::Hello(agent_hello())).unwrap();
    let (ended, told) = agent_answers_first_frame(frame).await;
    match ended {
        Err(HandshakeError::Unexpected(why)) => {
            assert!(why.contains("got hello"), "the derived type name: {why}")
        }
        other => panic!("expected Unexpected, got {:?}", other.map(|_| ())),
    }
    assert_eq!(told_kind(&told), Some(ErrorKind::UnexpectedMessage));
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
    let keys = super::keys::SessionKeys::derive(&[0x5a; 32], &[1; 32]);
    for key in [
        &keys.agent_confirm,
        &keys.companion_confirm,
        &keys.agent_to_companion,
        &keys.companion_to_agent,
    ] {
        let shown = format!("{key:?}").to_lowercase();
        // No run of 4 of the derived key's own bytes, as Debug prints a byte array or as hex.
        for run in key.expose_secret().windows(4) {
            let decimal = format!("{run:?}");
            let decimal = decimal.trim_start_matches('[').trim_end_matches(']');
            assert!(
                !shown.contains(decimal),
                "{shown} shows key bytes {decimal}"
            );
            assert!(!shown.contains(&hex(run)), "{shown} shows key bytes in hex");
        }
    }
}

/// Yields a fixed byte forever: makes SPAKE2's scalar (64 RNG bytes reduced mod l) known.
struct FixedRng(u8);

impl rand::RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        u32::from_ne_bytes([self.0; 4])
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_ne_bytes([self.0; 8])
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(self.0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        dest.fill(self.0);
        Ok(())
    }
}

impl rand::CryptoRng for FixedRng {}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The known-answer vector printed in docs/protocol.md ("Test vector"), so an implementation in
/// another language can check every step.
#[test]
fn interop_test_vector() {
    use chacha20poly1305::aead::{Aead, KeyInit};
    use chacha20poly1305::ChaCha20Poly1305;

    let companion_hello = br#"{"type":"hello","version":{"major":1,"minor":0},"min_major":1,"role":"companion","software":"vector","capabilities":[],"security_schemes":["spake2-ed25519-hkdf-sha256-chacha20poly1305"]}"#;
    let agent_hello = br#"{"type":"hello","version":{"major":1,"minor":0},"min_major":1,"role":"agent","software":"vector","capabilities":[],"security_schemes":["spake2-ed25519-hkdf-sha256-chacha20poly1305"]}"#;
    let password = Password::new(b"40710839");
    let (a, msg_a) = Spake2::<Ed25519Group>::start_a_with_rng(
        &password,
        &Identity::new(COMPANION_IDENTITY),
        &Identity::new(AGENT_IDENTITY),
        FixedRng(0x11),
    );
    let (b, msg_b) = Spake2::<Ed25519Group>::start_b_with_rng(
        &password,
        &Identity::new(COMPANION_IDENTITY),
        &Identity::new(AGENT_IDENTITY),
        FixedRng(0x22),
    );
    let key_a = a.finish(&msg_b).unwrap();
    let key_b = b.finish(&msg_a).unwrap();
    assert_eq!(key_a, key_b);

    let mut t = super::keys::Transcript::new();
    t.add(companion_hello);
    t.add(agent_hello);
    t.add(&msg_a);
    t.add(&msg_b);
    let th = t.finish();
    let keys = super::keys::SessionKeys::derive(&key_a, &th);
    let agent_tag = super::keys::confirm_tag(&keys.agent_confirm, &th);
    let companion_tag = super::keys::confirm_tag(&keys.companion_confirm, &th);
    let cipher = ChaCha20Poly1305::new(keys.companion_to_agent.expose_secret().into());
    let sealed0 = cipher
        .encrypt(&[0u8; 12].into(), &br#"{"type":"get_device_info"}"#[..])
        .unwrap();
    let mut nonce1 = [0u8; 12];
    nonce1[11] = 1;
    let sealed1 = cipher
        .encrypt(&nonce1.into(), &br#"{"type":"get_status"}"#[..])
        .unwrap();

    let got = [
        ("msg_a", hex(&msg_a)),
        ("msg_b", hex(&msg_b)),
        ("spake2_key", hex(&key_a)),
        ("transcript_hash", hex(&th)),
        ("agent_confirm_key", hex(keys.agent_confirm.expose_secret())),
        (
            "companion_confirm_key",
            hex(keys.companion_confirm.expose_secret()),
        ),
        (
            "agent_to_companion_key",
            hex(keys.agent_to_companion.expose_secret()),
        ),
        (
            "companion_to_agent_key",
            hex(keys.companion_to_agent.expose_secret()),
        ),
        ("agent_confirm", hex(&agent_tag)),
        ("companion_confirm", hex(&companion_tag)),
        ("sealed_c2a_0", hex(&sealed0)),
        ("sealed_c2a_1", hex(&sealed1)),
    ];
    // Cross-checked: msg_a/msg_b/spake2_key with python-spake2 0.9 (same scalars), the rest
    // with Python's hashlib/hmac and `cryptography`'s ChaCha20Poly1305.
    let expected: &[(&str, &str)] = &[
        (
            "msg_a",
            "414053a5dfde905db77b273e6f41103d998e7614c909d1430aac54f4e043b3a8c3",
        ),
        (
            "msg_b",
            "425232e90fdc2ef472eeb80f8150036c0c386026d6eb7f1e2f02d4d84eef623d83",
        ),
        (
            "spake2_key",
            "78f428ea8ba8c97c09ea008abfb3b4d3b791fac599b307c000ac0d9aa6f47886",
        ),
        (
            "transcript_hash",
            "55c2d60ec33a10d6390cea3665f81fbee05b398e820fa8df26f42d66eb7c1b03",
        ),
        (
            "agent_confirm_key",
            "34d70bdbd37e59b870f03c1538f70ba7fbb0d535a3231729a3c8219398675bbe",
        ),
        (
            "companion_confirm_key",
            "817c66e223cf6d94db53904d7130fe1bf2d8b487d2fee6e198fc26d56975d014",
        ),
        (
            "agent_to_companion_key",
            "49ba6132a8b5a2ee7725ee4324c755fb53ee8d061a54a8b42eee5a45f243abce",
        ),
        (
            "companion_to_agent_key",
            "2d8be545c9de03ba3a43ae486ddd55edbd0ac3ebd99ae5df196f0e4611c1d76c",
        ),
        (
            "agent_confirm",
            "29ff9dc4a03bf4105d732d4f18fadad445abfa2bb1031e936948e4a98a4cedd7",
        ),
        (
            "companion_confirm",
            "3ddf3c9623c0d60c97f6241705754b861db29a18182e453f2b81272bfca1eefc",
        ),
        (
            "sealed_c2a_0",
            "2b42941b2c95de41d6faa58029ec976d1bb933fb9ae523e5efafb4ffd1dcabd127193afc0da4f0dfdc0b",
        ),
        (
            "sealed_c2a_1",
            "f3c095ba3ac748c75ac2e3188f2f1c04b2b65bd6e59f61c7b97a8671718b0752e4bebeb6e4",
        ),
    ];
    for (name, value) in expected {
        let found = got.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(&found.1, value, "{name}");
    }
}
