//! The hook backend (docs/agent.md "Wi-Fi hook"): one script per failure class, the passphrase
//! on stdin only, progress lines, scan JSON lines with non-UTF-8 and hidden SSIDs, the rollback
//! after a join whose network does not reach LWA, and the whole network step over a real link
//! session against the emulator.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use device_agent::config::{NetworkBackendKind, NetworkConfig};
use device_agent::lwa_client::LwaClient;
use device_agent::network::hook::{HookBackend, HookTimeouts};
use device_agent::network::{ConnectivityChecker, Network, NetworkBackend};
use lwa_emulator::Emulator;
use shared_protocol::lwa::LwaEndpoints;
use shared_protocol::message::{
    AgentMessage, Capability, CompanionMessage, ConnectWifi, ConnectivityFailure, Ssid,
    WifiFailure, WifiResult, WifiSecurity, WifiStage,
};
use shared_protocol::secret::WifiPassphrase;

const PASS: &str = "correct horse battery";

/// A hook that joins "Home" with [`PASS`] (read from stdin), fails `connect` with `fail_code`
/// when given, records `rollback` in `rolled-back`, and scans three networks (one hidden, one
/// not UTF-8).
fn hook(dir: &Path, fail_code: Option<i32>) -> PathBuf {
    let path = dir.join(format!("hook-{}", fail_code.unwrap_or(0)));
    let fail = fail_code.map_or(String::new(), |c| format!("exit {c}"));
    let script = format!(
        r#"#!/bin/sh
case "$1" in
status) echo '{{"interface":"wlan0","ssid":"Home","address":"192.0.2.7"}}' ;;
scan)
  echo '{{"ssid":"Home","signal":80,"security":"wpa2_psk","frequency":5180,"known":true}}'
  echo '{{"ssid_hex":"ff00caf0","signal":40,"security":"wpa3_sae","frequency":2412}}'
  echo '{{"ssid_hex":"","signal":30,"security":"open"}}'
  echo 'not json'
  echo '{{"ssid":"Office","signal":55,"security":"enterprise","frequency":5955}}' ;;
connect)
  read -r pass
  echo "stage associating"
  {fail}
  [ "$AVS_WIFI_SSID_HEX" = "486f6d65" ] || exit 11
  echo "stage authenticating"
  [ "$pass" = "{PASS}" ] || exit 10
  echo "stage getting_address"
  echo "address 192.0.2.9" ;;
rollback) touch "{dir}/rolled-back" ;;
*) exit 2 ;;
esac
"#,
        dir = dir.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn join_req(ssid: &str, pass: Option<&str>) -> ConnectWifi {
    ConnectWifi {
        ssid: Ssid::new(ssid.as_bytes().to_vec()).unwrap(),
        passphrase: pass.map(WifiPassphrase::new),
        hidden: false,
    }
}

async fn join(
    backend: &HookBackend,
    req: &ConnectWifi,
) -> (Result<Option<String>, WifiFailure>, Vec<WifiStage>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let r = backend.join(req, &tx).await.map(|j| j.address);
    drop(tx);
    let mut stages = Vec::new();
    while let Some(s) = rx.recv().await {
        stages.push(s);
    }
    (r, stages)
}

/// `req` sent over the sealed session: the stages the agent reported, then its result.
async fn join_over_link(s: &mut Session, req: ConnectWifi) -> (Vec<WifiStage>, WifiResult) {
    let msg = CompanionMessage::ConnectWifi(req);
    staged!(s, msg, AgentMessage::WifiProgress, AgentMessage::WifiResult)
}

#[tokio::test]
async fn each_exit_code_is_its_failure_class() {
    let dir = tempfile::tempdir().unwrap();
    let short = HookTimeouts {
        connect: Duration::from_secs(2),
        ..HookTimeouts::default()
    };
    for (code, want) in [
        (10, WifiFailure::WrongPassword),
        (11, WifiFailure::NetworkNotFound),
        (12, WifiFailure::NoAddress),
        (13, WifiFailure::Timeout),
        (14, WifiFailure::UnsupportedSecurity),
        (1, WifiFailure::Internal),
    ] {
        let b = HookBackend::new(hook(dir.path(), Some(code)), short.clone());
        let (r, _) = join(&b, &join_req("Home", Some(PASS))).await;
        assert_eq!(r, Err(want), "exit {code}");
    }
    // The real checks of the script: the passphrase arrives on stdin, the SSID in env.
    let b = HookBackend::new(hook(dir.path(), None), short.clone());
    let (r, stages) = join(&b, &join_req("Home", Some("wrong horse"))).await;
    assert_eq!(r, Err(WifiFailure::WrongPassword));
    assert_eq!(stages, [WifiStage::Associating, WifiStage::Authenticating]);
    let (r, _) = join(&b, &join_req("Away", Some(PASS))).await;
    assert_eq!(r, Err(WifiFailure::NetworkNotFound));
    let (r, stages) = join(&b, &join_req("Home", Some(PASS))).await;
    assert_eq!(r, Ok(Some("192.0.2.9".to_owned())));
    assert_eq!(stages.last(), Some(&WifiStage::GettingAddress));

    // A hook that hangs is killed at the deadline and reported as a timeout.
    let hang = dir.path().join("hang");
    std::fs::write(&hang, "#!/bin/sh\nsleep 30\n").unwrap();
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = HookBackend::new(
        hang,
        HookTimeouts {
            connect: Duration::from_millis(300),
            ..HookTimeouts::default()
        },
    );
    let (r, _) = join(&b, &join_req("Home", Some(PASS))).await;
    assert_eq!(r, Err(WifiFailure::Timeout));
}

#[tokio::test]
async fn scan_keeps_ssid_bytes_and_classes() {
    let dir = tempfile::tempdir().unwrap();
    let b = HookBackend::new(hook(dir.path(), None), HookTimeouts::default());
    let nets = b.scan().await.unwrap();
    assert_eq!(nets.len(), 4, "the line that is not JSON is skipped");
    assert_eq!(nets[0].ssid.as_bytes(), b"Home");
    assert!(nets[0].known);
    assert_eq!(nets[0].security, WifiSecurity::Wpa2Psk);
    assert_eq!(nets[1].ssid.as_bytes(), [0xff, 0x00, 0xca, 0xf0]);
    assert_eq!(nets[1].security, WifiSecurity::Wpa3Sae);
    assert!(nets[2].ssid.is_empty(), "hidden");
    assert_eq!(nets[3].security, WifiSecurity::Enterprise);
    assert!(!nets[3].security.is_supported());
    let cur = b.current().await;
    assert_eq!(cur.ssid.unwrap().as_bytes(), b"Home");
}

fn checker_to(base: &str) -> ConnectivityChecker {
    let lwa = LwaClient::new(LwaEndpoints::from_base(base).unwrap(), None).unwrap();
    ConnectivityChecker::new(lwa, Duration::from_secs(2))
}

#[tokio::test]
async fn no_internet_after_join_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: the check fails with "no route" (connection refused).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let net = Network::new(
        Arc::new(HookBackend::new(
            hook(dir.path(), None),
            HookTimeouts::default(),
        )),
        checker_to(&format!("http://127.0.0.1:{port}")),
    );
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let r = net.connect(join_req("Home", Some(PASS)), &tx).await;
    match r {
        WifiResult::Failed {
            reason, message, ..
        } => {
            assert_eq!(reason, WifiFailure::NoInternet);
            assert!(message.contains("Home"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(dir.path().join("rolled-back").exists(), "rollback ran");
    let status = net.status().await;
    assert!(!status.online);
    assert_eq!(
        status.check.unwrap().failure,
        Some(ConnectivityFailure::NoRoute)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_step_over_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let script = hook(dir.path(), None);
    let stack = Stack::start(Emulator::builder(), |cfg| {
        cfg.network = NetworkConfig {
            backend: NetworkBackendKind::Hook(script.clone()),
            interface: None,
        };
    })
    .await;
    let mut s = stack.session().await;
    assert!(s.peer_hello().supports(Capability::Wifi));
    let AgentMessage::DeviceInfo(info) = request(&mut s, CompanionMessage::GetDeviceInfo).await
    else {
        panic!("device info")
    };
    let net = info.network.expect("network status in DeviceInfo");
    assert!(net.online, "the emulator is reachable: {net:?}");
    assert!(net.can_provision);
    assert_eq!(net.interface.as_deref(), Some("wlan0"));

    let AgentMessage::WifiScan(scan) = request(&mut s, CompanionMessage::ScanWifi).await else {
        panic!("scan")
    };
    assert_eq!(scan.networks.len(), 4);

    // A wrong passphrase: progress, then exactly why.
    let wrong = join_req("Home", Some("wrong horse"));
    let (stages, result) = join_over_link(&mut s, wrong).await;
    assert!(stages.contains(&WifiStage::Authenticating), "{stages:?}");
    match result {
        WifiResult::Failed {
            reason, message, ..
        } => {
            assert_eq!(reason, WifiFailure::WrongPassword);
            assert_eq!(message, "Wrong password for Home");
        }
        other => panic!("{other:?}"),
    }
    // The retry succeeds and checks the internet.
    let (stages, result) = join_over_link(&mut s, join_req("Home", Some(PASS))).await;
    assert_eq!(stages.last(), Some(&WifiStage::CheckingInternet));
    assert_eq!(
        result,
        WifiResult::Connected {
            ssid: Ssid::new(b"Home".to_vec()).unwrap(),
            address: Some("192.0.2.9".to_owned())
        }
    );
    assert!(!dir.path().join("rolled-back").exists());
    stack.agent.shutdown().await;
}
