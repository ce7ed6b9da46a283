//! The harness of the real-window tests (`window_e2e.rs`, `window_wifi.rs`): Xvfb, the real
//! `lwa-emulator` and `avs-device-agent run` as child processes, tauri-driver (which starts
//! Debian's WebKitWebDriver, which starts `avs-companion-app`), and a minimal WebDriver client.
//!
//! One [`Window`] is one test's world. Everything it starts runs in its own process group and is
//! stopped when the `Window` (or, for tauri-driver, [`Window::drive`]) ends, pass or fail; the
//! temp dir with the logs goes last. A failing drive saves a screenshot of the window and prints
//! every log.
//!
//! Every WebDriver call has a timeout: without a display tauri-driver's new-session call hangs
//! instead of failing. Waits poll a condition until a deadline; none sleeps to synchronise.
//!
//! Included with `#[path = "common/window.rs"] mod window;` (not through `common/mod.rs`, so the
//! list tests do not compile it); each window test uses a part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID,
};
use serde_json::{json, Value};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(30);

/// The speaker's name, as the agent announces it and the window shows it.
pub const SPEAKER_NAME: &str = "Living room speaker";

/// A child process in its own process group, stopped with everything it started (tauri-driver
/// starts WebKitWebDriver, which starts the app) when dropped: SIGTERM to the group (Xvfb then
/// removes its lock file and socket), SIGKILL after a grace period, then reaped.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command, log_dir: &Path, piped: bool) -> Self {
        use std::os::unix::process::CommandExt as _;
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        cmd.stderr(file)
            .stdout(if piped { Stdio::piped() } else { Stdio::null() })
            .stdin(Stdio::null())
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", cmd.get_program()));
        Self { name, child, log }
    }

    /// Reads stdout until a line starting with `prefix`, within `deadline`.
    fn ready_line(&mut self, prefix: &'static str, deadline: Duration) -> String {
        let stdout = self.child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with(prefix) {
                    let _ = tx.send(line);
                    // Keep draining so the process never blocks on a full pipe.
                }
            }
        });
        rx.recv_timeout(deadline).unwrap_or_else(|_| {
            panic!(
                "{} did not print {prefix} within {deadline:?}; its log:\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        use nix::sys::signal::{killpg, Signal};
        use nix::unistd::Pid;
        let Ok(pid) = i32::try_from(self.child.id()) else {
            return;
        };
        let group = Pid::from_raw(pid);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (a native driver, the app) goes now.
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn which(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Starts Xvfb on the first free display from :90.
fn start_xvfb(log_dir: &Path) -> (Proc, String) {
    for n in 90..140 {
        if Path::new(&format!("/tmp/.X{n}-lock")).exists()
            || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        {
            continue;
        }
        let mut cmd = Command::new("Xvfb");
        cmd.arg(format!(":{n}"))
            .args(["-screen", "0", "1280x860x24", "-nolisten", "tcp"]);
        let mut p = Proc::spawn("Xvfb", cmd, log_dir, false);
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && p.alive() && !socket.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if socket.exists() && p.alive() {
            return (p, format!(":{n}"));
        }
    }
    panic!("no free X display for Xvfb in :90..:139");
}

fn wait_port(addr: SocketAddr, proc_: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            proc_.alive(),
            "{} exited: {}",
            proc_.name,
            std::fs::read_to_string(&proc_.log).unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "{} never listened on {addr}",
            proc_.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal WebDriver client (plain HTTP, every call with a timeout).
pub struct Driver {
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    base: String,
    session: String,
    shots: PathBuf,
}

impl Driver {
    fn new_session(port: u16, app: &Path, shots: PathBuf) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let http = {
            let _in_runtime = rt.enter();
            reqwest::Client::builder().build().unwrap()
        };
        let base = format!("http://127.0.0.1:{port}");
        let body = json!({ "capabilities": { "alwaysMatch": {
            "tauri:options": { "application": app.display().to_string() }
        }}});
        // tauri-driver may accept before its native driver is up: a connection-level failure
        // is retried until the deadline; a timeout is not (it means no display).
        let deadline = Instant::now() + SESSION_TIMEOUT;
        let answer: Value = rt.block_on(async {
            loop {
                let sent = http
                    .post(format!("{base}/session"))
                    .json(&body)
                    .timeout(SESSION_TIMEOUT)
                    .send()
                    .await;
                match sent {
                    Ok(r) => break r.json().await.unwrap(),
                    Err(e) if !e.is_timeout() && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => panic!("new session (a timeout means no display): {e}"),
                }
            }
        });
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        Self {
            http,
            rt,
            base,
            session,
            shots,
        }
    }

    pub fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let answer: Value = self.rt.block_on(async {
            let mut req = self.http.request(method, &url).timeout(CALL_TIMEOUT);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
            r.json().await.unwrap()
        });
        if let Some(err) = answer["value"].get("error") {
            panic!("WebDriver {path}: {err}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    pub fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Waits until `condition` (a JS expression) is truthy.
    pub fn wait_for(&self, what: &str, condition: &str) {
        let deadline = Instant::now() + WAIT;
        let script = format!("return !!({condition});");
        loop {
            if self.js(&script, json!([])) == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body.innerText;", json!([]));
                panic!("timed out waiting for {what} ({condition}); the window shows:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn screen(&self, id: &str) {
        self.wait_for(
            &format!("screen {id}"),
            &format!("document.querySelector('#screen')?.dataset.screen === '{id}'"),
        );
    }

    pub fn element(&self, css: &str) -> String {
        self.wait_for(css, &format!("document.querySelector({css:?})"));
        let v = self.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    pub fn click(&self, css: &str) {
        let e = self.element(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        );
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        );
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.element(css);
        self.call(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves a screenshot of the window after the next two frames are drawn.
    pub fn shot(&self, name: &str) {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({
                "script": "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                "args": []
            })),
        );
        let png = self.call(reqwest::Method::GET, "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).unwrap();
    }

    fn quit(&self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self
            .rt
            .block_on(async { self.http.delete(url).timeout(CALL_TIMEOUT).send().await });
    }
}

fn binary_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_avs-companion-app"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// One call to the emulator's control API (`/_emulator/…`): the answer's status and JSON body
/// (`null` when empty).
fn emulator_call(
    method: reqwest::Method,
    base: &str,
    path: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::builder()
            .build()
            .unwrap()
            .request(method, format!("{base}/_emulator/{path}"))
            .timeout(CALL_TIMEOUT);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
}

/// Injects a fault (`POST /_emulator/faults`).
pub fn control(base: &str, body: Value) {
    let (status, _) = emulator_call(reqwest::Method::POST, base, "faults", Some(body));
    assert!(status.is_success(), "fault injection: {status}");
}

/// The emulator's request log (`GET /_emulator/requests`): one object per request, in order.
pub fn emulator_requests(base: &str) -> Vec<Value> {
    let (status, list) = emulator_call(reqwest::Method::GET, base, "requests", None);
    assert!(status.is_success(), "request log: {status}");
    list.as_array()
        .cloned()
        .unwrap_or_else(|| panic!("request log: {list}"))
}

/// The speaker's addresses, from its readiness line.
pub struct Agent {
    /// The link listener (`127.0.0.1:port`), typed into "Add a speaker by address".
    pub link: String,
    /// The local API socket (`avs-device-agent status --socket`).
    pub socket: String,
}

/// One window test's world: a temp dir (logs, screenshots unless `AVS_APP_SCREENSHOTS`), Xvfb,
/// the emulator, and, once started, the speaker.
pub struct Window {
    // Dropped in declaration order: the speaker, the emulator, Xvfb, then the temp dir.
    agent: Option<Proc>,
    emulator: Proc,
    xvfb: Proc,
    display: String,
    /// The emulator's base URL (`http://127.0.0.1:port`).
    pub lwa: String,
    /// `lwa-emulator`.
    pub emulator_bin: PathBuf,
    /// `avs-device-agent`.
    pub agent_bin: PathBuf,
    app: PathBuf,
    tauri_driver: PathBuf,
    logs: PathBuf,
    shots: PathBuf,
    started: Instant,
    tmp: tempfile::TempDir,
}

impl Window {
    /// Checks that the binaries and drivers are there, then starts Xvfb and the emulator.
    pub fn start() -> Self {
        let started = Instant::now();
        let app = PathBuf::from(env!("CARGO_BIN_EXE_avs-companion-app"));
        let bins = binary_dir();
        let emulator_bin = bins.join("lwa-emulator");
        let agent_bin = bins.join("avs-device-agent");
        for b in [&emulator_bin, &agent_bin] {
            assert!(
                b.is_file(),
                "{} is not built: cargo build -p lwa-emulator -p device-agent",
                b.display()
            );
        }
        let tauri_driver = which("tauri-driver").expect(
            "tauri-driver is not installed: cargo install tauri-driver --version '^2' --locked",
        );
        assert!(
            which("WebKitWebDriver").is_some(),
            "WebKitWebDriver is not installed: apt-get install webkit2gtk-driver"
        );

        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let shots = match std::env::var_os("AVS_APP_SCREENSHOTS") {
            Some(d) => PathBuf::from(d),
            None => tmp.path().join("screens"),
        };
        std::fs::create_dir_all(&shots).unwrap();

        let (xvfb, display) = start_xvfb(&logs);
        let mut cmd = Command::new(&emulator_bin);
        cmd.args(["serve", "--bind", "127.0.0.1:0"]);
        let mut emulator = Proc::spawn("lwa-emulator", cmd, &logs, true);
        let ready = emulator.ready_line("LWA_EMULATOR_READY", Duration::from_secs(20));
        let lwa = field(&ready, "base_url").to_owned();
        Self {
            agent: None,
            emulator,
            xvfb,
            display,
            lwa,
            emulator_bin,
            agent_bin,
            app,
            tauri_driver,
            logs,
            shots,
            started,
            tmp,
        }
    }

    /// The temp dir (removed when the `Window` ends).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Starts `avs-device-agent run` as [`SPEAKER_NAME`] with setup code `code`, its LWA at
    /// `lwa_base_url`, mDNS off, pacing off (the right code follows a wrong one as fast as the
    /// window is driven; the 1 s pacing is tested in device-agent/tests/link.rs), plus the
    /// `extra` TOML lines. Its state dir is `<dir>/speaker`.
    pub fn start_agent(&mut self, code: &str, lwa_base_url: &str, extra: &str) -> Agent {
        use std::os::unix::fs::PermissionsExt as _;
        let state = self.tmp.path().join("speaker");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        let code_file = state.join("setup-code");
        std::fs::write(&code_file, format!("{code}\n")).unwrap();
        std::fs::set_permissions(&code_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = state.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "product_id = {DEFAULT_PRODUCT_ID:?}\ndsn = \"E2E-0001\"\nfriendly_name = {SPEAKER_NAME:?}\nlwa_base_url = {lwa_base_url:?}\nstate_dir = {:?}\nmdns = false\nlink_bind = \"127.0.0.1:0\"\nattempt_interval_secs = 0\n{extra}",
                state.display().to_string()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(&self.agent_bin);
        cmd.arg("run").arg("--config").arg(&config);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AVS_AGENT_") {
                cmd.env_remove(k);
            }
        }
        let mut agent = Proc::spawn("avs-device-agent", cmd, &self.logs, true);
        let ready = agent.ready_line("AVS_AGENT_READY", Duration::from_secs(20));
        let started = Agent {
            link: field(&ready, "link").to_owned(),
            socket: field(&ready, "socket").to_owned(),
        };
        self.agent = Some(agent);
        started
    }

    /// The speaker's own view: `avs-device-agent status --json`.
    pub fn agent_status(&self, agent: &Agent) -> Value {
        let out = Command::new(&self.agent_bin)
            .args(["status", "--socket", &agent.socket, "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Starts tauri-driver (the app gets a fresh config, mDNS and BLE off, the `BROWSER` hook
    /// set to the emulator's scripted Alice), opens a session and runs `f` on it. On failure:
    /// a screenshot `failure.png` and every log, then the panic goes on. tauri-driver and the
    /// app are stopped before this returns, so their logs are complete.
    pub fn drive(&self, test: &str, f: impl FnOnce(&Driver)) {
        let port = free_port();
        let native = free_port();
        let browser = format!(
            "{} browse --email {ALICE_EMAIL} --password {ALICE_PASSWORD}",
            self.emulator_bin.display()
        );
        let mut cmd = Command::new(&self.tauri_driver);
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("DISPLAY", &self.display)
        .env("BROWSER", &browser)
        .env(
            "AVS_COMPANION_CONFIG",
            self.tmp.path().join("companion.toml"),
        )
        .env("AVS_COMPANION_MDNS", "off")
        .env("AVS_COMPANION_BLE", "off")
        .env("AVS_COMPANION_LOG", "debug")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WEBKIT_DISABLE_DMABUF_RENDERER")
        .env_remove("WEBKIT_DISABLE_COMPOSITING_MODE");
        let mut driver_proc = Proc::spawn("tauri-driver", cmd, &self.logs, false);
        wait_port(SocketAddr::from(([127, 0, 0, 1], port)), &mut driver_proc);
        wait_port(SocketAddr::from(([127, 0, 0, 1], native)), &mut driver_proc);
        // WebKitWebDriver starts the app with its output discarded: a wrapper keeps the app's
        // log (stderr) in the logs dir.
        let wrapper = self.tmp.path().join("avs-companion-app.sh");
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nexec {:?} \"$@\" 2>>{:?}\n",
                    self.app.display().to_string(),
                    self.logs
                        .join("avs-companion-app.log")
                        .display()
                        .to_string()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let d = Driver::new_session(port, &wrapper, self.shots.clone());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&d)));
        if outcome.is_err() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.shot("failure")));
        }
        d.quit();
        drop(driver_proc);
        if let Err(e) = outcome {
            for name in [
                "avs-companion-app",
                "tauri-driver",
                "avs-device-agent",
                "lwa-emulator",
            ] {
                eprintln!("--- {name} log ---\n{}", self.log(name));
            }
            std::panic::resume_unwind(e);
        }
        eprintln!(
            "{test} passed in {:.1} s; screenshots in {}",
            self.started.elapsed().as_secs_f64(),
            self.shots.display()
        );
    }

    /// A process's log so far: `avs-companion-app`, `avs-device-agent`, `lwa-emulator`,
    /// `tauri-driver` (WebKitWebDriver's too), `Xvfb`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }
}

/// First run: no settings yet, so the list says what to do first; the settings open with the
/// Advanced part (client id, LWA settings) already open; the emulator's client id and base URL
/// are saved. Ends on the settings screen, "Saved".
pub fn first_run_settings(d: &Driver, lwa: &str) {
    d.screen("speakers");
    d.wait_for(
        "settings note",
        "!document.querySelector('#settings-note').hidden",
    );
    d.click("#settings-note button");
    d.screen("settings");
    d.wait_for(
        "advanced open",
        "document.querySelector('#settings-advanced-toggle').getAttribute('aria-expanded') === 'true'",
    );
    d.type_into("#clientId", DEFAULT_DEVICE_CLIENT_ID);
    d.type_into("#lwaBaseUrl", lwa);
    d.click("#save");
    d.wait_for(
        "saved",
        "document.querySelector('#saved').textContent === 'Saved'",
    );
}

/// Adds the speaker through "Add a speaker by address" (mDNS is off here); its row appears.
pub fn add_by_address(d: &Driver, link: &str) {
    d.click("#toggle-address");
    d.type_into("#address", link);
    d.click("#add-address");
    d.wait_for("the speaker row", "document.querySelector('.speaker-row')");
    assert!(d.text(".speaker-row").contains(SPEAKER_NAME));
}
