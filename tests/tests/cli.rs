//! `avs-companion` as a script sees it: exit codes and JSON output, against the real emulator
//! and a real agent on loopback (`--connect`, no mDNS).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::process::Output;

use common::*;
use lwa_emulator::registry::{ALICE_EMAIL, ALICE_PASSWORD, DEFAULT_DEVICE_CLIENT_ID};

fn pair(setup: &Setup, code: &str, browse_extra: &str, connect: &str) -> Output {
    let browser = scripted_browser(&setup.bins, browse_extra);
    companion_cmd(setup)
        .args(pair_args(setup, "--json", connect, code, &browser))
        .output()
        .expect("run avs-companion")
}

/// The scripted browser, wrapped so that the redirect it landed on (with the authorization code
/// in full, `--show-code`) is written to `landing` — the test then looks for that code in
/// everything the companion printed.
fn recording_browser(setup: &Setup, landing: &std::path::Path) -> String {
    let script = format!(
        "exec {} browse --email {} --password {} --show-code \"$1\" > {}",
        shell_words::quote(&setup.bins.emulator.display().to_string()),
        shell_words::quote(ALICE_EMAIL),
        shell_words::quote(ALICE_PASSWORD),
        shell_words::quote(&landing.display().to_string()),
    );
    format!("sh -c {} browser", shell_words::quote(&script))
}

/// The authorization code from the browser's `LANDED status=… url=…?code=…` line.
fn landed_code(landing: &std::path::Path) -> String {
    let text = std::fs::read_to_string(landing).unwrap();
    let url = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("url="))
        .unwrap_or_else(|| panic!("no landing url in {text:?}"));
    let url = url::Url::parse(url).unwrap();
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {url}"));
    assert!(code.len() >= 16, "an authorization code, not a stub");
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_scripts_what_happened() {
    // The right code follows a wrong one at once: pacing off (one counted attempt per second
    // per window, tested in device-agent/tests/link.rs), so no retrying a "try again in 1 s".
    let setup = setup_with(emulator().await, AgentOptions::unpaced);
    let addr = loopback(&setup);

    let wrong = pair(&setup, WRONG_CODE, "", &addr);
    assert_eq!(wrong.status.code(), Some(3), "{}", text(&wrong));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong setup code"));

    let denied = pair(&setup, CODE, "--deny", &addr);
    assert_eq!(denied.status.code(), Some(4), "{}", text(&denied));

    let malformed = pair(&setup, "1234", "", &addr);
    assert_eq!(malformed.status.code(), Some(2), "{}", text(&malformed));

    let landing = setup.dir.path().join("landing.txt");
    let browser = recording_browser(&setup, &landing);
    let ok = companion_cmd(&setup)
        .arg("-vv")
        .args(pair_args(&setup, "--json", &addr, CODE, &browser))
        .output()
        .expect("run avs-companion");
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
    // Nor the authorization code the browser carried, nor the setup code in any printed form,
    // on stdout or in the -vv debug log on stderr.
    let auth_code = landed_code(&landing);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    for (what, secret) in [
        ("the authorization code", auth_code.as_str()),
        ("the setup code", CODE),
        ("the setup code (spaced)", "3141 5926"),
        ("the setup code (dashed)", "3141-5926"),
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{what} was printed by the companion"
        );
    }

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
    let landing = setup.dir.path().join("landing.txt");
    let addr = loopback(&setup);
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
            &recording_browser(&setup, &landing),
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.contains("Linked"), "{}", text(&ok));
    let file = std::fs::read_to_string(setup.dir.path().join("companion.toml")).unwrap();
    let auth_code = landed_code(&landing);
    assert!(
        !file.contains(CODE)
            && !file.contains(&auth_code)
            && !file.to_lowercase().contains("token"),
        "{file}"
    );
    assert!(
        !text(&ok).contains(&auth_code),
        "the authorization code was printed"
    );
    // A plain-http LWA off loopback is refused.
    let bad = companion(&setup, &["config", "--lwa-base-url", "http://192.0.2.1:80"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}
