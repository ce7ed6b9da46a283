//! Issue 15 ("first run as people meet it"): what `avs-companion` prints in the situations a
//! first-time user meets, asserted word for word, against the real emulator and a real agent on
//! loopback (`--connect`, no mDNS).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::*;
use lwa_emulator::registry::DEFAULT_DEVICE_CLIENT_ID;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn pair(setup: &Setup, addr: &str) -> Output {
    pair_with(setup, addr, &scripted_browser(&setup.bins, ""))
}

/// `avs-companion pair --plain` on `addr` with the right code and `browser`.
fn pair_with(setup: &Setup, addr: &str, browser: &str) -> Output {
    companion_cmd(setup)
        .args(pair_args(setup, "--plain", addr, CODE, browser))
        .output()
        .expect("run avs-companion")
}

/// `avs-companion status --connect addr`, with `--setup-code` when `code` is given.
fn status(setup: &Setup, addr: &str, code: Option<&str>) -> Output {
    let mut args = vec!["status", "--connect", addr];
    if let Some(code) = code {
        args.extend(["--setup-code", code]);
    }
    companion(setup, &args)
}

/// [`status`] that must succeed (exit 0): what it printed.
#[track_caller]
fn status_ok(setup: &Setup, addr: &str, code: Option<&str>) -> String {
    let st = status(setup, addr, code);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st));
    stdout(&st)
}

/// 15.8: `status` says the auth state in words with the SDK name in parentheses, shows no
/// "last error SUCCESS", and with the window closed does not ask for the code it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_speaks_in_words() {
    let setup = setup().await;
    let addr = loopback(&setup);

    let out = status_ok(&setup, &addr, Some(CODE));
    assert!(
        out.contains("auth state  not linked to an Amazon account (UNINITIALIZED)\n"),
        "{out}"
    );
    assert!(
        !out.contains("last error") && !out.contains("SUCCESS"),
        "{out}"
    );

    let ok = pair(&setup, &addr);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));

    // Window closed after linking: without the code, and with it.
    let out = status_ok(&setup, &addr, None);
    assert!(
        out.contains(
            "auth state  not shown: give --setup-code (while the pairing window is open)\n"
        ),
        "{out}"
    );
    let out = status_ok(&setup, &addr, Some(CODE));
    assert!(
        out.contains("auth state  not shown: the setup code was given, but the speaker's pairing window is closed"),
        "{out}"
    );
    assert!(!out.contains("give --setup-code"), "{out}");

    // Open again: linked, in words.
    setup.agent.cli(&setup.bins.agent, "pair").unwrap();
    let out = status_ok(&setup, &addr, Some(CODE));
    assert!(
        out.contains("auth state  linked and ready (REFRESHED)\n"),
        "{out}"
    );
    assert!(!out.contains("last error"), "{out}");
}

/// With its pairing window shut the speaker answers the Hello only: `status` prints that
/// Hello's summary in words (name, id, paired, window) and says how to open the window, with or
/// without the setup code; before pairing (a zero boot window: only the button opens it) and
/// after. The whole text, word for word (only the software version on the first line varies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_with_the_window_shut_prints_the_hello_summary_in_words() {
    let setup = setup_with(emulator().await, |o| {
        o.extra_toml.push("boot_window_secs = 0".into())
    });
    let addr = loopback(&setup);
    let id = setup.agent.device_id.clone();
    let expect = |out: &Output, paired: &str, auth: &str| {
        assert_eq!(out.status.code(), Some(0), "{}", text(out));
        let stdout = stdout(out);
        let (first, rest) = stdout.split_once('\n').unwrap_or((&stdout, ""));
        assert!(
            first.starts_with(&format!("speaker     {addr} (avs-device-agent")),
            "{}",
            text(out)
        );
        assert_eq!(
            rest,
            format!(
                "name        Living room speaker\n\
                 id          {id}\n\
                 paired      {paired}\n\
                 pairing     closed\n\
                 auth state  {auth}\n"
            ),
            "{}",
            text(out)
        );
    };
    const GIVE_CODE: &str = "not shown: give --setup-code (while the pairing window is open)";
    const SHUT: &str = "not shown: the setup code was given, but the speaker's pairing window \
                        is closed; open the pairing window on the speaker: press its pairing \
                        button or run `avs-device-agent pair` on it";

    // Never paired, window shut.
    let st = status(&setup, &addr, None);
    expect(&st, "no", GIVE_CODE);
    let st = status(&setup, &addr, Some(CODE));
    expect(&st, "no", SHUT);

    // Paired, window shut again by the link.
    setup.agent.cli(&setup.bins.agent, "pair").unwrap();
    let ok = pair(&setup, &addr);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let st = status(&setup, &addr, None);
    expect(&st, "yes", GIVE_CODE);
    let st = status(&setup, &addr, Some(CODE));
    expect(&st, "yes", SHUT);
}

/// 15.8: `--connect` takes a host name; an address where something else answers (here the
/// emulator, a real HTTP server) is named for what it is, not as an oversized frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_takes_host_names_and_knows_an_http_server() {
    let setup = setup().await;
    let by_name = format!("localhost:{}", setup.agent.port());
    let st = companion(&setup, &["status", "--connect", &by_name]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st));
    assert!(stdout(&st).contains("speaker     "), "{}", text(&st));

    let bad = companion(&setup, &["status", "--connect", "localhost"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("write it as HOST:PORT"),
        "{}",
        text(&bad)
    );

    let http = url::Url::parse(setup.emulator.base_url()).unwrap();
    assert_eq!(http.scheme(), "http", "the emulator serves plain HTTP here");
    let addr = format!("127.0.0.1:{}", http.port().unwrap());
    let st = status(&setup, &addr, None);
    assert_eq!(st.status.code(), Some(6), "{}", text(&st));
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(
        err.contains("that address is not an avs-pair speaker (it answered like an HTTP server)"),
        "{}",
        text(&st)
    );
    assert!(!err.contains("bytes is over"), "{}", text(&st));
}

/// 15.6: the agent dies while the user signs in: the companion says so in people's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speaker_that_stops_mid_sign_in_is_named_so() {
    let setup = setup().await;
    let addr = loopback(&setup);
    let pid = setup.agent.process.pid();
    let script = format!(
        "kill -KILL {pid}; exec {} \"$1\"",
        scripted_browser(&setup.bins, "")
    );
    let browser = format!("sh -c {} browser", shell_words::quote(&script));
    let o = pair_with(&setup, &addr, &browser);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "the speaker stopped answering (restarted?); your sign-in was not used — run pair again"
        ),
        "{}",
        text(&o)
    );
    assert!(
        !err.contains("closed the connection during"),
        "{}",
        text(&o)
    );
}

/// Every `avs-device-agent …` / `avs-companion …` command named in a message people read
/// (string literals of the agent, the companion library/CLI/app and the app's UI) — plus `pair`,
/// which "run pair again" names — exists: `<bin> <command> --help` exits 0 (issue 15.6: the
/// messages named `avs-device-agent window open`, which never existed).
#[test]
fn every_command_named_in_a_message_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let mut dirs: Vec<std::path::PathBuf> = [
        "device-agent/src",
        "companion-app/src",
        "companion-app/src-tauri/src",
        "companion-app/ui/src",
        "shared-protocol/src",
    ]
    .iter()
    .map(|d| root.join(d))
    .collect();
    let mut named = std::collections::BTreeSet::new();
    named.insert(("avs-companion".to_owned(), "pair".to_owned()));
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if !matches!(p.extension().and_then(|e| e.to_str()), Some("rs" | "ts"))
                || p.file_name().is_some_and(|n| n == "tests.rs")
            {
                continue; // test fixtures ("avs-companion test" as a Hello's software) are not messages
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for line in text.lines() {
                let code = line.trim_start();
                if code.starts_with("//") || code.starts_with('*') || code.starts_with("/*") {
                    continue; // comments are not messages
                }
                for bin in ["avs-device-agent", "avs-companion"] {
                    for (i, _) in line.match_indices(&format!("{bin} ")) {
                        let rest = &line[i + bin.len() + 1..];
                        let word: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                            .collect();
                        // "the avs-companion command" is prose, not a command.
                        if !word.is_empty() && !word.starts_with('-') && word != "command" {
                            named.insert((bin.to_owned(), word));
                        }
                    }
                }
            }
        }
    }
    let bins = bins();
    let mut missing = Vec::new();
    for (bin, cmd) in &named {
        let path = if bin == "avs-device-agent" {
            &bins.agent
        } else {
            &bins.companion
        };
        let ok = Command::new(path)
            .args([cmd.as_str(), "--help"])
            .output()
            .unwrap()
            .status
            .success();
        if !ok {
            missing.push(format!("{bin} {cmd}"));
        }
    }
    assert!(
        named.len() >= 3,
        "the scan found the named commands: {named:?}"
    );
    assert!(
        missing.is_empty(),
        "named in messages but not commands: {missing:?}"
    );
}

/// 15.9: a setup code piped on stdin is read (was: "the setup code is empty").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_code_piped_on_stdin_is_read() {
    use std::io::Write as _;
    let setup = setup().await;
    let addr = loopback(&setup);
    let mut child = Command::new(&setup.bins.companion)
        .arg("--config")
        .arg(setup.dir.path().join("companion.toml"))
        .args([
            "pair",
            "--plain",
            "--connect",
            &addr,
            "--client-id",
            DEFAULT_DEVICE_CLIENT_ID,
            "--lwa-base-url",
            setup.emulator.base_url(),
            "--browser",
            &scripted_browser(&setup.bins, ""),
            "--login-timeout",
            "20",
        ])
        .env_remove("BROWSER")
        .env_remove("AVS_SETUP_CODE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{CODE}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).contains("Linked"), "{}", text(&o));
    assert!(!text(&o).contains(CODE), "the code is not echoed");
}
