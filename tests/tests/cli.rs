//! `avs-companion` as a script sees it: exit codes and JSON output, against the real emulator
//! and a real agent on loopback (`--connect`, no mDNS).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::process::{Command, Output};

use common::*;
use lwa_emulator::registry::DEFAULT_DEVICE_CLIENT_ID;

fn companion(setup: &Setup, args: &[&str]) -> Output {
    Command::new(&setup.bins.companion)
        .arg("--config")
        .arg(setup.dir.path().join("companion.toml"))
        .args(args)
        .env_remove("BROWSER")
        .env_remove("AVS_SETUP_CODE")
        .output()
        .expect("run avs-companion")
}

fn pair(setup: &Setup, code: &str, browse_extra: &str, connect: &str) -> Output {
    companion(
        setup,
        &[
            "pair",
            "--json",
            "--connect",
            connect,
            "--setup-code",
            code,
            "--client-id",
            DEFAULT_DEVICE_CLIENT_ID,
            "--lwa-base-url",
            setup.emulator.base_url(),
            "--browser",
            &scripted_browser(&setup.bins, browse_extra),
            "--login-timeout",
            "20",
        ],
    )
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_scripts_what_happened() {
    let setup = setup().await;
    let addr = format!("127.0.0.1:{}", setup.agent.port());

    let wrong = pair(&setup, WRONG_CODE, "", &addr);
    assert_eq!(wrong.status.code(), Some(3), "{}", text(&wrong));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong setup code"));

    let denied = pair(&setup, CODE, "--deny", &addr);
    assert_eq!(denied.status.code(), Some(4), "{}", text(&denied));

    let malformed = pair(&setup, "1234", "", &addr);
    assert_eq!(malformed.status.code(), Some(2), "{}", text(&malformed));

    let ok = pair(&setup, CODE, "", &addr);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let result: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "result")
        .unwrap_or_else(|| panic!("no result line: {stdout}"));
    assert_eq!(result["device_id"], setup.agent.device_id.as_str());
    for step in ["connect", "handshake", "device_info", "login", "exchange"] {
        assert!(result["timings"][step].as_f64().is_some(), "{result}");
    }
    assert!(!stdout.contains(CODE), "the setup code is never printed");

    // Paired: the window is closed now.
    let again = pair(&setup, CODE, "", &addr);
    assert_eq!(again.status.code(), Some(7), "{}", text(&again));

    // Status still answers (the Hello), and says it is paired.
    let status = companion(&setup, &["status", "--json", "--connect", &addr]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["summary"]["paired"], true, "{v}");

    // Reset needs the window open: refused now, done after the owner opens it on the speaker.
    let reset_args = [
        "reset",
        "--yes",
        "--connect",
        addr.as_str(),
        "--setup-code",
        CODE,
    ];
    let refused = companion(&setup, &reset_args);
    assert_eq!(refused.status.code(), Some(7), "{}", text(&refused));
    setup.agent.cli(&setup.bins.agent, "pair").unwrap();
    let reset = companion(&setup, &reset_args);
    assert_eq!(reset.status.code(), Some(0), "{}", text(&reset));
    assert_eq!(agent_status(&setup)["paired"], false);
    assert_eq!(agent_status(&setup)["auth_state"], "UNINITIALIZED");

    // Nobody listening.
    let mut setup = setup;
    setup
        .agent
        .process
        .terminate(std::time::Duration::from_secs(5))
        .unwrap();
    let gone = pair(&setup, CODE, "", &addr);
    assert_eq!(gone.status.code(), Some(6), "{}", text(&gone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_remembers_settings_but_never_secrets() {
    let setup = setup().await;
    let set = companion(
        &setup,
        &[
            "config",
            "--client-id",
            DEFAULT_DEVICE_CLIENT_ID,
            "--lwa-base-url",
            setup.emulator.base_url(),
        ],
    );
    assert_eq!(set.status.code(), Some(0), "{}", text(&set));
    let file = std::fs::read_to_string(setup.dir.path().join("companion.toml")).unwrap();
    assert!(file.contains(DEFAULT_DEVICE_CLIENT_ID));
    // Pairing now needs only the code and the browser.
    let addr = format!("127.0.0.1:{}", setup.agent.port());
    let ok = companion(
        &setup,
        &[
            "pair",
            "--plain",
            "--connect",
            &addr,
            "--setup-code",
            CODE,
            "--browser",
            &scripted_browser(&setup.bins, ""),
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.contains("Linked"), "{}", text(&ok));
    let file = std::fs::read_to_string(setup.dir.path().join("companion.toml")).unwrap();
    assert!(
        !file.contains(CODE) && !file.to_lowercase().contains("token"),
        "{file}"
    );
    // A plain-http LWA off loopback is refused.
    let bad = companion(&setup, &["config", "--lwa-base-url", "http://192.0.2.1:80"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}
