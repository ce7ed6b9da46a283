//! Link messages: what the companion and the agent say to each other.
//!
//! Split by phase, so a plain-phase message can never be accepted after the handshake and a
//! secure-phase message never before it, and inside the sealed phase split by direction, so a
//! message can only be sent by the end that is meant to send it:
//!
//! - [`PlainMessage`]: in the clear. Hello (version negotiation) and the PAKE exchange. Only
//!   [`crate::session`]'s handshake reads and writes these, one expected message per step.
//! - [`CompanionMessage`]: companion → agent, AEAD-sealed by [`crate::session`]. Requests:
//!   device info, the authorization handover, status, reset, and the network step (status,
//!   Wi-Fi scan, join a network; see [`wifi`]).
//! - [`AgentMessage`]: agent → companion, sealed. Answers: device info, progress, the result,
//!   status, reset done, network status, scan results, Wi-Fi progress and result.
//!
//! The sealed session is typed by its side ([`crate::session::AgentSide`],
//! [`crate::session::CompanionSide`]): the agent's session sends only [`AgentMessage`] and
//! receives only [`CompanionMessage`], and the other way round, so each end matches the messages
//! it receives exhaustively and a new message is a compile error on the end that must handle it.
//! These enums are deliberately not `#[non_exhaustive]`: the agent and the companion are the
//! crate's only users and their exhaustive matches are the point. Compatibility with other
//! builds is a wire matter, handled by `Unknown` below and by the version rules.
//!
//! Every message is a JSON object with a `"type"` tag, and the tag is the message's name
//! ([`WireMessage::type_name`] reads it from the serde derive, so there is no second list). A tag
//! this build does not know decodes as `Unknown` (not a parse error) so the receiver can answer
//! with [`ErrorKind::UnsupportedMessage`] and keep the session; a tag of the other direction is
//! reported as [`crate::session::SessionError::WrongDirection`]. An incompatible major version is
//! caught by [`Hello`] before any of that (see [`check_compatible`]).

use serde::{Deserialize, Serialize};

use crate::ids::{
    ClientId, DeviceId, DeviceSerialNumber, ProductId, RedirectUri, SessionId, UserId,
};
use crate::lwa::{AuthError, AuthState};
use crate::pkce::{CodeChallengeMethod, PkceCodeChallenge};
use crate::secret::AuthorizationCode;

pub mod account;
mod type_tag;
pub mod wifi;

pub use account::{AccountProfile, AccountSwitch, AccountSwitchAnswer, LinkedByOther};

pub use wifi::{
    ConnectWifi, ConnectivityCheck, ConnectivityFailure, NetworkStatus, Ssid, WifiBand,
    WifiFailure, WifiNetwork, WifiProgress, WifiResult, WifiScan, WifiSecurity, WifiStage,
};

/// The link protocol's major version. Peers with different majors cannot talk; a minor bump
/// adds optional fields or messages only.
pub const PROTOCOL_MAJOR: u16 = 1;
/// The link protocol's minor version.
/// 1.1 added the network messages ([`wifi`]) and `DeviceInfo.network`.
/// 1.2 added the account's profile ([`account`]: `AuthResult::Linked.account`, `Status.account`,
/// `AuthFailure.linked_by_other`), the account-switch question
/// ([`Capability::ConfirmAccountSwitch`]) and the wrong-code count (`ErrorBody.attempts_left`,
/// `ErrorBody.lockout_secs`: the agent answers a companion's `Error{wrong_setup_code}` with it).
pub const PROTOCOL_MINOR: u16 = 2;

/// A protocol version `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProtocolVersion {
    /// Bumped for changes an older peer cannot follow; peers compare it with `min_major`.
    pub major: u16,
    /// Bumped for additions an older peer can ignore (optional fields, messages, capabilities).
    pub minor: u16,
}

impl ProtocolVersion {
    /// This build's version.
    pub const CURRENT: Self = Self {
        major: PROTOCOL_MAJOR,
        minor: PROTOCOL_MINOR,
    };
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Which end of the link a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The speaker's device agent.
    Agent,
    /// The laptop or phone app.
    Companion,
}

/// The security scheme of the handshake. Only one exists; the field is there so a future scheme
/// is negotiated rather than misparsed.
pub const SECURITY_SCHEME: &str = "spake2-ed25519-hkdf-sha256-chacha20poly1305";

/// An optional feature a peer announces in its [`Hello`].
///
/// On the wire a snake_case string. A string this build does not know (a newer peer's feature)
/// still parses, as [`Capability::Unknown`], and is ignored; it is never an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// The agent streams `Progress` events while it exchanges the code.
    Progress,
    /// The agent accepts `Reset` over the link; the companion checks this before asking.
    Reset,
    /// The agent can link by code-based linking (CBL) instead of the companion flow.
    Cbl,
    /// The agent can scan for and join Wi-Fi networks over the link (protocol 1.1). Without it
    /// the companion does not offer the Wi-Fi step (an older agent would answer
    /// `unsupported_message`).
    Wifi,
    /// Companion (protocol 1.2): it answers [`AgentMessage::ConfirmAccountSwitch`] with
    /// [`CompanionMessage::AccountSwitchAnswer`], so the agent asks before replacing the linked
    /// account with a different one. Without it the agent replaces without asking (as 1.1 did).
    ConfirmAccountSwitch,
    /// A feature this build does not know.
    #[serde(other)]
    Unknown,
}

/// State of the agent's pairing window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PairingWindow {
    /// Accepting the handshake and `ProvideAuthorization`.
    Open {
        /// Seconds until it closes by itself.
        closes_in_secs: u64,
    },
    /// Closed: status only. Reopen on the device.
    Closed,
    /// Closed after too many wrong setup codes; cannot be reopened before `retry_in_secs`.
    LockedOut {
        /// Seconds until it may be reopened.
        retry_in_secs: u64,
    },
}

/// What the agent tells anyone in its Hello: nothing secret, enough for a list of speakers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSummary {
    /// Stable device id: the same in the TXT record, the BLE name and every Hello.
    pub device_id: DeviceId,
    /// User-visible name ("Kitchen speaker").
    pub friendly_name: String,
    /// True when the agent holds a refresh token.
    pub paired: bool,
    /// Whether a companion may pair now, and for how long.
    pub window: PairingWindow,
}

/// First message each way, in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's protocol version.
    pub version: ProtocolVersion,
    /// The oldest major version the sender can still speak.
    pub min_major: u16,
    /// Which end the sender is.
    pub role: Role,
    /// e.g. `avs-device-agent 0.1.0`.
    pub software: String,
    /// Optional features; unknown ones parse as [`Capability::Unknown`]. Absent means none.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// Handshake schemes the sender accepts, preferred first.
    pub security_schemes: Vec<String>,
    /// Present in the agent's Hello only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentSummary>,
}

impl Hello {
    /// A Hello for this build.
    pub fn new(role: Role, software: impl Into<String>) -> Self {
        Self {
            version: ProtocolVersion::CURRENT,
            min_major: PROTOCOL_MAJOR,
            role,
            software: software.into(),
            capabilities: vec![Capability::Progress, Capability::Reset],
            security_schemes: vec![SECURITY_SCHEME.to_owned()],
            agent: None,
        }
    }

    /// True when the sender announced `capability`.
    pub fn supports(&self, capability: Capability) -> bool {
        capability != Capability::Unknown && self.capabilities.contains(&capability)
    }
}

/// Why two Hellos don't fit together, phrased for the person who must act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionMismatch {
    /// The peer is newer than we can speak.
    #[error("the {peer_role} speaks link protocol {peer}, this {our_role} only {ours}: update the {our_role}")]
    PeerTooNew {
        /// The peer's version.
        peer: ProtocolVersion,
        /// This build's version.
        ours: ProtocolVersion,
        /// The peer's role as the message names it ("companion app").
        peer_role: &'static str,
        /// Our role as the message names it: the side to update.
        our_role: &'static str,
    },
    /// The peer is older than we can speak.
    #[error("the {peer_role} speaks link protocol {peer}, this {our_role} needs at least {min_major}.x: update the {peer_role}")]
    PeerTooOld {
        /// The peer's version.
        peer: ProtocolVersion,
        /// The oldest major this build still speaks.
        min_major: u16,
        /// The peer's role as the message names it: the side to update.
        peer_role: &'static str,
        /// Our role as the message names it.
        our_role: &'static str,
    },
    /// No handshake scheme in common.
    #[error("no security scheme in common (peer offers {0:?})")]
    NoCommonScheme(Vec<String>),
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Agent => "speaker (device agent)",
        Role::Companion => "companion app",
    }
}

/// Checks a peer's Hello against ours: majors must overlap, and the scheme must be known.
pub fn check_compatible(ours: &Hello, peer: &Hello) -> Result<(), VersionMismatch> {
    let (peer_role, our_role) = (role_name(peer.role), role_name(ours.role));
    if peer.min_major > ours.version.major {
        return Err(VersionMismatch::PeerTooNew {
            peer: peer.version,
            ours: ours.version,
            peer_role,
            our_role,
        });
    }
    if peer.version.major < ours.min_major {
        return Err(VersionMismatch::PeerTooOld {
            peer: peer.version,
            min_major: ours.min_major,
            peer_role,
            our_role,
        });
    }
    if !peer
        .security_schemes
        .iter()
        .any(|s| ours.security_schemes.contains(s))
    {
        return Err(VersionMismatch::NoCommonScheme(
            peer.security_schemes.clone(),
        ));
    }
    Ok(())
}

/// Messages before the session keys exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlainMessage {
    /// Version and capabilities; the agent's includes its summary.
    Hello(Hello),
    /// Companion → agent: SPAKE2 side A's message (base64url).
    PakeStart {
        /// SPAKE2 message, base64url without padding.
        pake: String,
    },
    /// Agent → companion: SPAKE2 side B's message and the agent's key confirmation.
    PakeReply {
        /// SPAKE2 message, base64url without padding.
        pake: String,
        /// HMAC over the transcript with the agent's confirmation key, base64url.
        confirm: String,
    },
    /// Companion → agent: the companion's key confirmation.
    PakeConfirm {
        /// HMAC over the transcript with the companion's confirmation key, base64url.
        confirm: String,
    },
    /// Either way: the handshake is over, and why. The connection closes after it.
    Error(ErrorBody),
    /// A type this build does not know.
    #[serde(other)]
    Unknown,
}

/// Companion → agent, inside the sealed session: the requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CompanionMessage {
    /// Start a pairing session: the agent makes a fresh PKCE pair and answers `DeviceInfo`.
    GetDeviceInfo,
    /// The result of the login; answered by `Progress` events and one `AuthResult`.
    ProvideAuthorization(ProvideAuthorization),
    /// Ask for the agent's state; answered by `Status`.
    GetStatus,
    /// Forget the account (factory reset of the auth state); answered by `ResetDone`.
    Reset,
    /// Ask for the network status and run the connectivity check; answered by `NetworkStatus`.
    GetNetworkStatus,
    /// Scan for Wi-Fi networks; answered by `WifiScan` (or an error).
    ScanWifi,
    /// Join a network; answered by `WifiProgress` events and one `WifiResult`.
    ConnectWifi(ConnectWifi),
    /// The user's answer to `ConfirmAccountSwitch` (protocol 1.2).
    AccountSwitchAnswer(AccountSwitchAnswer),
    /// Something the companion could not use; the session stays up.
    Error(ErrorBody),
    /// A type this build does not know (a newer companion's request).
    #[serde(other)]
    Unknown,
}

/// Agent → companion, inside the sealed session: the answers and events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// Answers `GetDeviceInfo`: what the companion needs for the authorize URL.
    DeviceInfo(DeviceInfo),
    /// Any number while the agent works on a `ProvideAuthorization`.
    Progress(Progress),
    /// The end of a `ProvideAuthorization`.
    AuthResult(AuthResult),
    /// Answers `GetStatus`.
    Status(Status),
    /// Answers `Reset`: the account is forgotten.
    ResetDone,
    /// Answers `GetNetworkStatus`.
    NetworkStatus(NetworkStatus),
    /// Answers `ScanWifi`.
    WifiScan(WifiScan),
    /// Any number while the agent joins a network.
    WifiProgress(WifiProgress),
    /// The end of a `ConnectWifi`.
    WifiResult(WifiResult),
    /// During a `ProvideAuthorization`, to a companion with
    /// [`Capability::ConfirmAccountSwitch`] only: replace the linked account with the one that
    /// just signed in? Answered by `AccountSwitchAnswer` (protocol 1.2).
    ConfirmAccountSwitch(AccountSwitch),
    /// A request failed. The session stays up unless the kind says otherwise.
    Error(ErrorBody),
    /// A type this build does not know (a newer agent's message).
    #[serde(other)]
    Unknown,
}

/// What every link message set shares: a `"type"` tag, and a catch-all for tags this build
/// does not know.
pub trait WireMessage: Serialize + serde::de::DeserializeOwned + std::fmt::Debug + Send {
    /// The message's `"type"` tag as it goes on the wire (`"get_status"`), read from the serde
    /// derive; `"unknown"` for the catch-all.
    fn type_name(&self) -> String {
        type_tag::type_tag(self).unwrap_or_else(|| "untagged".to_owned())
    }

    /// True for the catch-all a tag this build does not know decodes to.
    fn is_unknown(&self) -> bool;
}

impl WireMessage for PlainMessage {
    fn is_unknown(&self) -> bool {
        matches!(self, PlainMessage::Unknown)
    }
}

impl WireMessage for CompanionMessage {
    fn is_unknown(&self) -> bool {
        matches!(self, CompanionMessage::Unknown)
    }
}

impl WireMessage for AgentMessage {
    fn is_unknown(&self) -> bool {
        matches!(self, AgentMessage::Unknown)
    }
}

/// What the companion needs to build the authorize URL (lwa-spec §1.3, same field meanings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// AVS product id (the authorize URL's `scope_data.productID`).
    pub product_id: ProductId,
    /// Device serial number (`scope_data.productInstanceAttributes.deviceSerialNumber`).
    pub dsn: DeviceSerialNumber,
    /// S256 challenge of this session's verifier.
    pub code_challenge: String,
    /// Always `S256`.
    pub code_challenge_method: CodeChallengeMethod,
    /// Binds the handover to this PKCE pair.
    pub session_id: SessionId,
    /// The speaker's network and whether it reaches LWA (protocol 1.1; absent from older
    /// agents, which the companion treats as online).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStatus>,
}

impl DeviceInfo {
    /// The challenge, checked.
    pub fn challenge(&self) -> Result<PkceCodeChallenge, crate::pkce::PkceError> {
        PkceCodeChallenge::from_parts(self.code_challenge.clone(), self.code_challenge_method)
    }
}

/// The handover (lwa-spec §1.3 `companionInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvideAuthorization {
    /// From `DeviceInfo`.
    pub session_id: SessionId,
    /// The `code` of LWA's redirect; valid for 5 minutes and once.
    pub authorization_code: AuthorizationCode,
    /// The companion's LWA client id.
    pub client_id: ClientId,
    /// Exactly the redirect URI used at `/ap/oa`.
    pub redirect_uri: RedirectUri,
}

/// Where the agent is in handling a `ProvideAuthorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressStage {
    /// Checked and accepted for exchange.
    Received,
    /// POST /auth/o2/token in flight.
    ExchangingCode,
    /// Tokens received; writing the refresh token.
    StoringTokens,
    /// Reading the account id (`/user/profile`).
    FetchingProfile,
}

/// A progress event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The session it belongs to.
    pub session_id: SessionId,
    /// The stage just entered.
    pub stage: ProgressStage,
}

/// What went wrong with a handover, so the companion can say what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthFailureClass {
    /// LWA refused the code: expired (5 min), used, wrong verifier, or a redirect URI / client
    /// id different from the one used at `/ap/oa` (`invalid_grant`).
    InvalidGrant,
    /// LWA doesn't know or doesn't allow the client id.
    InvalidClient,
    /// LWA rejected the request's shape (`invalid_request`, `unsupported_grant_type`).
    InvalidRequest,
    /// LWA answered 5xx or another server-side error.
    ServerError,
    /// LWA could not be reached (DNS, connect, TLS) or timed out. The code may still be valid.
    Unreachable,
    /// LWA's answer could not be understood.
    BadResponse,
    /// The session id is not the one this link's `DeviceInfo` gave.
    UnknownSession,
    /// The pairing window is not open.
    WindowClosed,
    /// The tokens could not be written to disk.
    Storage,
    /// Anything else.
    Internal,
}

impl AuthFailureClass {
    /// Every class, in declaration order: for tests and tables that must cover each one (a
    /// test checks it against a match with no wildcard, so a new class does not compile there
    /// until it is added here too).
    pub const ALL: [AuthFailureClass; 10] = [
        AuthFailureClass::InvalidGrant,
        AuthFailureClass::InvalidClient,
        AuthFailureClass::InvalidRequest,
        AuthFailureClass::ServerError,
        AuthFailureClass::Unreachable,
        AuthFailureClass::BadResponse,
        AuthFailureClass::UnknownSession,
        AuthFailureClass::WindowClosed,
        AuthFailureClass::Storage,
        AuthFailureClass::Internal,
    ];
}

/// Why a handover failed, in three vocabularies (ours, the SDK's, LWA's) and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFailure {
    /// What kind of failure.
    pub class: AuthFailureClass,
    /// The SDK's error code for it.
    pub error: AuthError,
    /// LWA's `error` value, if LWA answered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lwa_error: Option<String>,
    /// LWA's `error_description` or our own explanation. Never contains a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// True when the same authorization code may be handed over again (e.g. LWA unreachable).
    pub retry_with_same_code: bool,
    /// Set when another companion linked the speaker while this one was signing in (protocol
    /// 1.2; the class is then `window_closed`, which older companions know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed: rarely there, and `AuthFailure` travels inside error types.
    pub linked_by_other: Option<Box<LinkedByOther>>,
}

/// The end of a handover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AuthResult {
    /// Linked: the speaker holds tokens.
    Linked {
        /// The pairing session (from `DeviceInfo`) this result ends.
        session_id: SessionId,
        /// The account, if `/user/profile` answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<UserId>,
        /// The account's name and e-mail address as well (protocol 1.2), if `/user/profile`
        /// answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<AccountProfile>,
    },
    /// The user declined the switch (or did not answer in time): the speaker stays linked to
    /// `account` and the new sign-in was discarded. Sent only after `ConfirmAccountSwitch`
    /// (protocol 1.2).
    KeptCurrent {
        /// The pairing session (from `DeviceInfo`) this result ends.
        session_id: SessionId,
        /// The account the speaker is still linked to.
        account: AccountProfile,
        /// True when the agent stopped waiting for an answer.
        #[serde(default)]
        timed_out: bool,
    },
    /// Not linked.
    Failed {
        /// The pairing session (from `DeviceInfo`) this result ends.
        session_id: SessionId,
        /// The failure class, the SDK's code, LWA's words, and whether to retry.
        #[serde(flatten)]
        failure: AuthFailure,
    },
}

/// The agent's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Public summary (same as in Hello).
    pub summary: AgentSummary,
    /// Auth state, as the SDK names it.
    pub auth_state: AuthState,
    /// Last auth error, as the SDK names it.
    pub auth_error: AuthError,
    /// The linked account, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The linked account's name and e-mail address as well (protocol 1.2), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountProfile>,
}

/// Error kinds on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Versions don't overlap; the message says which side to update.
    IncompatibleVersion,
    /// The setup code was wrong (key confirmation failed).
    WrongSetupCode,
    /// Too many wrong codes: the window is closed for a while.
    LockedOut,
    /// The pairing window is closed; only status is answered.
    WindowClosed,
    /// The agent has as many sessions as it accepts.
    Busy,
    /// A message out of order for the protocol state.
    UnexpectedMessage,
    /// A message type this peer doesn't know.
    UnsupportedMessage,
    /// A frame or message that did not parse.
    Malformed,
    /// Took too long.
    Timeout,
    /// Anything else.
    Internal,
}

/// An error message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for the program; `message` says it for a person.
    pub kind: ErrorKind,
    /// A sentence for a person. Never contains a secret.
    pub message: String,
    /// For `LockedOut`: seconds until the window may be reopened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// For `WrongSetupCode` from the agent (protocol 1.2): wrong codes the pairing window still
    /// takes before it locks; `0`: that one locked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// For `WrongSetupCode` from the agent (protocol 1.2): how long pairing locks, in seconds,
    /// when `attempts_left` reaches 0 (with `attempts_left: 0`: the lock now running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockout_secs: Option<u64>,
}

impl ErrorBody {
    /// An error with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after_secs: None,
            attempts_left: None,
            lockout_secs: None,
        }
    }

    /// With the wrong-code budget: `attempts_left` more wrong codes before pairing locks for
    /// `lockout_secs`.
    pub fn with_attempts(mut self, attempts_left: u32, lockout_secs: u64) -> Self {
        self.attempts_left = Some(attempts_left);
        self.lockout_secs = Some(lockout_secs);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::AuthFailureClass;

    /// `AuthFailureClass::ALL` holds every class once, in declaration order. The match has no
    /// wildcard: a new class does not compile here; give it its position and add it to `ALL`
    /// there, or this test goes red (serde's list of the enum's variants is compared too).
    #[test]
    fn auth_failure_class_all_is_every_class_once_in_order() {
        fn position(class: AuthFailureClass) -> usize {
            match class {
                AuthFailureClass::InvalidGrant => 0,
                AuthFailureClass::InvalidClient => 1,
                AuthFailureClass::InvalidRequest => 2,
                AuthFailureClass::ServerError => 3,
                AuthFailureClass::Unreachable => 4,
                AuthFailureClass::BadResponse => 5,
                AuthFailureClass::UnknownSession => 6,
                AuthFailureClass::WindowClosed => 7,
                AuthFailureClass::Storage => 8,
                AuthFailureClass::Internal => 9,
            }
        }
        for (i, class) in AuthFailureClass::ALL.into_iter().enumerate() {
            assert_eq!(position(class), i, "{class:?}");
        }
        // Every class the enum has, in declaration order, as serde lists them when refusing an
        // unknown one ("unknown variant `x`, expected one of `a`, `b`, …"): a class added to
        // the enum (and the match) but not to ALL turns this red.
        let refused = serde_json::from_str::<AuthFailureClass>("\"no_such_class\"")
            .unwrap_err()
            .to_string();
        let declared: Vec<&str> = refused
            .split_once("expected one of ")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let listed: Vec<String> = AuthFailureClass::ALL
            .iter()
            .map(|c| {
                serde_json::to_string(c)
                    .unwrap()
                    .trim_matches('"')
                    .to_owned()
            })
            .collect();
        assert_eq!(listed, declared, "{refused}");
    }
}
