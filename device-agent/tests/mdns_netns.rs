//! mDNS advertising, for real, inside a network namespace this test creates (never in the root
//! namespace: an mdns-sd daemon joins multicast on every interface it sees). The test re-executes
//! itself under `ip netns exec`; the child runs the agent with mDNS on and an mdns-sd browser,
//! and checks: the service resolves with the TXT record (device id, pairing open), the TXT is
//! re-announced when the window closes, and shutdown sends a goodbye. Skips (with a message)
//! when not root or without `ip`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent};
use shared_protocol::discovery::{instance_name, PairingState, TxtRecord, MDNS_SERVICE_TYPE};

const CHILD_ENV: &str = "AVS_MDNS_NETNS_CHILD";
/// Printed by the child after its last check; the parent requires it.
const CHILD_DONE: &str = "MDNS_CHILD_DONE all checks passed";

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn can_run() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    root && Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn mdns_advertises_updates_and_says_goodbye_in_a_netns() {
    if !can_run() {
        eprintln!("SKIP mdns_netns: needs root and iproute2 (network namespaces)");
        return;
    }
    let ns = Netns(format!("avsda-mdns-{}", std::process::id()));
    assert!(Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("ip")
        .args(["-n", &ns.0, "link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(&exe)
        .args([
            "mdns_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the child's stdout on a thread (a full pipe would stall it); the channel closes when
    // the child's stdout does.
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("child: {line}");
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let end = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    loop {
        match lines.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(line) => out.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mDNS child timed out; output so far: {out:#?}");
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the mDNS checks inside the namespace failed: {out:#?}"
    );
    // A child whose filter matched no test also exits 0: insist that it ran this one test and
    // reached its last check.
    assert!(
        out.iter().any(|l| l.contains(CHILD_DONE)),
        "the child never reached the end of mdns_child: {out:#?}"
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("test result: ok. 1 passed;")),
        "the child did not run exactly one test: {out:#?}"
    );
}

fn txt(ev: &mdns_sd::ResolvedService) -> TxtRecord {
    let props: HashMap<String, String> = ev
        .get_properties()
        .iter()
        .map(|p| (p.key().to_owned(), p.val_str().to_owned()))
        .collect();
    TxtRecord::from_properties(&props).unwrap()
}

#[test]
#[ignore = "child of mdns_advertises_updates_and_says_goodbye_in_a_netns (runs inside the netns)"]
fn mdns_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = common::config(dir.path(), common::NO_LWA);
        cfg.mdns.enabled = true;
        let agent = common::start(cfg).await;
        let fullname = format!("{}.{MDNS_SERVICE_TYPE}", instance_name(agent.device_id()));
        let browser = ServiceDaemon::new().unwrap();
        let rx = browser.browse(MDNS_SERVICE_TYPE).unwrap();
        let next = |want: &dyn Fn(&ServiceEvent) -> bool, what: &str| {
            let end = Instant::now() + Duration::from_secs(15);
            loop {
                let left = end.saturating_duration_since(Instant::now());
                let ev = rx.recv_timeout(left).unwrap_or_else(|_| panic!("timed out waiting for {what}"));
                if want(&ev) {
                    return ev;
                }
            }
        };
        let resolved = |state: PairingState| {
            let fullname = fullname.clone();
            move |ev: &ServiceEvent| match ev {
                ServiceEvent::ServiceResolved(r) => r.get_fullname() == fullname && txt(r).pairing == state,
                _ => false,
            }
        };
        let ev = tokio::task::block_in_place(|| next(&resolved(PairingState::Open), "resolution"));
        if let ServiceEvent::ServiceResolved(r) = ev {
            let t = txt(&r);
            assert_eq!(&t.device_id, agent.device_id());
            assert!(!t.paired);
            assert_eq!(r.port, agent.link_addr().port());
        }
        agent.pairing().close();
        tokio::task::block_in_place(|| next(&resolved(PairingState::Closed), "TXT update after close"));
        agent.shutdown().await;
        let name = fullname.clone();
        tokio::task::block_in_place(|| {
            next(
                &move |ev: &ServiceEvent| matches!(ev, ServiceEvent::ServiceRemoved(_, n) if *n == name),
                "goodbye",
            )
        });
        let _ = browser.shutdown();
    });
    println!("{CHILD_DONE}");
}
