//! The whole pairing, step by step, with timings: what the CLI and the desktop app run.
//!
//! Steps ([`Step`]): find the speaker (mDNS, or a given address), connect and exchange Hellos,
//! prove the setup code (SPAKE2), get the device info (a fresh PKCE challenge), sign in with
//! Amazon in the browser, hand the code over and follow the speaker's exchange.
//!
//! Between the device info and the sign-in sits the Wi-Fi step ([`crate::wifi`]): the device
//! info carries the speaker's network status, and while the speaker cannot reach Login with
//! Amazon (or when [`PairOptions::force_wifi`] asks) the speaker is put on a network first. The
//! sign-in is never opened while the speaker is offline: without a way to fix that (no
//! [`PairOptions::wifi`] chooser, or a speaker that cannot join Wi-Fi) the pairing stops with
//! [`PairError::SpeakerOffline`] naming the reason. Each step is
//! reported to an observer as it starts and ends ([`PairEvent`]), so a UI can show a spinner per
//! step and the time each took; the same timings come back in the [`PairReport`].
//!
//! When the exchange fails in a way the speaker says is retryable with the same code (LWA
//! unreachable), the handover is retried on the same session a few times before giving up, so
//! the user does not have to sign in again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use shared_protocol::ids::{ClientId, DeviceId, RedirectUri, SessionId, UserId};
use shared_protocol::message::{AccountProfile, DeviceInfo, ProgressStage, WifiStage};
use shared_protocol::secret::AuthorizationCode;
use shared_protocol::setup_code::SetupCode;
use tokio::sync::mpsc;
use url::Url;

use crate::account_switch::AccountSwitchConfirm;
use crate::ble::BleCentral;
use crate::config::RedirectTarget;
use crate::connect::{find, BoxedTransport, Connectors, Found, Link, Wanted};
use crate::error::PairError;
use crate::handover::{hand_over, HandoverError, HandoverTimeouts, Linked};
use crate::link::{LinkSession, LinkTimeouts};
use crate::login::browser::BrowserProcess;
use crate::login::{browser, preflight, Browser, LoginNotice, LoginWait, PendingLogin};
use crate::wifi::{self, JoinEvent, WifiChooser};
use crate::words::Words;

pub use crate::connect::{choose_device, Target};

/// A pairing step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Finding the speaker.
    Discovery,
    /// TCP connect and Hellos.
    Connect,
    /// SPAKE2 on the setup code.
    Handshake,
    /// A fresh PKCE challenge from the speaker.
    DeviceInfo,
    /// Put the speaker on a network that reaches LWA.
    Wifi,
    /// Amazon sign-in in the browser.
    Login,
    /// The speaker redeems the code.
    Exchange,
}

impl Step {
    /// A short label for displays.
    pub fn label(self) -> &'static str {
        match self {
            Step::Discovery => "discover the speaker",
            Step::Connect => "connect",
            Step::Handshake => "check the setup code",
            Step::DeviceInfo => "get device info",
            Step::Wifi => "put the speaker on Wi-Fi",
            Step::Login => "sign in with Amazon",
            Step::Exchange => "speaker exchanges the code",
        }
    }

    /// The snake_case name (as in JSON output).
    pub fn name(self) -> &'static str {
        match self {
            Step::Discovery => "discovery",
            Step::Connect => "connect",
            Step::Handshake => "handshake",
            Step::DeviceInfo => "device_info",
            Step::Wifi => "wifi",
            Step::Login => "login",
            Step::Exchange => "exchange",
        }
    }
}

/// What the observer hears.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PairEvent {
    /// A step begins.
    StepStarted {
        /// The step.
        step: Step,
    },
    /// A step ended well.
    StepDone {
        /// The step.
        step: Step,
        /// How long it took, in milliseconds (fractional).
        millis: f64,
        /// A short result ("Kitchen speaker at 10.0.0.2:7000").
        detail: String,
    },
    /// The sign-in page: shown so the user can open it by hand.
    LoginUrl {
        /// The `/ap/oa` URL (no secrets: the challenge and state are public by design).
        url: String,
        /// True when the redirect is captured automatically.
        automatic: bool,
        /// True when a browser was started.
        browser_opened: bool,
    },
    /// A speaker progress stage during the exchange.
    Progress {
        /// The stage.
        stage: ProgressStage,
    },
    /// The browser command failed (it could not be started, or it exited with a failure) while
    /// a person can still open the sign-in URL by hand: shown with the URL again.
    BrowserFailed {
        /// "could not open a browser (false: exit 1)".
        message: String,
        /// The URL to open by hand (the start URL works again).
        url: String,
        /// True when the redirect is captured automatically.
        automatic: bool,
    },
    /// A pasted address was not this sign-in's return address; paste again.
    PasteRejected {
        /// What was wrong, in words (serialized as the terminal's sentence).
        why: Words,
        /// Pastes left before the sign-in gives up.
        tries_left: u32,
    },
    /// The exchange is retried with the same code.
    Retrying {
        /// 1-based retry number.
        attempt: u32,
        /// What failed.
        reason: String,
    },
    /// The speaker cannot reach LWA (or the user asked): the Wi-Fi step runs.
    WifiNeeded {
        /// Why, in words.
        reason: String,
    },
    /// A join is under way on the speaker.
    WifiProgress {
        /// The stage just entered.
        stage: WifiStage,
    },
    /// A join failed; the chooser is asked again.
    WifiFailed {
        /// The reason in words ("Wrong password for Home-5G").
        message: String,
    },
}

/// Everything a pairing needs besides the target.
#[derive(Debug)]
pub struct PairOptions {
    /// The user's LWA client id.
    pub client_id: ClientId,
    /// The redirect URI, classified.
    pub redirect: RedirectTarget,
    /// `/ap/oa` of Amazon or the emulator.
    pub authorize_endpoint: Url,
    /// The speaker's setup code.
    pub setup_code: SetupCode,
    /// How to open the sign-in page.
    pub browser: Browser,
    /// Stop when the browser command fails (no human to open the URL by hand).
    pub browser_failure_is_fatal: bool,
    /// Lines the user pastes (the URL they landed on), if there is a terminal.
    pub pasted: Option<mpsc::Receiver<String>>,
    /// Link timeouts.
    pub link: LinkTimeouts,
    /// How long the user has to sign in.
    pub login_timeout: Duration,
    /// Exchange timeouts.
    pub handover: HandoverTimeouts,
    /// Retries of the handover when the speaker says the same code may be retried.
    pub exchange_retries: u32,
    /// The Bluetooth central for speakers reachable over BLE (`None`: the computer's own
    /// adapter, opened when first needed; without one, BLE is skipped with one warning line).
    /// Used when `connectors` is `None`.
    pub ble: Option<Arc<dyn BleCentral>>,
    /// The transports to connect over (`None`: [`Connectors::standard`] with `ble`).
    pub connectors: Option<Connectors>,
    /// Picks the network for the Wi-Fi step; `None`: an offline speaker ends the pairing.
    pub wifi: Option<Box<dyn WifiChooser>>,
    /// Run the Wi-Fi step even when the speaker is online (move it to another network).
    pub force_wifi: bool,
    /// The sign-in pre-flight's time limit ([`preflight`]: the authorize URL fetched before any
    /// browser opens, so LWA's refusal of the client id or redirect URI is reported at once);
    /// `None` skips it.
    pub preflight: Option<Duration>,
    /// Asked when the speaker is linked to a different account than the one that signed in
    /// ([`crate::account_switch`]). `None`: replace without asking (the behaviour before
    /// protocol 1.2); the CLI and the desktop app always set one.
    pub confirm_switch: Option<Box<dyn AccountSwitchConfirm>>,
}

impl PairOptions {
    /// Defaults for everything but the essentials.
    pub fn new(
        client_id: ClientId,
        redirect: RedirectTarget,
        authorize_endpoint: Url,
        setup_code: SetupCode,
    ) -> Self {
        Self {
            client_id,
            redirect,
            authorize_endpoint,
            setup_code,
            browser: Browser::System,
            browser_failure_is_fatal: false,
            pasted: None,
            link: LinkTimeouts::default(),
            login_timeout: Duration::from_secs(300),
            handover: HandoverTimeouts::default(),
            exchange_retries: 2,
            ble: None,
            connectors: None,
            wifi: None,
            force_wifi: false,
            preflight: Some(preflight::PREFLIGHT_TIMEOUT),
            confirm_switch: None,
        }
    }
}

/// A successful pairing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairReport {
    /// The speaker.
    pub device_id: DeviceId,
    /// Its name.
    pub name: String,
    /// Where it was reached: `IP:PORT`, or `ble <peripheral>`.
    pub addr: String,
    /// The Amazon account, if the speaker read it.
    pub user_id: Option<UserId>,
    /// Its name and e-mail address too, when the speaker could read them.
    pub account: Option<AccountProfile>,
    /// Each step's time, in order, in milliseconds.
    pub timings: Vec<(Step, f64)>,
    /// Total time, in milliseconds.
    pub total_millis: f64,
}

/// How long a browser command may take to fail before the sign-in URL is shown as opened (an
/// opener without a browser fails in well under this; a person does not notice the wait).
const BROWSER_GRACE: Duration = Duration::from_millis(500);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs a pairing. `observe` hears every step.
pub async fn pair(
    target: Target,
    mut opts: PairOptions,
    observe: &mut (dyn FnMut(PairEvent) + Send),
) -> Result<PairReport, PairError> {
    let started = Instant::now();
    let mut steps = Steps {
        observe,
        timings: Vec::new(),
    };
    let connectors = opts
        .connectors
        .take()
        .unwrap_or_else(|| Connectors::standard(opts.ble.clone()));
    let found = discover(target, &connectors, &mut steps).await?;
    // Every failure on the link goes through `found.lost`: a speaker that stopped answering is
    // re-checked in discovery. The sign-in's failures are the browser's or the user's, never
    // the speaker's, so they pass as they are.
    let (client, speaker) = connect(&connectors, &found, opts.link, &mut steps)
        .await
        .map_err(|e| found.lost(e))?;
    let (mut session, info) = authenticate(client, &opts.setup_code, &mut steps)
        .await
        .map_err(|e| found.lost(e))?;
    // Before the sign-in: the code lives 5 minutes and only the speaker can redeem it, so it
    // must be online by the time the user has signed in.
    wifi_if_offline(&mut session, &info, &mut opts, &mut steps)
        .await
        .map_err(|e| found.lost(e))?;
    let (code, redirect_uri) = sign_in(&info, &mut opts, &mut steps).await?;
    let linked = exchange(
        &mut session,
        info.session_id,
        code,
        &redirect_uri,
        &mut opts,
        &mut steps,
    )
    .await
    .map_err(|e| found.lost(e))?;
    Ok(PairReport {
        device_id: speaker.device_id,
        name: speaker.name,
        addr: speaker.addr,
        user_id: linked.user_id,
        account: linked.account,
        timings: steps.timings,
        total_millis: ms(started.elapsed()),
    })
}

/// Tells the observer each step's start and end, and keeps the timings for the report.
struct Steps<'o> {
    observe: &'o mut (dyn FnMut(PairEvent) + Send),
    timings: Vec<(Step, f64)>,
}

impl Steps<'_> {
    fn tell(&mut self, event: PairEvent) {
        (self.observe)(event);
    }

    /// Announces `step`; its clock starts after the announcement.
    fn start(&mut self, step: Step) -> Instant {
        self.tell(PairEvent::StepStarted { step });
        Instant::now()
    }

    fn done(&mut self, step: Step, t0: Instant, detail: String) {
        let millis = ms(t0.elapsed());
        self.timings.push((step, millis));
        self.tell(PairEvent::StepDone {
            step,
            millis,
            detail,
        });
    }
}

/// The speaker reached, as the report names it.
struct Speaker {
    device_id: DeviceId,
    name: String,
    /// `IP:PORT`, or `ble <peripheral>`.
    addr: String,
}

/// Step 1: finds the speaker. Only a search is reported as a step: a given address is not one.
async fn discover(
    target: Target,
    connectors: &Connectors,
    steps: &mut Steps<'_>,
) -> Result<Found, PairError> {
    let discovering = matches!(target, Target::Discover { .. });
    if discovering {
        steps.tell(PairEvent::StepStarted {
            step: Step::Discovery,
        });
    }
    let t0 = Instant::now();
    let found = find(target, connectors, Wanted::ReadyToPair).await?;
    if let (true, Some(d)) = (discovering, &found.device) {
        let at = d
            .endpoints
            .first()
            .map_or_else(|| "(no address)".to_owned(), ToString::to_string);
        steps.done(
            Step::Discovery,
            t0,
            format!("{} ({}) at {at}", d.name, d.id),
        );
    }
    Ok(found)
}

/// Step 2: connects over the first transport that answers and exchanges Hellos. The speaker's
/// own summary names it; without one (an older speaker), the discovery record does.
async fn connect(
    connectors: &Connectors,
    found: &Found,
    timeouts: LinkTimeouts,
    steps: &mut Steps<'_>,
) -> Result<(Link, Speaker), PairError> {
    let t0 = steps.start(Step::Connect);
    let (client, reached) = connectors.open(&found.endpoints, timeouts).await?;
    let (device_id, name) = match (client.agent(), &found.device) {
        (Some(s), _) => (s.device_id.clone(), s.friendly_name.clone()),
        (None, Some(d)) => (d.id.clone(), d.name.clone()),
        (None, None) => (DeviceId::new("unknown"), String::new()),
    };
    let addr = reached.address;
    steps.done(
        Step::Connect,
        t0,
        format!(
            "{name} ({device_id}) at {addr}, {}",
            client.peer_hello().software
        ),
    );
    Ok((
        client,
        Speaker {
            device_id,
            name,
            addr,
        },
    ))
}

/// Steps 3 and 4: proves the setup code (SPAKE2), then asks for the device info, whose PKCE
/// challenge is fresh for this session and travels only over the sealed link.
async fn authenticate(
    client: Link,
    setup_code: &SetupCode,
    steps: &mut Steps<'_>,
) -> Result<(LinkSession<BoxedTransport>, DeviceInfo), PairError> {
    let t0 = steps.start(Step::Handshake);
    let mut session = client.authenticate(setup_code).await?;
    steps.done(Step::Handshake, t0, "setup code accepted".into());

    let t0 = steps.start(Step::DeviceInfo);
    let info = session.device_info().await?;
    steps.done(
        Step::DeviceInfo,
        t0,
        format!("product {} serial {}", info.product_id, info.dsn),
    );
    Ok((session, info))
}

/// Step 5: the Wi-Fi step, while the speaker cannot reach LWA (or when
/// [`PairOptions::force_wifi`] asks). A 1.0 speaker says nothing about its network: it is taken
/// to be online, as before. Without a chooser, or on a speaker that cannot join Wi-Fi, the
/// pairing stops here rather than sending the user to a sign-in nobody can redeem.
async fn wifi_if_offline(
    session: &mut LinkSession<BoxedTransport>,
    info: &DeviceInfo,
    opts: &mut PairOptions,
    steps: &mut Steps<'_>,
) -> Result<(), PairError> {
    let offline = info.network.as_ref().filter(|n| !n.online);
    if offline.is_none() && !opts.force_wifi {
        return Ok(());
    }
    let reason = offline.map_or_else(
        || "asked to change the speaker's network".to_owned(),
        wifi::offline_reason,
    );
    steps.tell(PairEvent::WifiNeeded {
        reason: reason.clone(),
    });
    let Some(chooser) = opts.wifi.as_mut() else {
        return Err(PairError::SpeakerOffline { reason });
    };
    if !wifi::supported(session) {
        return Err(PairError::SpeakerOffline {
            reason: format!("{reason}; this speaker cannot join Wi-Fi over the link"),
        });
    }
    let t0 = steps.start(Step::Wifi);
    let joined = run_wifi_step(session, chooser.as_mut(), &mut *steps.observe).await?;
    steps.done(Step::Wifi, t0, joined);
    Ok(())
}

/// Step 6: the sign-in. The pre-flight runs before any browser opens, so LWA's refusal of the
/// client id or redirect URI is told at once rather than after the user has signed in.
/// Returns the code and the redirect URI it was issued for (the exchange must name the same).
async fn sign_in(
    info: &DeviceInfo,
    opts: &mut PairOptions,
    steps: &mut Steps<'_>,
) -> Result<(AuthorizationCode, RedirectUri), PairError> {
    let t0 = steps.start(Step::Login);
    let login = PendingLogin::prepare(
        &opts.authorize_endpoint,
        &opts.client_id,
        &opts.redirect,
        info,
    )
    .await?;
    if let Some(limit) = opts.preflight {
        preflight::check(
            login.authorize_url(),
            &opts.client_id,
            login.redirect_uri(),
            limit,
        )
        .await?;
    }
    let browser = open_browser(&login, &opts.browser, opts.browser_failure_is_fatal, steps).await?;
    steps.tell(PairEvent::LoginUrl {
        url: login.url().to_string(),
        automatic: login.listens(),
        browser_opened: browser.is_some(),
    });
    let redirect_uri = login.redirect_uri().clone();
    let code = wait_for_code(login, browser, opts, steps).await?;
    steps.done(Step::Login, t0, "authorization code received".into());
    Ok((code, redirect_uri))
}

/// Opens the sign-in page in a browser. Unless a browser failure is fatal a person is there: a
/// browser command that fails at once (BROWSER=false, an opener with no browser to hand the
/// URL to) is told as such, with the URL to open by hand, not as "the browser window that
/// opened".
async fn open_browser(
    login: &PendingLogin,
    how: &Browser,
    failure_is_fatal: bool,
    steps: &mut Steps<'_>,
) -> Result<Option<BrowserProcess>, PairError> {
    let failed = |message: String| PairEvent::BrowserFailed {
        message,
        url: login.url().to_string(),
        automatic: login.listens(),
    };
    let mut browser = match browser::open(login.url(), how) {
        Ok(b) => b,
        Err(e) if failure_is_fatal => {
            return Err(crate::login::LoginError::Browser(e.to_string().into()).into())
        }
        Err(browser::BrowserError::Launch(why)) => {
            steps.tell(failed(format!("could not open a browser ({why})")));
            None
        }
    };
    if let (false, Some(b)) = (failure_is_fatal, browser.as_mut()) {
        if let Ok(Err(failure)) = tokio::time::timeout(BROWSER_GRACE, b.exit()).await {
            steps.tell(failed(format!(
                "could not open a browser ({})",
                failure.short()
            )));
            browser = None;
        }
    }
    Ok(browser)
}

/// Waits for the authorization code: the captured redirect, or a pasted return address.
async fn wait_for_code(
    login: PendingLogin,
    browser: Option<BrowserProcess>,
    opts: &mut PairOptions,
    steps: &mut Steps<'_>,
) -> Result<AuthorizationCode, PairError> {
    let start_url = login.url().to_string();
    let automatic = login.listens();
    let wait = LoginWait {
        browser,
        pasted: opts.pasted.take(),
        timeout: opts.login_timeout,
        browser_failure_is_fatal: opts.browser_failure_is_fatal,
    };
    let code = login
        .complete_observed(wait, &mut |notice| {
            steps.tell(match notice {
                LoginNotice::BrowserFailed { message } => PairEvent::BrowserFailed {
                    message,
                    url: start_url.clone(),
                    automatic,
                },
                LoginNotice::PasteRejected { why, tries_left } => {
                    PairEvent::PasteRejected { why, tries_left }
                }
            })
        })
        .await?;
    Ok(code)
}

/// Step 7: hands the code over and follows the speaker's exchange. When the speaker says the
/// same code may be retried (LWA unreachable), the handover runs again on the same session
/// after a growing pause, so the user does not have to sign in again.
async fn exchange(
    session: &mut LinkSession<BoxedTransport>,
    session_id: SessionId,
    code: AuthorizationCode,
    redirect_uri: &RedirectUri,
    opts: &mut PairOptions,
    steps: &mut Steps<'_>,
) -> Result<Linked, PairError> {
    let t0 = steps.start(Step::Exchange);
    let mut attempt = 0;
    let linked = loop {
        let result = hand_over(
            session,
            session_id,
            code.clone(),
            &opts.client_id,
            redirect_uri,
            opts.handover,
            |stage| steps.tell(PairEvent::Progress { stage }),
            opts.confirm_switch.as_deref_mut(),
        )
        .await;
        match result {
            Ok(linked) => break linked,
            Err(HandoverError::Failed { failure, .. })
                if failure.retry_with_same_code && attempt < opts.exchange_retries =>
            {
                attempt += 1;
                steps.tell(PairEvent::Retrying {
                    attempt,
                    reason: failure
                        .description
                        .clone()
                        .unwrap_or_else(|| format!("{:?}", failure.class)),
                });
                tokio::time::sleep(Duration::from_secs(u64::from(attempt) * 2)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let detail = match linked.account_text() {
        Some(a) => format!("linked to {a}"),
        None => "linked".to_owned(),
    };
    steps.done(Step::Exchange, t0, detail);
    Ok(linked)
}

/// Scan, choose, join, until the speaker is on a network that reaches LWA or the chooser gives
/// up. Returns what to show ("on Home-5G at 192.0.2.7").
async fn run_wifi_step<T: shared_protocol::frame::FrameTransport>(
    session: &mut crate::link::LinkSession<T>,
    chooser: &mut dyn WifiChooser,
    observe: &mut (dyn FnMut(PairEvent) + Send),
) -> Result<String, PairError> {
    let joined = wifi::choose_and_join(session, chooser, &mut |event| {
        observe(match event {
            JoinEvent::Stage(stage) => PairEvent::WifiProgress { stage },
            JoinEvent::Failed(message) => PairEvent::WifiFailed {
                message: message.to_owned(),
            },
        })
    })
    .await?;
    Ok(joined.to_string())
}
