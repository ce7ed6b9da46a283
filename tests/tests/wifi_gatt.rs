//! The Wi-Fi step over Bluetooth LE (the in-process GATT model), end to end: the real agent
//! with the hook backend, the real companion `pair()`, the real emulator.
//!
//! The speaker starts offline: its LWA base URL is a gate in front of the emulator that drops
//! every connection until the hook's `connect` (with the right passphrase, read from stdin)
//! "joins the network" by creating the gate's `online` file. So the agent's own connectivity
//! check decides, as on a real speaker.
//!
//! - offline and no way to fix it (no chooser): the pairing stops before the sign-in, with the
//!   reason; no sign-in URL is ever shown;
//! - offline, a wrong passphrase first: "Wrong password for Home-5G", the speaker as it was
//!   (still offline), the chooser asked again; the right one: online, sign-in, exchange, linked;
//! - the time of the Wi-Fi step at MTU 23 and 185 (printed; `--nocapture`);
//! - "needs network": the agent's check at start fails, so its info characteristic says
//!   `net=1` and the companion's discovered Device has `needs_network`; online, it does not.
//!
//! `wifi_netns.rs` is the same flow over a real veth that the hook brings up (needs root).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use avs_pair_tests::companion::{ble_options, discover_over_ble, pair_as_alice, ScriptedWifi};
use avs_pair_tests::gatt_model::ModelSpeaker;
use avs_pair_tests::stack::write_home_wifi_hook;
use companion_app::error::PairError;
use companion_app::pairing::{PairEvent, PairOptions, PairReport, Step, Target};
use device_agent::config::NetworkBackendKind;
use shared_protocol::gatt::model::ModelConnection;
use shared_protocol::lwa::LwaEndpoints;
use tokio::net::{TcpListener, TcpStream};

const CODE: &str = "31415926";
const PASS: &str = "home sweet home 5G";
const KEY: &str = "model:speaker-1";

/// A TCP gate to `upstream` that is closed (drops connections) until `online` exists.
fn gate(dir: &Path, upstream: String) -> String {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let listener = TcpListener::from_std(std_listener).unwrap();
    let addr = listener.local_addr().unwrap();
    let online = dir.join("online");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if !online.exists() {
                drop(inbound);
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut out) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// The hook: scan shows Home-5G; connect joins it (creates `online`) with [`PASS`] only.
fn hook(dir: &Path) -> PathBuf {
    let path = dir.join("wifi-hook");
    let online = dir.join("online");
    let join = format!("  touch \"{}\"", online.display());
    let rollback = format!("rm -f \"{}\"", online.display());
    write_home_wifi_hook(&path, PASS, &join, &rollback).unwrap();
    path
}

/// Starts a speaker whose LWA is behind a closed gate.
async fn start(dir: &Path) -> ModelSpeaker {
    // The gate needs the emulator's address, which start_with hands to the closure.
    let script = hook(dir);
    let gate_dir = dir.to_path_buf();
    ModelSpeaker::start_with(CODE, move |cfg, emu| {
        let upstream = emu
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let base = gate(&gate_dir, upstream);
        cfg.lwa.endpoints = LwaEndpoints::from_base(&base).unwrap();
        cfg.network.backend = NetworkBackendKind::Hook(script);
    })
    .await
}

fn options(stack: &ModelSpeaker, mtu: u16) -> PairOptions {
    let central = stack.central(ModelConnection::mtu(mtu), KEY);
    ble_options(
        stack.emulator.endpoints().authorize,
        CODE,
        Arc::new(central),
    )
}

async fn run(
    stack: &ModelSpeaker,
    o: PairOptions,
) -> (Result<PairReport, PairError>, Vec<PairEvent>) {
    let (_discovery, device) = discover_over_ble(o.ble.clone().unwrap()).await;
    assert_eq!(&device.id, stack.agent.device_id());
    pair_as_alice(Target::Device(device), o, None, Duration::from_secs(90)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_speaker_without_wifi_step_never_opens_the_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    let (r, events) = run(&stack, options(&stack, 185)).await;
    match r {
        Err(PairError::SpeakerOffline { reason }) => {
            assert!(
                reason.contains("cannot reach Login with Amazon"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, PairEvent::LoginUrl { .. })),
        "no sign-in while offline"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, PairEvent::WifiNeeded { .. })));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_speaker_joins_wifi_then_pairs_at_mtu_23_and_185() {
    let mut rows = Vec::new();
    for mtu in [23u16, 185] {
        let dir = tempfile::tempdir().unwrap();
        let stack = start(dir.path()).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut o = options(&stack, mtu);
        o.wifi = Some(Box::new(ScriptedWifi::new(
            vec!["wrong password", PASS],
            seen.clone(),
        )));
        let (r, events) = run(&stack, o).await;
        let report = r.unwrap_or_else(|e| panic!("MTU {mtu}: {e}"));
        assert!(report.user_id.is_some(), "linked to Alice");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                "1 networks; last: -",
                "1 networks; last: Wrong password for Home-5G"
            ],
            "asked again with the reason in words"
        );
        let failed = events.iter().position(
            |e| matches!(e, PairEvent::WifiFailed { message } if message == "Wrong password for Home-5G"),
        );
        let login = events
            .iter()
            .position(|e| matches!(e, PairEvent::StepStarted { step: Step::Login }));
        let wifi_done = events.iter().position(|e| {
            matches!(
                e,
                PairEvent::StepDone {
                    step: Step::Wifi,
                    ..
                }
            )
        });
        assert!(failed.is_some() && wifi_done.is_some() && login.is_some());
        assert!(
            failed < wifi_done && wifi_done < login,
            "Wi-Fi, then sign-in"
        );
        let wifi_ms = report
            .timings
            .iter()
            .find(|(s, _)| *s == Step::Wifi)
            .map_or(0.0, |(_, ms)| *ms);
        rows.push((mtu, wifi_ms, report.total_millis));
        stack.stop().await;
    }
    eprintln!(
        "Wi-Fi step over the GATT model (scan + a wrong and a right passphrase, hook backend):"
    );
    for (mtu, wifi, total) in rows {
        eprintln!("  MTU {mtu:>3}: Wi-Fi step {wifi:>8.1} ms; whole pairing {total:>8.1} ms");
    }
}

/// Discovers the speaker over the model at MTU 23 and returns what the companion sees.
async fn discovered(stack: &ModelSpeaker) -> companion_app::discovery::Device {
    let central = stack.central(ModelConnection::mtu(23), KEY);
    discover_over_ble(Arc::new(central)).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_speaker_says_it_needs_a_network_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    // The agent runs one check at start (it can join networks); wait for its outcome.
    let ctx = stack.agent.link_context();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !String::from_utf8_lossy(&device_agent::ble::info_value(&ctx)).ends_with(";net=1") {
        assert!(
            std::time::Instant::now() < deadline,
            "the check at start never marked the speaker as needing a network"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let device = discovered(&stack).await;
    assert!(device.needs_network, "{device:?}");

    // Online (the gate opened, then a check): the flag is gone for the next companion.
    std::fs::write(dir.path().join("online"), "").unwrap();
    assert!(ctx.network.check_now().await, "the speaker is online");
    assert!(!String::from_utf8_lossy(&device_agent::ble::info_value(&ctx)).contains("net="));
    drop(ctx);
    let device = discovered(&stack).await;
    assert!(!device.needs_network, "{device:?}");
    stack.stop().await;
}
