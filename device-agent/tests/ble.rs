//! BLE sessions over the in-process GATT model run the agent's own link handler: the same
//! setup-code gate, attempt counter and window as over TCP, and the info characteristic tracks
//! the agent's state; a companion that vanished without disconnecting from a sealed session does
//! not cost the next one its first try, and a Hello written into a handshake is never handed over.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use device_agent::ble::{self, BleStatus};
use shared_protocol::discovery::{PairingState, TxtRecord};
use shared_protocol::frame::FrameTransport;
use shared_protocol::gatt::model::{
    ModelCentralLink, ModelConnection, ModelControl, ModelPeripheral,
};
use shared_protocol::gatt::{GattLink, GattLinkError, GattTransport};
use shared_protocol::message::{
    AgentMessage, CompanionMessage, ErrorKind, Hello, PlainMessage, Role,
};
use shared_protocol::session::{ClientHandshake, HandshakeError};
use shared_protocol::setup_code::SetupCode;

async fn ble_handshake(
    agent: &device_agent::agent::Agent,
    peripheral: &ModelPeripheral,
    acceptor: &mut shared_protocol::gatt::model::ModelAcceptor,
    code: &str,
) -> Result<
    shared_protocol::session::CompanionSession<
        GattTransport<shared_protocol::gatt::model::ModelCentralLink>,
    >,
    HandshakeError,
> {
    let (central, _control) = peripheral
        .connect(ModelConnection::mtu(23).interval(Duration::from_millis(2)))
        .await
        .unwrap();
    let link = acceptor.accept().await.unwrap();
    let _session = agent.serve_gatt(link, "model central".into());
    let hs = tokio::time::timeout(
        Duration::from_secs(10),
        ClientHandshake::start(
            GattTransport::new(central),
            Hello::new(Role::Companion, "ble test"),
        ),
    )
    .await
    .unwrap()?;
    let code = SetupCode::parse(code).unwrap();
    tokio::time::timeout(Duration::from_secs(10), hs.authenticate(&code))
        .await
        .unwrap()
}

#[tokio::test]
async fn ble_sessions_go_through_the_same_gate_as_tcp() {
    init_logs();
    // This test is about the gate BLE shares with TCP, not the pacing between attempts (proved
    // in link.rs): the right code follows the wrong one at once.
    let (_dir, agent) = offline(|cfg| cfg.pairing.attempt_interval = Duration::ZERO).await;
    assert_eq!(agent.ble_status(), &BleStatus::Off, "for_local has BLE off");
    let ctx = agent.link_context();
    let (peripheral, mut acceptor) = ModelPeripheral::new(517, move || ble::info_value(&ctx));

    // The info characteristic: the TXT record, read before any handshake.
    let (mut central, _c) = peripheral.connect(ModelConnection::mtu(23)).await.unwrap();
    let info = central.read_info().await.unwrap();
    let txt = TxtRecord::from_ble_info(std::str::from_utf8(&info).unwrap()).unwrap();
    assert_eq!(&txt.device_id, agent.device_id());
    assert_eq!(txt.pairing, PairingState::Open);
    assert!(!txt.paired);
    drop(central);
    drop(acceptor.accept().await);

    // A wrong code is refused and counted, exactly as over TCP.
    match ble_handshake(&agent, &peripheral, &mut acceptor, WRONG_CODE).await {
        Err(HandshakeError::WrongSetupCode) => {}
        other => panic!("{other:?}"),
    }
    eventually("failure counted", Duration::from_secs(5), || {
        agent.pairing().failures() == 1
    })
    .await;

    // The right code gives a sealed session that answers requests.
    let mut s = ble_handshake(&agent, &peripheral, &mut acceptor, CODE)
        .await
        .unwrap();
    s.send(&CompanionMessage::GetStatus).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), s.recv())
        .await
        .unwrap()
        .unwrap();
    match answer {
        AgentMessage::Status(st) => assert_eq!(&st.summary.device_id, agent.device_id()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        agent.pairing().failures(),
        1,
        "this attempt's tentative failure is undone; the earlier wrong code stays counted"
    );
    drop(s);

    // The info value follows the window.
    agent.pairing().close();
    let (mut central, _c) = peripheral.connect(ModelConnection::mtu(185)).await.unwrap();
    let info = central.read_info().await.unwrap();
    let txt = TxtRecord::from_ble_info(std::str::from_utf8(&info).unwrap()).unwrap();
    assert_eq!(txt.pairing, PairingState::Closed);
    agent.shutdown().await;
}

/// One central connection used by one companion after another, as on a laptop whose first
/// companion process died without disconnecting: the connection and its subscription to tx
/// outlive it (the laptop's stack holds them), and the next companion process uses them.
#[derive(Clone)]
struct SharedCentral {
    link: Arc<tokio::sync::Mutex<ModelCentralLink>>,
    payload: usize,
}

impl GattLink for SharedCentral {
    fn att_payload(&self) -> usize {
        self.payload
    }

    async fn send_value(&mut self, value: Vec<u8>) -> Result<(), GattLinkError> {
        self.link.lock().await.send_value(value).await
    }

    async fn recv_value(&mut self) -> Result<Option<Vec<u8>>, GattLinkError> {
        self.link.lock().await.recv_value().await
    }

    async fn disconnect(&mut self) {
        self.link.lock().await.disconnect().await
    }
}

/// A model central connected to `agent`'s GATT service at `mtu` (the peripheral's is 517), its
/// connection served by the agent's BLE session task.
struct Served {
    /// Kept alive for the connection.
    _peripheral: ModelPeripheral,
    central: ModelCentralLink,
    control: ModelControl,
    session: tokio::task::JoinHandle<()>,
}

async fn served(agent: &device_agent::agent::Agent, mtu: u16) -> Served {
    let ctx = agent.link_context();
    let (peripheral, mut acceptor) = ModelPeripheral::new(517, move || ble::info_value(&ctx));
    let (central, control) = peripheral
        .connect(ModelConnection::mtu(mtu).interval(Duration::from_millis(2)))
        .await
        .unwrap();
    let session = agent.serve_gatt(acceptor.accept().await.unwrap(), "model central".into());
    Served {
        _peripheral: peripheral,
        central,
        control,
        session,
    }
}

impl Served {
    /// The central as one connection shared by one companion after another.
    fn shared(self) -> (SharedCentral, ModelControl, tokio::task::JoinHandle<()>) {
        let central = SharedCentral {
            payload: self.central.att_payload(),
            link: Arc::new(tokio::sync::Mutex::new(self.central)),
        };
        (central, self.control, self.session)
    }
}

/// The agent's BLE session task ends within 10 s (`when`: after what).
async fn ends(session: tokio::task::JoinHandle<()>, when: &str) {
    tokio::time::timeout(Duration::from_secs(10), session)
        .await
        .unwrap_or_else(|_| panic!("the session ends {when}"))
        .unwrap();
}

/// [`ends`], and the agent disconnected the central.
async fn ends_disconnected(
    session: tokio::task::JoinHandle<()>,
    control: &ModelControl,
    when: &str,
) {
    ends(session, when).await;
    assert!(control.is_disconnected(), "the agent disconnected {when}");
}

/// A companion's handshake with `code` on the shared connection (deadline 10 s).
async fn handshake_on(
    central: &SharedCentral,
    code: &str,
) -> Result<shared_protocol::session::CompanionSession<GattTransport<SharedCentral>>, HandshakeError>
{
    let hello = Hello::new(Role::Companion, "ble test");
    handshake(GattTransport::new(central.clone()), hello, code).await
}

#[tokio::test]
async fn a_companion_that_vanished_does_not_cost_the_next_its_first_try() {
    init_logs();
    let (_dir, agent) = offline(|cfg| cfg.pairing.attempt_interval = Duration::ZERO).await;
    let (central, control, session) = served(&agent, 23).await.shared();

    // The first companion seals a session, is answered, and vanishes: no disconnect, no close,
    // its keys gone with it. The agent's session waits sealed.
    let mut first = handshake_on(&central, CODE).await.unwrap();
    first.send(&CompanionMessage::GetStatus).await.unwrap();
    assert!(matches!(recv(&mut first).await, AgentMessage::Status(_)));
    drop(first);

    // The next companion's plain Hello lands in that sealed session: its first try links up,
    // through the whole handshake, and costs no attempt.
    let mut second = match handshake_on(&central, CODE).await {
        Ok(s) => s,
        Err(e) => panic!("the next companion's first try failed: {e}"),
    };
    second.send(&CompanionMessage::GetStatus).await.unwrap();
    match recv(&mut second).await {
        AgentMessage::Status(st) => assert_eq!(&st.summary.device_id, agent.device_id()),
        other => panic!("{other:?}"),
    }
    assert_eq!(agent.pairing().failures(), 0, "no attempt was counted");
    assert!(!control.is_disconnected(), "the connection stayed up");
    drop(second);

    // A Hello that takes over a sealed session skips nothing: a wrong code is refused and
    // counted as on a fresh connection, and that session ends with the link.
    match handshake_on(&central, WRONG_CODE).await {
        Err(HandshakeError::WrongSetupCode) => {}
        Err(other) => panic!("expected the wrong code refused, got {other}"),
        Ok(_) => panic!("a wrong code sealed a session"),
    }
    eventually("failure counted", Duration::from_secs(5), || {
        agent.pairing().failures() == 1
    })
    .await;
    ends_disconnected(session, &control, "after the wrong code").await;
    agent.shutdown().await;
}

#[tokio::test]
async fn a_new_companion_after_the_window_closed_is_told_so_not_cut_off() {
    init_logs();
    let (_dir, agent) = offline(|_| {}).await;
    let (central, control, session) = served(&agent, 185).await.shared();
    drop(handshake_on(&central, CODE).await.unwrap());
    // The window closes while the vanished companion's session waits sealed: the next
    // companion's Hello starts a session that answers it with the reason, before any PAKE.
    agent.pairing().close();
    match handshake_on(&central, CODE).await {
        Err(HandshakeError::Peer(body)) => {
            assert_eq!(body.kind, ErrorKind::WindowClosed, "{}", body.message)
        }
        Err(other) => panic!("expected window_closed, got {other}"),
        Ok(_) => panic!("a session sealed with the window closed"),
    }
    assert_eq!(agent.pairing().failures(), 0, "no attempt was counted");
    ends_disconnected(session, &control, "after the refusal").await;
    agent.shutdown().await;
}

#[tokio::test]
async fn the_answer_to_a_handed_over_hello_is_in_the_clear() {
    init_logs();
    let (_dir, agent) = offline(|_| {}).await;
    let (central, _control, _session) = served(&agent, 185).await.shared();
    drop(handshake_on(&central, CODE).await.unwrap());
    // A bare Hello written into the sealed session: the very next frame from the agent is its
    // own plain Hello (a new handshake), not anything sealed in the old session's keys.
    let mut raw = GattTransport::new(central.clone());
    let hello = PlainMessage::Hello(Hello::new(Role::Companion, "ble test"));
    match raw_exchange(&mut raw, &hello, Duration::from_secs(10)).await {
        Ok(PlainMessage::Hello(h)) => assert_eq!(h.role, Role::Agent),
        other => panic!("expected the agent's plain Hello, got {other:?}"),
    }
    agent.shutdown().await;
}

#[tokio::test]
async fn hello_after_hello_without_the_code_does_not_hold_the_link() {
    init_logs();
    let (_dir, agent) = offline(|_| {}).await;
    let Served {
        central,
        control,
        session,
        ..
    } = served(&agent, 185).await;
    let mut raw = GattTransport::new(central);
    let hello = serde_json::to_vec(&PlainMessage::Hello(Hello::new(Role::Companion, "t"))).unwrap();
    // Each Hello answered with the agent's Hello: true; the link ended instead: false.
    let mut answers = Vec::new();
    for _ in 0..3 {
        let answered = async {
            raw.send_frame(hello.clone()).await.ok()?;
            let frame = raw.recv_frame().await.ok()??;
            match serde_json::from_slice::<PlainMessage>(&frame) {
                Ok(PlainMessage::Hello(h)) => Some(h.role == Role::Agent),
                _ => None,
            }
        };
        let answered = tokio::time::timeout(Duration::from_secs(10), answered)
            .await
            .expect("an answer or the end in time")
            .unwrap_or(false);
        answers.push(answered);
        if !answered {
            break;
        }
    }
    // The first Hello's session, then the end: a handshake is not handed over, so a writer
    // without the code gets one handshake per connection, not an endless chain.
    assert_eq!(answers, [true, false]);
    ends_disconnected(session, &control, "after the second Hello").await;
    assert_eq!(agent.pairing().failures(), 0);
    agent.shutdown().await;
}

#[tokio::test]
async fn a_hello_written_into_the_owners_handshake_costs_the_owner_no_attempt() {
    init_logs();
    let (_dir, agent) = offline(|_| {}).await;
    let (central, _control, session) = served(&agent, 185).await.shared();
    // The owner exchanges Hellos (an app may do that before its user types the code)...
    let owner = tokio::time::timeout(
        Duration::from_secs(10),
        ClientHandshake::start(
            GattTransport::new(central.clone()),
            Hello::new(Role::Companion, "owner"),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    // ...another program on the same central writes a companion Hello into that handshake...
    let mut raw = GattTransport::new(central.clone());
    let hello = PlainMessage::Hello(Hello::new(Role::Companion, "stranger"));
    raw.send_frame(serde_json::to_vec(&hello).unwrap())
        .await
        .unwrap();
    // ...and the owner's PAKE message with the right code follows. Its handshake fails (the
    // link was disturbed), but its attempt must not be spent: had the Hello started a new
    // session, the owner's PAKE message would be counted there and its handshake end as a
    // wrong code.
    let code = SetupCode::parse(CODE).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), owner.authenticate(&code))
        .await
        .expect("the owner's handshake ends in time");
    assert!(result.is_err(), "the disturbed handshake did not seal");
    ends(session, "after the disturbed handshake").await;
    assert_eq!(
        agent.pairing().failures(),
        0,
        "the owner's attempt was spent"
    );
    agent.shutdown().await;
}
