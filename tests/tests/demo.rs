//! The README's demo, run as a user runs it: exit 0, the full story printed, and nothing left
//! behind (namespaces, links, processes, temp dirs), also when interrupted with Ctrl-C.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use avs_pair_tests::netns;
use avs_pair_tests::process::{ManagedProcess, Stream};
use avs_pair_tests::require_netns;
use nix::sys::signal::Signal;

fn root_link_names() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().to_owned())
        .collect();
    names.sort();
    names
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(needle) {
                    found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
                }
            }
        }
    }
    found
}

struct Run {
    process: ManagedProcess,
    _logs: tempfile::TempDir,
}

fn start_demo(args: &[&str]) -> Run {
    let logs = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_avs-pair-demo"));
    cmd.arg("--no-build").args(args);
    let process = ManagedProcess::spawn(cmd, "avs-pair-demo", logs.path()).expect("spawn demo");
    Run {
        process,
        _logs: logs,
    }
}

fn work_dir(p: &ManagedProcess) -> PathBuf {
    let line = p
        .wait_for_line(Stream::Stdout, Duration::from_secs(30), |l| {
            l.starts_with("work dir ")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    PathBuf::from(
        line.trim_start_matches("work dir ")
            .split_whitespace()
            .next()
            .expect("path"),
    )
}

fn assert_nothing_left(pid: u32, work: &std::path::Path, links_before: &[String]) {
    let left = netns::namespaces_of(pid);
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    assert_eq!(
        root_link_names(),
        links_before,
        "links in the root namespace changed"
    );
    assert!(!work.exists(), "work dir {} left behind", work.display());
    let procs = processes_mentioning(&work.display().to_string());
    assert!(procs.is_empty(), "processes left behind: {procs:?}");
    let logs_prefix = format!("{}{pid}-", netns::NAME_PREFIX);
    let tmp_left: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&logs_prefix))
                .collect()
        })
        .unwrap_or_default();
    assert!(tmp_left.is_empty(), "log dirs left behind: {tmp_left:?}");
}

fn run_to_end(args: &[&str]) -> (Vec<String>, u32, PathBuf) {
    let mut run = start_demo(args);
    let pid = run.process.pid();
    let work = work_dir(&run.process);
    let status = run
        .process
        .wait_timeout(Duration::from_secs(120))
        .expect("wait")
        .unwrap_or_else(|| panic!("the demo did not finish in 120 s\n{}", run.process.tail(40)));
    assert!(
        status.success(),
        "demo failed: {status}\n{}",
        run.process.tail(60)
    );
    (run.process.stdout_lines(), pid, work)
}

#[test]
fn demo_in_network_namespaces_pairs_and_leaves_nothing_behind() {
    require_netns!();
    let links_before = root_link_names();
    let (out, pid, work) = run_to_end(&["--namespaces"]);
    let text = out.join("\n");
    assert!(text.contains("mode: network namespaces"), "{text}");
    for step in [
        "discovery",
        "handshake",
        "login",
        "exchange",
        "agent REFRESHED",
        "token refresh",
        "avs /ping",
        "remove network",
        "total",
    ] {
        assert!(
            out.iter().any(|l| l.trim_start().starts_with(step)),
            "no `{step}` row in:\n{text}"
        );
    }
    assert!(text.contains("AVS accepted the token"), "{text}");
    assert_nothing_left(pid, &work, &links_before);
}

#[test]
fn demo_in_loopback_mode_skips_discovery_and_says_so() {
    // Loopback mode starts no mDNS at all, so it is safe without namespaces.
    let (out, pid, work) = run_to_end(&["--loopback"]);
    let text = out.join("\n");
    assert!(
        text.contains("mode: loopback, discovery skipped (needs root for network namespaces)"),
        "{text}"
    );
    assert!(
        !out.iter().any(|l| l.trim_start().starts_with("discovery")),
        "{text}"
    );
    assert!(text.contains("AVS accepted the token"), "{text}");
    assert!(!work.exists());
    assert!(processes_mentioning(&work.display().to_string()).is_empty());
    let _ = pid;
}

#[test]
fn ctrl_c_mid_demo_removes_everything() {
    require_netns!();
    let links_before = root_link_names();
    let mut run = start_demo(&["--namespaces"]);
    let pid = run.process.pid();
    let work = work_dir(&run.process);
    // Interrupt once the speaker runs inside its namespace.
    run.process
        .wait_for_line(Stream::Stdout, Duration::from_secs(60), |l| {
            l.contains("speaker agent")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    run.process.signal(Signal::SIGINT).expect("SIGINT");
    let status = run
        .process
        .wait_timeout(Duration::from_secs(30))
        .expect("wait")
        .expect("the demo exits after Ctrl-C");
    assert_eq!(status.code(), Some(130), "{}", run.process.tail(20));
    assert!(
        run.process.stderr_has("interrupted"),
        "{}",
        run.process.tail(20)
    );
    assert_nothing_left(pid, &work, &links_before);
}
