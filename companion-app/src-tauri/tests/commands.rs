//! The app's commands through Tauri's IPC with the mock runtime (no display): the real
//! `tauri.conf.json` and capability file, the real companion core, a real device agent and the
//! real LWA emulator in process. The "system browser" is the emulator's scripted user.
//!
//! What is checked: every command answers in the JSON shape `ui/src/ipc.ts` expects and is
//! granted by the capability file; a pairing runs to "linked" with the stages in order; a wrong
//! setup code, a declined consent and a failing browser end with the right error class; cancel
//! and closing the window stop the pairing cleanly (listener closed, speaker free again).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use avs_companion_app::browser::{OpenError, SignInOpener};
use avs_companion_app::ipc::{event, PairingEvent, Stage, StageState};
use avs_companion_app::AppOptions;
use companion_app::login::{browser, Browser, BrowserProcess};
use device_agent::agent::Agent;
use device_agent::config::AgentConfig;
use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, ALICE_USER_ID, BOB_EMAIL, BOB_PASSWORD, BOB_USER_ID,
    DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID,
};
use lwa_emulator::{Consent, Emulator, RunningEmulator, ScriptedUser};
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Listener as _, WebviewWindow};
use url::Url;

const CODE: &str = "24681357";
const WRONG_CODE: &str = "97531864";
const WAIT: Duration = Duration::from_secs(30);

/// Signs in like a person would, in a "browser" that is the emulator's scripted user.
struct ScriptedOpener {
    consent: Consent,
}

impl SignInOpener for ScriptedOpener {
    fn open(&self, url: &Url) -> Result<Option<BrowserProcess>, OpenError> {
        let url = url.to_string();
        let consent = self.consent;
        tauri::async_runtime::spawn(async move {
            let mut user = ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD).expect("user");
            // Declining still lands on the redirect (with error=access_denied).
            let _ = user.browse(&url, consent).await;
        });
        Ok(None)
    }
}

/// Like [`ScriptedOpener`] (consent allowed), and hands the test the redirect the browser landed
/// on — it carries the authorization code, which the test then looks for everywhere.
struct RecordingOpener {
    landed: std::sync::Mutex<mpsc::Sender<Url>>,
}

impl SignInOpener for RecordingOpener {
    fn open(&self, url: &Url) -> Result<Option<BrowserProcess>, OpenError> {
        let url = url.to_string();
        let landed = self.landed.lock().unwrap().clone();
        tauri::async_runtime::spawn(async move {
            let mut user = ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD).expect("user");
            if let Ok(landing) = user.browse(&url, Consent::Allow).await {
                let _ = landed.send(landing.redirect);
            }
        });
        Ok(None)
    }
}

/// A `BROWSER`-style command through the core's hook.
struct CommandOpener(&'static str);

impl SignInOpener for CommandOpener {
    fn open(&self, url: &Url) -> Result<Option<BrowserProcess>, OpenError> {
        Ok(browser::open(url, &Browser::Command(self.0.into()))?)
    }
}

/// Nothing opens; the test plays the browser (or never does).
struct NoOpener;

impl SignInOpener for NoOpener {
    fn open(&self, _url: &Url) -> Result<Option<BrowserProcess>, OpenError> {
        Ok(None)
    }
}

struct World {
    dir: tempfile::TempDir,
    emulator: Option<RunningEmulator>,
    agent: Option<Agent>,
    link: SocketAddr,
}

impl World {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (emulator, agent) = tauri::async_runtime::block_on(async {
            let emulator = Emulator::builder().start().await.expect("emulator");
            let mut cfg =
                AgentConfig::for_local(&dir.path().join("agent"), emulator.base_url(), CODE)
                    .expect("agent config");
            cfg.product_id = DEFAULT_PRODUCT_ID.into();
            cfg.client_id = Some(DEFAULT_DEVICE_CLIENT_ID.into());
            cfg.friendly_name = "Living room speaker".into();
            let agent = Agent::start(cfg).await.expect("agent");
            (emulator, agent)
        });
        let link = agent.link_addr();
        Self {
            dir,
            emulator: Some(emulator),
            agent: Some(agent),
            link,
        }
    }

    fn config(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("companion.toml");
        let base = self.emulator.as_ref().unwrap().base_url();
        std::fs::write(
            &path,
            format!("client_id = \"{DEFAULT_DEVICE_CLIENT_ID}\"\nlwa_base_url = \"{base}\"\n"),
        )
        .unwrap();
        path
    }

    fn agent(&self) -> &Agent {
        self.agent.as_ref().unwrap()
    }

    /// The app, configured for this world (its companion.toml in the world's directory),
    /// opening sign-in pages with `opener`.
    fn app(&self, opener: Arc<dyn SignInOpener>) -> App {
        app(self.config(self.dir.path()), opener)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let agent = self.agent.take();
        let emulator = self.emulator.take();
        tauri::async_runtime::block_on(async {
            if let Some(a) = agent {
                a.shutdown().await;
            }
            if let Some(e) = emulator {
                e.shutdown().await;
            }
        });
    }
}

struct App {
    app: tauri::App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    events: mpsc::Receiver<PairingEvent>,
    speakers: mpsc::Receiver<Value>,
    /// Everything the window was told, as sent: every event's raw payload (before any parsing
    /// could drop a field) and every command's answer.
    told: Arc<std::sync::Mutex<Vec<String>>>,
}

fn app(config_path: std::path::PathBuf, opener: Arc<dyn SignInOpener>) -> App {
    let options = AppOptions {
        config_path,
        mdns: false, // never mDNS in the root network namespace
        opener: Some(opener),
        ble: false, // never the host's Bluetooth (tests/ble_list.rs uses the GATT model)
        ble_central: None,
    };
    // The real config and capabilities; the window is made here instead of at startup, so the
    // test holds its handle before the (mock) event loop runs.
    let mut context = tauri::generate_context!();
    context.config_mut().app.windows.clear();
    let app = avs_companion_app::builder(mock_builder(), options.clone())
        .build(context)
        .expect("app builds");
    // The setup hook runs when the event loop starts, which the mock runtime never does.
    avs_companion_app::manage_state(app.handle(), options);
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("window");
    let (tx, events) = mpsc::channel();
    app.listen_any("pairing", move |e| {
        let ev: PairingEvent = serde_json::from_str(e.payload()).expect("pairing event parses");
        let _ = tx.send(ev);
    });
    let (stx, speakers) = mpsc::channel();
    app.listen_any("speakers", move |e| {
        let _ = stx.send(serde_json::from_str(e.payload()).unwrap());
    });
    // The app's every event name (ipc::event); each payload kept raw.
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    for name in [event::PAIRING, event::SPEAKERS] {
        let told = told.clone();
        app.listen_any(name, move |e| {
            told.lock()
                .unwrap()
                .push(format!("event {name}: {}", e.payload()))
        });
    }
    App {
        app,
        window,
        events,
        speakers,
        told,
    }
}

fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|b| b.deserialize::<Value>().unwrap())
}

/// Collects pairing events until `stop` matches one (which is included).
fn until(
    events: &mpsc::Receiver<PairingEvent>,
    stop: impl Fn(&PairingEvent) -> bool,
) -> Vec<PairingEvent> {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ev = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no matching event in {WAIT:?}; saw {seen:#?}"));
        let done = stop(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

impl App {
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let answer = invoke(&self.window, cmd, args);
        self.told
            .lock()
            .unwrap()
            .push(format!("answer to {cmd}: {answer:?}"));
        answer
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.invoke(cmd, args)
            .unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    fn until(&self, stop: impl Fn(&PairingEvent) -> bool) -> Vec<PairingEvent> {
        until(&self.events, stop)
    }

    fn add_speaker(&self, link: SocketAddr) -> Value {
        self.ok("add_speaker", json!({ "address": link.to_string() }))
    }

    /// Lists the speaker at `link` and starts pairing it with `code`; answers its id.
    fn list_and_start(&self, link: SocketAddr, code: &str) -> Value {
        self.ok("start_discovery", json!({}));
        let id = self.add_speaker(link)["id"].clone();
        self.ok(
            "start_pairing",
            json!({ "speakerId": id, "setupCode": code }),
        );
        id
    }

    /// Lists the speaker at `link`, starts pairing it, opens the sign-in page when it is ready
    /// and returns every event up to the attempt's end.
    fn pair_through_sign_in(&self, link: SocketAddr) -> Vec<PairingEvent> {
        self.list_and_start(link, CODE);
        self.until(|e| matches!(e, PairingEvent::SignIn { .. }));
        self.ok("open_sign_in", json!({}));
        self.until(PairingEvent::is_final)
    }

    /// Everything the window was told so far holds no secret: no setup code (either test code,
    /// as digits, spaced or dashed: the manual code and QR text contain one of these), no token
    /// or verifier field name or token prefix, and none of `extra` (the run's own secrets).
    fn assert_told_no_secret(&self, extra: &[(&str, &str)]) {
        let told = self.told.lock().unwrap().join("\n");
        assert!(
            told.contains("answer to "),
            "the record holds the run: {told}"
        );
        let mut secrets: Vec<(String, String)> = Vec::new();
        for code in [CODE, WRONG_CODE] {
            let (a, b) = code.split_at(4);
            secrets.push(("a setup code".into(), code.into()));
            secrets.push(("a setup code (spaced)".into(), format!("{a} {b}")));
            secrets.push(("a setup code (dashed)".into(), format!("{a}-{b}")));
        }
        for (what, s) in [
            ("a PKCE verifier", "code_verifier"),
            ("an access token", "access_token"),
            ("a refresh token", "refresh_token"),
            ("an access token", "Atza|"),
            ("a refresh token", "Atzr|"),
        ]
        .iter()
        .chain(extra)
        {
            secrets.push(((*what).into(), (*s).into()));
        }
        for (what, secret) in secrets {
            assert!(!told.contains(&secret), "{what} reached the window: {told}");
        }
    }
}

fn sign_in_url(events: &[PairingEvent]) -> Url {
    events
        .iter()
        .find_map(|e| match e {
            PairingEvent::SignIn { url, .. } => Some(url.parse().unwrap()),
            _ => None,
        })
        .expect("a sign-in event")
}

/// Where the redirect listener accepts: the sign-in link the app shows is the listener's own
/// one-time `/start/…` URL (the state is on no command line), or, for a URL that carries it,
/// the `redirect_uri` parameter.
fn redirect_addr(sign_in: &Url) -> SocketAddr {
    let redirect: Url = sign_in
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or_else(|| {
            assert!(
                sign_in.path().starts_with("/start/"),
                "neither a redirect_uri nor a one-time start URL: {sign_in}"
            );
            sign_in.clone()
        });
    let host = redirect.host_str().unwrap().trim_matches(['[', ']']);
    SocketAddr::new(host.parse().unwrap(), redirect.port().unwrap())
}

#[test]
fn settings_round_trip_and_name_the_wrong_field() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path().join("companion.toml"), Arc::new(NoOpener));
    let v = a.ok("get_settings", json!({}));
    assert_eq!(v["clientId"], "");
    assert_eq!(v["ready"], false);
    assert_eq!(v["region"], "na");
    assert_eq!(v["defaultRedirectUri"], "http://127.0.0.1/authresponse");

    let bad = a
        .invoke(
            "save_settings",
            json!({ "settings": { "clientId": "x", "redirectUri": "http://example.com/cb", "region": "eu", "lwaBaseUrl": "" } }),
        )
        .unwrap_err();
    assert_eq!(bad["field"], "redirectUri", "{bad}");
    assert!(bad["message"].as_str().unwrap().contains("plain http"));

    let saved = a.ok(
        "save_settings",
        json!({ "settings": { "clientId": "amzn1.application-oa2-client.mine", "redirectUri": "", "region": "eu", "lwaBaseUrl": "http://127.0.0.1:9" } }),
    );
    assert_eq!(saved["ready"], true);
    let again = a.ok("get_settings", json!({}));
    assert_eq!(again, saved);
    assert_eq!(again["lwaBaseUrl"], "http://127.0.0.1:9");
    assert!(std::fs::read_to_string(dir.path().join("companion.toml"))
        .unwrap()
        .contains("amzn1.application-oa2-client.mine"));
}

#[test]
fn setup_code_checks_never_echo_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path().join("c.toml"), Arc::new(NoOpener));
    let c = a.ok("check_setup_code", json!({ "code": "2468 13" }));
    assert_eq!(
        c,
        json!({ "status": "incomplete", "format": "digits", "message": "2 more digits to go.", "deviceId": null })
    );
    let c = a.ok("check_setup_code", json!({ "code": "2468-1357-0" }));
    assert_eq!(c["status"], "invalid");
    assert!(!c.to_string().contains("2468"), "{c}");
    let manual = shared_protocol::setup_code::SetupCode::from_digits(CODE)
        .unwrap()
        .manual_code();
    assert_eq!(manual, "2468-1357-4", "the UI tests use this check digit");
    let c = a.ok("check_setup_code", json!({ "code": manual }));
    assert_eq!(
        (c["status"].as_str(), c["format"].as_str()),
        (Some("valid"), Some("manual"))
    );
}

#[test]
fn discovery_off_and_speakers_added_by_address() {
    let world = World::start();
    let a = world.app(Arc::new(NoOpener));
    let v = a.ok("start_discovery", json!({}));
    assert_eq!(v["discovery"], "off");
    assert_eq!(v["speakers"], json!([]));

    let bad = a
        .invoke("add_speaker", json!({ "address": "10.0.0.1" }))
        .unwrap_err();
    assert!(bad["message"].as_str().unwrap().contains("port"));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let none = a
        .invoke("add_speaker", json!({ "address": closed.to_string() }))
        .unwrap_err();
    assert!(
        none["message"]
            .as_str()
            .unwrap()
            .contains("No speaker answered"),
        "{none}"
    );

    let s = a.add_speaker(world.link);
    assert_eq!(s["name"], "Living room speaker");
    assert_eq!(s["id"], world.agent().device_id().as_str());
    assert_eq!(s["transports"], json!(["address"]));
    assert_eq!(s["window"], "open");
    assert_eq!(s["paired"], false);
    assert_eq!(s["address"], world.link.to_string());
    assert_eq!(s["live"], false);
    let pushed = a.speakers.recv_timeout(WAIT).unwrap();
    assert_eq!(pushed["speakers"][0]["id"], s["id"]);
}

#[test]
fn pairs_a_real_agent_against_the_emulator() {
    let world = World::start();
    let (landed_tx, landed) = mpsc::channel();
    let a = world.app(Arc::new(RecordingOpener {
        landed: std::sync::Mutex::new(landed_tx),
    }));
    a.ok("start_discovery", json!({}));
    let id = a.add_speaker(world.link)["id"].as_str().unwrap().to_owned();

    let started = a.ok(
        "start_pairing",
        json!({ "speakerId": id, "setupCode": "2468 1357" }),
    );
    assert_eq!(started["speakerName"], "Living room speaker");
    let pairing_id = started["pairingId"].as_u64().unwrap();

    let mut events = a.until(|e| matches!(e, PairingEvent::SignIn { .. }));
    let url = sign_in_url(&events);
    // The window shows the one-time loopback start URL (no state, no PKCE values in it).
    assert!(url.as_str().contains("/start/"), "{url}");
    assert!(!url.as_str().contains("state="), "{url}");
    assert!(!url.as_str().contains("code_verifier"));
    a.ok("open_sign_in", json!({}));
    events.extend(a.until(PairingEvent::is_final));
    // The authorize request it led to used PKCE S256.
    let authorize = world
        .emulator
        .as_ref()
        .unwrap()
        .requests()
        .into_iter()
        .find(|r| r.path == "/ap/oa")
        .expect("an authorize request");
    assert!(
        authorize
            .query
            .iter()
            .any(|(k, v)| k == "code_challenge_method" && v == "S256"),
        "{authorize:?}"
    );
    assert!(events.iter().all(|e| e.pairing_id() == pairing_id));

    // Stages in order, each started before it finished.
    let stages: Vec<(Stage, StageState)> = events
        .iter()
        .filter_map(|e| match e {
            PairingEvent::Stage { stage, state, .. } => Some((*stage, *state)),
            _ => None,
        })
        .collect();
    let done_order: Vec<Stage> = stages
        .iter()
        .filter(|(_, s)| *s == StageState::Done)
        .map(|(st, _)| *st)
        .collect();
    assert_eq!(
        done_order,
        [
            Stage::Connect,
            Stage::Secure,
            Stage::SignIn,
            Stage::HandOver,
            Stage::Exchange
        ],
        "{stages:?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, PairingEvent::BrowserOpened { .. })));
    assert!(events.iter().any(|e| matches!(e, PairingEvent::Stage { stage: Stage::Exchange, detail: Some(d), .. } if d.contains("Exchanging"))));
    match events.last().unwrap() {
        PairingEvent::Linked {
            speaker_name,
            user_id,
            ..
        } => {
            assert_eq!(speaker_name, "Living room speaker");
            assert_eq!(user_id.as_deref(), Some(ALICE_USER_ID));
        }
        other => panic!("expected linked, got {other:?}"),
    }
    // The speaker holds its tokens; the list says so.
    let status = world.agent().status_report();
    assert!(status.paired);
    assert_eq!(status.user_id.unwrap().as_str(), ALICE_USER_ID);
    let list = a.ok("start_discovery", json!({}));
    assert_eq!(list["speakers"][0]["paired"], true);
    // Nothing secret ever reached the window: not in any event's raw payload (all of them, as
    // sent, before parsing could drop a field), not in any command's answer. The secrets are
    // the run's own: the authorization code the browser carried, the speaker's access token,
    // and the setup code in every printed form.
    let landing = landed.recv_timeout(WAIT).expect("the browser landed");
    let auth_code = landing
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code in the redirect");
    assert!(auth_code.len() >= 16, "an authorization code, not a stub");
    let access_token = world
        .agent()
        .delegate()
        .auth_token()
        .expect("the speaker holds a token")
        .token()
        .expose_secret()
        .to_owned();
    let told = a.told.lock().unwrap().join("\n");
    assert!(told.contains("event pairing: "), "{told}");
    a.assert_told_no_secret(&[
        ("the authorization code", auth_code.as_str()),
        ("the access token", access_token.as_str()),
    ]);
}

#[test]
fn a_wrong_code_asks_for_a_new_one_and_retry_refuses_to_reuse_it() {
    let world = World::start();
    let a = world.app(Arc::new(NoOpener));
    let id = a.list_and_start(world.link, WRONG_CODE);
    let events = a.until(PairingEvent::is_final);
    match events.last().unwrap() {
        PairingEvent::Failed { error, .. } => {
            assert_eq!(serde_json::to_value(error.kind).unwrap(), "wrongSetupCode");
            assert_eq!(serde_json::to_value(error.retry).unwrap(), "newCode");
            assert!(error.message.contains("setup code"), "{}", error.message);
            assert!(!error.message.contains(WRONG_CODE));
        }
        other => panic!("{other:?}"),
    }
    let retry = a.invoke("retry_pairing", json!({})).unwrap_err();
    assert!(retry["message"]
        .as_str()
        .unwrap()
        .contains("setup code again"));
    // A malformed code never reaches the speaker.
    let bad = a
        .invoke(
            "start_pairing",
            json!({ "speakerId": id, "setupCode": "1111 1111" }),
        )
        .unwrap_err();
    assert!(
        bad["message"].as_str().unwrap().contains("too easy"),
        "{bad}"
    );
    a.assert_told_no_secret(&[
        ("the malformed code", "11111111"),
        ("the malformed code (as typed)", "1111 1111"),
    ]);
}

#[test]
fn declined_consent_is_a_cancelled_sign_in_and_retry_reuses_the_code() {
    let world = World::start();
    let a = world.app(Arc::new(ScriptedOpener {
        consent: Consent::Deny,
    }));
    let events = a.pair_through_sign_in(world.link);
    match events.last().unwrap() {
        PairingEvent::Failed { error, .. } => {
            assert_eq!(serde_json::to_value(error.kind).unwrap(), "signInCancelled");
            assert_eq!(serde_json::to_value(error.retry).unwrap(), "sameCode");
        }
        other => panic!("{other:?}"),
    }
    // Retry: same speaker, same code, no typing; it reaches the sign-in again.
    let again = a.ok("retry_pairing", json!({}));
    assert!(again["pairingId"].as_u64().unwrap() > 1);
    a.until(|e| matches!(e, PairingEvent::SignIn { .. }));
    a.ok("cancel_pairing", json!({}));
    a.assert_told_no_secret(&[]);
}

#[test]
fn a_failing_browser_command_ends_the_attempt_with_its_reason() {
    let world = World::start();
    let a = world.app(Arc::new(CommandOpener(
        "sh -c 'echo no display for the browser >&2; exit 3' browser",
    )));
    let events = a.pair_through_sign_in(world.link);
    match events.last().unwrap() {
        PairingEvent::Failed { error, .. } => {
            assert_eq!(serde_json::to_value(error.kind).unwrap(), "signInFailed");
            assert!(
                error.message.contains("no display for the browser"),
                "{}",
                error.message
            );
            // The window's words (c592bd2): the program without the terminal's backticks,
            // which stay in the exact sentence under Advanced.
            assert!(!error.message.contains('`'), "{}", error.message);
            let exact = error.detail.as_deref().unwrap_or_default();
            assert!(exact.contains('`'), "{exact}");
        }
        other => panic!("{other:?}"),
    }
    a.assert_told_no_secret(&[]);
}

#[test]
fn cancel_stops_the_pairing_cleanly() {
    let world = World::start();
    let a = world.app(Arc::new(NoOpener));
    let id = a.list_and_start(world.link, CODE);
    // Cancel while waiting for the browser: one "cancelled", and the redirect listener is gone.
    let events = a.until(|e| matches!(e, PairingEvent::SignIn { .. }));
    let listener = redirect_addr(&sign_in_url(&events));
    assert!(
        std::net::TcpStream::connect(listener).is_ok(),
        "listening while waiting"
    );
    assert_eq!(a.ok("cancel_pairing", json!({})), json!(true));
    let end = a.until(PairingEvent::is_final);
    assert!(matches!(end.last(), Some(PairingEvent::Cancelled { .. })));
    let closed = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        std::net::TcpStream::connect(listener).is_err()
    });
    assert!(closed, "the redirect listener still accepts after cancel");
    assert_eq!(a.ok("cancel_pairing", json!({})), json!(false));

    // The speaker is free again: a new pairing gets to its sign-in.
    a.ok(
        "start_pairing",
        json!({ "speakerId": id, "setupCode": CODE }),
    );
    a.until(|e| matches!(e, PairingEvent::SignIn { .. }));

    a.ok("cancel_pairing", json!({}));
    a.until(PairingEvent::is_final);
}

#[test]
fn closing_the_window_cancels_the_pairing() {
    let world = World::start();
    let App {
        app,
        window,
        events,
        ..
    } = world.app(Arc::new(NoOpener));
    let checker = std::thread::spawn(move || {
        invoke(&window, "start_discovery", json!({})).unwrap();
        let id = invoke(
            &window,
            "add_speaker",
            json!({ "address": world.link.to_string() }),
        )
        .unwrap()["id"]
            .clone();
        invoke(
            &window,
            "start_pairing",
            json!({ "speakerId": id, "setupCode": CODE }),
        )
        .unwrap();
        let seen = until(&events, |e| matches!(e, PairingEvent::SignIn { .. }));
        let listener = redirect_addr(&sign_in_url(&seen));
        // The user closes the window while the browser step is pending.
        window.close().unwrap();
        let end = until(&events, PairingEvent::is_final);
        assert!(
            matches!(end.last(), Some(PairingEvent::Cancelled { .. })),
            "{end:?}"
        );
        let closed = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            std::net::TcpStream::connect(listener).is_err()
        });
        assert!(
            closed,
            "the redirect listener still accepts after the window closed"
        );
        drop(world);
    });
    // The event loop (mock), with the app's own handler as `run()` installs it: it delivers
    // CloseRequested, then exits when the last window is gone.
    app.run(|handle, event| avs_companion_app::on_run_event(handle, &event));
    checker.join().unwrap();
}

#[test]
fn search_again_asks_a_speaker_added_by_address_again() {
    // The list's "Search again" (search_again) re-checks speakers added by address: one whose
    // pairing window closed since it was added shows that now, not the state it had then.
    let world = World::start();
    let a = world.app(Arc::new(NoOpener));
    assert_eq!(a.ok("start_discovery", json!({}))["discovery"], "off");
    let s = a.add_speaker(world.link);
    assert_eq!(s["window"], "open");
    world.agent().pairing().close();
    let v = a.ok("search_again", json!({}));
    assert_eq!(v["discovery"], "off", "discovery stays off: {v}");
    let rows = v["speakers"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["id"], s["id"]);
    assert_eq!(rows[0]["window"], "closed", "{v}");
    assert_eq!(rows[0]["transports"], json!(["address"]));
    assert_eq!(rows[0]["needsNetwork"], false);
}

/// Signs in as whoever the test names now (Alice first, then Bob).
struct PersonOpener {
    who: std::sync::Mutex<(&'static str, &'static str)>,
}

impl SignInOpener for PersonOpener {
    fn open(&self, url: &Url) -> Result<Option<BrowserProcess>, OpenError> {
        let url = url.to_string();
        let (email, password) = *self.who.lock().unwrap();
        tauri::async_runtime::spawn(async move {
            let mut user = ScriptedUser::new(email, password).expect("user");
            let _ = user.browse(&url, Consent::Allow).await;
        });
        Ok(None)
    }
}

/// Issue 15.4/15.5 through the real commands, a real agent and the emulator: the linked event
/// names Alice; re-pairing with Bob asks (confirmAccountSwitch with both accounts), Keep ends in
/// keptAccount with Alice still linked on the agent, Replace links Bob.
#[test]
fn re_pairing_with_another_account_asks_the_window_first() {
    let world = World::start();
    let opener = Arc::new(PersonOpener {
        who: std::sync::Mutex::new((ALICE_EMAIL, ALICE_PASSWORD)),
    });
    let a = world.app(opener.clone());
    let reopen = || {
        let pairing = world.agent().pairing().clone();
        let deadline = std::time::Instant::now() + WAIT;
        while pairing.window() != shared_protocol::message::PairingWindow::Closed {
            assert!(std::time::Instant::now() < deadline, "window never closed");
            std::thread::sleep(Duration::from_millis(10));
        }
        pairing.open().unwrap();
    };
    let linked_account = |events: &[PairingEvent]| match events.last() {
        Some(PairingEvent::Linked {
            user_id, account, ..
        }) => (user_id.clone(), account.as_ref().map(|a| a.label.clone())),
        other => panic!("not linked: {other:?}"),
    };

    // Alice: linked, and the event names her.
    let events = a.pair_through_sign_in(world.link);
    assert_eq!(
        linked_account(&events),
        (
            Some(ALICE_USER_ID.to_owned()),
            Some("Alice Example (alice@example.com)".to_owned())
        )
    );

    // Bob, answered Keep: Alice stays.
    reopen();
    *opener.who.lock().unwrap() = (BOB_EMAIL, BOB_PASSWORD);
    a.ok(
        "start_pairing",
        json!({ "speakerId": events_speaker(&a), "setupCode": CODE }),
    );
    a.until(|e| matches!(e, PairingEvent::SignIn { .. }));
    a.ok("open_sign_in", json!({}));
    let asked = a.until(|e| matches!(e, PairingEvent::ConfirmAccountSwitch { .. }));
    match asked.last() {
        Some(PairingEvent::ConfirmAccountSwitch { current, new, .. }) => {
            assert_eq!(current.label, "Alice Example (alice@example.com)");
            assert_eq!(new.label, "Bob Example (bob@example.com)");
        }
        other => panic!("{other:?}"),
    }
    a.ok("answer_account_switch", json!({ "replace": false }));
    let end = a.until(PairingEvent::is_final);
    match end.last() {
        Some(PairingEvent::KeptAccount {
            account,
            not_linked,
            ..
        }) => {
            assert_eq!(account.label, "Alice Example (alice@example.com)");
            assert_eq!(
                not_linked.as_ref().map(|n| n.label.as_str()),
                Some("Bob Example (bob@example.com)")
            );
        }
        other => panic!("not kept: {other:?}"),
    }
    let held = world.agent().delegate().account().unwrap().1.unwrap();
    assert_eq!(held.user_id.as_str(), ALICE_USER_ID);
    assert!(
        a.invoke("answer_account_switch", json!({ "replace": true }))
            .is_err(),
        "nothing is asked any more"
    );

    // Bob again, answered Replace: Bob is linked.
    let pairing = world.agent().pairing().clone();
    if pairing.window() == shared_protocol::message::PairingWindow::Closed {
        pairing.open().unwrap();
    }
    a.ok(
        "start_pairing",
        json!({ "speakerId": events_speaker(&a), "setupCode": CODE }),
    );
    a.until(|e| matches!(e, PairingEvent::SignIn { .. }));
    a.ok("open_sign_in", json!({}));
    a.until(|e| matches!(e, PairingEvent::ConfirmAccountSwitch { .. }));
    a.ok("answer_account_switch", json!({ "replace": true }));
    let end = a.until(PairingEvent::is_final);
    assert_eq!(
        linked_account(&end),
        (
            Some(BOB_USER_ID.to_owned()),
            Some("Bob Example (bob@example.com)".to_owned())
        )
    );
    let held = world.agent().delegate().account().unwrap().1.unwrap();
    assert_eq!(held.user_id.as_str(), BOB_USER_ID);
}

/// The id the app gave the speaker added by address (the list's only entry).
fn events_speaker(a: &App) -> String {
    let list = a.ok("start_discovery", json!({}));
    list["speakers"][0]["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_busy_speaker_offers_try_again_and_the_kept_code_then_links() {
    // Issue 15.10: the right code right after a wrong one meets the agent's pacing (at most one
    // code a second: "busy, try again in 1 s"). The window offers Try again with the same code
    // (not "Back to speakers"), and retry_pairing with the kept code links once the second is
    // over. Early retries are answered busy again; the loop ends at the link or the deadline.
    let world = World::start();
    let a = world.app(Arc::new(ScriptedOpener {
        consent: Consent::Allow,
    }));
    let id = a.list_and_start(world.link, WRONG_CODE);
    a.until(PairingEvent::is_final);
    a.ok(
        "start_pairing",
        json!({ "speakerId": id, "setupCode": CODE }),
    );
    match a.until(PairingEvent::is_final).last().unwrap() {
        PairingEvent::Failed { error, .. } => {
            assert_eq!(error.title, "The speaker is busy for a moment", "{error:?}");
            assert_eq!(serde_json::to_value(error.retry).unwrap(), "sameCode");
        }
        other => panic!("expected busy within the agent's 1 s pacing: {other:?}"),
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        a.ok("retry_pairing", json!({}));
        let events = a.until(|e| e.is_final() || matches!(e, PairingEvent::SignIn { .. }));
        match events.last().unwrap() {
            PairingEvent::SignIn { .. } => break,
            PairingEvent::Failed { error, .. }
                if error.title == "The speaker is busy for a moment"
                    && std::time::Instant::now() < deadline => {}
            other => panic!("{other:?}"),
        }
    }
    a.ok("open_sign_in", json!({}));
    match a.until(PairingEvent::is_final).last().unwrap() {
        PairingEvent::Linked { user_id, .. } => {
            assert_eq!(user_id.as_deref(), Some(ALICE_USER_ID));
        }
        other => panic!("{other:?}"),
    }
}
