//! A speaker only Bluetooth can reach shows in the app's list with the Bluetooth badge and can
//! be added to a pairing: the real agent serving its link over the in-process GATT model (no
//! controller exists here), the app's speakers list over the core's connectors (mDNS off, BLE
//! through the model central), and a probe of the listed device through the same connectors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{mpsc, Arc};
use std::time::Duration;

use avs_companion_app::ipc::{DiscoveryMode, Transport, WindowState};
use avs_companion_app::speakers::Speakers;
use avs_companion_app::AppOptions;
use avs_pair_tests::gatt_model::ModelSpeaker;
use companion_app::discovery::TransportKind;
use companion_app::link::LinkTimeouts;
use shared_protocol::gatt::model::ModelConnection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bluetooth_only_speaker_is_listed_with_its_badge_and_reached_over_ble() {
    let speaker = ModelSpeaker::start("11235813").await;
    let agent = &speaker.agent;
    let central = speaker.central(ModelConnection::mtu(185), "model:app-1");
    let dir = tempfile::tempdir().unwrap();

    let options = AppOptions {
        config_path: dir.path().join("companion.toml"),
        mdns: false,
        opener: None,
        ble: true,
        ble_central: Some(Arc::new(central.clone())),
    };
    let (tx, rx) = mpsc::channel();
    let speakers = Speakers::with_connectors(
        Arc::new(move |v| {
            let _ = tx.send(v);
        }),
        options.connectors(),
    );
    let first = speakers.start(options.mdns);
    assert_eq!(
        first.discovery,
        DiscoveryMode::Off,
        "mDNS is off: {first:?}"
    );

    let id = agent.device_id().as_str().to_owned();
    let rx = tokio::task::spawn_blocking(move || {
        let v = common::wait_until(
            &rx,
            "the Bluetooth speaker in the list",
            Duration::from_secs(20),
            |v| v.speakers.iter().any(|s| s.id == id),
        );
        (v, rx)
    })
    .await
    .unwrap()
    .0;
    let row = rx
        .speakers
        .iter()
        .find(|s| s.id == agent.device_id().as_str())
        .unwrap();
    assert_eq!(row.transports, [Transport::Ble], "the Bluetooth badge only");
    assert_eq!(row.address, None, "no IP address to show");
    assert_eq!(row.window, WindowState::Open);
    assert!(row.live);

    // What a pairing of that row connects to: the listed device, over BLE.
    let device = speakers.device(&row.id).expect("the row's device");
    let (client, reached) = tokio::time::timeout(
        Duration::from_secs(30),
        speakers
            .connectors()
            .open(&device.endpoints, LinkTimeouts::default()),
    )
    .await
    .expect("connects in time")
    .unwrap_or_else(|e| panic!("over BLE: {e}"));
    assert_eq!(reached.transport, TransportKind::Ble);
    assert_eq!(
        client.agent().map(|a| a.device_id.as_str().to_owned()),
        Some(row.id.clone())
    );
    drop(client);

    speakers.shutdown();
    speaker.stop().await;
}
