//! A speaker without Bluetooth: BLE on in the config, but no system D-Bus to reach BlueZ (as on
//! these machines; forced here by pointing libdbus at a socket that does not exist). The agent
//! must say so in one line, quickly, and keep pairing over the network.
//!
//! This file holds one test because it sets an environment variable for the whole process.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use device_agent::ble::{BleError, BleStatus, NO_ADAPTER};
use shared_protocol::message::{AgentMessage, CompanionMessage};

#[tokio::test]
async fn without_an_adapter_ble_is_disabled_in_one_line_and_tcp_still_pairs() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-system-bus");
    std::env::set_var(
        "DBUS_SYSTEM_BUS_ADDRESS",
        format!("unix:path={}", missing.display()),
    );
    let mut cfg = config(dir.path(), NO_LWA);
    cfg.ble.enabled = true;
    let t0 = Instant::now();
    let agent = tokio::time::timeout(Duration::from_secs(15), start(cfg))
        .await
        .expect("the agent starts even though BLE cannot");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let status = agent.ble_status().clone();
    if cfg!(all(feature = "ble", target_os = "linux")) {
        match &status {
            BleStatus::Unavailable(why @ BleError::NoBus(_)) => {
                assert!(why.to_string().contains("D-Bus"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        let line = status.to_string();
        assert!(line.starts_with(NO_ADAPTER), "{line}");
        assert!(!line.contains('\n'), "one line: {line}");
    } else {
        assert_eq!(status, BleStatus::NotBuilt);
    }
    // Wi-Fi pairing is untouched: the first handshake succeeds (nothing else holds a slot).
    let mut s = connect(agent.link_addr(), CODE)
        .await
        .expect("a handshake over TCP");
    assert!(matches!(
        request(&mut s, CompanionMessage::GetStatus).await,
        AgentMessage::Status(_)
    ));
    tokio::time::timeout(Duration::from_secs(10), agent.shutdown())
        .await
        .unwrap();
}
