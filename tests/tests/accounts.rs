//! Who the speaker is linked to, as people see it (issue 15.4, 15.5, 15.6): the real
//! `avs-companion` and `avs-device-agent` binaries on loopback, the emulator in-process, the
//! scripted user as the browser.
//!
//! - the pair result, `avs-device-agent status` (after a restart, from the store) and
//!   `avs-companion status` name "Alice Example (alice@example.com)"; without a readable profile
//!   they fall back to the account id;
//! - two companions at once: the one that hands its code over second is told who won;
//! - re-pairing with a different account asks first: no terminal and no `--yes` keeps the old
//!   account (which goes on refreshing), a "n" typed on a terminal keeps it, `--yes` replaces it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lwa_emulator::registry::{ALICE_USER_ID, BOB_EMAIL, BOB_PASSWORD, BOB_USER_ID};
use lwa_emulator::Emulator;

const ALICE: &str = "Alice Example (alice@example.com)";
const BOB: &str = "Bob Example (bob@example.com)";

fn bob_browser(setup: &Setup) -> String {
    format!(
        "{} browse --email {BOB_EMAIL} --password {BOB_PASSWORD}",
        shell_words::quote(&setup.bins.emulator.display().to_string())
    )
}

/// `avs-companion pair --plain` against the test agent with `browser`, plus `extra` flags.
fn account_pair_args(setup: &Setup, browser: &str, extra: &[&str]) -> Vec<String> {
    let mut args = pair_args(setup, "--plain", &loopback(setup), CODE, browser);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn pair(setup: &Setup, browser: &str, extra: &[&str]) -> Output {
    companion_cmd(setup)
        .args(account_pair_args(setup, browser, extra))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn stderr_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `avs-device-agent status` as a person reads it (no `--json`).
fn agent_status_text(setup: &Setup) -> Vec<String> {
    let out = Command::new(&setup.bins.agent)
        .arg("status")
        .arg("--socket")
        .arg(&setup.agent.socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    stdout_lines(&out)
}

/// Name and e-mail address are personal data: the agent's logs (stdout and stderr) hold neither.
fn assert_no_personal_data_logged(setup: &Setup) {
    let (out, err) = setup.agent.process.log_paths();
    let mut logged = 0;
    for path in [out, err] {
        let log = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("the agent's log {}: {e}", path.display()));
        logged += log.len();
        for personal in [
            "Alice Example",
            "alice@example.com",
            "Bob Example",
            "bob@example.com",
        ] {
            assert!(
                !log.contains(personal),
                "{personal:?} in the agent's log {}:\n{log}",
                path.display()
            );
        }
    }
    assert!(logged > 0, "the agent logged nothing: nothing was checked");
}

/// Stops the agent and starts it again on the same state dir; waits until it refreshed.
fn restart_agent(setup: &mut Setup) {
    assert_no_personal_data_logged(setup);
    setup
        .agent
        .process
        .terminate(Duration::from_secs(5))
        .unwrap();
    setup.agent = start_agent(
        &setup.bins,
        setup.dir.path(),
        setup.emulator.base_url(),
        AgentOptions::unpaced,
    );
    wait_for_status(setup, |s| s["auth_state"] == "REFRESHED");
}

/// Polls the agent's local API until `pred` holds (10 s).
fn wait_for_status(setup: &Setup, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = agent_status(setup);
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "status never matched: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn linked_line(setup: &Setup, to: &str) -> String {
    let s = agent_status(setup);
    format!(
        "Linked {} ({}) to {to}.",
        s["friendly_name"].as_str().unwrap(),
        s["device_id"].as_str().unwrap()
    )
}

/// Pairs Alice with the CLI; asserts the result names her.
fn pair_alice(setup: &Setup) {
    let out = pair(setup, &scripted_browser(&setup.bins, ""), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let want = linked_line(setup, ALICE);
    assert!(
        stdout_lines(&out).contains(&want),
        "{want:?} in {}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pair_result_and_both_statuses_name_the_account_also_after_a_restart() {
    let mut setup = setup_with(emulator().await, AgentOptions::unpaced);
    pair_alice(&setup);

    restart_agent(&mut setup);
    let lines = agent_status_text(&setup);
    assert!(
        lines.contains(&format!("account:     {ALICE}")),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&format!("user id:     {ALICE_USER_ID}")),
        "{lines:#?}"
    );

    // The companion's status, once the owner opened the window on the speaker.
    setup.agent.cli(&setup.bins.agent, "pair").unwrap();
    let out = companion_cmd(&setup)
        .args([
            "status",
            "--connect",
            &loopback(&setup),
            "--setup-code",
            CODE,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout_lines(&out).contains(&format!("account     {ALICE}")),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_readable_profile_the_account_id_is_shown() {
    let emu = Emulator::builder()
        .withhold_profile(true)
        .start()
        .await
        .unwrap();
    let setup = setup_with(emu, AgentOptions::unpaced);
    let out = pair(&setup, &scripted_browser(&setup.bins, ""), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let want = linked_line(&setup, &format!("Amazon account {ALICE_USER_ID}"));
    assert!(
        stdout_lines(&out).contains(&want),
        "{want:?} in {}",
        text(&out)
    );
    let lines = agent_status_text(&setup);
    assert!(
        lines.contains(&format!("account:     {ALICE_USER_ID}")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("user id:")),
        "{lines:#?}"
    );
}

/// A FIFO in `dir` (`mkfifo`): opening it blocks until the other end opens, so the test and the
/// browser script wait on each other without polling.
fn fifo(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    p
}

/// Reads a FIFO to its end on a thread, bounded by `limit`.
fn read_fifo(path: &std::path::Path, limit: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::fs::File::open(&path).and_then(|mut f| f.read_to_string(&mut s));
        let _ = tx.send(s);
    });
    rx.recv_timeout(limit).expect("the other end of the FIFO")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_companion_that_loses_a_race_is_told_who_linked_the_speaker() {
    let setup = setup_with(emulator().await, AgentOptions::unpaced);
    let ready = fifo(setup.dir.path(), "bob-ready");
    let go = fifo(setup.dir.path(), "bob-go");
    // Bob's browser says "ready" (his companion holds its device info and the sign-in page is
    // open), waits for "go", then signs in.
    let script = format!(
        "echo ready > {}; read go < {}; exec {} \"$1\"",
        shell_words::quote(&ready.display().to_string()),
        shell_words::quote(&go.display().to_string()),
        bob_browser(&setup),
    );
    let browser = format!("sh -c {} browser", shell_words::quote(&script));
    let bob = companion_cmd(&setup)
        .args(account_pair_args(&setup, &browser, &[]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(read_fifo(&ready, Duration::from_secs(30)).trim(), "ready");

    // Alice, on a second companion, links the speaker meanwhile.
    pair_alice(&setup);

    // Now Bob finishes signing in; his code reaches the speaker second.
    let mut g = std::fs::OpenOptions::new().write(true).open(&go).unwrap();
    writeln!(g, "go").unwrap();
    drop(g);
    let out = bob.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(
        stderr_lines(&out).contains(
            &"error: another companion linked this speaker a moment ago (to Alice Example); your sign-in was not used"
                .to_owned()
        ),
        "{}",
        text(&out)
    );
    // And Alice is what the speaker keeps.
    assert_eq!(agent_status(&setup)["user_id"], ALICE_USER_ID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_account_replaces_the_linked_one_only_with_a_yes() {
    let mut setup = setup_with(emulator().await, AgentOptions::unpaced);
    pair_alice(&setup);

    // Bob signs in on a companion with no terminal and no --yes: Alice stays.
    setup.agent.cli(&setup.bins.agent, "pair").unwrap();
    let out = pair(&setup, &bob_browser(&setup), &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let err = stderr_lines(&out);
    let kept = format!("Kept: the speaker stays linked to {ALICE}; {BOB} was not linked.");
    assert!(err.contains(&kept), "{kept:?} in {}", text(&out));
    assert!(
        err.contains(
            &"(not asked: no terminal; to replace the account, run pair again with --yes)"
                .to_owned()
        ),
        "{}",
        text(&out)
    );
    let s = agent_status(&setup);
    assert_eq!(
        (s["user_id"].as_str(), s["auth_state"].as_str()),
        (Some(ALICE_USER_ID), Some("REFRESHED"))
    );
    assert_eq!(s["account"]["name"], "Alice Example");

    // Alice's refresh token is still the one on disk, and it still refreshes.
    restart_agent(&mut setup);
    let s = agent_status(&setup);
    assert_eq!(s["user_id"], ALICE_USER_ID);
    assert!(s["refreshes"].as_u64().unwrap() >= 1, "{s}");
    let check: serde_json::Value =
        serde_json::from_str(setup.agent.cli(&setup.bins.agent, "check").unwrap().trim()).unwrap();
    assert_eq!(check["ok"], true, "{check}");

    // With --yes Bob replaces her (and --json names him for scripts).
    setup.agent.cli(&setup.bins.agent, "pair").unwrap();
    let mut args = account_pair_args(&setup, &bob_browser(&setup), &["--yes"]);
    args.retain(|a| a != "--plain");
    args.push("--json".into());
    let out = companion_cmd(&setup)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let result: serde_json::Value = stdout_lines(&out)
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "result")
        .unwrap_or_else(|| panic!("no result in {}", text(&out)));
    assert_eq!(result["user_id"], BOB_USER_ID, "{result}");
    assert_eq!(result["account"]["name"], "Bob Example", "{result}");
    assert_eq!(result["account"]["email"], "bob@example.com", "{result}");
    let s = wait_for_status(&setup, |s| s["user_id"] == BOB_USER_ID);
    assert_eq!(s["auth_state"], "REFRESHED");
    assert_no_personal_data_logged(&setup);
}

/// On a terminal (a pseudo-terminal from `script`) the CLI asks, and "n" keeps Alice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_the_cli_asks_and_no_keeps_the_linked_account() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (util-linux) for a pseudo-terminal");
        return;
    }
    let setup = setup_with(emulator().await, AgentOptions::unpaced);
    pair_alice(&setup);
    setup.agent.cli(&setup.bins.agent, "pair").unwrap();

    let mut words = vec![setup.bins.companion.display().to_string()];
    words.extend(account_pair_args(&setup, &bob_browser(&setup), &[]));
    let mut child = Command::new("script")
        .args(["-qefc", &shell_words::join(&words), "/dev/null"])
        .env_remove("BROWSER")
        .env_remove("AVS_SETUP_CODE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let question = format!("This speaker is linked to {ALICE}. Replace with {BOB}? [y/N]");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&seen).contains(&question) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!(
                "no question on the terminal; saw:\n{}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    stdin.write_all(b"n\r").unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(chunk) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        seen.extend(chunk);
    }
    // Bounded: a CLI still waiting (its answer lost) is stopped, and the asserts below say so.
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    let all = String::from_utf8_lossy(&seen);
    assert_eq!(status.code(), Some(4), "{all}");
    assert!(
        all.contains(&format!(
            "Kept: the speaker stays linked to {ALICE}; {BOB} was not linked."
        )),
        "{all}"
    );
    assert!(!all.contains("not asked"), "{all}");
    assert_eq!(agent_status(&setup)["user_id"], ALICE_USER_ID);
}
