//! Issue 15, items 7, 9 and 1 (the pre-flight): what `avs-companion pair` says when the user
//! types a wrong setup code, pastes a wrong address, has a browser command that fails, or has a
//! client id or redirect URI that Login with Amazon refuses — word for word, with the exit
//! code, against the real emulator and a real agent on loopback (`--connect`, no mDNS).
//!
//! The paste and browser cases need a terminal (the CLI offers the paste only to a person):
//! the companion runs under util-linux `script`, which gives it a pseudo-terminal; the test
//! types into it and reads what it prints, waiting for each line with a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use companion_app::link::{LinkError, LinkTimeouts};
use lwa_emulator::fault::{Endpoint, Fault};
use lwa_emulator::registry::DEFAULT_DEVICE_CLIENT_ID;
use shared_protocol::setup_code::SetupCode;

/// A well-formed client id that the emulator's registry does not know.
const UNKNOWN_CLIENT_ID: &str = "amzn1.application-oa2-client.0123456789abcdef0123456789abcdef";

/// `pair` against the agent on loopback ([`pair_args_without_client`]), plain output, the
/// default client unless `extra` names one, `extra` flags after.
fn pair_args_with(setup: &Setup, code: &str, extra: &[&str]) -> Vec<String> {
    let mut args = pair_args_without_client(setup, "--plain", &loopback(setup), code);
    if !extra.contains(&"--client-id") {
        args.extend(["--client-id".into(), DEFAULT_DEVICE_CLIENT_ID.into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs the companion without a terminal (stdin is /dev/null).
fn run_companion(setup: &Setup, args: &[String]) -> Output {
    companion_cmd(setup)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run avs-companion")
}

/// Runs `pair` with [`WRONG_CODE`] (plain output): it must exit 3 (wrong setup code) with a
/// last line of stderr that `line_ok` accepts.
#[track_caller]
fn wrong_code_run(setup: &Setup, line_ok: impl Fn(&str) -> bool) {
    let out = run_companion(setup, &pair_args_with(setup, WRONG_CODE, &[]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(line_ok(&last_line(&out)), "{}", text(&out));
}

/// `pair` with the right code and `browser` as the browser command (`extra` flags after), run
/// without a terminal.
fn pair_with_browser(setup: &Setup, browser: &str, extra: &[&str]) -> Output {
    let mut flags = vec!["--browser", browser];
    flags.extend_from_slice(extra);
    run_companion(setup, &pair_args_with(setup, CODE, &flags))
}

/// Runs `pair` (the right code, `--login-timeout login_timeout_secs`, `extra` flags) with a
/// browser command that only records that it ran: Login with Amazon must refuse it at once
/// (within a quarter of the sign-in timeout), before any browser opens (exit 5, the browser
/// never ran). Returns the output, for the caller's check of the words.
#[track_caller]
fn refused_before_any_browser(setup: &Setup, login_timeout_secs: u64, extra: &[&str]) -> Output {
    let mark = setup.dir.path().join("browser-ran");
    let login_timeout = login_timeout_secs.to_string();
    let mut flags = vec!["--login-timeout", &login_timeout];
    flags.extend_from_slice(extra);
    let started = Instant::now();
    let out = pair_with_browser(setup, &marking_browser(&mark), &flags);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(!mark.exists(), "the browser command ran");
    assert!(
        started.elapsed() < Duration::from_secs(login_timeout_secs) / 4,
        "at once, not after the sign-in timeout: {:?}",
        started.elapsed()
    );
    out
}

fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .last()
        .unwrap_or("")
        .to_owned()
}

/// A browser command that only records that it ran (a file appears).
fn marking_browser(mark: &std::path::Path) -> String {
    format!(
        "sh -c {} browser",
        shell_words::quote(&format!(
            "touch {}",
            shell_words::quote(&mark.display().to_string())
        ))
    )
}

/// `pair` on a terminal (`args`, `BROWSER=browser_env`) whose browser command fails `why`: the
/// companion says so, offers the address to open by hand (never "the browser window that
/// opened") and waits for a paste. Returns the terminal and what it showed.
#[track_caller]
fn browser_failed_on_terminal(
    setup: &Setup,
    args: &[String],
    browser_env: Option<&str>,
    why: &str,
) -> (OnTerminal, String) {
    let mut term = OnTerminal::start(setup, args, browser_env);
    let shown = term.wait_for(
        "paste its address here and press Enter.",
        Duration::from_secs(30),
    );
    assert!(
        shown.contains(&format!("  could not open a browser ({why})\n  Open this address in a browser and sign in with Amazon:\n    http://127.0.0.1:")),
        "{shown}"
    );
    assert!(!shown.contains("window that opened"), "{shown}");
    (term, shown)
}

/// The companion on a pseudo-terminal (util-linux `script`): what it prints, and a way to type.
struct OnTerminal {
    child: Child,
    out: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl OnTerminal {
    fn start(setup: &Setup, args: &[String], browser: Option<&str>) -> Self {
        let mut line = vec![setup.bins.companion.display().to_string()];
        line.extend(args.iter().cloned());
        let mut cmd = Command::new("script");
        cmd.args(["--quiet", "--flush", "--return", "--command"])
            .arg(shell_words::join(&line))
            .arg("/dev/null")
            .env_remove("AVS_SETUP_CODE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        match browser {
            Some(b) => cmd.env("BROWSER", b),
            None => cmd.env_remove("BROWSER"),
        };
        let mut child = cmd.spawn().expect("util-linux script");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, out) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            out,
            seen: String::new(),
        }
    }

    /// Waits until the output contains `text` (terminal line ends normalised to `\n`).
    fn wait_for(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if self.seen.contains(text) {
                return self.seen.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(bytes) => self
                    .seen
                    .push_str(&String::from_utf8_lossy(&bytes).replace('\r', "")),
                Err(_) => panic!(
                    "{text:?} did not appear; the terminal showed:\n{}",
                    self.seen
                ),
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The exit code once the companion ends, and everything it printed.
    fn finish(mut self, within: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(bytes) = self.out.recv_timeout(Duration::from_millis(500)) {
                    self.seen
                        .push_str(&String::from_utf8_lossy(&bytes).replace('\r', ""));
                }
                return (status.code(), std::mem::take(&mut self.seen));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "did not end; it showed:\n{}", self.seen);
            // Output arrives until the end; each chunk (or a short quiet spell) re-checks.
            if let Ok(bytes) = self.out.recv_timeout(left.min(Duration::from_millis(200))) {
                self.seen
                    .push_str(&String::from_utf8_lossy(&bytes).replace('\r', ""));
            }
        }
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sign-in URL the companion printed (the line after `open:` / `sign in with Amazon:`).
fn printed_url(shown: &str) -> String {
    shown
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http://127.0.0.1:") && l.contains("/start/"))
        .unwrap_or_else(|| panic!("no sign-in URL in:\n{shown}"))
        .to_owned()
}

/// The scripted user signing in on `url` (as the person would in their browser).
fn sign_in_at(setup: &Setup, url: &str) {
    let argv = shell_words::split(&scripted_browser(&setup.bins, "")).unwrap();
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

// ----- 15.7: attempts left -----

/// A wrong code says how many tries remain before pairing locks, and for how long, as the
/// speaker counted them (also in `--json`'s last line); the try that locks pairing says so; the
/// next run is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_setup_code_says_how_many_tries_are_left() {
    // Wrong codes follow each other at once.
    let setup = setup_with(emulator().await, AgentOptions::unpaced);
    wrong_code_run(&setup, |l| {
        l == "error: wrong setup code: 19 tries left before pairing locks for 1 minute (check the label or the code shown at first boot)"
    });
    wrong_code_run(&setup, |l| {
        l.starts_with("error: wrong setup code: 18 tries left")
    });

    // Scripts get the same count in the final JSON line.
    let mut args = pair_args_with(&setup, WRONG_CODE, &["--json"]);
    args.retain(|a| a != "--plain");
    let json = run_companion(&setup, &args);
    assert_eq!(json.status.code(), Some(3), "{}", text(&json));
    let last: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&json.stdout)
            .lines()
            .last()
            .unwrap_or(""),
    )
    .unwrap_or_else(|e| panic!("{e}: {}", text(&json)));
    assert_eq!(
        last,
        serde_json::json!({
            "event": "error",
            "exit_code": 3,
            "kind": "WrongSetupCode",
            "message": "wrong setup code: 17 tries left before pairing locks for 1 minute (check the label or the code shown at first boot)",
        })
    );

    // 16 more through the library (fast), leaving the last try to the CLI.
    let wrong = SetupCode::parse(WRONG_CODE).unwrap();
    for n in (1..=16).rev() {
        let (client, _) =
            companion_app::link::open_tcp(&loopback_addr(&setup.agent), LinkTimeouts::default())
                .await
                .unwrap();
        match client.authenticate(&wrong).await {
            Err(LinkError::WrongSetupCode { tries: Some(t) }) => assert_eq!(t.left, n),
            other => panic!("expected a counted wrong code, got {:?}", other.err()),
        }
    }
    wrong_code_run(&setup, |l| {
        l == "error: wrong setup code: it does not match the speaker's, and that was the last try: pairing is locked for 1 minute (pressing the speaker's pairing button reopens it at once)"
    });
    // Locked now: even the right code is refused before any handshake (exit 7).
    let locked = run_companion(&setup, &pair_args_with(&setup, CODE, &[]));
    assert_eq!(locked.status.code(), Some(7), "{}", text(&locked));
}

// ----- 15.1: the pre-flight -----

/// An unknown client id is reported at once, naming the setting; no browser is started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_client_id_is_refused_before_any_browser_opens() {
    let setup = setup().await;
    let out = refused_before_any_browser(&setup, 120, &["--client-id", UNKNOWN_CLIENT_ID]);
    assert_eq!(
        last_line(&out),
        format!("error: Login with Amazon does not know the client id {UNKNOWN_CLIENT_ID}: check the client id setting (`avs-companion config --client-id ID`); copy it from your security profile in the Amazon developer console (its 'Other devices and platforms' or Android/iOS settings). LWA said: The client_id is not registered with Login with Amazon."),
        "{}",
        text(&out)
    );
    let preflights = setup
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Some(Endpoint::Authorize))
        .map(|r| r.header("user-agent").unwrap_or("").to_owned())
        .collect::<Vec<_>>();
    assert_eq!(preflights.len(), 1, "{preflights:?}");
    assert!(preflights[0].ends_with(" pre-flight"), "{preflights:?}");
}

/// A redirect URI that is not among the client's Allowed Return URLs: the same, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_uri_lwa_does_not_allow_is_refused_before_any_browser_opens() {
    let setup = setup().await;
    let out = refused_before_any_browser(
        &setup,
        120,
        &["--redirect-uri", "https://localhost/not-allowed"],
    );
    let line = last_line(&out);
    let prefix = "error: Login with Amazon does not accept the redirect URI https://localhost:";
    let suffix = "/not-allowed for this client id: add it to the security profile's Allowed Return URLs in the Amazon developer console, or set one listed there (`avs-companion config --redirect-uri URI`). LWA said: The redirect_uri is not one of the client's Allowed Return URLs.";
    assert!(
        line.starts_with(prefix) && line.ends_with(suffix),
        "{}",
        text(&out)
    );
    let port = &line[prefix.len()..line.len() - suffix.len()];
    assert!(port.parse::<u16>().is_ok(), "{line}");
}

/// Good settings: the pre-flight passes and the sign-in goes on (the emulator sees the
/// pre-flight, then the browser); a pre-flight that cannot reach LWA does not stop it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_settings_and_an_unreachable_preflight_both_sign_in() {
    let setup = setup().await;
    setup
        .emulator
        .inject_fault(Endpoint::Authorize, Fault::Drop, 1);
    let browser = scripted_browser(&setup.bins, "");
    let out = pair_with_browser(&setup, &browser, &["--login-timeout", "30"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Linked "),
        "{}",
        text(&out)
    );
    let authorize: Vec<(String, Option<u16>)> = setup
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Some(Endpoint::Authorize))
        .map(|r| (r.header("user-agent").unwrap_or("").to_owned(), r.status))
        .collect();
    assert_eq!(authorize.len(), 2, "{authorize:?}");
    assert!(authorize[0].0.ends_with(" pre-flight"), "{authorize:?}");
    assert_eq!(
        authorize[0].1, None,
        "the pre-flight's connection was dropped"
    );
    assert!(!authorize[1].0.ends_with(" pre-flight"), "{authorize:?}");
    assert_eq!(
        authorize[1].1,
        Some(200),
        "the browser got the sign-in page"
    );
}

/// Any other refusal LWA sends back to the redirect URI (here: a speaker whose product id is not
/// one of the security profile's) is reported at once too, as if the browser had brought it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_lwa_redirects_with_is_reported_before_any_browser_opens() {
    let setup = setup_with(emulator().await, |o| {
        o.product_id = "not_this_clients_product".into()
    });
    let out = refused_before_any_browser(&setup, 20, &[]);
    assert_eq!(
        last_line(&out),
        "error: Amazon returned `invalid_scope`: Amazon refused the alexa:all scope: the speaker's product id is not an AVS product of this security profile (check the product id configured on the speaker) (Amazon said: The productID is not registered with this client's security profile)",
        "{}",
        text(&out)
    );
}

// ----- 15.9: fragile input -----

/// One bad paste is not the end: the companion says what was wrong and waits for another, and
/// the sign-in can still finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_paste_asks_again_and_the_sign_in_still_finishes() {
    let setup = setup().await;
    let args = pair_args_with(&setup, CODE, &["--no-browser", "--login-timeout", "60"]);
    let mut term = OnTerminal::start(&setup, &args, None);
    let shown = term.wait_for(
        "paste its address here and press Enter.",
        Duration::from_secs(30),
    );
    let url = printed_url(&shown);
    term.type_line("not a url at all");
    term.wait_for(
        "  that is not the address the sign-in ended on (it has no `state` parameter); copy the whole address from the browser's address bar. Paste it again and press Enter (2 tries left).\n",
        Duration::from_secs(10),
    );
    term.type_line("http://127.0.0.1:1/authresponse?code=X&state=someone-elses");
    term.wait_for(
        "  that address belongs to another sign-in (its `state` is different); paste the address of the tab this run opened. Paste it again and press Enter (1 try left).\n",
        Duration::from_secs(10),
    );
    sign_in_at(&setup, &url);
    let (code, shown) = term.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("\nLinked "), "{shown}");
}

/// Three bad pastes end the run with what was wrong (exit 5); the deadline still applies
/// between pastes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pastes_are_bounded() {
    let setup = setup().await;
    let args = pair_args_with(&setup, CODE, &["--no-browser", "--login-timeout", "60"]);
    let mut term = OnTerminal::start(&setup, &args, None);
    term.wait_for(
        "paste its address here and press Enter.",
        Duration::from_secs(30),
    );
    for left in ["2 tries left", "1 try left"] {
        term.type_line("?code=X");
        term.wait_for(left, Duration::from_secs(10));
    }
    term.type_line("?code=X");
    let (code, shown) = term.finish(Duration::from_secs(10));
    assert_eq!(code, Some(5), "{shown}");
    assert!(
        shown.contains("error: that is not the address the sign-in ended on (it has no `state` parameter); copy the whole address from the browser's address bar; gave up after 3 pasted addresses: run pair again\n"),
        "{shown}"
    );

    // The deadline: one bad paste, then nothing.
    let args = pair_args_with(&setup, CODE, &["--no-browser", "--login-timeout", "4"]);
    let mut term = OnTerminal::start(&setup, &args, None);
    term.wait_for(
        "paste its address here and press Enter.",
        Duration::from_secs(30),
    );
    term.type_line("nonsense");
    term.wait_for("2 tries left", Duration::from_secs(10));
    let (code, shown) = term.finish(Duration::from_secs(20));
    assert_eq!(code, Some(4), "{shown}");
    assert!(
        shown.contains("error: no sign-in response within 4s"),
        "{shown}"
    );
}

/// A browser command that fails on a terminal (`BROWSER=false`, a command that does not exist)
/// is reported, and the URL is offered instead of "the browser window that opened".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_browser_is_reported_and_the_url_offered() {
    let setup = setup().await;
    // A command that does not exist (given with --browser): left unfinished.
    let args = pair_args_with(
        &setup,
        CODE,
        &["--login-timeout", "60", "--browser", "/nonexistent/browser"],
    );
    let (term, _) =
        browser_failed_on_terminal(&setup, &args, None, "/nonexistent/browser: not found");
    drop(term);

    // Scripts on a terminal get it as a JSON event, before the sign-in URL.
    let mut args = pair_args_with(
        &setup,
        CODE,
        &[
            "--json",
            "--login-timeout",
            "60",
            "--browser",
            "/nonexistent/browser",
        ],
    );
    args.retain(|a| a != "--plain");
    let mut term = OnTerminal::start(&setup, &args, None);
    let shown = term.wait_for("\"event\":\"login_url\"", Duration::from_secs(30));
    let failed = shown
        .lines()
        .find(|l| l.contains("\"event\":\"browser_failed\""))
        .unwrap_or_else(|| panic!("no browser_failed event in:\n{shown}"));
    let failed: serde_json::Value = serde_json::from_str(failed).unwrap();
    assert_eq!(
        failed["message"],
        "could not open a browser (/nonexistent/browser: not found)"
    );
    assert_eq!(failed["automatic"], true);
    assert!(
        failed["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:") && u.contains("/start/")),
        "{failed}"
    );
    drop(term);

    // BROWSER=false: it starts and exits 1; the person opens the URL and the pairing links.
    let args = pair_args_with(&setup, CODE, &["--login-timeout", "60"]);
    let (term, shown) = browser_failed_on_terminal(&setup, &args, Some("false"), "false: exit 1");
    sign_in_at(&setup, &printed_url(&shown));
    let (code, shown) = term.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("\nLinked "), "{shown}");
}
