//! A computer without Bluetooth: no system D-Bus to reach BlueZ (as on these machines; forced
//! here by pointing libdbus at a socket that does not exist). BLE must fail in one line, fast,
//! and leave discovery and pairing over the network untouched.
//!
//! One test in this file: it sets an environment variable for the whole process.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use companion_app::ble::{self, BleError, NO_ADAPTER};
use companion_app::connect::{BleConnector, ConnectFailure, Connectors, TcpConnector};
use companion_app::discovery::{Device, Discovery, Endpoint, MdnsOptions};
use companion_app::link::{LinkError, LinkTimeouts};
use shared_protocol::discovery::PairingState;

#[tokio::test]
async fn without_an_adapter_ble_says_so_in_one_line_and_nothing_hangs() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var(
        "DBUS_SYSTEM_BUS_ADDRESS",
        format!("unix:path={}", dir.path().join("no-system-bus").display()),
    );
    let t0 = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(15), ble::system_central())
        .await
        .expect("the adapter probe ends in time")
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let line = err.to_string();
    if cfg!(feature = "ble") {
        assert!(matches!(err, BleError::NoAdapter(_)), "{err:?}");
        assert!(line.starts_with(NO_ADAPTER), "{line}");
    } else {
        assert_eq!(err, BleError::NotBuilt);
    }
    assert!(!line.contains('\n'), "one line: {line}");

    // Discovery without BLE is still a working discovery (mDNS only).
    let mut d = Discovery::new();
    let attached = tokio::time::timeout(Duration::from_secs(10), ble::attach(&mut d, None))
        .await
        .expect("attach ends in time");
    assert_eq!(attached.unwrap_err(), err, "the same reason, probed once");
    assert!(d.devices().is_empty());

    // A speaker known only over BLE cannot be reached, with the reason, not a hang.
    let speaker = Device {
        id: "3f9a0c2e11d0".into(),
        name: "Kitchen speaker".into(),
        paired: false,
        pairing: PairingState::Open,
        protocol_major: 1,
        needs_network: false,
        endpoints: vec![Endpoint::Ble {
            peripheral: "AA:BB:CC:DD:EE:FF".into(),
        }],
    };
    let connectors = Connectors::standard(None);
    let opened = tokio::time::timeout(
        Duration::from_secs(10),
        connectors.open(&speaker.endpoints, LinkTimeouts::default()),
    )
    .await
    .expect("the connector gives up in time");
    match opened {
        Err(LinkError::Connect { addrs, reason }) => {
            assert_eq!(addrs, "ble AA:BB:CC:DD:EE:FF");
            assert!(
                matches!(&reason, ConnectFailure::Ble(e) if *e == err),
                "{reason:?}"
            );
            assert!(reason.to_string().contains("BLE pairing"), "{reason}");
        }
        other => panic!("{:?}", other.map(|(_, via)| via)),
    }

    // The same connectors' discovery (mDNS off here) is an empty, working list.
    let mut quiet = Connectors::new();
    quiet.add(TcpConnector::without_mdns());
    quiet.add(BleConnector::new(None));
    let d = tokio::time::timeout(
        Duration::from_secs(10),
        quiet.discovery(MdnsOptions::default()),
    )
    .await
    .expect("discovery starts in time")
    .expect("no adapter is not a discovery failure");
    assert!(d.devices().is_empty());
}
