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
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use avs_pair_tests::gatt_model::serve_agent;
use avs_pair_tests::netns::{TestNet, LINK_NAME};
use avs_pair_tests::require_netns;
use companion_app::ble::model::ModelCentral;
use companion_app::ble::BleCentral;
use companion_app::config::{RedirectTarget, DEFAULT_REDIRECT_URI};
use companion_app::login::Browser;
use companion_app::pairing::{pair, PairEvent, PairOptions, Step, Target};
use companion_app::wifi::{BoxFuture, WifiChoice, WifiChooser};
use device_agent::agent::Agent;
use device_agent::config::{AgentConfig, NetworkBackendKind};
use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID,
};
use lwa_emulator::{Consent, Emulator};
use shared_protocol::gatt::advert::ble_local_name;
use shared_protocol::gatt::model::{ModelConnection, ModelPeripheral};
use shared_protocol::ids::DeviceId;
use shared_protocol::message::{WifiNetwork, WifiResult};
use shared_protocol::secret::WifiPassphrase;
use shared_protocol::setup_code::SetupCode;

const CODE: &str = "27182818";
const PASS: &str = "home sweet home 5G";
const KEY: &str = "model:speaker-netns";

/// The hook: scan shows Home-5G; connect with [`PASS`] brings `netns`'s link up and waits
/// (bounded) for its carrier, as a supplicant waits for association; rollback takes it down.
fn hook(dir: &Path, netns: &str) -> PathBuf {
    let path = dir.join("wifi-hook");
    let script = format!(
        r#"#!/bin/sh
case "$1" in
scan) echo '{{"ssid":"Home-5G","signal":70,"security":"wpa2_psk","frequency":5180}}' ;;
connect)
  read -r pass
  echo "stage authenticating"
  [ "$pass" = "{PASS}" ] || exit 10
  echo "stage getting_address"
  ip -n {netns} link set {LINK_NAME} up || exit 1
  i=0
  until ip -n {netns} link show {LINK_NAME} | grep -q LOWER_UP; do
    i=$((i+1)); [ $i -gt 100 ] && exit 12
    sleep 0.05
  done
  echo "address 192.0.2.20" ;;
rollback) ip -n {netns} link set {LINK_NAME} down ;;
status) echo '{{"interface":"wlan0"}}' ;;
esac
"#
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
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

/// Answers from a list, recording what it was shown and whether the speaker's link was up.
#[derive(Debug)]
struct Scripted {
    answers: Vec<&'static str>,
    netns: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl WifiChooser for Scripted {
    fn choose<'a>(
        &'a mut self,
        networks: &'a [WifiNetwork],
        last: Option<&'a WifiResult>,
    ) -> BoxFuture<'a, Option<WifiChoice>> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(format!(
                "{} networks; last: {}; link {}",
                networks.len(),
                match last {
                    Some(WifiResult::Failed { message, .. }) => message.clone(),
                    _ => "-".into(),
                },
                if link_up(&self.netns) { "up" } else { "down" }
            ));
            if self.answers.is_empty() {
                return None;
            }
            let pass = self.answers.remove(0);
            Some(WifiChoice {
                ssid: networks.first()?.ssid.clone(),
                passphrase: Some(WifiPassphrase::new(pass)),
                hidden: false,
            })
        })
    }
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
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
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
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
                    let mut d = companion_app::discovery::Discovery::new();
                    companion_app::ble::attach(&mut d, Some(central.clone()))
                        .await
                        .unwrap();
                    let device = d
                        .wait_for(Duration::from_secs(10), |x| {
                            companion_app::ble::peripheral_of(x).is_some()
                        })
                        .await
                        .expect("the speaker is discovered over BLE");
                    assert_eq!(device.id, device_id);

                    let redirect = RedirectTarget::parse(&DEFAULT_REDIRECT_URI.into()).unwrap();
                    let mut o = PairOptions::new(
                        DEFAULT_DEVICE_CLIENT_ID.into(),
                        redirect,
                        emulator.endpoints().authorize,
                        SetupCode::parse(CODE).unwrap(),
                    );
                    o.browser = Browser::Manual;
                    o.login_timeout = Duration::from_secs(30);
                    o.exchange_retries = 0;
                    o.ble = Some(central);
                    o.wifi = Some(Box::new(Scripted {
                        answers: vec!["wrong password", PASS],
                        netns: speaker_ns.clone(),
                        seen: seen.clone(),
                    }));
                    let events = Arc::new(Mutex::new(Vec::new()));
                    let sink = events.clone();
                    let mut observe = move |e: PairEvent| {
                        if let PairEvent::LoginUrl { url, .. } = &e {
                            let url = url.clone();
                            let ca_pem = ca_pem.clone();
                            tokio::spawn(async move {
                                let mut user = lwa_emulator::ScriptedUser::with_root_ca(
                                    ALICE_EMAIL,
                                    ALICE_PASSWORD,
                                    ca_pem.as_bytes(),
                                )
                                .unwrap();
                                if let Err(e) = user.browse(&url, Consent::Allow).await {
                                    eprintln!("scripted user: {e}");
                                }
                            });
                        }
                        sink.lock().unwrap().push(e);
                    };
                    let r = tokio::time::timeout(
                        Duration::from_secs(90),
                        pair(Target::Device(device), o, &mut observe),
                    )
                    .await
                    .expect("the pairing ends in time");
                    let events = events.lock().unwrap().clone();
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
