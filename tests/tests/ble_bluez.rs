//! Bluetooth LE through BlueZ's own D-Bus API: the real `avs-device-agent` (bluer peripheral)
//! and the real `avs-companion` (btleplug central), unmodified, each in its own process, talk to
//! the BlueZ stand-in (`tests/bluez/standin.py`), which plays the speaker's and the laptop's
//! bluetoothd on two private `dbus-daemon`s started here (never the host's buses) and joins them
//! with a simulated LE link: advertising, discovery, connection, GATT mirrors, Write Requests,
//! indications and their confirmations, a fixed negotiated MTU, disconnects both ways.
//!
//! - a full pairing at MTU 23 and 517 (times printed: `--nocapture`);
//! - no adapter, and an rfkill-blocked adapter: one clear line on each side, no hang;
//! - the central disconnects in the middle of a frame; an indication is never confirmed: both
//!   end in a clear error within the deadline and the next attempt pairs;
//! - a companion stopped (SIGSTOP: the link and its subscription outlive it) or killed -9 (BlueZ
//!   drops its subscription, the link stays) in a sealed session: the next `avs-companion pair`
//!   links on its first try;
//! - the advertisement exists only while the pairing window is open;
//! - Wi-Fi provisioning (`avs-companion wifi`) with the agent's hook backend: a wrong
//!   passphrase, then the right one;
//! - the systemd unit passes `systemd-analyze verify`.
//!
//! The stand-in must start: if it (or a bus) fails, the test fails; nothing is skipped except,
//! as everywhere, without root for network namespaces (the companion's mDNS must not run in the
//! root namespace, so it runs in the harness's `laptop` namespace, with the emulator and agent).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use avs_pair_tests::netns::{TestNet, LINK_NAME};
use avs_pair_tests::process::{ManagedProcess, Stream};
use avs_pair_tests::require_netns;
use avs_pair_tests::stack::{
    self, field, provision_setup_code, AgentOptions, EmulatorOptions, Place,
};
use lwa_emulator::registry::DEFAULT_DEVICE_CLIENT_ID;
use nix::sys::signal::Signal;
use shared_protocol::setup_code::SetupCode;

use common::{bins, scripted_browser, CODE, WRONG_CODE};

/// Debian's interpreter (python3-dbus and python3-gi are Debian packages, not pip ones).
const PYTHON: &str = "/usr/bin/python3";
const START: Duration = Duration::from_secs(20);
/// No pairing attempt may take longer than this, whatever fails.
const NO_HANG: Duration = Duration::from_secs(90);

fn bluez_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bluez")
}

/// Two private buses and the stand-in that owns `org.bluez` on both.
struct Bluez {
    standin: ManagedProcess,
    speaker_bus: String,
    laptop_bus: String,
    _buses: Vec<ManagedProcess>,
    _dir: tempfile::TempDir,
}

impl Bluez {
    fn start(args: &[&str]) -> Bluez {
        let dir = tempfile::tempdir().unwrap();
        let template = std::fs::read_to_string(bluez_dir().join("bus.conf.in")).unwrap();
        let mut buses = Vec::new();
        let mut addrs = Vec::new();
        for side in ["speaker", "laptop"] {
            let socket = dir.path().join(format!("{side}.sock"));
            let conf = dir.path().join(format!("{side}.conf"));
            std::fs::write(
                &conf,
                template.replace("@SOCKET@", &socket.display().to_string()),
            )
            .unwrap();
            let mut cmd = Command::new("dbus-daemon");
            cmd.arg(format!("--config-file={}", conf.display()))
                .args(["--nofork", "--print-address"]);
            let p = ManagedProcess::spawn(cmd, &format!("dbus-{side}"), dir.path())
                .unwrap_or_else(|e| panic!("the private {side} bus must start: {e}"));
            let addr = p
                .wait_for_line(Stream::Stdout, START, |l| l.starts_with("unix:"))
                .unwrap_or_else(|e| panic!("the private {side} bus must start: {e}"));
            addrs.push(addr.trim().to_owned());
            buses.push(p);
        }
        let mut cmd = Command::new(PYTHON);
        cmd.arg(bluez_dir().join("standin.py"))
            .arg("--speaker-bus")
            .arg(&addrs[0])
            .arg("--laptop-bus")
            .arg(&addrs[1])
            .args(args)
            .env("PYTHONUNBUFFERED", "1");
        let standin = ManagedProcess::spawn(cmd, "bluez-standin", dir.path())
            .unwrap_or_else(|e| panic!("the BlueZ stand-in must start: {e}"));
        standin
            .wait_for_line(Stream::Stdout, START, |l| l.starts_with("STANDIN_READY"))
            .unwrap_or_else(|e| panic!("the BlueZ stand-in must start: {e}"));
        Bluez {
            standin,
            laptop_bus: addrs.pop().unwrap(),
            speaker_bus: addrs.pop().unwrap(),
            _buses: buses,
            _dir: dir,
        }
    }

    fn wait(&self, what: &str, timeout: Duration) -> String {
        self.standin
            .wait_for_line(Stream::Stdout, timeout, |l| l.starts_with(what))
            .unwrap_or_else(|e| panic!("the stand-in never said {what}: {e}"))
    }

    fn lines(&self, prefix: &str) -> Vec<String> {
        self.standin
            .stdout_lines()
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    /// No ATT or BlueZ rule was broken, and the stand-in itself did not crash.
    fn assert_clean(&self) {
        let v = self.lines("VIOLATION");
        assert!(v.is_empty(), "ATT/BlueZ rules broken: {v:?}");
        assert!(
            !self.standin.stderr_has("Traceback"),
            "the stand-in raised:\n{}",
            self.standin.tail(40)
        );
    }
}

/// The network namespace (for the companion's mDNS), the emulator, the agent with BLE on.
struct Scene {
    net: TestNet,
    bins: avs_pair_tests::bins::Bins,
    emulator: stack::EmulatorProcess,
    agent: Option<ManagedProcess>,
    device_id: String,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Scene {
    fn start(bluez: &Bluez, window_secs: Option<u64>) -> Scene {
        Self::start_with(bluez, window_secs, &[])
    }

    /// [`Scene::start`] with more lines for the agent's config file.
    fn start_with(bluez: &Bluez, window_secs: Option<u64>, extra_toml: &[String]) -> Scene {
        let bins = bins();
        let net = TestNet::speaker_and_laptop().unwrap();
        let laptop = Place::Host {
            net: &net,
            host: "laptop",
        };
        let emulator = stack::start_emulator(laptop, &bins.emulator, &EmulatorOptions::default())
            .unwrap_or_else(|e| panic!("emulator: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let mut scene = Scene {
            net,
            bins,
            emulator,
            agent: None,
            device_id: String::new(),
            socket: PathBuf::new(),
            dir,
        };
        scene.start_agent(bluez, window_secs, extra_toml);
        scene
    }

    /// `avs-device-agent run` on the speaker's bus (no mDNS, TCP on loopback only: the companion
    /// can reach it over BLE alone).
    fn start_agent(&mut self, bluez: &Bluez, window_secs: Option<u64>, extra_toml: &[String]) {
        let state = self.dir.path().join("state");
        let mut o = AgentOptions::new(state.clone(), &self.emulator.base_url);
        o.link_bind = Some("127.0.0.1:0".into());
        o.mdns = false;
        o.pairing_window_secs = window_secs;
        o.extra_toml.push("ble = true".into());
        o.extra_toml.extend(extra_toml.iter().cloned());
        provision_setup_code(&state, &SetupCode::parse(CODE).unwrap()).unwrap();
        let config = state.join("agent.toml");
        std::fs::write(&config, o.to_toml()).unwrap();
        let mut cmd = self.net.command("laptop", &self.bins.agent).unwrap();
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bluez.speaker_bus)
            .env("RUST_LOG", "info");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AVS_AGENT_") {
                cmd.env_remove(k);
            }
        }
        let p = self.net.spawn(cmd, "avs-device-agent").unwrap();
        let ready = p
            .wait_for_line(Stream::Stdout, START, |l| l.starts_with("AVS_AGENT_READY"))
            .unwrap_or_else(|e| panic!("agent: {e}"));
        self.device_id = field(&ready, "device_id").unwrap().to_owned();
        self.socket = PathBuf::from(field(&ready, "socket").unwrap());
        self.agent = Some(p);
    }

    fn agent(&self) -> &ManagedProcess {
        self.agent.as_ref().unwrap()
    }

    /// The stand-in's line starting with `what`; on a miss, the panic shows the agent's log too,
    /// since a line the stand-in never printed is usually a call the agent never made.
    fn standin_said(&self, bluez: &Bluez, what: &str, timeout: Duration) -> String {
        bluez
            .standin
            .wait_for_line(Stream::Stdout, timeout, |l| l.starts_with(what))
            .unwrap_or_else(|e| {
                panic!(
                    "the stand-in never said {what}: {e}\n--- the agent ---\n{}",
                    self.agent().tail(60)
                )
            })
    }

    /// `run` ended well (`what`), or the panic shows its output, the agent's and the stand-in's.
    fn assert_ok(&self, bluez: &Bluez, run: &Run, what: &str) {
        assert_eq!(
            run.code,
            Some(0),
            "{what}\n{}\nagent:\n{}\nstand-in:\n{}",
            run.tail,
            self.agent().tail(30),
            bluez.standin.tail(30)
        );
    }

    /// A line of the agent's log (either stream) containing `what`.
    fn agent_said(&self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let a = self.agent();
            let hit = a
                .stderr_lines()
                .into_iter()
                .chain(a.stdout_lines())
                .find(|l| l.contains(what));
            if let Some(l) = hit {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "the agent never said {what:?}\n{}",
                a.tail(40)
            );
            // Either stream: wait for the next stderr line (or the deadline), then look again.
            let _ = a.wait_for_line(Stream::Stderr, Duration::from_millis(500), |l| {
                l.contains(what)
            });
        }
    }

    /// `avs-companion <args>` on the laptop's bus, started.
    fn spawn_companion(&self, bluez: &Bluez, label: &str, args: &[&str]) -> ManagedProcess {
        let mut cmd = self.net.command("laptop", &self.bins.companion).unwrap();
        cmd.arg("--config")
            .arg(self.dir.path().join("companion.toml"))
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bluez.laptop_bus)
            .env_remove("BROWSER")
            .env_remove("AVS_SETUP_CODE");
        self.net.spawn(cmd, label).unwrap()
    }

    /// `avs-companion <args>` on the laptop's bus, to completion (bounded by [`NO_HANG`]).
    fn companion(&self, bluez: &Bluez, label: &str, args: &[&str]) -> Run {
        let t0 = Instant::now();
        let mut p = self.spawn_companion(bluez, label, args);
        let status = p
            .wait_timeout(NO_HANG)
            .unwrap()
            .unwrap_or_else(|| panic!("{label} hung for {NO_HANG:?}\n{}", p.tail(40)));
        Run {
            code: status.code(),
            stdout: p.stdout_lines(),
            stderr: p.stderr_lines(),
            secs: t0.elapsed().as_secs_f64(),
            tail: p.tail(40),
        }
    }

    /// `avs-companion discover --json` on the laptop's link for `secs` seconds.
    fn discover(&self, bluez: &Bluez, label: &str, secs: &str) -> Run {
        let args = [
            "discover",
            "--json",
            "--timeout",
            secs,
            "--interface",
            LINK_NAME,
        ];
        self.companion(bluez, label, &args)
    }

    fn pair(&self, bluez: &Bluez, label: &str) -> Run {
        self.pair_with(bluez, label, CODE)
    }

    fn pair_with(&self, bluez: &Bluez, label: &str, code: &str) -> Run {
        let browser = scripted_browser(&self.bins, "");
        self.companion(bluez, label, &self.pair_args(code, &browser))
    }

    /// `avs-companion pair` for this speaker with `code`, signing in with `browser`.
    fn pair_args<'a>(&'a self, code: &'a str, browser: &'a str) -> Vec<&'a str> {
        vec![
            "pair",
            &self.device_id,
            "--json",
            "--setup-code",
            code,
            "--client-id",
            DEFAULT_DEVICE_CLIENT_ID,
            "--lwa-base-url",
            &self.emulator.base_url,
            "--browser",
            browser,
            "--login-timeout",
            "30",
            "--discover-timeout",
            "20",
            "--interface",
            LINK_NAME,
        ]
    }

    fn agent_cli(&self, verb: &str) -> String {
        let out = Command::new(&self.bins.agent)
            .arg(verb)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .output()
            .unwrap();
        assert!(out.status.success(), "avs-device-agent {verb}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

struct Run {
    code: Option<i32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    secs: f64,
    tail: String,
}

impl Run {
    fn result(&self) -> serde_json::Value {
        self.stdout
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == "result")
            .unwrap_or_else(|| panic!("no result line\n{}", self.tail))
    }

    fn stderr_with(&self, what: &str) -> Vec<&String> {
        self.stderr.iter().filter(|l| l.contains(what)).collect()
    }

    /// The `error:` lines on stderr.
    fn error_lines(&self) -> Vec<&String> {
        self.stderr
            .iter()
            .filter(|l| l.starts_with("error:"))
            .collect()
    }

    /// A run whose only `error:` line says the link was lost during the hello: that line.
    #[track_caller]
    fn lost_during_the_hello(&self) -> &String {
        let errors = self.error_lines();
        assert_eq!(
            errors,
            ["error: the speaker closed the connection during the hello"],
            "the companion says the link was lost, in one line\n{}",
            self.tail
        );
        errors[0]
    }

    /// A run that ended well and said "no Bluetooth adapter found" exactly once: that line.
    fn no_adapter_line(&self) -> String {
        assert_eq!(self.code, Some(0), "{}", self.tail);
        let lines = self.stderr_with("no Bluetooth adapter found");
        assert_eq!(lines.len(), 1, "{}", self.tail);
        lines[0].clone()
    }
}

#[test]
fn full_pairing_through_bluez_at_mtu_23_and_517() {
    require_netns!();
    let mut rows = Vec::new();
    for mtu in [23u16, 517] {
        let bluez = Bluez::start(&["--mtu", &mtu.to_string()]);
        let scene = Scene::start(&bluez, None);
        scene.agent_said("BLE pairing ready (GATT service registered)", START);
        // The GATT application as BlueZ read it from bluer's ObjectManager: info read, rx
        // write (Write Request only), tx indicate (no notify).
        let app = bluez.wait("APP_REGISTERED", START);
        assert!(app.contains("services=1 characteristics=3"), "{app}");
        assert!(app.contains("339c0002:read"), "{app}");
        assert!(app.contains("339c0003:write"), "{app}");
        assert!(!app.contains("write-without-response"), "{app}");
        assert!(app.contains("339c0004:indicate"), "{app}");
        let adv = bluez.wait("ADV_REGISTERED", START);
        assert!(
            adv.contains(&format!("name=avs-{}", scene.device_id)),
            "{adv}"
        );
        assert!(
            adv.contains("uuids=339c0001-4fb6-4cc3-a83f-363019dd0cb0"),
            "{adv}"
        );

        let run = scene.pair(&bluez, &format!("avs-companion-pair-{mtu}"));
        assert_eq!(run.code, Some(0), "pairing at MTU {mtu}\n{}", run.tail);
        let result = run.result();
        assert_eq!(result["device_id"], scene.device_id.as_str(), "{result}");
        let connect = run
            .stdout
            .iter()
            .find(|l| l.contains("\"connect\"") && l.contains("ble"));
        assert!(connect.is_some(), "connected over BLE\n{}", run.tail);

        // Through BlueZ: the scan filter on the service, a connection at this MTU, chunks of
        // at most MTU - 3 both ways, each indication confirmed, then the agent ends the link.
        let filter = bluez.wait("DISCOVERY_FILTER", START);
        assert!(
            filter.contains("uuids=339c0001-4fb6-4cc3-a83f-363019dd0cb0"),
            "{filter}"
        );
        assert!(bluez.lines(&format!("CONNECTED mtu={mtu}")).len() >= 2);
        // The ATT payload: MTU - 3, and never more than the 512 bytes of an attribute.
        let max = (usize::from(mtu) - 3).min(512);
        let sizes = |prefix: &str| -> Vec<usize> {
            bluez
                .lines(prefix)
                .iter()
                .filter_map(|l| field(l, "len").and_then(|v| v.parse().ok()))
                .collect()
        };
        let (writes, indications) = (sizes("WRITE "), sizes("INDICATION "));
        assert!(!writes.is_empty() && !indications.is_empty());
        assert!(writes.iter().chain(&indications).all(|&n| n <= max));
        if mtu == 23 {
            // Frames are longer than 20 bytes: full chunks fill the whole ATT payload.
            assert!(
                writes.iter().chain(&indications).any(|&n| n == max),
                "full chunks use the whole ATT payload ({max}): {writes:?} {indications:?}"
            );
        }
        assert!(bluez.lines("LONG_WRITE").is_empty(), "no long writes");
        // Paired: the window closed, so did the advertisement.
        scene.standin_said(&bluez, "ADV_UNREGISTERED", START);
        bluez.assert_clean();
        let status: serde_json::Value =
            serde_json::from_str(scene.agent_cli("status").trim()).unwrap();
        assert_eq!(status["paired"], true, "{status}");
        if mtu == 517 {
            // The negotiated MTU is used by both ends: a pairing's frames fit 5 writes and
            // 8 indications (20-byte chunks would take 39 and 76).
            assert!(
                writes.len() <= 7 && indications.len() <= 10,
                "{} writes, {} indications",
                writes.len(),
                indications.len()
            );
        }
        eprintln!(
            "stand-in at MTU {mtu} (WRITE/INDICATION lines left out):\n  {}",
            bluez
                .lines("")
                .iter()
                .filter(|l| !l.starts_with("WRITE ") && !l.starts_with("INDICATION "))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        );
        rows.push((mtu, writes.len(), indications.len(), run.secs, result));
    }
    eprintln!("\npairing through the BlueZ stand-in (two processes, debug build):");
    eprintln!("| MTU | rx writes | tx indications | whole `avs-companion pair` | connect | handshake | device_info | exchange |");
    for (mtu, w, i, secs, r) in rows {
        let t = |k: &str| r["timings"][k].as_f64().unwrap_or(f64::NAN);
        eprintln!(
            "| {mtu} | {w} | {i} | {secs:.2} s | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            t("connect"),
            t("handshake"),
            t("device_info"),
            t("exchange")
        );
    }
}

#[test]
fn adapter_missing_gives_one_line_on_each_side() {
    require_netns!();
    let bluez = Bluez::start(&[
        "--speaker-adapter",
        "missing",
        "--laptop-adapter",
        "missing",
    ]);
    let scene = Scene::start(&bluez, None);
    let line = scene.agent_said("no Bluetooth adapter found", START);
    assert!(
        line.contains(
            "no Bluetooth adapter found; BLE pairing disabled (BlueZ reports no adapter)"
        ),
        "{line}"
    );
    let run = scene.discover(&bluez, "avs-companion-discover", "2");
    let line = run.no_adapter_line();
    assert!(
        line.contains(
            "no Bluetooth adapter found; BLE pairing disabled (the system reports no adapter)"
        ),
        "{line}"
    );
    bluez.assert_clean();
}

#[test]
fn adapter_switched_off_gives_one_clear_line_on_each_side() {
    require_netns!();
    let bluez = Bluez::start(&["--speaker-adapter", "blocked", "--laptop-adapter", "off"]);
    let scene = Scene::start(&bluez, None);
    // The agent tries to switch it on; rfkill says no.
    let line = scene.agent_said("no Bluetooth adapter found", START);
    assert!(
        line.contains("adapter hci0 is off and could not be switched on")
            && line.contains("Blocked through rfkill"),
        "{line}"
    );
    assert!(bluez.lines("APP_REGISTERED").is_empty());
    let run = scene.discover(&bluez, "avs-companion-discover", "2");
    let line = run.no_adapter_line();
    assert!(line.contains("Bluetooth is switched off (hci0"), "{line}");
    assert!(bluez.lines("DISCOVERY_STARTED").is_empty());
    bluez.assert_clean();
}

/// A pairing the stand-in broke, as [`broken_then_paired`] saw it.
struct Broken {
    /// The broken attempt.
    run: Run,
    /// The agent's line about it.
    said: String,
    /// Everything the stand-in reported.
    air: Vec<String>,
    /// The first `DISCONNECTED` on the air after the cut.
    gone: String,
}

/// Runs a pairing that the stand-in breaks with `fault`, which must fail within `secs` with the
/// link going down after the air line starting with `cut`; then one that must succeed.
fn broken_then_paired(fault: &[&str], agent_line: &str, secs: f64, cut: &str) -> Broken {
    let mut args = vec!["--mtu", "23"];
    args.extend_from_slice(fault);
    let bluez = Bluez::start(&args);
    let scene = Scene::start(&bluez, None);
    bluez.wait("ADV_REGISTERED", START);
    let broken = scene.pair(&bluez, "avs-companion-broken");
    assert_ne!(
        broken.code,
        Some(0),
        "the broken attempt fails\n{}",
        broken.tail
    );
    assert!(broken.secs < secs, "{}", broken.secs);
    let said = scene.agent_said(agent_line, START);
    let air = bluez.lines("");
    // Nothing half-done is left: the speaker is not paired and pairs on the next attempt.
    let status: serde_json::Value = serde_json::from_str(scene.agent_cli("status").trim()).unwrap();
    assert_eq!(status["paired"], false, "{status}");
    let ok = scene.pair(&bluez, "avs-companion-again");
    scene.assert_ok(&bluez, &ok, "the next attempt pairs");
    bluez.assert_clean();
    let gone = disconnect_after(&air, cut);
    Broken {
        run: broken,
        said,
        air,
        gone,
    }
}

/// The first `DISCONNECTED` after the line starting with `after`.
fn disconnect_after(air: &[String], after: &str) -> String {
    air.iter()
        .skip_while(|l| !l.starts_with(after))
        .find(|l| l.starts_with("DISCONNECTED"))
        .cloned()
        .unwrap_or_else(|| panic!("no disconnect after {after}: {air:?}"))
}

#[test]
fn central_disconnecting_mid_frame_ends_both_sides_cleanly() {
    require_netns!();
    // The laptop's link drops after the third tx chunk: the agent's Hello (several chunks at
    // MTU 23) is cut in the middle, and the companion says so in one clear line.
    let broken = broken_then_paired(
        &["--disconnect-after-indications", "3"],
        "the Bluetooth LE connection was lost while sending chunk",
        60.0,
        "INDICATION n=3 ",
    );
    let error = broken.run.lost_during_the_hello();
    assert_eq!(broken.gone, "DISCONNECTED by=central", "{:?}", broken.air);
    eprintln!("companion: {error}\nagent: {}", broken.said);
}

#[test]
fn central_disconnecting_mid_write_ends_both_sides_cleanly() {
    require_netns!();
    // The link drops right after the companion's second rx chunk: its Hello (several chunks at
    // MTU 23) reaches the agent cut in the middle. As in BlueZ, the laptop's GATT objects go at
    // once and Device1.Connected turns false a little later (--connected-lag-ms): the next
    // write fails with D-Bus's `Method "WriteValue" … doesn't exist` while BlueZ still says
    // "connected", and the companion must still report a lost connection, not that error.
    let Broken {
        run: broken,
        said,
        air,
        gone,
    } = broken_then_paired(
        &[
            "--disconnect-after-writes",
            "2",
            "--connected-lag-ms",
            "300",
        ],
        "in the middle of a frame",
        60.0,
        "WRITE n=2 ",
    );
    assert_eq!(gone, "DISCONNECTED by=fault", "{air:?}");
    assert!(
        air.iter().any(|l| l == "CONNECTED_FALSE"),
        "the stand-in reported Connected=false late: {air:?}"
    );
    let error = broken.lost_during_the_hello();
    assert!(
        !broken.stderr.iter().any(|l| l.contains("doesn't exist")),
        "no raw D-Bus error\n{}",
        broken.tail
    );
    eprintln!("companion: {error}\nagent: {said}");
}

/// A companion seals a BLE session, gets the device info and opens the sign-in (a "browser"
/// that opens nothing), then gets `signal` while it waits for the sign-in; it disconnects
/// nothing. Then the next `avs-companion pair` must link on its first try. The first companion
/// (stopped or dead) is returned so the caller can look at it and end it.
fn next_companion_after(signal: Signal) -> (Bluez, Scene, Run, ManagedProcess) {
    let bluez = Bluez::start(&["--mtu", "23"]);
    let scene = Scene::start(&bluez, None);
    bluez.wait("ADV_REGISTERED", START);
    let args = scene.pair_args(CODE, "true");
    let first = scene.spawn_companion(&bluez, "avs-companion-first", &args);
    first
        .wait_for_line(Stream::Stdout, NO_HANG, |l| {
            l.contains(r#""event":"login_url""#)
        })
        .unwrap_or_else(|e| {
            panic!(
                "the first companion reached the sign-in: {e}\n{}",
                first.tail(30)
            )
        });
    first.signal(signal).unwrap();
    let next = scene.pair(&bluez, "avs-companion-next");
    scene.assert_ok(&bluez, &next, "the next companion pairs on its first try");
    assert_eq!(
        next.result()["device_id"],
        scene.device_id.as_str(),
        "{}",
        next.tail
    );
    let status: serde_json::Value = serde_json::from_str(scene.agent_cli("status").trim()).unwrap();
    assert_eq!(status["paired"], true, "{status}");
    bluez.assert_clean();
    eprintln!("the next pairing took {:.1} s", next.secs);
    (bluez, scene, next, first)
}

/// The stand-in's lines from the last connection on (discovery connects once before, to read
/// the information characteristic, and disconnects).
fn since_last_connection(air: &[String], before: usize) -> &[String] {
    let from = air[..before]
        .iter()
        .rposition(|l| l.starts_with("CONNECTED "))
        .expect("a connection");
    &air[from..before]
}

#[test]
fn a_companion_frozen_in_a_sealed_session_does_not_cost_the_next_its_first_try() {
    require_netns!();
    // Stopped (a hung app, a debugger, SIGSTOP), the first companion keeps its D-Bus connection,
    // so the laptop's BlueZ keeps its subscription to tx and the link: the agent's session stays
    // sealed, and the next companion's Hello is written into it. The agent hands the link over.
    let (bluez, scene, _next, mut first) = next_companion_after(Signal::SIGSTOP);
    let said = scene.agent_said(
        "a new companion's hello arrived in the sealed BLE session",
        START,
    );
    let air = bluez.lines("");
    let next_started = air
        .iter()
        .position(|l| l.starts_with("DISCOVERY_STARTED"))
        .and_then(|first_scan| {
            air.iter()
                .skip(first_scan + 1)
                .position(|l| l.starts_with("DISCOVERY_STARTED"))
                .map(|n| n + first_scan + 1)
        })
        .expect("the next companion scanned");
    let before_next = since_last_connection(&air, next_started);
    assert!(
        !before_next
            .iter()
            .any(|l| l.starts_with("DISCONNECT") || l.starts_with("NOTIFY_CLIENT_GONE")),
        "the link and the subscription outlived the stopped companion: {air:?}"
    );
    first.signal(Signal::SIGKILL).unwrap();
    first.wait_timeout(START).unwrap().expect("killed");
    eprintln!("agent: {said}");
}

#[test]
fn a_companion_killed_in_a_sealed_session_does_not_cost_the_next_its_first_try() {
    require_netns!();
    // Killed -9, the first companion leaves the laptop's bus: BlueZ drops its subscription
    // (the last one, so the speaker's BlueZ calls StopNotify) but keeps the connection. The
    // agent's session ends with the subscription; the next companion subscribes again.
    let (bluez, _scene, _next, mut first) = next_companion_after(Signal::SIGKILL);
    first.wait_timeout(START).unwrap().expect("killed");
    let air = bluez.lines("");
    let gone = air
        .iter()
        .position(|l| l == "NOTIFY_CLIENT_GONE why=left-bus")
        .unwrap_or_else(|| panic!("BlueZ dropped the killed client's subscription: {air:?}"));
    assert!(
        !since_last_connection(&air, gone)
            .iter()
            .any(|l| l.starts_with("DISCONNECT")),
        "the connection outlived the killed companion: {air:?}"
    );
    // The agent's session ends with the subscription but leaves the connection up (the
    // central's BlueZ still holds it): the next companion subscribes on that same connection.
    let resubscribed = air[gone..]
        .iter()
        .position(|l| l.starts_with("SUBSCRIBED"))
        .map(|n| gone + n)
        .unwrap_or_else(|| panic!("the next companion subscribed: {air:?}"));
    assert!(
        !air[gone..resubscribed]
            .iter()
            .any(|l| l.starts_with("DISCONNECTED") || l.starts_with("CONNECTED ")),
        "the agent kept the connection after the subscription went: {air:?}"
    );
}

#[test]
fn wrong_setup_code_over_bluez_is_refused_and_counted() {
    require_netns!();
    let bluez = Bluez::start(&["--mtu", "23"]);
    // The right code follows the wrong one without waiting out the agent's 1 s pacing (tested
    // in device-agent/tests/link.rs): the test must not depend on how long BLE discovery takes.
    let scene = Scene::start_with(&bluez, None, &["attempt_interval_secs = 0".into()]);
    bluez.wait("ADV_REGISTERED", START);
    let wrong = scene.pair_with(&bluez, "avs-companion-wrong", WRONG_CODE);
    assert_eq!(
        wrong.code,
        Some(3),
        "exit code 3: wrong setup code\n{}",
        wrong.tail
    );
    assert!(
        !wrong.stderr_with("wrong setup code").is_empty(),
        "{}",
        wrong.tail
    );
    let said = scene.agent_said("wrong setup code", START);
    // The link is taken down (by whichever side is first), and the right code still pairs.
    let deadline = Instant::now() + START;
    while bluez.lines("DISCONNECTED").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the BLE link of the refused attempt ends: {:?}",
            bluez.lines("")
        );
        let _ = bluez
            .standin
            .wait_for_line(Stream::Stdout, Duration::from_millis(500), |l| {
                l.starts_with("DISCONNECTED")
            });
    }
    let ok = scene.pair(&bluez, "avs-companion-right");
    assert_eq!(ok.code, Some(0), "{}", ok.tail);
    bluez.assert_clean();
    eprintln!("agent: {said}\nstand-in: {:?}", bluez.lines("DISCONNECT"));
}

#[test]
fn an_indication_never_confirmed_ends_the_session_in_time() {
    require_netns!();
    // bluer waits for Confirm() without a deadline; the agent's GATT transport (10 s), its
    // hello deadline or the companion's, whichever fires first, ends it well before the ATT
    // timeout (30 s) would drop the bearer: "link hello failed … while sending chunk 2 of n"
    // or "link hello timed out".
    let broken = broken_then_paired(
        &["--no-confirm-after", "2"],
        "link hello",
        30.0,
        "CONFIRM_WITHHELD",
    );
    assert_ne!(broken.gone, "DISCONNECTED by=timeout", "{:?}", broken.air);
    eprintln!("agent: {}\nstand-in: {}", broken.said, broken.gone);
}

#[test]
fn advertisement_exists_only_while_the_pairing_window_is_open() {
    require_netns!();
    let bluez = Bluez::start(&["--temporary-timeout", "3"]);
    let scene = Scene::start(&bluez, Some(10));
    // Unpaired at start: the window is open, the speaker advertises and a laptop finds it.
    bluez.wait("ADV_REGISTERED", START);
    let run = scene.discover(&bluez, "avs-companion-discover-open", "4");
    let seen = run
        .stdout
        .iter()
        .any(|l| l.contains("\"appeared\"") && l.contains(&scene.device_id) && l.contains("ble"));
    assert!(seen, "the open speaker is listed over BLE\n{}", run.tail);
    // The window times out: the advertisement goes with it.
    let gone = bluez.wait("ADV_UNREGISTERED", Duration::from_secs(30));
    assert!(gone.contains("reason=unregistered"), "{gone}");
    scene.agent_said("BLE advertising stopped", START);
    // The laptop forgets it once it is no longer heard (BlueZ's temporary-device timeout).
    bluez.wait("DEVICE_REMOVED", Duration::from_secs(20));
    let run = scene.discover(&bluez, "avs-companion-discover-closed", "3");
    assert!(
        !run.stdout.iter().any(|l| l.contains("\"appeared\"")),
        "a closed speaker is not advertised\n{}",
        run.tail
    );
    // The owner reopens the window on the speaker: advertising again.
    let before = bluez.lines("ADV_REGISTERED").len();
    scene.agent_cli("pair");
    let deadline = Instant::now() + START;
    while bluez.lines("ADV_REGISTERED").len() == before {
        assert!(Instant::now() < deadline, "advertising again after `pair`");
        let _ = bluez
            .standin
            .wait_for_line(Stream::Stdout, Duration::from_millis(500), |l| {
                l.starts_with("ADV_REGISTERED")
            });
    }
    bluez.assert_clean();
}

/// After the stand-in held something back (`stalled`, a `--stall-…` fault's line), the companion
/// asked to disconnect the connection that was still up, instead of leaving the speaker
/// connected.
#[track_caller]
fn assert_disconnected_after(bluez: &Bluez, stalled: &str) {
    let air = bluez.standin.stdout_lines();
    let at = air
        .iter()
        .position(|l| l.starts_with(stalled))
        .unwrap_or_else(|| panic!("the stand-in never said {stalled}: {air:#?}"));
    let dropped = air[at..]
        .iter()
        .find(|l| l.starts_with("DISCONNECT_REQUEST by=central"));
    assert!(
        dropped.is_some_and(|l| l.contains("connected=true")),
        "the companion left the stalled speaker connected: {air:#?}"
    );
}

/// The stand-in with the `--stall-…` flag `fault`, and the agent advertising through it.
fn stalling(fault: &str) -> (Bluez, Scene) {
    let bluez = Bluez::start(&[fault]);
    let scene = Scene::start(&bluez, None);
    bluez.wait("ADV_REGISTERED", START);
    (bluez, scene)
}

/// A speaker that never answers the read of its information characteristic (`--stall-reads`):
/// the companion's discovery gives up after its 10 s limit and disconnects it, instead of
/// leaving it connected (its one LE connection held) until the companion exits.
#[test]
fn a_stalled_information_read_is_given_up_and_disconnected() {
    require_netns!();
    let (bluez, scene) = stalling("--stall-reads");
    // Long enough for the read's 10 s limit and the disconnect after it, with 10 s of room for a
    // slow start of the scan on a loaded machine (a discovery that ends first drops the read).
    let run = scene.discover(&bluez, "avs-companion-discover-stalled", "20");
    assert_eq!(run.code, Some(0), "{}", run.tail);
    assert_disconnected_after(&bluez, "READ_STALLED");
    bluez.assert_clean();
}

/// A speaker that never answers the subscription while the companion sets the link up
/// (`--stall-subscribe`): the pairing ends on the connect limit, and the companion closes the
/// half-made connection first (dropping the attempt used to leave the speaker connected).
#[test]
fn a_link_stalled_while_being_set_up_is_disconnected() {
    require_netns!();
    let (bluez, scene) = stalling("--stall-subscribe");
    let run = scene.pair(&bluez, "avs-companion-pair-stalled");
    // Said as for any transport that does not answer: the connect limit (3 x 5 s).
    let errors = run.error_lines();
    assert!(
        run.code != Some(0)
            && errors.len() == 1
            && errors[0].starts_with("error: cannot connect to the speaker at ble ")
            && errors[0].ends_with(": no answer within 15s"),
        "one line says the speaker did not answer in time\n{}",
        run.tail
    );
    assert_disconnected_after(&bluez, "SUBSCRIBE_STALLED");
    bluez.assert_clean();
}

/// The Wi-Fi hook (docs/wifi.md "Hook contract"): two networks; `connect` joins Home-5G with
/// [`WIFI_PASS`] only (exit 10 = wrong password otherwise) and records what it was given (never
/// the passphrase itself) in `hook.log`.
fn wifi_hook(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("wifi-hook");
    let script = format!(
        r#"#!/bin/sh
log="{dir}/hook.log"
case "$1" in
status)
  if [ -f "{dir}/joined" ]; then echo '{{"interface":"wlan0","ssid":"Home-5G","address":"192.0.2.20"}}'
  else echo '{{"interface":"wlan0"}}'; fi ;;
scan)
  echo scan >>"$log"
  echo '{{"ssid":"Home-5G","signal":70,"security":"wpa2_psk","frequency":5180,"known":false}}'
  echo '{{"ssid":"Neighbour","signal":20,"security":"wpa3_sae","frequency":2437}}' ;;
connect)
  read -r pass
  echo "stage associating"
  echo "stage authenticating"
  if [ "$AVS_WIFI_SSID" != "Home-5G" ]; then echo "connect ssid=$AVS_WIFI_SSID not-found" >>"$log"; exit 11; fi
  if [ "$pass" != "{pass}" ]; then echo "connect ssid=$AVS_WIFI_SSID hidden=$AVS_WIFI_HIDDEN pass=wrong" >>"$log"; exit 10; fi
  echo "connect ssid=$AVS_WIFI_SSID hidden=$AVS_WIFI_HIDDEN pass=right" >>"$log"
  echo "stage getting_address"
  touch "{dir}/joined"
  echo "address 192.0.2.20" ;;
rollback) echo rollback >>"$log"; rm -f "{dir}/joined" ;;
esac
"#,
        dir = dir.display(),
        pass = WIFI_PASS
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

const WIFI_PASS: &str = "home sweet home 5G";

#[test]
fn wifi_through_bluez_with_the_hook_backend() {
    require_netns!();
    // MTU 23: the scan list and the progress frames are cut into 20-byte chunks both ways.
    let bluez = Bluez::start(&["--mtu", "23"]);
    let hook_dir = tempfile::tempdir().unwrap();
    let hook = wifi_hook(hook_dir.path());
    let scene = Scene::start_with(
        &bluez,
        None,
        &[
            "network_backend = \"hook\"".into(),
            format!("wifi_hook = \"{}\"", hook.display()),
        ],
    );
    bluez.wait("ADV_REGISTERED", START);
    let wrong = hook_dir.path().join("wrong.txt");
    let right = hook_dir.path().join("right.txt");
    std::fs::write(&wrong, "not my password\n").unwrap();
    std::fs::write(&right, format!("{WIFI_PASS}\n")).unwrap();
    let wifi = |label: &str, pass: &Path| {
        scene.companion(
            &bluez,
            label,
            &[
                "wifi",
                &scene.device_id,
                "--setup-code",
                CODE,
                "--wifi-ssid",
                "Home-5G",
                "--wifi-password-file",
                &pass.display().to_string(),
                "--discover-timeout",
                "20",
                "--interface",
                LINK_NAME,
            ],
        )
    };

    // A wrong passphrase: the hook says so (exit 10), the companion says it in words.
    let failed = wifi("avs-companion-wifi-wrong", &wrong);
    assert_ne!(failed.code, Some(0), "{}", failed.tail);
    let errors = failed.error_lines();
    assert_eq!(
        errors,
        ["error: Wrong password for Home-5G"],
        "{}",
        failed.tail
    );

    // The right one: joined, and the speaker reaches Amazon (the emulator) afterwards.
    let joined = wifi("avs-companion-wifi-right", &right);
    assert_eq!(joined.code, Some(0), "{}", joined.tail);
    let said = joined
        .stderr
        .iter()
        .find(|l| l.contains(" is on Home-5G"))
        .unwrap_or_else(|| panic!("the companion says where the speaker is\n{}", joined.tail));
    assert!(
        said.ends_with(&format!(
            "({}) is on Home-5G at 192.0.2.20 and reaches Amazon.",
            scene.device_id
        )),
        "{said}"
    );

    // What the hook was given: a scan per attempt, the SSID in the environment, the passphrase
    // on stdin (wrong, then right), no rollback (the joined network passed the check).
    let log = std::fs::read_to_string(hook_dir.path().join("hook.log")).unwrap();
    let log: Vec<&str> = log.lines().collect();
    assert_eq!(
        log,
        [
            "scan",
            "connect ssid=Home-5G hidden=0 pass=wrong",
            "scan",
            "connect ssid=Home-5G hidden=0 pass=right"
        ],
        "hook calls"
    );
    // Over BlueZ, sealed: the passphrase is in no log, and every chunk fit MTU 23.
    let agent = scene.agent();
    for l in agent
        .stdout_lines()
        .iter()
        .chain(&agent.stderr_lines())
        .chain(&bluez.lines(""))
        .chain(&joined.stderr)
        .chain(&failed.stderr)
    {
        assert!(!l.contains(WIFI_PASS), "the passphrase leaked: {l}");
    }
    assert!(bluez.lines("LONG_WRITE").is_empty());
    bluez.assert_clean();
    eprintln!(
        "wifi over BlueZ at MTU 23: wrong {:.2} s ({}), right {:.2} s ({said}); {} writes, {} indications",
        failed.secs,
        errors[0],
        joined.secs,
        bluez.lines("WRITE ").len(),
        bluez.lines("INDICATION ").len()
    );
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let unit =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../device-agent/avs-device-agent.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("SupplementaryGroups=") && l.contains("bluetooth")),
        "the agent may talk to BlueZ (bluetooth group)"
    );
    // verify checks that ExecStart exists: point it at the built agent, nothing else changes.
    let bins = bins();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("avs-device-agent.service");
    std::fs::write(
        &copy,
        text.replace(
            "/usr/bin/avs-device-agent",
            &bins.agent.display().to_string(),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (package systemd) is installed by scripts/lib/deps.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It exits 0 on mere warnings ("… ignoring"), so any output counts as a failure.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("avs-device-agent.service"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}
