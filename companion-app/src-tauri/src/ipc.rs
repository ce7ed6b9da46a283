//! The contract between the window and the Rust side: every command's arguments and answers and
//! every event's payload, in one place.
//!
//! The web UI's types are generated from these ([`typescript`] writes
//! `companion-app/ui/src/bindings.ts`; `tests/ipc_bindings.rs` fails while that file is stale, and
//! `AVS_UPDATE_BINDINGS=1` rewrites it). The names here are what goes over the wire (camelCase
//! fields, lowerCamel tags): the Rust tests pin the JSON shape (`tests/commands.rs`).
//!
//! Nothing secret ever goes *to* the window: no authorization code, token or verifier crosses
//! this boundary, and the setup code only travels window → Rust, once, when pairing starts.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Event names (Rust → window).
pub mod event {
    /// [`super::SpeakersView`]: the whole list, sent whenever it changes.
    pub const SPEAKERS: &str = "speakers";
    /// [`super::PairingEvent`]: one step of the running pairing.
    pub const PAIRING: &str = "pairing";
}

/// How a speaker was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, TS)]
#[serde(rename_all = "camelCase")]
pub enum Transport {
    /// Wi-Fi / Ethernet, found by mDNS.
    Wifi,
    /// Bluetooth LE.
    Ble,
    /// Typed in by the user as `IP:PORT`.
    Address,
}

/// A speaker's pairing window as the list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum WindowState {
    /// Ready to pair.
    Open,
    /// Not accepting pairing: reopen it on the speaker.
    Closed,
    /// Closed after too many wrong setup codes.
    LockedOut,
}

/// One row of the speakers list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerView {
    /// Stable device id (the key of the row).
    pub id: String,
    /// User-visible name.
    pub name: String,
    /// Every way it was seen.
    pub transports: Vec<Transport>,
    /// Best address (`IP:PORT`), if reachable over IP.
    pub address: Option<String>,
    /// Already linked to an account.
    pub paired: bool,
    /// Its pairing window.
    pub window: WindowState,
    /// When it was last reported, in milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
    /// True while a discovery transport holds a live record of it (mDNS drops a record within
    /// about 2 minutes of the speaker going silent): "active now". False for a speaker only
    /// known from its address: then `last_seen_ms` is when it last answered.
    pub live: bool,
    /// The speaker said its last check of the internet failed (`net=1` in its mDNS or Bluetooth
    /// record): pairing it starts with the Wi-Fi screen. False when it said nothing.
    pub needs_network: bool,
}

/// Whether automatic discovery runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum DiscoveryMode {
    /// Listening for speakers on the local network.
    Searching,
    /// Turned off (`AVS_COMPANION_MDNS=off`): speakers are added by address.
    Off,
    /// Could not start; `message` says why.
    Failed,
}

/// The speakers list (event [`event::SPEAKERS`] and answer of `start_discovery`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SpeakersView {
    /// Discovery state.
    pub discovery: DiscoveryMode,
    /// Why discovery failed or is off.
    pub message: Option<String>,
    /// Sorted by name.
    pub speakers: Vec<SpeakerView>,
}

/// Amazon region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum RegionView {
    /// North America.
    Na,
    /// Europe.
    Eu,
    /// Far East.
    Fe,
}

/// One choice of the region list (the list comes from Rust, never copied in the UI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RegionChoice {
    /// The value.
    pub region: RegionView,
    /// What the list shows ("North America").
    pub label: String,
}

/// The settings as the form shows them (empty string = not set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    /// LWA client id.
    pub client_id: String,
    /// Redirect URI ("" = the loopback default).
    pub redirect_uri: String,
    /// The Amazon region whose sign-in pages and token endpoint are used.
    pub region: RegionView,
    /// LWA base URL ("" = Amazon).
    pub lwa_base_url: String,
    /// What an empty redirect URI means.
    pub default_redirect_uri: String,
    /// Where they are stored.
    pub config_path: String,
    /// True when pairing can start (a client id is set).
    pub ready: bool,
    /// Every region, in the order the form lists them.
    pub regions: Vec<RegionChoice>,
}

/// What `save_settings` receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SettingsInput {
    /// LWA client id ("" = unset).
    pub client_id: String,
    /// Redirect URI ("" = default).
    pub redirect_uri: String,
    /// The Amazon region whose sign-in pages and token endpoint are used.
    pub region: RegionView,
    /// LWA base URL ("" = Amazon).
    pub lwa_base_url: String,
}

/// A settings field, for pointing at the wrong one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum SettingsField {
    /// Client id.
    ClientId,
    /// Redirect URI.
    RedirectUri,
    /// LWA base URL.
    LwaBaseUrl,
}

/// How far a typed setup code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum CodeStatus {
    /// Still typing: nothing wrong yet.
    Incomplete,
    /// Parses as a setup code (8 digits, or a manual code or QR text whose check digit
    /// matches): Pair can start.
    Valid,
    /// Wrong: `message` says why.
    Invalid,
}

/// Which form the user entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum CodeFormat {
    /// 8 digits.
    Digits,
    /// 8 digits and a check digit (`1234-5670-9`).
    Manual,
    /// A pasted QR payload (`AVSPAIR:1:<device id>:<code>`).
    Qr,
}

/// Answer of `check_setup_code`. Never repeats the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SetupCodeCheck {
    /// How far it is.
    pub status: CodeStatus,
    /// Which form, once recognisable.
    pub format: Option<CodeFormat>,
    /// A sentence for the user ("" while incomplete and unremarkable).
    pub message: String,
    /// The device a QR payload names.
    pub device_id: Option<String>,
}

/// Answer of `start_pairing` / `retry_pairing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PairingStarted {
    /// Tags every [`PairingEvent`] of this attempt.
    pub pairing_id: u64,
    /// The speaker's name.
    pub speaker_name: String,
}

/// The progress stages the window shows, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// TCP connect and version check.
    Connect,
    /// The setup-code handshake (PAKE) and the speaker's sign-in parameters.
    Secure,
    /// Amazon sign-in in the browser.
    SignIn,
    /// The authorization code goes to the speaker.
    HandOver,
    /// The speaker exchanges it with Amazon.
    Exchange,
}

/// Where a stage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum StageState {
    /// Running now.
    Active,
    /// Finished well.
    Done,
}

/// What kind of failure (picks the title, icon and the default next step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// The setup code does not match the speaker's.
    WrongSetupCode,
    /// Pairing window closed, locked out or busy.
    NotPairable,
    /// The speaker can't be reached or stopped answering.
    Unreachable,
    /// The user declined or did not finish the sign-in.
    SignInCancelled,
    /// The sign-in failed (state mismatch, browser failed, an LWA error on the redirect).
    SignInFailed,
    /// Amazon refused the speaker's code exchange.
    AmazonRefused,
    /// Protocol versions don't overlap.
    Incompatible,
    /// A setting is missing or wrong.
    Settings,
    /// Anything else.
    Failure,
}

/// What the primary button of the error screen does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum RetryMode {
    /// `retry_pairing`: same speaker, same setup code.
    SameCode,
    /// Back to the setup code screen (the code was wrong).
    NewCode,
    /// Open settings, then retry.
    Settings,
    /// Back to the list.
    ChooseSpeaker,
}

/// Why a pairing failed, phrased for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PairingErrorView {
    /// The class.
    pub kind: ErrorKind,
    /// A short heading.
    pub title: String,
    /// The exact reason and what to do: the core's sentence in the window's words (no CLI
    /// commands, no quotes of LWA: the core's `Words::plain`).
    pub message: String,
    /// The core's exact sentence, when `message` left something out: shown under Advanced.
    #[ts(optional = nullable)]
    pub detail: Option<String>,
    /// The suggested next step.
    pub retry: RetryMode,
}

/// One network of the speaker's Wi-Fi scan, as the Wi-Fi screen lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WifiNetworkView {
    /// Its position in the scan: what [`WifiChoiceInput::network`] names (SSIDs are bytes, not
    /// always text, so the window never sends a scanned name back).
    pub index: u32,
    /// The name for a person (invalid UTF-8 replaced, control characters escaped).
    pub ssid: String,
    /// Signal strength, percent (0-100).
    pub signal: u8,
    /// Needs a password (the lock icon).
    pub secured: bool,
    /// The speaker can join it (not enterprise or WEP).
    pub supported: bool,
    /// The speaker has a saved profile for it.
    pub known: bool,
}

/// What `choose_wifi` receives: a scanned network (by index) or a hidden one (by name), and the
/// password. The password travels window → Rust once per attempt and is never sent back.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WifiChoiceInput {
    /// [`WifiNetworkView::index`] of the chosen network; `None` for "Other network…".
    pub network: Option<u32>,
    /// The hidden network's name (with `network: None`).
    pub hidden_ssid: Option<String>,
    /// The password; `None` or "" for an open network. Redacted in Debug, zeroized on drop.
    #[ts(type = "string | null")]
    pub password: Option<shared_protocol::secret::WifiPassphrase>,
}

/// An Amazon account as the window shows it (the speaker read it from `/user/profile`).
/// `label` is the line for a person, in the CLI's words (`companion_app::handover::account_label`):
/// "Alice Example (alice@example.com)", or "Amazon account amzn1.account.…" when the account's
/// name and e-mail could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    /// `amzn1.account.…`.
    pub user_id: String,
    /// The customer's name, if readable.
    pub name: Option<String>,
    /// The customer's e-mail address, if readable.
    pub email: Option<String>,
    /// "Alice Example (alice@example.com)"; "Amazon account amzn1.account.…" without a name and
    /// e-mail.
    pub label: String,
}

/// One thing that happened in a pairing (event [`event::PAIRING`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum PairingEvent {
    /// A stage started or finished.
    Stage {
        /// Which attempt.
        pairing_id: u64,
        /// Which stage.
        stage: Stage,
        /// Started or finished.
        state: StageState,
        /// What is happening inside it ("Saving the sign-in on the speaker").
        detail: Option<String>,
        /// How long it took (finished stages).
        millis: Option<f64>,
    },
    /// The sign-in page is ready: the window asks the user to open it (`open_sign_in`).
    SignIn {
        /// Which attempt.
        pairing_id: u64,
        /// The `/ap/oa` URL (public by design: challenge and state are not secrets).
        url: String,
        /// True when the redirect comes back by itself (loopback listener); false when the
        /// user must paste the address they land on (`paste_redirect`).
        automatic: bool,
    },
    /// The sign-in page was handed to the browser.
    BrowserOpened {
        /// Which attempt.
        pairing_id: u64,
    },
    /// A pasted address was not this sign-in's return address: the sign-in screen says why and
    /// takes another (a few times, within the sign-in's time).
    PasteRejected {
        /// Which attempt.
        pairing_id: u64,
        /// What was wrong and how many pastes are left, as a sentence.
        message: String,
    },
    /// The speaker is offline: the window shows the Wi-Fi screen and answers with `choose_wifi`
    /// (or `cancel_pairing`). Sent again after a failed join, with the reason.
    WifiChoose {
        /// Which attempt.
        pairing_id: u64,
        /// The scan, strongest first (hidden networks left out).
        networks: Vec<WifiNetworkView>,
        /// Why the last join failed ("Wrong password for Home-5G"); `None` the first time.
        last_error: Option<String>,
        /// The network the last join tried (its index), to keep it selected.
        last_network: Option<u32>,
    },
    /// A join is under way on the speaker.
    WifiProgress {
        /// Which attempt.
        pairing_id: u64,
        /// What it is doing, in words ("Checking the password").
        detail: String,
    },
    /// The speaker joined a network that reaches Amazon; the pairing goes on.
    WifiJoined {
        /// Which attempt.
        pairing_id: u64,
        /// "on Home-5G at 192.0.2.7".
        detail: String,
    },
    /// The speaker's exchange failed in a way that may pass with the same sign-in; trying again.
    Retrying {
        /// Which attempt.
        pairing_id: u64,
        /// 1-based.
        attempt: u32,
        /// What failed.
        reason: String,
    },
    /// Done: the speaker holds its tokens.
    Linked {
        /// Which attempt.
        pairing_id: u64,
        /// Device id.
        speaker_id: String,
        /// Its name.
        speaker_name: String,
        /// The Amazon account, if the speaker read it.
        user_id: Option<String>,
        /// Its name and e-mail address too, if the speaker could read them (optional in the
        /// bindings: events written before it existed still type-check).
        #[ts(optional = nullable)]
        account: Option<AccountView>,
        /// Whole pairing, in milliseconds.
        total_millis: f64,
    },
    /// The speaker is linked to another account than the one that just signed in: the window
    /// shows both and answers with `answer_account_switch` (Replace or Keep).
    ConfirmAccountSwitch {
        /// Which attempt.
        pairing_id: u64,
        /// The account the speaker is linked to now.
        current: AccountView,
        /// The account that just signed in.
        new: AccountView,
    },
    /// The speaker kept its account: the user chose Keep (or did not answer in time).
    KeptAccount {
        /// Which attempt.
        pairing_id: u64,
        /// The account the speaker is still linked to.
        account: AccountView,
        /// The account that signed in and was not linked.
        not_linked: Option<AccountView>,
    },
    /// It failed.
    Failed {
        /// Which attempt.
        pairing_id: u64,
        /// Why, and what to do.
        error: PairingErrorView,
    },
    /// Stopped by the user (or the window closed).
    Cancelled {
        /// Which attempt.
        pairing_id: u64,
    },
}

impl PairingEvent {
    /// The attempt it belongs to.
    pub fn pairing_id(&self) -> u64 {
        match self {
            PairingEvent::Stage { pairing_id, .. }
            | PairingEvent::SignIn { pairing_id, .. }
            | PairingEvent::BrowserOpened { pairing_id }
            | PairingEvent::PasteRejected { pairing_id, .. }
            | PairingEvent::Retrying { pairing_id, .. }
            | PairingEvent::WifiChoose { pairing_id, .. }
            | PairingEvent::WifiProgress { pairing_id, .. }
            | PairingEvent::WifiJoined { pairing_id, .. }
            | PairingEvent::Linked { pairing_id, .. }
            | PairingEvent::ConfirmAccountSwitch { pairing_id, .. }
            | PairingEvent::KeptAccount { pairing_id, .. }
            | PairingEvent::Failed { pairing_id, .. }
            | PairingEvent::Cancelled { pairing_id } => *pairing_id,
        }
    }

    /// True for the last event of an attempt.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            PairingEvent::Linked { .. }
                | PairingEvent::KeptAccount { .. }
                | PairingEvent::Failed { .. }
                | PairingEvent::Cancelled { .. }
        )
    }
}

/// A command's error: a sentence, and for settings the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, TS)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct CommandError {
    /// What went wrong, for the user.
    pub message: String,
    /// The settings field at fault, if any.
    pub field: Option<SettingsField>,
}

impl CommandError {
    /// An error not tied to a field.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }

    /// An error about one settings field.
    pub fn field(field: SettingsField, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(field),
        }
    }
}

/// The TypeScript declarations of every type above, as `ui/src/bindings.ts` holds them.
pub fn typescript() -> String {
    let cfg = ts_rs::Config::new().with_large_int("number");
    let decls = [
        Transport::decl(&cfg),
        WindowState::decl(&cfg),
        SpeakerView::decl(&cfg),
        DiscoveryMode::decl(&cfg),
        SpeakersView::decl(&cfg),
        RegionView::decl(&cfg),
        RegionChoice::decl(&cfg),
        SettingsView::decl(&cfg),
        SettingsInput::decl(&cfg),
        SettingsField::decl(&cfg),
        CodeStatus::decl(&cfg),
        CodeFormat::decl(&cfg),
        SetupCodeCheck::decl(&cfg),
        PairingStarted::decl(&cfg),
        Stage::decl(&cfg),
        StageState::decl(&cfg),
        ErrorKind::decl(&cfg),
        RetryMode::decl(&cfg),
        PairingErrorView::decl(&cfg),
        WifiNetworkView::decl(&cfg),
        WifiChoiceInput::decl(&cfg),
        AccountView::decl(&cfg),
        PairingEvent::decl(&cfg),
        CommandError::decl(&cfg),
    ];
    let mut out = String::from(
        "// Generated from companion-app/src-tauri/src/ipc.rs by ts-rs: do not edit.\n\
         // Regenerate: AVS_UPDATE_BINDINGS=1 cargo test -p avs-companion-app --test ipc_bindings\n",
    );
    for d in decls {
        out.push_str("\nexport ");
        out.push_str(d.trim());
        out.push('\n');
    }
    out
}
