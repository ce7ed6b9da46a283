//! The `avs-device-agent` binary end to end: first start generates and shows a setup code,
//! prints the READY line, answers the client verbs over its socket, links with `cbl` against the
//! real emulator, opens the window on SIGUSR1, and stops cleanly on SIGTERM.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lwa_emulator::registry::ALICE_EMAIL;
use lwa_emulator::Emulator;

mod common;
use common::process::{lines, run_command, AgentProcess, BIN};

fn verb(socket: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .args(["--socket", socket])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_and_its_verbs() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut agent = AgentProcess::spawn(
        run_command(&state, emu.base_url(), "BIN-TEST-1")
            .env("AVS_AGENT_LOG", "warn,device_agent::cli=info")
            // As shipped: BLE at its default, a code generated on first start.
            .env_remove("AVS_AGENT_BLE")
            .env_remove("AVS_AGENT_SETUP_CODE")
            .stderr(Stdio::piped()),
    );
    // The daemon's log lines, to wait on what it reports instead of sleeping.
    let log_rx = lines(agent.child.stderr.take().unwrap());
    let socket = agent.socket();
    assert!(agent.field("link").starts_with("127.0.0.1:"));
    assert_eq!(agent.field("device_id").len(), 12);

    // First start: stdout is a pipe here, as under systemd (the journal), so the generated code
    // is NOT printed in any form; stdout points at `show-code`, which (as root) prints it from
    // the 0600 file. (Issue 12.5; on the old code the banner with the code was printed -> red.)
    let stored = std::fs::read_to_string(state.join("setup-code")).unwrap();
    let code = stored.trim();
    let printed = agent.printed.join("\n");
    for form in [
        code.to_owned(),
        format!("{} {}", &code[..4], &code[4..]),
        format!("{}-{}", &code[..4], &code[4..]),
    ] {
        assert!(
            !printed.contains(&form),
            "the code reached stdout: {printed}"
        );
    }
    assert!(printed.contains("show-code"), "{printed}");
    let shown = Command::new(BIN)
        .arg("show-code")
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let shown_text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{shown:?}");
    assert!(
        shown_text.contains(&format!("{} {}", &code[..4], &code[4..]))
            && shown_text.contains("manual code:"),
        "{shown_text}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(state.join("setup-code"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o660
    );

    let (ok, out) = verb(&socket, &["status"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("auth:        not linked to an Amazon account (UNINITIALIZED)\n")
            && out.contains("open"),
        "{out}"
    );
    assert!(
        !out.contains("last error") && !out.contains("SUCCESS"),
        "{out}"
    );
    let (ok, out) = verb(&socket, &["token"]);
    assert!(!ok, "no token before pairing: {out}");
    assert_eq!(
        out,
        "error: not linked yet: pair from the companion or run `avs-device-agent cbl`\n"
    );

    // Code-based linking through the CLI.
    let mut cbl = Command::new(BIN)
        .args(["cbl", "--socket", &socket])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(cbl.stdout.take().unwrap()).lines();
    let prompt = lines.next().unwrap().unwrap();
    let user_code = prompt
        .split("enter the code ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    emu.approve_user_code(&user_code, ALICE_EMAIL).unwrap();
    assert!(cbl.wait().unwrap().success());
    let end = Instant::now() + Duration::from_secs(10);
    let token = loop {
        let (ok, out) = verb(&socket, &["token"]);
        if ok {
            break out.trim().to_owned();
        }
        assert!(Instant::now() < end, "{out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(token.starts_with("Atza|"), "bare token printed");
    let (ok, out) = verb(&socket, &["check"]);
    assert!(ok, "{out}");

    let (ok, out) = verb(&socket, &["pair"]);
    assert!(ok && out.contains("open"), "{out}");
    // SIGUSR1 is handled (its default action would kill the daemon): the window is open and the
    // daemon still answers.
    agent.signal("-USR1");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = log_rx
            .recv_timeout(left)
            .expect("the daemon logs that SIGUSR1 opened the window");
        if line.contains("SIGUSR1: pairing window open") {
            break;
        }
    }
    let (ok, out) = verb(&socket, &["status"]);
    assert!(
        ok && out.contains("auth:        linked and ready (REFRESHED)\n") && out.contains("open ("),
        "{out}"
    );

    agent.signal("-TERM");
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = agent.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success());
    assert!(
        !std::path::Path::new(&socket).exists(),
        "socket removed on shutdown"
    );
    assert!(state.join("tokens.json").exists(), "tokens kept");
}
