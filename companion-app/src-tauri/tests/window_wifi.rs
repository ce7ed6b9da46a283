//! The real app window's Wi-Fi step, end to end: `avs-companion-app` under Xvfb (tauri-driver +
//! WebKitWebDriver, the harness in `common/window.rs`) pairs a real `avs-device-agent run` that
//! is **offline** until it joins the network the user picks, against the real `lwa-emulator`.
//!
//! The speaker's LWA base URL is a TCP gate in front of the emulator that drops every connection
//! until its `online` file exists; the agent's Wi-Fi backend is the hook (`network_backend =
//! "hook"`), whose `scan` lists Home-5G and whose `connect` creates `online` only for the right
//! passphrase (read from stdin; exit 10 = wrong password otherwise). So the agent's own
//! connectivity check decides that it is offline, as on a real speaker, and the window must:
//! show the Wi-Fi screen after the setup code (no sign-in while offline), take a wrong passphrase
//! and say so in words ("Wrong password for Home-5G", still on that screen, the speaker still
//! offline), take the right one, then sign in and end on "… is linked". The agent's own status
//! confirms the account, and neither passphrase is in any log or file the app and agent wrote.
//!
//! The same flow without a window: `tests/tests/wifi_gatt.rs` (GATT model) and `wifi_netns.rs`
//! (a real veth); the screen's details (bars, locks, "Other network…"): the UI tests with the IPC
//! mocked (`companion-app/ui/tests/ui/app.test.ts`).
//!
//! Ignored by default, like `window_e2e.rs`: `companion-app/scripts/test-app.sh e2e` runs both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/window.rs"]
mod window;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use avs_pair_tests::stack::write_home_wifi_hook;
use lwa_emulator::registry::ALICE_USER_ID;
use window::{Agent, Driver, Window};

const CODE: &str = "31415926";
const PASS: &str = "home sweet home 5G";
const WRONG_PASS: &str = "not the home password";

/// A TCP gate to `upstream` on a thread: closed (accepts and drops every connection) until
/// `online` exists, then a plain relay. Stops accepting when dropped.
struct Gate {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Gate {
    fn start(upstream: SocketAddr, online: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(inbound) = inbound else { continue };
                if online.exists() {
                    std::thread::spawn(move || relay(inbound, upstream));
                }
            }
        });
        Self { addr, stop }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies both ways until either side closes.
fn relay(inbound: TcpStream, upstream: SocketAddr) {
    let Ok(outbound) = TcpStream::connect(upstream) else {
        return;
    };
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    };
    let (i2, o2) = (inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
    let back = std::thread::spawn(move || pipe(o2, i2));
    pipe(inbound, outbound);
    let _ = back.join();
}

/// `path` if it is a file whose bytes contain `needle`, or such files under it if a directory.
fn files_containing(path: &Path, needle: &str) -> Vec<PathBuf> {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).unwrap().map_while(Result::ok);
        return entries
            .flat_map(|e| files_containing(&e.path(), needle))
            .collect();
    }
    match std::fs::read(path) {
        Ok(bytes) if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) => {
            vec![path.to_path_buf()]
        }
        _ => Vec::new(),
    }
}

#[test]
#[ignore = "needs Xvfb, tauri-driver and WebKitWebDriver: run companion-app/scripts/test-app.sh"]
fn the_window_puts_an_offline_speaker_on_wifi_then_pairs_it() {
    let mut w = Window::start();
    // The hook and the gate's flag live apart from what the app and agent write (the hook holds
    // the passphrase by construction; the scan below is of everything else).
    let net = w.dir().join("net");
    std::fs::create_dir_all(&net).unwrap();
    let online = net.join("online");
    let hook = net.join("wifi-hook");
    write_home_wifi_hook(
        &hook,
        PASS,
        &format!("  touch \"{}\"", online.display()),
        &format!("rm -f \"{}\"", online.display()),
    )
    .unwrap();
    let upstream: SocketAddr = w
        .lwa
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let gate = Gate::start(upstream, online.clone());
    let agent = w.start_agent(
        CODE,
        &gate.base_url(),
        &format!(
            "network_backend = \"hook\"\nwifi_hook = {:?}\n",
            hook.display().to_string()
        ),
    );

    w.drive("window Wi-Fi e2e", |d| drive(d, &w, &agent, &online));

    // The agent decided by its own check: offline at first, online after the join.
    let agent_log = w.log("avs-device-agent");
    assert!(
        agent_log.contains("connectivity check failed"),
        "{agent_log}"
    );
    assert!(agent_log.contains("Wi-Fi joined"), "{agent_log}");
    // Neither passphrase anywhere the app or the agent wrote: the logs, the speaker's state dir,
    // the app's config. (The app logs at debug; its log is not empty.)
    assert!(
        !w.log("avs-companion-app").is_empty(),
        "the app's log is not where the scan looks"
    );
    for secret in [PASS, WRONG_PASS] {
        let found: Vec<PathBuf> = ["logs", "speaker", "companion.toml"]
            .iter()
            .flat_map(|p| files_containing(&w.dir().join(p), secret))
            .collect();
        assert!(found.is_empty(), "{secret:?} written to {found:?}");
    }
    drop(gate);
}

fn drive(d: &Driver, w: &Window, agent: &Agent, online: &Path) {
    window::first_run_settings(d, &w.lwa);
    d.click("#back");
    d.screen("speakers");
    window::add_by_address(d, &agent.link);
    d.click("#continue");
    d.screen("setupCode");
    d.type_into("#setup-code", CODE);
    d.wait_for(
        "valid code",
        "!document.querySelector('#continue').disabled",
    );
    d.click("#continue");

    // Offline: the Wi-Fi screen, not the sign-in, with the speaker's scan; the steps bar has
    // gained a "Wi-Fi" step, the current one.
    d.screen("wifi");
    assert_eq!(d.text("h1"), "Choose a Wi-Fi network");
    assert_eq!(d.text(".steps [aria-current=step] .step-label"), "Wi-Fi");
    assert!(
        d.text("#screen")
            .contains("Living room speaker isn't online yet"),
        "{}",
        d.text("#screen")
    );
    let home = ".wifi-row[data-ssid='Home-5G']";
    d.click(home);
    d.wait_for(
        "Home-5G chosen",
        &format!("document.querySelector(\"{home}\").classList.contains('selected')"),
    );
    assert_eq!(d.text("label[for=wifi-password]"), "Password for Home-5G");

    // A wrong passphrase: the reason in words, still here, the speaker still offline.
    d.type_into("#wifi-password", WRONG_PASS);
    d.click("#wifi-connect");
    d.wait_for(
        "the failure",
        "!document.querySelector('#wifi-error').hidden",
    );
    assert_eq!(d.text("#wifi-error"), "Wrong password for Home-5G");
    assert_eq!(
        d.js(
            "return document.querySelector('#screen').dataset.screen;",
            serde_json::json!([])
        ),
        "wifi"
    );
    assert!(!online.exists(), "the wrong passphrase joined");
    // Nothing has reached Login with Amazon yet: no sign-in pre-flight, no browser, no check or
    // exchange from the speaker (its requests go through the closed gate).
    let seen = window::emulator_requests(&w.lwa);
    assert!(seen.is_empty(), "LWA contacted while offline: {seen:#?}");
    d.wait_for(
        "the password field again",
        "document.activeElement?.id === 'wifi-password'",
    );
    d.shot("window-wifi-wrong-password");

    // The right one: the speaker joins, its check passes, the sign-in follows.
    d.type_into("#wifi-password", PASS);
    d.click("#wifi-connect");
    d.screen("signIn");
    assert!(online.exists());
    assert_eq!(d.text(".steps li.done:nth-child(3) .step-label"), "Wi-Fi");
    d.click("#open-sign-in");
    d.screen("result");
    assert_eq!(d.text("h1"), "Living room speaker is linked");

    // The code was exchanged by the speaker, through the now open gate.
    let seen = window::emulator_requests(&w.lwa);
    assert!(
        seen.iter().any(|r| r["endpoint"] == "token"),
        "no token request: {seen:#?}"
    );

    let status = w.agent_status(agent);
    assert_eq!(status["paired"], true, "{status}");
    assert_eq!(status["user_id"], ALICE_USER_ID, "{status}");
}
