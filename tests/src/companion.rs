//! The companion library driven the way the Bluetooth LE and Wi-Fi suites drive it: discovery
//! with a (model) central as the only BLE source, pairing options with no browser process,
//! `pair()` with the emulator's scripted user (Alice) answering the sign-in link, and a Wi-Fi
//! chooser that answers from a list. Test fixtures: they panic when something does not work.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use companion_app::ble::{self, BleCentral};
use companion_app::config::{RedirectTarget, DEFAULT_REDIRECT_URI};
use companion_app::discovery::{Device, Discovery, MdnsOptions};
use companion_app::error::PairError;
use companion_app::link::{open_tcp, LinkError, LinkSession, LinkTimeouts, TcpTransport};
use companion_app::login::Browser;
use companion_app::pairing::{pair, PairEvent, PairOptions, PairReport, Target};
use companion_app::wifi::{BoxFuture, WifiChoice, WifiChooser, WifiQuestion};
use lwa_emulator::registry::{ALICE_EMAIL, ALICE_PASSWORD, DEFAULT_DEVICE_CLIENT_ID};
use lwa_emulator::{Consent, ScriptedUser};
use shared_protocol::secret::WifiPassphrase;
use shared_protocol::setup_code::SetupCode;

/// A sealed link session with the speaker at `addrs` (TCP, default timeouts), opened with setup
/// code `code`.
pub async fn open_session(
    addrs: &[SocketAddr],
    code: &str,
) -> Result<LinkSession<TcpTransport>, LinkError> {
    let code = SetupCode::parse(code).unwrap_or_else(|e| panic!("setup code: {e}"));
    let (client, _) = open_tcp(addrs, LinkTimeouts::default()).await?;
    client.authenticate(&code).await
}

/// One setup-code attempt with `code` at `addr`; the session, if any, is closed at once.
pub async fn try_code(addr: SocketAddr, code: &str) -> Result<(), LinkError> {
    open_session(&[addr], code).await.map(drop)
}

/// Finds a speaker through the companion's discovery with `central` as its BLE source (10 s).
/// Keep the [`Discovery`] while the device is used.
pub async fn discover_over_ble(central: Arc<dyn BleCentral>) -> (Discovery, Device) {
    let mut d = Discovery::new();
    ble::attach(&mut d, Some(central))
        .await
        .unwrap_or_else(|e| panic!("the central attaches: {e}"));
    let device = d
        .wait_for(Duration::from_secs(10), |x| ble::peripheral_of(x).is_some())
        .await
        .unwrap_or_else(|| panic!("the speaker is discovered over BLE"));
    (d, device)
}

/// mDNS discovery on the namespace link only ([`crate::netns::LINK_NAME`]), everything else as
/// the companion's defaults (the one-shot query on).
pub fn link_only_mdns() -> MdnsOptions {
    MdnsOptions {
        interfaces: Some(vec![crate::netns::LINK_NAME.into()]),
        ..MdnsOptions::default()
    }
}

/// Options for pairing as the emulator's default device client through `authorize` with setup
/// code `code`, over `central`: no browser process (the scripted user opens the link the flow
/// shows), 30 s for the sign-in, no exchange retries (a failure shows at once).
pub fn ble_options(authorize: url::Url, code: &str, central: Arc<dyn BleCentral>) -> PairOptions {
    let redirect = RedirectTarget::parse(&DEFAULT_REDIRECT_URI.into())
        .unwrap_or_else(|e| panic!("the default redirect: {e}"));
    let code = SetupCode::parse(code).unwrap_or_else(|e| panic!("setup code: {e}"));
    let mut o = PairOptions::new(DEFAULT_DEVICE_CLIENT_ID.into(), redirect, authorize, code);
    o.browser = Browser::Manual;
    o.login_timeout = Duration::from_secs(30);
    o.exchange_retries = 0;
    o.ble = Some(central);
    o
}

/// `pair()` on `target` with Alice signing in and allowing as soon as the sign-in link is shown
/// (`root_ca`: the emulator's CA, when it serves HTTPS), bounded by `limit`: the result and
/// every event, in order.
pub async fn pair_as_alice(
    target: Target,
    o: PairOptions,
    root_ca: Option<String>,
    limit: Duration,
) -> (Result<PairReport, PairError>, Vec<PairEvent>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let mut observe = move |e: PairEvent| {
        if let PairEvent::LoginUrl { url, .. } = &e {
            let (url, root_ca) = (url.clone(), root_ca.clone());
            tokio::spawn(async move {
                let user = match &root_ca {
                    Some(pem) => {
                        ScriptedUser::with_root_ca(ALICE_EMAIL, ALICE_PASSWORD, pem.as_bytes())
                    }
                    None => ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD),
                };
                let outcome = match user {
                    Ok(mut user) => user.browse(&url, Consent::Allow).await.map(drop),
                    Err(e) => Err(e),
                };
                if let Err(e) = outcome {
                    eprintln!("scripted user: {e}");
                }
            });
        }
        sink.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    };
    let result = tokio::time::timeout(limit, pair(target, o, &mut observe))
        .await
        .unwrap_or_else(|_| panic!("the pairing ends within {limit:?}, whatever happens"));
    let events = events.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (result, events)
}

/// A Wi-Fi chooser that answers passphrases from a list for the first network scanned, and
/// records each question as "N networks; last: <the previous failure or ->" (plus `; ` and
/// [`ScriptedWifi::note`]'s text, if set). Gives up when the list is used up.
pub struct ScriptedWifi {
    answers: Vec<&'static str>,
    seen: Arc<Mutex<Vec<String>>>,
    note: Option<Box<dyn Fn() -> String + Send>>,
}

impl std::fmt::Debug for ScriptedWifi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedWifi")
            .field("answers", &self.answers.len())
            .finish_non_exhaustive()
    }
}

impl ScriptedWifi {
    /// Answers `answers` in order; the questions go to `seen`.
    pub fn new(answers: Vec<&'static str>, seen: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            answers,
            seen,
            note: None,
        }
    }

    /// Adds `note()`, taken when the question is asked, to each record.
    pub fn note(mut self, note: impl Fn() -> String + Send + 'static) -> Self {
        self.note = Some(Box::new(note));
        self
    }
}

impl WifiChooser for ScriptedWifi {
    fn choose<'a>(&'a mut self, question: WifiQuestion<'a>) -> BoxFuture<'a, Option<WifiChoice>> {
        Box::pin(async move {
            let networks = question.networks;
            let last = question.last_error().unwrap_or("-");
            let mut record = format!("{} networks; last: {last}", networks.len());
            if let Some(note) = &self.note {
                record = format!("{record}; {}", note());
            }
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(record);
            if self.answers.is_empty() {
                return None;
            }
            let pass = self.answers.remove(0);
            Some(WifiChoice {
                ssid: networks.first()?.ssid.clone(),
                passphrase: Some(WifiPassphrase::new(pass)),
                hidden: false,
            })
        })
    }
}
