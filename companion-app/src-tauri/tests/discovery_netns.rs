//! The "Speakers nearby" list over real mDNS: a real `avs-device-agent` advertising in one network
//! namespace, the app's speakers list (the same code the window's `start_discovery` runs) in
//! another. The speaker appears with its name, Wi-Fi transport, IPv4 address and open pairing
//! window, and leaves the list when it shuts down (its mDNS goodbye).
//!
//! mDNS never runs in the root network namespace here: both ends live in namespaces this test
//! creates (the tests crate's `TestNet`, removed on drop). Needs root; skips with a message
//! otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use avs_companion_app::ipc::{DiscoveryMode, Transport, WindowState};
use avs_companion_app::speakers::Speakers;
use avs_pair_tests::bins::Bins;
use avs_pair_tests::netns::TestNet;
use avs_pair_tests::require_netns;
use avs_pair_tests::stack::{self, AgentOptions};

#[test]
fn a_speaker_appears_over_mdns_and_leaves_with_its_goodbye() {
    require_netns!();
    let bins = Bins::locate().unwrap_or_else(|e| panic!("{e}"));
    let net = TestNet::speaker_and_laptop().unwrap();
    let speaker_ip = net.host("speaker").unwrap().addr;
    let dir = tempfile::tempdir().unwrap();
    let mut o =
        AgentOptions::new(dir.path().join("state"), "https://192.0.2.1:9").advertised_on_link();
    o.friendly_name = "Kitchen speaker".into();
    o.dsn = "APP-DISCOVERY-1".into();
    let mut agent = stack::start_agent_on(&net, "speaker", &bins.agent, &o).unwrap();
    let id = agent.device_id.clone();

    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let laptop = scope.spawn(|| {
            net.run_in("laptop", move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .unwrap();
                let speakers = Speakers::new(Arc::new(move |v| {
                    let _ = tx.send(v);
                }));
                let first = rt.block_on(async { speakers.start(true) });
                assert_eq!(first.discovery, DiscoveryMode::Searching, "{first:?}");
                // Keep discovery (and its runtime) alive until the test is done.
                let _ = stop_rx.recv_timeout(Duration::from_secs(60));
                speakers.shutdown();
            })
            .unwrap();
        });

        let seen = common::wait_until(
            &rx,
            "the speaker in the list",
            Duration::from_secs(15),
            |v| {
                v.speakers.iter().any(|s| {
                    s.id == id
                        && s.address
                            .as_deref()
                            .is_some_and(|a| a.starts_with(&speaker_ip.to_string()))
                })
            },
        );
        let s = seen.speakers.iter().find(|s| s.id == id).unwrap();
        assert_eq!(s.name, "Kitchen speaker");
        assert_eq!(s.transports, [Transport::Wifi]);
        assert_eq!(s.window, WindowState::Open);
        assert!(!s.paired);
        assert!(s.last_seen_ms > 0);
        assert!(s.live);
        assert_eq!(seen.speakers.len(), 1, "one row however often it resolved");

        // A clean shutdown says goodbye: the row goes within seconds.
        agent
            .process
            .terminate(Duration::from_secs(5))
            .expect("agent stops");
        common::wait_until(&rx, "the speaker to leave", Duration::from_secs(15), |v| {
            !v.speakers.iter().any(|s| s.id == id)
        });
        let _ = stop_tx.send(());
        laptop.join().unwrap();
    });
}
