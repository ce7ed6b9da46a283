//! The harness leaves nothing behind.
//!
//! - During the run: no namespace of a finished test binary survives (cargo runs test binaries
//!   one after another, so by the time this one runs every earlier one has exited; a namespace
//!   whose owner is dead is a leak), including those a later `TestNet::build` already swept
//!   away: the sweep records them in the run's leak ledger (`AVS_TEST_LEAK_LEDGER`, set by
//!   `scripts/test.sh`) before deleting them, and this suite fails on every entry.
//! - After all suites: `scripts/test.sh` runs the ignored `after_all_suites_nothing_is_left`
//!   last, which checks the ledger and every namespace of ours (`avsp-*` and the device-agent
//!   crate's `avsda-mdns-*`) whose owner is gone, so a leak of a suite that runs after this one
//!   is caught too.
//! - A whole world (network, emulator, agent) is removed on drop: namespaces, veths and
//!   processes alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use avs_pair_tests::netns::{self, LEAK_LEDGER_ENV};
use avs_pair_tests::require_netns;
use avs_pair_tests::world::World;

/// Everything of ours left by processes that have finished: namespaces swept during this run
/// (the ledger) and namespaces still there.
fn leaks() -> Vec<String> {
    let mut found: Vec<String> = std::env::var_os(LEAK_LEDGER_ENV)
        .map(|p| {
            netns::ledger_entries(std::path::Path::new(&p))
                .into_iter()
                .map(|n| format!("{n} (swept during the run)"))
                .collect()
        })
        .unwrap_or_default();
    found.extend(
        netns::leaked_namespaces()
            .into_iter()
            .map(|n| format!("{n} (still there)")),
    );
    found
}

/// The tests of this binary run on parallel threads, and one of them leaks a namespace on
/// purpose: each takes this lock so the other never sees that leak as a real one.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A test that failed while holding the lock poisoned it; the next test still runs.
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Fails on every namespace [`leaks`] finds, naming who left it (`by`).
#[track_caller]
fn assert_no_leaks(by: &str) {
    let leaked = leaks();
    assert!(leaked.is_empty(), "namespaces left by {by}: {leaked:?}");
}

fn root_veths() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show", "type", "veth"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_namespace_or_veth_of_ours_survives() {
    require_netns!();
    let _serial = one_at_a_time();
    // Before building anything (building sweeps stale ones away, into the ledger).
    assert_no_leaks("finished tests");
    let veths_before = root_veths();

    let w = World::new(&["speaker"], |b| b).unwrap();
    let (a, _) = w.start_default_agent("speaker").unwrap();
    let ours = w.net.namespaces();
    let pid = a.process.pid();
    assert!(netns::list_namespaces().iter().any(|n| ours.contains(n)));
    drop(a);
    drop(w);
    let left = netns::namespaces_of(std::process::id());
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        !avs_pair_tests::cleanup::is_running(nix::unistd::Pid::from_raw(pid as i32)),
        "agent {pid} still running"
    );
    let veths_after = root_veths();
    assert!(
        veths_after.iter().all(|l| !l.contains("avs0")),
        "a veth of ours in the root namespace: {veths_after:?}"
    );
    assert_eq!(
        veths_after.len(),
        veths_before.len(),
        "veth count unchanged"
    );
}

/// Run by `scripts/test.sh` after every suite: nothing any suite created is left, and nothing
/// was swept away during the run.
#[test]
#[ignore = "run by scripts/test.sh after all suites"]
fn after_all_suites_nothing_is_left() {
    require_netns!();
    let _serial = one_at_a_time();
    assert_no_leaks("the test suites");
    let veths: Vec<String> = root_veths()
        .into_iter()
        .filter(|l| l.contains(netns::LINK_NAME))
        .collect();
    assert!(
        veths.is_empty(),
        "veths of ours in the root namespace: {veths:?}"
    );
}

/// A pid that belonged to a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// The check must be able to fail: a namespace leaked by a dead process (named like the
/// device-agent crate's mDNS test, which no sweep removes) is reported, and a swept one is in
/// the ledger.
#[test]
fn the_check_sees_a_deliberately_leaked_namespace() {
    require_netns!();
    let _serial = one_at_a_time();
    let pid = dead_pid();
    let name = format!("avsda-leakcheck-{pid}");
    assert!(Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap()
        .success());
    let seen = netns::leaked_namespaces();
    netns::delete_namespace(&name);
    assert!(seen.contains(&name), "{name} not reported: {seen:?}");
    assert!(!netns::list_namespaces().contains(&name));

    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");
    netns::record_leak(&ledger, "avsp-1-0-speaker").unwrap();
    netns::record_leak(&ledger, "avsda-mdns-2").unwrap();
    assert_eq!(
        netns::ledger_entries(&ledger),
        ["avsp-1-0-speaker", "avsda-mdns-2"]
    );
    assert_eq!(netns::namespace_owner("avsp-123-4-laptop"), Some(123));
    assert_eq!(netns::namespace_owner("avsda-mdns-77"), Some(77));
    assert_eq!(netns::namespace_owner("other"), None);
}
