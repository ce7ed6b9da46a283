//! Every way a pairing can end badly, and the exit code each one maps to.
//!
//! The CLI's exit codes are part of its interface (scripts branch on them), so they live in the
//! library where tests can pin them: see [`ExitKind`] and `docs/companion-cli.md`.

use std::time::Duration;

use shared_protocol::message::ErrorKind;
use shared_protocol::setup_code::SetupCodeError;

use crate::config::ConfigError;
use crate::connect::Wanted;
use crate::discovery::DiscoveryError;
use crate::handover::HandoverError;
use crate::link::LinkError;
use crate::login::LoginError;
use shared_protocol::message::AuthFailureClass;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// Bad settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The setup code as typed is not a setup code (nothing was sent to the speaker).
    #[error("{0}")]
    SetupCode(#[from] SetupCodeError),
    /// Discovery could not run.
    #[error("cannot search for speakers: {0}")]
    Discovery(#[from] DiscoveryError),
    /// No matching speaker was found.
    #[error("{}", not_found(.query, *.wanted, .waited, .seen))]
    NotFound {
        /// What the user asked for.
        query: Option<String>,
        /// Which speakers fit when none is named.
        wanted: Wanted,
        /// How long we looked.
        waited: Duration,
        /// What we saw instead (names and ids).
        seen: Vec<String>,
    },
    /// Several speakers fit; the user must name one.
    #[error("several speakers are {}: {}; name one (by id or name)", .wanted.describe(), .candidates.join(", "))]
    Ambiguous {
        /// Which speakers fit when none is named.
        wanted: Wanted,
        /// Their names and ids.
        candidates: Vec<String>,
    },
    /// Talking to the speaker failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The sign-in failed.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// The speaker could not redeem the code.
    #[error(transparent)]
    Handover(#[from] HandoverError),
    /// The speaker cannot reach Login with Amazon and the Wi-Fi step did not fix it: no
    /// sign-in was opened.
    #[error("{reason}")]
    SpeakerOffline {
        /// Why, in words (names the network and the failure when a join failed).
        reason: String,
    },
    /// Interrupted (Ctrl-C), or the user said no.
    #[error("cancelled")]
    Cancelled,
    /// A command-line problem the parser could not catch.
    #[error("{0}")]
    Usage(String),
}

fn not_found(query: &Option<String>, wanted: Wanted, waited: &Duration, seen: &[String]) -> String {
    let what = match (query, wanted) {
        (Some(q), _) => format!("no speaker matching {q:?}"),
        (None, Wanted::ReadyToPair) => "no speaker with an open pairing window".to_owned(),
        (None, Wanted::Any) => "no speaker".to_owned(),
    };
    let others = if seen.is_empty() {
        "none at all: is it powered, on this network, and its pairing window open? (or use --connect IP:PORT)".to_owned()
    } else {
        format!("seen: {}", seen.join(", "))
    };
    format!("{what} found within {}s; {others}", waited.as_secs())
}

/// Exit codes of `avs-companion` (documented in `docs/companion-cli.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitKind {
    /// The command did what was asked (the speaker is paired, the status was read, …).
    Success = 0,
    /// Anything not listed below (a bug, a local problem, a protocol violation).
    Failure = 1,
    /// Bad command line or config (including a malformed setup code, or an ambiguous device).
    Usage = 2,
    /// The speaker says the setup code is wrong.
    WrongSetupCode = 3,
    /// The user declined the sign-in, did not finish it in time, or pressed Ctrl-C; or the
    /// speaker kept its linked account because nobody said yes to replacing it.
    Cancelled = 4,
    /// Amazon (LWA) refused: an error on the redirect, a state mismatch, or the speaker's code
    /// exchange failed.
    LwaError = 5,
    /// The speaker could not be found or reached, or stopped answering.
    Unreachable = 6,
    /// The speaker is not accepting pairing (window closed, locked out after wrong codes, busy).
    NotPairable = 7,
    /// The speaker and the companion speak incompatible protocol versions.
    Incompatible = 8,
}

impl ExitKind {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl PairError {
    /// True when the speaker is probably gone (worth a discovery re-check).
    pub fn speaker_lost(&self) -> bool {
        match self {
            PairError::Link(e) | PairError::Handover(HandoverError::Link(e)) => e.speaker_lost(),
            _ => false,
        }
    }

    /// The exit code category.
    pub fn exit_kind(&self) -> ExitKind {
        match self {
            PairError::Config(_)
            | PairError::SetupCode(_)
            | PairError::Ambiguous { .. }
            | PairError::Usage(_) => ExitKind::Usage,
            PairError::Discovery(_) => ExitKind::Failure,
            PairError::NotFound { .. } => ExitKind::Unreachable,
            PairError::Link(e) => link_kind(e),
            PairError::Login(e) => match e {
                LoginError::Denied { .. } | LoginError::Timeout(_) => ExitKind::Cancelled,
                LoginError::Authorization { .. }
                | LoginError::StateMismatch
                | LoginError::StateMissing
                | LoginError::MissingCode
                | LoginError::ClientIdRefused { .. }
                | LoginError::RedirectUriRefused { .. }
                | LoginError::RequestRefused { .. }
                | LoginError::BadPastes { .. } => ExitKind::LwaError,
                LoginError::Listen { .. }
                | LoginError::Tls(_)
                | LoginError::Browser(_)
                | LoginError::NoWayBack(_) => ExitKind::Failure,
            },
            PairError::Handover(HandoverError::Link(e)) => link_kind(e),
            // The user (or nobody, in time) said "keep" to the account switch.
            PairError::Handover(HandoverError::KeptCurrent { .. }) => ExitKind::Cancelled,
            PairError::Handover(HandoverError::Failed { failure, .. }) => match failure.class {
                AuthFailureClass::InvalidGrant
                | AuthFailureClass::InvalidClient
                | AuthFailureClass::InvalidRequest
                | AuthFailureClass::ServerError
                | AuthFailureClass::Unreachable
                | AuthFailureClass::BadResponse => ExitKind::LwaError,
                AuthFailureClass::WindowClosed => ExitKind::NotPairable,
                AuthFailureClass::UnknownSession
                | AuthFailureClass::Storage
                | AuthFailureClass::Internal => ExitKind::Failure,
            },
            PairError::SpeakerOffline { .. } => ExitKind::Unreachable,
            PairError::Cancelled => ExitKind::Cancelled,
        }
    }
}

fn link_kind(e: &LinkError) -> ExitKind {
    match e {
        LinkError::WrongSetupCode { .. } => ExitKind::WrongSetupCode,
        LinkError::Refused(body) | LinkError::Agent(body) => match body.kind {
            ErrorKind::WindowClosed | ErrorKind::LockedOut | ErrorKind::Busy => {
                ExitKind::NotPairable
            }
            ErrorKind::WrongSetupCode => ExitKind::WrongSetupCode,
            ErrorKind::IncompatibleVersion => ExitKind::Incompatible,
            _ => ExitKind::Failure,
        },
        LinkError::Incompatible(_) => ExitKind::Incompatible,
        LinkError::NoAddress
        | LinkError::Connect { .. }
        | LinkError::Closed { .. }
        | LinkError::Timeout { .. }
        | LinkError::StoppedAnswering => ExitKind::Unreachable,
        LinkError::Protocol { .. } => ExitKind::Failure,
        LinkError::NotASpeaker { .. } => ExitKind::Unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::ConnectFailure;
    use shared_protocol::message::ErrorBody;

    #[test]
    fn exit_codes_are_distinct_and_stable() {
        let cases: Vec<(PairError, u8)> = vec![
            (LinkError::WrongSetupCode { tries: None }.into(), 3),
            (PairError::Cancelled, 4),
            (LoginError::Denied { description: None }.into(), 4),
            (LoginError::StateMismatch.into(), 5),
            (
                LoginError::Authorization {
                    error: "invalid_scope".into(),
                    description: None,
                }
                .into(),
                5,
            ),
            (
                LinkError::Connect {
                    addrs: "x".into(),
                    reason: ConnectFailure::TimedOut(Duration::from_secs(1)),
                }
                .into(),
                6,
            ),
            (LinkError::Closed { during: "x" }.into(), 6),
            (
                LinkError::Refused(ErrorBody::new(ErrorKind::WindowClosed, "closed")).into(),
                7,
            ),
            (
                LinkError::Refused(ErrorBody::new(ErrorKind::LockedOut, "locked")).into(),
                7,
            ),
            (SetupCodeError::Empty.into(), 2),
        ];
        for (err, code) in cases {
            assert_eq!(err.exit_kind().code(), code, "{err}");
        }
    }
}
