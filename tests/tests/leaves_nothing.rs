//! The harness leaves nothing behind: no namespace of a finished test binary (cargo runs test
//! binaries one after another, so by the time this one runs every earlier one has exited; a
//! namespace whose owner is dead is a leak), and a whole world (network, emulator, agent) removed
//! on drop, namespaces, veths and processes alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use avs_pair_tests::netns::{self, NAME_PREFIX};
use avs_pair_tests::require_netns;
use avs_pair_tests::world::World;

fn owner_alive(ns: &str) -> bool {
    ns[NAME_PREFIX.len()..]
        .split('-')
        .next()
        .and_then(|p| p.parse::<i32>().ok())
        .is_some_and(|pid| avs_pair_tests::cleanup::is_running(nix::unistd::Pid::from_raw(pid)))
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
    // Before building anything (building sweeps stale ones away).
    let leaked: Vec<String> = netns::harness_namespaces()
        .into_iter()
        .filter(|n| !owner_alive(n))
        .collect();
    assert!(
        leaked.is_empty(),
        "namespaces left by finished tests: {leaked:?}"
    );
    let veths_before = root_veths();

    let w = World::new(&["speaker"], |b| b).unwrap();
    let a = w
        .start_agent("speaker", &w.agent_options("speaker"))
        .unwrap();
    let ours = w.net.namespaces();
    let pid = a.process.pid();
    let mine = format!("{NAME_PREFIX}{}-", std::process::id());
    assert!(netns::list_namespaces().iter().any(|n| ours.contains(n)));
    drop(a);
    drop(w);
    let left: Vec<String> = netns::list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&mine))
        .collect();
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
