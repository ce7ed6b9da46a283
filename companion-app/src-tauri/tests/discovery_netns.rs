//! The "Speakers nearby" list over real mDNS: a real `avs-device-agent` advertising in one network
//! namespace, the app's speakers list (the same code the window's `start_discovery` runs) in
//! another. The speaker appears with its name, Wi-Fi transport, IPv4 address and open pairing
//! window, and leaves the list when it shuts down (its mDNS goodbye).
//!
//! "Search again" (`search_again`) is tested here too: it must really search again, so a speaker
//! that vanished without a goodbye leaves the list at once and the ones still there come back.
//!
//! With `AVS_APP_DISCOVERY_FIXTURES=<dir>` the first test writes the lists it saw, as the JSON
//! the window receives: `mdns-empty.json` (the answer of `start_discovery` before anything was
//! found) and `mdns-speakers.json` (the list with the speaker). The files in
//! `companion-app/ui/tests/ui/fixtures/` come from such a run; the UI test `docs.test.ts`
//! renders them for the docs' pictures of the speakers list.
//!
//! mDNS never runs in the root network namespace here: both ends live in namespaces this test
//! creates (the tests crate's `TestNet`, removed on drop). Needs root; skips with a message
//! otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use avs_companion_app::ipc::{DiscoveryMode, SpeakersView, Transport, WindowState};
use avs_companion_app::speakers::Speakers;
use avs_pair_tests::bins::Bins;
use avs_pair_tests::netns::TestNet;
use avs_pair_tests::require_netns;
use avs_pair_tests::stack::{self, AgentOptions};

/// The app's speakers list on a one-worker runtime, every view it publishes sent to `tx`. Call
/// it inside the laptop's namespace ([`TestNet::run_in`]): the runtime's threads and the mDNS
/// daemon the list starts live there. Keep the runtime until the list is shut down.
fn laptop_speakers(tx: mpsc::Sender<SpeakersView>) -> (tokio::runtime::Runtime, Arc<Speakers>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let speakers = Speakers::new(Arc::new(move |v| {
        let _ = tx.send(v);
    }));
    (rt, speakers)
}

/// Writes `view` to `<AVS_APP_DISCOVERY_FIXTURES>/<name>` when that variable is set.
fn write_fixture(name: &str, view: &SpeakersView) {
    if let Some(dir) = std::env::var_os("AVS_APP_DISCOVERY_FIXTURES") {
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(&path, serde_json::to_string_pretty(view).unwrap() + "\n").unwrap();
        eprintln!("wrote {}", path.display());
    }
}

/// Runs the app's speakers list in the laptop's namespace, on its own thread, while `body`
/// watches the views it publishes. `laptop` starts the list (and may do more with it); the list
/// then runs until `body` returns, or fails (a failing assertion stops the laptop side at once).
fn with_laptop_list(
    net: &TestNet,
    laptop: impl FnOnce(&tokio::runtime::Runtime, &Arc<Speakers>) + Send,
    body: impl FnOnce(&mpsc::Receiver<SpeakersView>),
) {
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        // Owned here, so a failing assertion drops it and the laptop side stops at once.
        let stop_tx = stop_tx;
        let side = scope.spawn(|| {
            net.run_in("laptop", move || {
                let (rt, speakers) = laptop_speakers(tx);
                laptop(&rt, &speakers);
                // Keep discovery (and its runtime) alive until the test is done.
                let _ = stop_rx.recv_timeout(Duration::from_secs(60));
                speakers.shutdown();
            })
            .unwrap();
        });
        body(&rx);
        let _ = stop_tx.send(());
        side.join().unwrap();
    });
}

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

    let laptop = |rt: &tokio::runtime::Runtime, speakers: &Arc<Speakers>| {
        let first = rt.block_on(async { speakers.start(true) });
        assert_eq!(first.discovery, DiscoveryMode::Searching, "{first:?}");
        if first.speakers.is_empty() {
            write_fixture("mdns-empty.json", &first);
        }
    };
    with_laptop_list(&net, laptop, |rx| {
        let seen = common::wait_until(
            rx,
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
        assert!(!s.needs_network, "an agent that never checked says nothing");
        // The docs' speakers pictures render this very list (the UI test loads it).
        write_fixture("mdns-speakers.json", &seen);

        // A clean shutdown says goodbye: the row goes within seconds.
        agent
            .process
            .terminate(Duration::from_secs(5))
            .expect("agent stops");
        common::wait_until(rx, "the speaker to leave", Duration::from_secs(15), |v| {
            !v.speakers.iter().any(|s| s.id == id)
        });
    });
}

/// "Search again" searches again. Two speakers are listed over mDNS; one is killed without a
/// goodbye (a power cut: its record would stay in the list's mDNS cache for about 2 minutes).
/// After `search_again` the list is rebuilt from a fresh search: the silent one is gone within
/// seconds, the one still there is back.
#[test]
fn search_again_forgets_a_silent_speaker_and_finds_the_ones_still_there() {
    require_netns!();
    let bins = Bins::locate().unwrap_or_else(|e| panic!("{e}"));
    let net = TestNet::speaker_and_laptop().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str, dsn: &str| {
        let mut o =
            AgentOptions::new(dir.path().join(dsn), "https://192.0.2.1:9").advertised_on_link();
        o.friendly_name = name.into();
        o.dsn = dsn.into();
        stack::start_agent_on(&net, "speaker", &bins.agent, &o).unwrap()
    };
    let kitchen = start("Kitchen speaker", "APP-AGAIN-1");
    let mut attic = start("Attic speaker", "APP-AGAIN-2");
    let (kitchen_id, attic_id) = (kitchen.device_id.clone(), attic.device_id.clone());

    let (again_tx, again_rx) = mpsc::channel::<()>();
    let laptop = move |rt: &tokio::runtime::Runtime, speakers: &Arc<Speakers>| {
        rt.block_on(async { speakers.start(true) });
        if again_rx.recv_timeout(Duration::from_secs(60)).is_ok() {
            let view = rt.block_on(speakers.search_again(true));
            assert_eq!(view.discovery, DiscoveryMode::Searching, "{view:?}");
        }
    };
    with_laptop_list(&net, laptop, |rx| {
        let both = |v: &SpeakersView| {
            [&kitchen_id, &attic_id]
                .iter()
                .all(|id| v.speakers.iter().any(|s| &&s.id == id))
        };
        common::wait_until(rx, "both speakers listed", Duration::from_secs(15), both);

        // A power cut: no goodbye.
        attic
            .process
            .signal(nix::sys::signal::Signal::SIGKILL)
            .unwrap();
        let _ = attic.process.wait_timeout(Duration::from_secs(5));
        again_tx.send(()).unwrap();
        // The fresh search: the silent speaker leaves at once (the list is rebuilt; its mDNS
        // record would otherwise linger), the live one comes back from the new query.
        common::wait_until(
            rx,
            "the silent speaker to leave",
            Duration::from_secs(5),
            |v| !v.speakers.iter().any(|s| s.id == attic_id),
        );
        let back = common::wait_until(
            rx,
            "the live speaker found again",
            Duration::from_secs(10),
            |v| v.speakers.iter().any(|s| s.id == kitchen_id),
        );
        assert!(!back.speakers.iter().any(|s| s.id == attic_id), "{back:?}");
    });
    drop(kitchen);
}
