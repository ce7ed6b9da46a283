//! Running one pairing at a time on the async runtime, and telling the window about it.
//!
//! The pairing itself is the core's [`companion_app::pair`]; this module only
//!
//! - starts it on a background task (never on the UI thread), with the browser left closed: the
//!   sign-in page is opened when the user presses the button on the Sign-in screen
//!   ([`PairingController::open_sign_in`]), so a browser never pops up unannounced;
//! - translates the core's step events into the window's [`PairingEvent`]s;
//! - sets the Wi-Fi chooser ([`crate::wifi::WindowChooser`]): an offline speaker's scan goes to
//!   the window's Wi-Fi screen, and `choose_wifi` ([`PairingController::choose_wifi`]) answers;
//! - sets the account-switch confirmer ([`crate::account_switch::WindowConfirm`]): a speaker
//!   linked to another account asks the window, `answer_account_switch` answers;
//! - cancels: the Cancel button, a new pairing, or the window closing abort the task, which drops
//!   the link (the speaker sees the connection close) and the redirect listener;
//! - keeps what a retry may reuse: the speaker and the setup code, unless the speaker said the
//!   code was wrong. The code stays in Rust memory (zeroized on drop), never in the window.
//!
//! Every attempt has an id; each emits exactly one final event (linked, failed or cancelled).

use std::sync::{Arc, Mutex, MutexGuard};

use companion_app::discovery::Device;
use companion_app::handover::HandoverError;
use companion_app::login::{Browser, BrowserProcess, LoginError};
use companion_app::words::Words;
use companion_app::{pair, ExitKind, PairError, PairEvent, PairOptions, Step, Target};
use shared_protocol::message::ProgressStage;
use shared_protocol::setup_code::SetupCode;
use tokio::sync::{mpsc, oneshot};
use url::Url;

use crate::account_switch::{SwitchSlot, WindowConfirm};
use crate::browser::SignInOpener;
use crate::ipc::{CommandError, PairingEvent, PairingStarted, Stage, StageState, WifiChoiceInput};
use crate::wifi::{WifiSlot, WindowChooser};
use crate::{errors, speakers::Speakers};

/// Where pairing events go (the window, or a test).
pub type PairingSink = Arc<dyn Fn(PairingEvent) + Send + Sync>;

/// What a pairing needs from the settings.
#[derive(Debug, Clone)]
pub struct PairSettings {
    /// The user's LWA client id.
    pub client_id: shared_protocol::ids::ClientId,
    /// Where the sign-in comes back.
    pub redirect: companion_app::RedirectTarget,
    /// `/ap/oa` of Amazon or the emulator.
    pub authorize_endpoint: Url,
}

struct Running {
    id: u64,
    task: tokio::task::JoinHandle<()>,
    login_url: Option<Url>,
    paste: mpsc::Sender<String>,
    /// Tells the browser watcher the pairing is over.
    browser_done: Option<oneshot::Sender<()>>,
    /// The Wi-Fi question waiting for the window's answer.
    wifi: WifiSlot,
    /// The account-switch question waiting for the window's answer.
    switch: SwitchSlot,
}

struct Retained {
    device: Device,
    code: Option<SetupCode>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    running: Option<Running>,
    retained: Option<Retained>,
}

/// The one pairing that may run.
pub struct PairingController {
    inner: Mutex<Inner>,
    sink: PairingSink,
    opener: Arc<dyn SignInOpener>,
    speakers: Arc<Speakers>,
}

impl std::fmt::Debug for PairingController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingController").finish_non_exhaustive()
    }
}

impl PairingController {
    /// A controller reporting to `sink`, opening sign-in pages with `opener`.
    pub fn new(
        sink: PairingSink,
        opener: Arc<dyn SignInOpener>,
        speakers: Arc<Speakers>,
    ) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            sink,
            opener,
            speakers,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts pairing `device` with `code` (cancelling any pairing still running). Must run
    /// inside the async runtime.
    pub fn start(
        self: &Arc<Self>,
        device: Device,
        code: SetupCode,
        settings: PairSettings,
    ) -> PairingStarted {
        self.cancel();
        let (paste_tx, paste_rx) = mpsc::channel(4);
        // The id, the retained speaker and the running attempt change under one lock, so a
        // command arriving meanwhile sees either the old attempt or the whole new one.
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let wifi = WifiSlot::default();
        let switch = SwitchSlot::default();
        let options = self.options(id, code.clone(), settings, paste_rx, &wifi, &switch);
        inner.retained = Some(Retained {
            device: device.clone(),
            code: Some(code),
        });
        let started = PairingStarted {
            pairing_id: id,
            speaker_name: device.name.clone(),
        };
        let task = self.spawn(id, device, options);
        inner.running = Some(Running {
            id,
            task,
            login_url: None,
            paste: paste_tx,
            browser_done: None,
            wifi,
            switch,
        });
        started
    }

    /// The core's options for attempt `id`: the window answers the Wi-Fi and account-switch
    /// questions through `wifi` and `switch`, and pasted addresses arrive on `pasted`.
    fn options(
        &self,
        id: u64,
        code: SetupCode,
        settings: PairSettings,
        pasted: mpsc::Receiver<String>,
        wifi: &WifiSlot,
        switch: &SwitchSlot,
    ) -> PairOptions {
        let mut options = PairOptions::new(
            settings.client_id,
            settings.redirect,
            settings.authorize_endpoint,
            code,
        );
        // The window opens the browser when the user asks (open_sign_in).
        options.browser = Browser::Manual;
        // Over the transports the list found it on (TCP, then Bluetooth).
        options.connectors = Some(self.speakers.connectors().clone());
        options.pasted = Some(pasted);
        options.wifi = Some(Box::new(WindowChooser::new(
            id,
            self.sink.clone(),
            wifi.clone(),
        )));
        options.confirm_switch = Some(Box::new(WindowConfirm::new(
            id,
            self.sink.clone(),
            switch.clone(),
        )));
        options
    }

    /// Runs attempt `id`, its events translated for the window, and reports how it ended.
    fn spawn(
        self: &Arc<Self>,
        id: u64,
        device: Device,
        options: PairOptions,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut translator = Translator::new(id);
            let observer_me = me.clone();
            let mut observe = move |event: PairEvent| {
                if let PairEvent::LoginUrl { url, .. } = &event {
                    observer_me.remember_login_url(id, url);
                }
                for out in translator.translate(event) {
                    (observer_me.sink)(out);
                }
            };
            let result = pair(Target::Device(device), options, &mut observe).await;
            me.finish(id, result);
        })
    }

    /// Starts again with what the last attempt left: same speaker, same setup code.
    pub fn retry(self: &Arc<Self>, settings: PairSettings) -> Result<PairingStarted, CommandError> {
        let (device, code) = {
            let inner = self.lock();
            match &inner.retained {
                Some(Retained {
                    device,
                    code: Some(code),
                }) => (device.clone(), code.clone()),
                Some(Retained { code: None, .. }) => {
                    return Err(CommandError::new("Enter the setup code again."))
                }
                None => return Err(CommandError::new("There is no pairing to retry.")),
            }
        };
        Ok(self.start(device, code, settings))
    }

    fn remember_login_url(&self, id: u64, url: &str) {
        let mut inner = self.lock();
        if let Some(r) = inner.running.as_mut().filter(|r| r.id == id) {
            r.login_url = Url::parse(url).ok();
        }
    }

    fn finish(&self, id: u64, result: Result<companion_app::PairReport, PairError>) {
        let running = {
            let mut inner = self.lock();
            if inner.running.as_ref().map(|r| r.id) != Some(id) {
                return; // cancelled meanwhile: the cancel already reported
            }
            if let Err(e) = &result {
                if e.exit_kind() == ExitKind::WrongSetupCode {
                    if let Some(r) = inner.retained.as_mut() {
                        r.code = None;
                    }
                }
            }
            inner.running.take()
        };
        if let Some(r) = running {
            if let Some(done) = r.browser_done {
                let _ = done.send(());
            }
        }
        let event = match result {
            Ok(report) => {
                self.speakers.mark_paired(report.device_id.as_str());
                PairingEvent::Linked {
                    pairing_id: id,
                    speaker_id: report.device_id.as_str().to_owned(),
                    speaker_name: report.name,
                    user_id: report.user_id.map(|u| u.as_str().to_owned()),
                    account: report.account.as_ref().map(crate::account_switch::view),
                    total_millis: report.total_millis,
                }
            }
            Err(PairError::Handover(HandoverError::KeptCurrent { current, new, .. })) => {
                PairingEvent::KeptAccount {
                    pairing_id: id,
                    account: crate::account_switch::view(&current),
                    not_linked: new.as_deref().map(crate::account_switch::view),
                }
            }
            Err(e) => {
                match &e {
                    // A lost race's sentence names another person's account: not for the log.
                    PairError::Handover(HandoverError::Failed { failure, .. })
                        if failure.linked_by_other.is_some() =>
                    {
                        tracing::info!(
                            pairing = id,
                            "pairing failed: another companion linked the speaker first"
                        )
                    }
                    _ => tracing::info!(pairing = id, "pairing failed: {e}"),
                }
                PairingEvent::Failed {
                    pairing_id: id,
                    error: errors::view(&e),
                }
            }
        };
        (self.sink)(event);
    }

    /// Fails the running attempt `id` with `err` (a watcher saw something the core can't).
    fn fail(&self, id: u64, err: PairError) {
        let running = {
            let mut inner = self.lock();
            if inner.running.as_ref().map(|r| r.id) != Some(id) {
                return;
            }
            inner.running.take()
        };
        if let Some(r) = running {
            r.task.abort();
        }
        (self.sink)(PairingEvent::Failed {
            pairing_id: id,
            error: errors::view(&err),
        });
    }

    /// Opens the sign-in page of the running pairing in the user's browser.
    pub fn open_sign_in(self: &Arc<Self>) -> Result<(), CommandError> {
        let (id, url) = {
            let inner = self.lock();
            let r = inner
                .running
                .as_ref()
                .ok_or_else(|| CommandError::new("No pairing is waiting for a sign-in."))?;
            let url = r
                .login_url
                .clone()
                .ok_or_else(|| CommandError::new("The sign-in page is not ready yet."))?;
            (r.id, url)
        };
        let process = self.opener.open(&url).map_err(|why| {
            CommandError::new(format!(
                "Couldn't open your browser ({why}). Copy the link and open it yourself."
            ))
        })?;
        if let Some(process) = process {
            self.watch_browser(id, process);
        }
        (self.sink)(PairingEvent::BrowserOpened { pairing_id: id });
        Ok(())
    }

    /// A browser command that fails (a scripted browser that could not sign in) ends the attempt
    /// with its reason instead of leaving the window waiting for a redirect that won't come.
    fn watch_browser(self: &Arc<Self>, id: u64, mut process: BrowserProcess) {
        let (done_tx, done_rx) = oneshot::channel();
        {
            let mut inner = self.lock();
            match inner.running.as_mut().filter(|r| r.id == id) {
                Some(r) => {
                    if let Some(old) = r.browser_done.replace(done_tx) {
                        let _ = old.send(());
                    }
                }
                None => return,
            }
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::select! {
                why = process.failure() => {
                    if let Some(me) = me.upgrade() {
                        me.fail(id, LoginError::browser_failed(&why).into());
                    }
                }
                _ = done_rx => process.finish(std::time::Duration::from_millis(500)).await,
            }
        });
    }

    /// Hands the core the address the user landed on (redirect URIs we can't listen on).
    pub fn paste_redirect(&self, text: String) -> Result<(), CommandError> {
        if text.len() > 8192 {
            return Err(CommandError::new(
                "That is too long to be the sign-in address.",
            ));
        }
        let inner = self.lock();
        let r = inner
            .running
            .as_ref()
            .ok_or_else(|| CommandError::new("No pairing is waiting for a sign-in."))?;
        r.paste
            .try_send(text)
            .map_err(|_| CommandError::new("The sign-in is no longer waiting for an address."))
    }

    /// Answers the running pairing's account-switch question (`true`: replace).
    pub fn answer_account_switch(&self, replace: bool) -> Result<(), CommandError> {
        let slot = {
            let inner = self.lock();
            let r = inner.running.as_ref().ok_or_else(|| {
                CommandError::new("No pairing is asking about the speaker's account.")
            })?;
            r.switch.clone()
        };
        slot.answer(replace)
    }

    /// Hands the running pairing's Wi-Fi step the network the user chose.
    pub fn choose_wifi(&self, choice: WifiChoiceInput) -> Result<(), CommandError> {
        let slot = {
            let inner = self.lock();
            let r = inner
                .running
                .as_ref()
                .ok_or_else(|| CommandError::new("No pairing is waiting for a Wi-Fi network."))?;
            r.wifi.clone()
        };
        slot.answer(choice)
    }

    /// Stops the running pairing, if any; reports it cancelled. Safe to call any time.
    pub fn cancel(&self) -> bool {
        let running = self.lock().running.take();
        match running {
            Some(r) => {
                r.task.abort();
                if let Some(done) = r.browser_done {
                    let _ = done.send(());
                }
                (self.sink)(PairingEvent::Cancelled { pairing_id: r.id });
                true
            }
            None => false,
        }
    }

    /// True while an attempt runs.
    pub fn is_running(&self) -> bool {
        self.lock().running.is_some()
    }
}

/// Turns the core's step events into the window's stages.
struct Translator {
    id: u64,
    exchange_started: bool,
    /// The handshake's and the device info's time: one stage on screen.
    secure_millis: f64,
}

impl Translator {
    fn new(id: u64) -> Self {
        Self {
            id,
            exchange_started: false,
            secure_millis: 0.0,
        }
    }

    fn stage(
        &self,
        stage: Stage,
        state: StageState,
        detail: Option<String>,
        millis: Option<f64>,
    ) -> PairingEvent {
        PairingEvent::Stage {
            pairing_id: self.id,
            stage,
            state,
            detail,
            millis,
        }
    }

    fn translate(&mut self, event: PairEvent) -> Vec<PairingEvent> {
        match event {
            PairEvent::StepStarted { step } => self.step_started(step),
            PairEvent::StepDone {
                step,
                millis,
                detail,
            } => self.step_done(step, millis, detail),
            PairEvent::LoginUrl { url, automatic, .. } => vec![PairingEvent::SignIn {
                pairing_id: self.id,
                url,
                automatic,
            }],
            PairEvent::Progress { stage } => self.progress(stage),
            PairEvent::Retrying { attempt, reason } => vec![PairingEvent::Retrying {
                pairing_id: self.id,
                attempt,
                reason,
            }],
            // The Wi-Fi screen comes with the chooser's question (WifiChoose); a failure's
            // reason comes with the next question, so WifiNeeded and WifiFailed add nothing.
            PairEvent::WifiProgress { stage } => vec![PairingEvent::WifiProgress {
                pairing_id: self.id,
                detail: crate::wifi::stage_text(stage),
            }],
            PairEvent::WifiNeeded { .. } | PairEvent::WifiFailed { .. } => vec![],
            PairEvent::PasteRejected { why, tries_left } => {
                vec![self.paste_rejected(&why, tries_left)]
            }
            // The window opens the browser itself (open_sign_in) and reports its failure there;
            // the core starts none for it.
            PairEvent::BrowserFailed { .. } => vec![],
        }
    }

    /// The window has no stage for discovery, the device info (part of "secure") or Wi-Fi
    /// (its own screen).
    fn step_started(&self, step: Step) -> Vec<PairingEvent> {
        let stage = match step {
            Step::Connect => Stage::Connect,
            Step::Handshake => Stage::Secure,
            Step::Login => Stage::SignIn,
            Step::Exchange => Stage::HandOver,
            Step::Discovery | Step::DeviceInfo | Step::Wifi => return vec![],
        };
        vec![self.stage(stage, StageState::Active, None, None)]
    }

    fn step_done(&mut self, step: Step, millis: f64, detail: String) -> Vec<PairingEvent> {
        use StageState::Done;
        match step {
            Step::Connect => vec![self.stage(Stage::Connect, Done, None, Some(millis))],
            Step::Handshake => {
                self.secure_millis += millis;
                vec![]
            }
            // The secure stage ends when the speaker has given its sign-in parameters.
            Step::DeviceInfo => {
                self.secure_millis += millis;
                vec![self.stage(Stage::Secure, Done, None, Some(self.secure_millis))]
            }
            Step::Login => vec![self.stage(Stage::SignIn, Done, None, Some(millis))],
            // A speaker that sent no progress: the hand-over stage still ends before the
            // exchange's.
            Step::Exchange => {
                let mut out = Vec::new();
                if !self.exchange_started {
                    out.push(self.stage(Stage::HandOver, Done, None, None));
                }
                out.push(self.stage(Stage::Exchange, Done, None, Some(millis)));
                out
            }
            Step::Wifi => vec![PairingEvent::WifiJoined {
                pairing_id: self.id,
                detail,
            }],
            Step::Discovery => vec![],
        }
    }

    /// The speaker's first progress ends the hand-over stage; each one shows in the exchange's.
    fn progress(&mut self, stage: ProgressStage) -> Vec<PairingEvent> {
        let mut out = Vec::new();
        if !self.exchange_started {
            self.exchange_started = true;
            out.push(self.stage(Stage::HandOver, StageState::Done, None, None));
        }
        out.push(self.stage(
            Stage::Exchange,
            StageState::Active,
            Some(progress_text(stage).into()),
            None,
        ));
        out
    }

    fn paste_rejected(&self, why: &Words, tries_left: u32) -> PairingEvent {
        PairingEvent::PasteRejected {
            pairing_id: self.id,
            // The core's plain words: no `code` marks.
            message: format!(
                "{}. Paste it again ({tries_left} {} left).",
                errors::sentence(&why.plain()).trim_end_matches('.'),
                if tries_left == 1 { "try" } else { "tries" }
            ),
        }
    }
}

fn progress_text(stage: ProgressStage) -> &'static str {
    match stage {
        ProgressStage::Received => "Received the sign-in",
        ProgressStage::ExchangingCode => "Exchanging the code with Amazon",
        ProgressStage::StoringTokens => "Saving its sign-in",
        ProgressStage::FetchingProfile => "Reading your account name",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_become_stages_in_order() {
        let mut t = Translator::new(7);
        let mut out = Vec::new();
        for e in [
            PairEvent::StepStarted {
                step: Step::Connect,
            },
            PairEvent::StepDone {
                step: Step::Connect,
                millis: 3.0,
                detail: String::new(),
            },
            PairEvent::StepStarted {
                step: Step::Handshake,
            },
            PairEvent::StepDone {
                step: Step::Handshake,
                millis: 9.0,
                detail: String::new(),
            },
            PairEvent::StepStarted {
                step: Step::DeviceInfo,
            },
            PairEvent::StepDone {
                step: Step::DeviceInfo,
                millis: 1.0,
                detail: String::new(),
            },
            PairEvent::StepStarted { step: Step::Login },
            PairEvent::LoginUrl {
                url: "http://127.0.0.1:1/ap/oa".into(),
                automatic: true,
                browser_opened: false,
            },
            PairEvent::StepDone {
                step: Step::Login,
                millis: 900.0,
                detail: String::new(),
            },
            PairEvent::StepStarted {
                step: Step::Exchange,
            },
            PairEvent::Progress {
                stage: ProgressStage::Received,
            },
            PairEvent::Progress {
                stage: ProgressStage::ExchangingCode,
            },
            PairEvent::StepDone {
                step: Step::Exchange,
                millis: 40.0,
                detail: String::new(),
            },
        ] {
            out.extend(t.translate(e));
        }
        let summary: Vec<String> = out
            .iter()
            .map(|e| match e {
                PairingEvent::Stage { stage, state, .. } => format!("{stage:?}:{state:?}"),
                PairingEvent::SignIn { .. } => "signIn".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "Connect:Active",
                "Connect:Done",
                "Secure:Active",
                "Secure:Done",
                "SignIn:Active",
                "signIn",
                "SignIn:Done",
                "HandOver:Active",
                "HandOver:Done",
                "Exchange:Active",
                "Exchange:Active",
                "Exchange:Done"
            ]
        );
        assert!(out.iter().all(|e| e.pairing_id() == 7));
    }

    /// Issue 15.9: a rejected paste reaches the sign-in screen as a sentence with the tries left.
    #[test]
    fn a_rejected_paste_becomes_a_sentence_for_the_sign_in_screen() {
        let mut t = Translator::new(3);
        let out = t.translate(PairEvent::PasteRejected {
            why: "that address has no authorization code; paste the address the browser shows after you choose Allow".into(),
            tries_left: 1,
        });
        assert_eq!(
            out,
            [PairingEvent::PasteRejected {
                pairing_id: 3,
                message: "That address has no authorization code; paste the address the browser shows after you choose Allow. Paste it again (1 try left).".into(),
            }]
        );
        let out = t.translate(PairEvent::PasteRejected {
            why: Words::from("that address belongs to another sign-in (its ")
                .code("state")
                .text(" is different)"),
            tries_left: 2,
        });
        assert_eq!(
            out,
            [PairingEvent::PasteRejected {
                pairing_id: 3,
                message: "That address belongs to another sign-in (its state is different). Paste it again (2 tries left).".into(),
            }]
        );
    }
}
