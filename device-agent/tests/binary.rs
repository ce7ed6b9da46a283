//! The `avs-device-agent` binary end to end: first start generates and shows a setup code,
//! prints the READY line, answers the client verbs over its socket, links with `cbl` against the
//! real emulator, opens the window on SIGUSR1, and stops cleanly on SIGTERM.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lwa_emulator::registry::{ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID};
use lwa_emulator::Emulator;

const BIN: &str = env!("CARGO_BIN_EXE_avs-device-agent");

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

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_and_its_verbs() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = Command::new(BIN)
        .arg("run")
        .env("AVS_AGENT_PRODUCT_ID", DEFAULT_PRODUCT_ID)
        .env("AVS_AGENT_CLIENT_ID", DEFAULT_DEVICE_CLIENT_ID)
        .env("AVS_AGENT_DSN", "BIN-TEST-1")
        .env("AVS_AGENT_LWA_BASE_URL", emu.base_url())
        .env("AVS_AGENT_STATE_DIR", &state)
        .env("AVS_AGENT_LINK_BIND", "127.0.0.1:0")
        .env("AVS_AGENT_MDNS", "false")
        .env("AVS_AGENT_LOG", "warn,device_agent::cli=info")
        .env_remove("AVS_AGENT_SETUP_CODE")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The daemon's log lines, to wait on what it reports instead of sleeping.
    let stderr = child.stderr.take().unwrap();
    let (log_tx, log_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if log_tx.send(line).is_err() {
                break;
            }
        }
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let ready = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("READY line");
        if line.starts_with("AVS_AGENT_READY ") {
            break line;
        }
        printed.push(line);
    };
    let field = |k: &str| {
        ready
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_owned()
    };
    let socket = field("socket");
    assert!(field("link").starts_with("127.0.0.1:"));
    assert_eq!(field("device_id").len(), 12);

    // First start: stdout is a pipe here, as under systemd (the journal), so the generated code
    // is NOT printed in any form; stdout points at `show-code`, which (as root) prints it from
    // the 0600 file. (Issue 12.5; on the old code the banner with the code was printed -> red.)
    let stored = std::fs::read_to_string(state.join("setup-code")).unwrap();
    let code = stored.trim();
    let printed = printed.join("\n");
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
    signal(pid, "-USR1");
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

    signal(pid, "-TERM");
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
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
