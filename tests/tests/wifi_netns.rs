//! The Wi-Fi step with a real network: issue 13's namespace test.
//!
//! Two namespaces joined by a veth (the harness, [`avs_pair_tests::netns`]): the emulator runs
//! in `laptop`, the agent in `speaker`, and the speaker's end of the link starts **down** — a
//! speaker fresh out of the box, on no network. The companion (in `laptop`, next to the
//! emulator the scripted user signs in on) reaches the agent over the in-process GATT model,
//! which needs no IP at all, as Bluetooth LE does not. The agent's hook backend stands in for a
//! Wi-Fi supplicant: `connect` with the right passphrase (read from stdin) brings the
//! speaker's veth up (the "join"), `rollback` takes it down again. Nothing is faked on the
//! path to LWA: the agent's own connectivity check, then the code exchange, go over the veth.
//!
//! A wrong passphrase first must leave the speaker as it was (the link still down, checked at
//! the moment the companion is asked again); the retry succeeds and the pairing completes.
//!
//! `wifi_gatt.rs` has the same flow with a TCP gate instead of a link (no root needed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use avs_pair_tests::companion::{ble_options, discover_over_ble, pair_as_alice, ScriptedWifi};
use avs_pair_tests::gatt_model::serve_agent;
use avs_pair_tests::netns::{TestNet, LINK_NAME};
use avs_pair_tests::require_netns;
use avs_pair_tests::stack::write_home_wifi_hook;
use companion_app::ble::model::ModelCentral;
use companion_app::ble::BleCentral;
use companion_app::pairing::{PairEvent, Step, Target};
use device_agent::agent::Agent;
use device_agent::config::{AgentConfig, NetworkBackendKind};
use lwa_emulator::registry::DEFAULT_PRODUCT_ID;
use lwa_emulator::Emulator;
use shared_protocol::gatt::advert::ble_local_name;
use shared_protocol::gatt::model::{ModelConnection, ModelPeripheral};
use shared_protocol::ids::DeviceId;

const CODE: &str = "27182818";
const PASS: &str = "home sweet home 5G";
const KEY: &str = "model:speaker-netns";

/// The hook: scan shows Home-5G; connect with [`PASS`] brings `netns`'s link up and waits
/// (bounded) for its carrier, as a supplicant waits for association; rollback takes it down.
fn hook(dir: &Path, netns: &str) -> PathBuf {
    let path = dir.join("wifi-hook");
    let join = format!(
        r#"  ip -n {netns} link set {LINK_NAME} up || exit 1
  i=0
  until ip -n {netns} link show {LINK_NAME} | grep -q LOWER_UP; do
    i=$((i+1)); [ $i -gt 100 ] && exit 12
    sleep 0.05
  done"#
    );
    let rollback = format!("ip -n {netns} link set {LINK_NAME} down");
    write_home_wifi_hook(&path, PASS, &join, &rollback).unwrap();
    path
}

/// Is the speaker's end of the veth administratively up?
fn link_up(netns: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-n", netns, "-o", "link", "show", LINK_NAME])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let flags = text
        .split('<')
        .nth(1)
        .unwrap_or("")
        .split('>')
        .next()
        .unwrap_or("");
    flags.split(',').any(|f| f == "UP")
}

/// A runtime for one namespace's thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The agent in `speaker`: started with LWA at `lwa_base`, its model peripheral and device id
/// handed back on `ready`; runs until `stop` fires or its sender is dropped (the other side
/// panicked), then shuts down.
fn run_speaker(
    lwa_base: String,
    ca: PathBuf,
    hook: PathBuf,
    ready: mpsc::Sender<(ModelPeripheral, DeviceId)>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    runtime().block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = AgentConfig::for_local(dir.path(), &lwa_base, CODE).unwrap();
        cfg.product_id = DEFAULT_PRODUCT_ID.into();
        cfg.lwa.ca_file = Some(ca);
        cfg.network.backend = NetworkBackendKind::Hook(hook);
        let agent = Arc::new(Agent::start(cfg).await.unwrap());
        let (peripheral, accept) = serve_agent(&agent, 517);
        ready.send((peripheral, agent.device_id().clone())).unwrap();
        let _ = stop.await;
        accept.abort();
        let _ = accept.await;
        if let Ok(agent) = Arc::try_unwrap(agent) {
            let _ = tokio::time::timeout(Duration::from_secs(10), agent.shutdown()).await;
        }
    });
}

#[test]
fn offline_speaker_joins_by_bringing_its_link_up_then_pairs() {
    require_netns!();
    let net = TestNet::builder()
        .host("speaker")
        .host("laptop")
        .ipv6(false)
        .build()
        .unwrap();
    let speaker_ns = net.host("speaker").unwrap().netns.clone();
    let laptop_ip = net.host("laptop").unwrap().addr;
    net.set_link("speaker", false).unwrap();
    assert!(!link_up(&speaker_ns), "the speaker starts offline");
    let dir = tempfile::tempdir().unwrap();
    let script = hook(dir.path(), &speaker_ns);
    let ca = dir.path().join("emulator-ca.pem");
    let ca_for_speaker = ca.clone();

    let (base_tx, base_rx) = mpsc::channel::<String>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let netref = &net;
    std::thread::scope(|s| {
        s.spawn(move || {
            netref
                .run_in("speaker", move || {
                    // The laptop side dropping its sender (a panic) ends this thread too.
                    if let Ok(base) = base_rx.recv() {
                        run_speaker(base, ca_for_speaker, script, ready_tx, stop_rx);
                    }
                })
                .unwrap()
        });
        let seen = seen.clone();
        let speaker_ns = speaker_ns.clone();
        netref
            .run_in("laptop", move || {
                runtime().block_on(async move {
                    let emulator = Emulator::builder()
                        .bind(SocketAddr::from((laptop_ip, 0)))
                        .https(vec![laptop_ip.to_string()])
                        .ca_out(ca.clone())
                        .start()
                        .await
                        .unwrap();
                    base_tx.send(emulator.base_url().to_owned()).unwrap();
                    let ca_pem = std::fs::read_to_string(&ca).unwrap();
                    let (peripheral, device_id) = tokio::task::spawn_blocking(move || {
                        ready_rx.recv_timeout(Duration::from_secs(30))
                    })
                    .await
                    .unwrap()
                    .expect("the agent starts in the speaker namespace");

                    let central = ModelCentral::new(ModelConnection::mtu(185));
                    central.add_speaker(KEY, &ble_local_name(&device_id), peripheral);
                    let central: Arc<dyn BleCentral> = Arc::new(central);
                    let (_discovery, device) = discover_over_ble(central.clone()).await;
                    assert_eq!(device.id, device_id);

                    let mut o = ble_options(emulator.endpoints().authorize, CODE, central);
                    let link_of = speaker_ns.clone();
                    o.wifi = Some(Box::new(
                        ScriptedWifi::new(vec!["wrong password", PASS], seen.clone()).note(
                            move || {
                                format!("link {}", if link_up(&link_of) { "up" } else { "down" })
                            },
                        ),
                    ));
                    let (r, events) = pair_as_alice(
                        Target::Device(device),
                        o,
                        Some(ca_pem),
                        Duration::from_secs(90),
                    )
                    .await;
                    let _ = stop_tx.send(());
                    let report = r.unwrap_or_else(|e| panic!("pairing: {e}; events {events:?}"));
                    assert!(report.user_id.is_some(), "linked to Alice");
                    assert!(
                        events.iter().any(|e| matches!(
                            e,
                            PairEvent::WifiNeeded { reason } if reason.contains("no route")
                        )),
                        "offline because the link is down: {events:?}"
                    );
                    let wifi_done = events.iter().position(|e| {
                        matches!(
                            e,
                            PairEvent::StepDone {
                                step: Step::Wifi,
                                ..
                            }
                        )
                    });
                    let login = events
                        .iter()
                        .position(|e| matches!(e, PairEvent::StepStarted { step: Step::Login }));
                    assert!(
                        wifi_done.is_some() && wifi_done < login,
                        "Wi-Fi, then sign-in"
                    );
                    emulator.shutdown().await;
                });
            })
            .unwrap();
    });
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "1 networks; last: -; link down",
            "1 networks; last: Wrong password for Home-5G; link down"
        ],
        "a wrong passphrase leaves the speaker offline, and the companion asks again"
    );
    assert!(link_up(&speaker_ns), "the right one joined the network");
}
