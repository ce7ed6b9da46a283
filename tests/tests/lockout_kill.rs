//! The pairing lockout survives `kill -9` with its countdown (issue 12.2 / 18.7): the real
//! agent binary is locked by twenty wrong setup codes, killed with SIGKILL the moment the lockout
//! shows, left dead for a few seconds, and started again on the same state directory. It must
//! come back locked, with the time it was dead counted: neither a fresh lockout (the state file
//! was not written when the lockout started) nor none (the lockout was lost). Both the local API
//! (`avs-device-agent status`) and the Hello (`avs-companion status`, in words) are read.
//! Then a power cut is simulated (the file's boot-clock end moved to another boot): the lockout
//! resumes from the time left at the last write. Loopback only; about 7 s (3 s of it the agent
//! being dead).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use avs_pair_tests::companion::try_code;
use avs_pair_tests::stack::AgentOptions;
use common::*;
use companion_app::link::LinkError;
use nix::sys::signal::Signal;
use shared_protocol::message::PairingWindow;

/// The agent's first lockout (`lockout_base`, 60 s by default).
const LOCKOUT: f64 = 60.0;
/// How long the agent stays dead: the time under test (the lockout must count it).
const DEAD: Duration = Duration::from_secs(3);

/// The agent on loopback with this test's state dir, unpaced (20 wrong codes at once).
fn unpaced_agent(
    bins: &avs_pair_tests::bins::Bins,
    dir: &std::path::Path,
    base_url: &str,
) -> avs_pair_tests::stack::AgentProcess {
    start_agent(bins, dir, base_url, AgentOptions::unpaced)
}

/// The window as the agent's local API reports it.
fn window(
    bins: &avs_pair_tests::bins::Bins,
    agent: &avs_pair_tests::stack::AgentProcess,
) -> PairingWindow {
    let out = agent.cli(&bins.agent, "status").unwrap();
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    serde_json::from_value(v["window"].clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_survives_kill_9_with_its_countdown() {
    let bins = bins();
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = unpaced_agent(&bins, dir.path(), emulator.base_url());
    let addr = loopback_addr(&agent)[0];
    for i in 1..=19 {
        let r = try_code(addr, WRONG_CODE).await;
        assert!(
            matches!(r, Err(LinkError::WrongSetupCode { .. })),
            "attempt {i}: {r:?}"
        );
    }
    // The lockout starts somewhere after this instant (the 20th guess).
    let before_lock = Instant::now();
    let r = try_code(addr, WRONG_CODE).await;
    assert!(
        matches!(r, Err(LinkError::WrongSetupCode { .. })),
        "attempt 20: {r:?}"
    );
    // ...and before this one: the agent says it is locked (it records the lockout under the
    // same lock that makes it visible). Reading the window writes nothing (a running lockout
    // is checkpointed once a minute), so the file holds what was written when it started.
    let end = Instant::now() + Duration::from_secs(10);
    let locked_seen = loop {
        if let PairingWindow::LockedOut { .. } = window(&bins, &agent) {
            break Instant::now();
        }
        assert!(Instant::now() < end, "no lockout after 20 wrong codes");
    };
    // Pull the plug: no shutdown code runs.
    agent.process.signal(Signal::SIGKILL).unwrap();
    agent.process.wait_timeout(Duration::from_secs(5)).unwrap();
    drop(agent);
    // The agent stays dead for a while: this wait is the thing under test, not a sync.
    std::thread::sleep(DEAD);

    let restarted = Instant::now();
    let agent = unpaced_agent(&bins, dir.path(), emulator.base_url());
    let w = window(&bins, &agent);
    let asked = Instant::now();
    // At most: the lockout ran from `locked_seen` at the latest and the agent read it after
    // `restarted` (the boot clock has 10 ms steps). At least: it ran from `before_lock` at the
    // earliest and was read before `asked`.
    let most = (LOCKOUT - (restarted - locked_seen).as_secs_f64() + 0.05).ceil() as u64;
    let least = (LOCKOUT - (asked - before_lock).as_secs_f64() - 0.05).floor() as u64;
    assert!(most < 60, "the test's own timing: at most {most}");
    match w {
        PairingWindow::LockedOut { retry_in_secs } => assert!(
            (least..=most).contains(&retry_in_secs),
            "after kill -9 and {DEAD:?} dead: retry in {retry_in_secs} s, expected {least}..={most} \
             (60: a fresh lockout, i.e. not written when it started, or the time it was dead not counted)\n{}",
            agent.process.tail(20)
        ),
        other => panic!("not locked after kill -9: {other:?}\n{}", agent.process.tail(20)),
    }

    // The Hello says the same, and the companion puts it in words (given the code, it says why
    // it cannot show more and what reopens the window, without trying the handshake).
    let out = Command::new(&bins.companion)
        .arg("--config")
        .arg(dir.path().join("companion.toml"))
        .args([
            "status",
            "--connect",
            &format!("127.0.0.1:{}", agent.port()),
            "--setup-code",
            CODE,
        ])
        .env_remove("AVS_SETUP_CODE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("pairing     "))
        .unwrap_or_else(|| panic!("no pairing line: {stdout}"));
    let secs: u64 = line
        .strip_prefix("pairing     locked after wrong setup codes (retry in ")
        .and_then(|rest| rest.strip_suffix("s)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not the lockout in words: {line:?}"));
    let least = (LOCKOUT - before_lock.elapsed().as_secs_f64() - 0.05).floor() as u64;
    assert!(
        (least..=most).contains(&secs),
        "the Hello: retry in {secs} s, expected {least}..={most}"
    );
    let (_, rest) = stdout.split_once('\n').unwrap();
    assert_eq!(
        rest,
        format!(
            "name        Living room speaker\n\
             id          {}\n\
             paired      no\n\
             pairing     locked after wrong setup codes (retry in {secs}s)\n\
             auth state  not shown: the setup code was given, but the speaker's pairing window \
             closed after wrong setup codes (it can be reopened from the network in {secs} s); \
             to reopen it now, press the speaker's pairing button\n",
            agent.device_id
        ),
        "the whole status, word for word"
    );
    // And the right code is refused: the lockout is real, not only reported.
    let r = try_code(loopback_addr(&agent)[0], CODE).await;
    assert!(
        matches!(&r, Err(LinkError::Refused(b)) if b.kind == shared_protocol::message::ErrorKind::LockedOut),
        "{r:?}"
    );

    // A power cut: the machine boots again and its boot clock restarts under a new boot id.
    // Simulated while the agent is dead by moving the file's boot-clock end to early in another
    // boot (the restart above wrote this boot's). The lockout must resume from the time left at
    // that write, not end (a point early in a boot is long past on this one).
    let mut agent = agent;
    agent.process.signal(Signal::SIGKILL).unwrap();
    agent.process.wait_timeout(Duration::from_secs(5)).unwrap();
    drop(agent);
    let file = dir.path().join("state").join("pairing.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let written = state["locked_for_secs"]
        .as_u64()
        .unwrap_or_else(|| panic!("{state}"));
    assert!(state["locked_until_boot"]["boot_id"].is_string(), "{state}");
    state["locked_until_boot"] = serde_json::json!({
        "boot_id": "00000000-0000-4000-8000-000000000000",
        "since_boot_ms": 1000,
    });
    std::fs::write(&file, serde_json::to_vec(&state).unwrap()).unwrap();
    let rebooted = Instant::now();
    let agent = unpaced_agent(&bins, dir.path(), emulator.base_url());
    let w = window(&bins, &agent);
    // The agent resumed with `written` seconds somewhere in this span (a busy machine may take
    // a while to start it and answer).
    let span = rebooted.elapsed().as_secs_f64().ceil() as u64;
    match w {
        PairingWindow::LockedOut { retry_in_secs } => assert!(
            retry_in_secs <= written && retry_in_secs + span >= written,
            "after a reboot: retry in {retry_in_secs} s, the file said {written} s ({span} s to \
             start and ask)"
        ),
        other => panic!(
            "a power cut ended the lockout: {other:?} (the file said {written} s)\n{}",
            agent.process.tail(20)
        ),
    }
}
