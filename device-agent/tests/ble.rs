//! BLE sessions over the in-process GATT model run the agent's own link handler: the same
//! setup-code gate, attempt counter and window as over TCP, and the info characteristic tracks
//! the agent's state.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use device_agent::ble::{self, BleStatus};
use shared_protocol::discovery::{PairingState, TxtRecord};
use shared_protocol::gatt::model::{ModelConnection, ModelPeripheral};
use shared_protocol::gatt::GattTransport;
use shared_protocol::message::{AgentMessage, CompanionMessage, Hello, Role};
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
