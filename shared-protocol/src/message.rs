//! Link messages: what the companion and the agent say to each other.
//!
//! Two phases, two enums, so a plain-phase message can never be accepted after the handshake
//! and a secure-phase message can never be accepted before it:
//!
//! - [`PlainMessage`]: in the clear. Hello (version negotiation) and the PAKE exchange.
//! - [`SecureMessage`]: AEAD-sealed by [`crate::session`]. Device info, authorization handover,
//!   progress, result, status, reset.
//!
//! Both are JSON objects with a `"type"` tag. A tag this build does not know decodes as
//! `Unknown` (not a parse error) so the receiver can answer with
//! [`ErrorKind::UnsupportedMessage`] and keep the session; an incompatible major version is
//! caught by [`Hello`] before any of that (see [`check_compatible`]).

use serde::{Deserialize, Serialize};

use crate::ids::{
    ClientId, DeviceId, DeviceSerialNumber, ProductId, RedirectUri, SessionId, UserId,
};
use crate::lwa::{AuthError, AuthState};
use crate::pkce::{CodeChallengeMethod, PkceCodeChallenge};
use crate::secret::AuthorizationCode;

/// The link protocol's major version. Peers with different majors cannot talk; a minor bump
/// adds optional fields or messages only.
pub const PROTOCOL_MAJOR: u16 = 1;
/// The link protocol's minor version.
pub const PROTOCOL_MINOR: u16 = 0;

/// A protocol version `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProtocolVersion {
    /// Incompatible changes.
    pub major: u16,
    /// Compatible additions.
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

/// Optional features a peer supports. Unknown strings are ignored by the receiver.
pub mod capability {
    /// Streams `Progress` events during the exchange.
    pub const PROGRESS: &str = "progress";
    /// Accepts `Reset` over the link.
    pub const RESET: &str = "reset";
    /// Can do CBL instead of the companion-app flow.
    pub const CBL: &str = "cbl";
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
    /// Stable device id.
    pub device_id: DeviceId,
    /// User-visible name ("Kitchen speaker").
    pub friendly_name: String,
    /// True when the agent holds a refresh token.
    pub paired: bool,
    /// The pairing window.
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
    /// See [`capability`].
    #[serde(default)]
    pub capabilities: Vec<String>,
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
            capabilities: vec![
                capability::PROGRESS.to_owned(),
                capability::RESET.to_owned(),
            ],
            security_schemes: vec![SECURITY_SCHEME.to_owned()],
            agent: None,
        }
    }
}

/// Why two Hellos don't fit together, phrased for the person who must act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionMismatch {
    /// The peer is newer than we can speak.
    #[error("the {peer_role} speaks link protocol {peer}, this {our_role} only {ours}: update the {our_role}")]
    PeerTooNew {
        /// Theirs.
        peer: ProtocolVersion,
        /// Ours.
        ours: ProtocolVersion,
        /// Their role, for the message.
        peer_role: &'static str,
        /// Our role, for the message.
        our_role: &'static str,
    },
    /// The peer is older than we can speak.
    #[error("the {peer_role} speaks link protocol {peer}, this {our_role} needs at least {min_major}.x: update the {peer_role}")]
    PeerTooOld {
        /// Theirs.
        peer: ProtocolVersion,
        /// Our minimum major.
        min_major: u16,
        /// Their role.
        peer_role: &'static str,
        /// Our role.
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

/// Messages inside the secure session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SecureMessage {
    /// Companion → agent: start a pairing session (agent makes a fresh PKCE pair).
    GetDeviceInfo,
    /// Agent → companion.
    DeviceInfo(DeviceInfo),
    /// Companion → agent: the result of the login.
    ProvideAuthorization(ProvideAuthorization),
    /// Agent → companion, any number, while it works.
    Progress(Progress),
    /// Agent → companion: the end of a `ProvideAuthorization`.
    AuthResult(AuthResult),
    /// Companion → agent.
    GetStatus,
    /// Agent → companion.
    Status(Status),
    /// Companion → agent: forget the account (factory reset of the auth state).
    Reset,
    /// Agent → companion: reset done.
    ResetDone,
    /// Either way: a request failed. The session stays up unless the kind says otherwise.
    Error(ErrorBody),
    /// A type this build does not know.
    #[serde(other)]
    Unknown,
}

/// What the companion needs to build the authorize URL (lwa-spec §1.3, same field meanings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// AVS product id.
    pub product_id: ProductId,
    /// Device serial number.
    pub dsn: DeviceSerialNumber,
    /// S256 challenge of this session's verifier.
    pub code_challenge: String,
    /// Always `S256`.
    pub code_challenge_method: CodeChallengeMethod,
    /// Binds the handover to this PKCE pair.
    pub session_id: SessionId,
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
    /// From the redirect.
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

/// Failure details.
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
}

/// The end of a handover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AuthResult {
    /// Linked: the speaker holds tokens.
    Linked {
        /// The session.
        session_id: SessionId,
        /// The account, if `/user/profile` answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<UserId>,
    },
    /// Not linked.
    Failed {
        /// The session.
        session_id: SessionId,
        /// Why.
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
    /// The kind.
    pub kind: ErrorKind,
    /// A sentence for a person. Never contains a secret.
    pub message: String,
    /// For `LockedOut`: seconds until the window may be reopened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl ErrorBody {
    /// An error with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after_secs: None,
        }
    }
}
