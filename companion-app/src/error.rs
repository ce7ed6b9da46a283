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
use crate::words::Words;
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

fn not_found(query: &Option<String>, wanted: Wanted, waited: &Duration, seen: &[String]) -> Words {
    let what = match (query, wanted) {
        (Some(q), _) => format!("no speaker matching {q:?}"),
        (None, Wanted::ReadyToPair) => "no speaker with an open pairing window".to_owned(),
        (None, Wanted::Any) => "no speaker".to_owned(),
    };
    let found = Words::from(format!("{what} found within {}s; ", waited.as_secs()));
    if seen.is_empty() {
        found
            .text("none at all: is it powered, on this network, and its pairing window open?")
            .terminal_only(" (or use --connect IP:PORT)")
    } else {
        found.text(format!("seen: {}", seen.join(", ")))
    }
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
    /// What happened and what to do, in pieces: the CLI prints [`Words::terminal`] (the
    /// `Display`), the desktop window [`Words::plain`] and keeps the rest under Advanced.
    pub fn words(&self) -> Words {
        match self {
            PairError::Config(e) => e.words(),
            PairError::Link(e) => e.words(),
            PairError::Login(e) => e.words(),
            PairError::Handover(e) => e.words(),
            PairError::NotFound {
                query,
                wanted,
                waited,
                seen,
            } => not_found(query, *wanted, waited, seen),
            PairError::SetupCode(_)
            | PairError::Discovery(_)
            | PairError::Ambiguous { .. }
            | PairError::SpeakerOffline { .. }
            | PairError::Cancelled
            | PairError::Usage(_) => self.to_string().into(),
        }
    }

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

    fn failed(
        class: AuthFailureClass,
        lwa_error: Option<&str>,
        description: Option<&str>,
    ) -> PairError {
        HandoverError::Failed {
            failure: shared_protocol::message::AuthFailure {
                class,
                error: shared_protocol::lwa::AuthError::UnknownError,
                lwa_error: lwa_error.map(Into::into),
                description: description.map(Into::into),
                retry_with_same_code: false,
                linked_by_other: None,
            },
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            client_id: "cid".into(),
        }
        .into()
    }

    /// The CLI prints the sentences it printed when they were single strings (the terminal
    /// column is the old text, byte for byte), and the window's words are the same sentence
    /// without commands, backticks or Amazon's quoted words, with "try again" for "run pair
    /// again" (the expectations of the app's former text surgery, `plain_words`, now built
    /// from typed pieces; rows marked "new" were missed by it).
    #[test]
    fn the_terminal_keeps_its_sentence_and_the_window_gets_plain_words() {
        let rows: Vec<(PairError, &str, &str)> = vec![
            (
                failed(AuthFailureClass::ServerError, None, None),
                "Amazon's login service had an error; wait a minute and run pair again",
                "Amazon's login service had an error; wait a minute and try again",
            ),
            (
                failed(AuthFailureClass::UnknownSession, None, None),
                "the speaker no longer knows this pairing session (it restarted, or another app started pairing it); run pair again",
                "the speaker no longer knows this pairing session (it restarted, or another app started pairing it); try again",
            ),
            (
                failed(AuthFailureClass::WindowClosed, None, None),
                "the speaker's pairing window closed before the code arrived; reopen pairing on the speaker (its pairing button, or `avs-device-agent pair` on it) and run pair again",
                "the speaker's pairing window closed before the code arrived; reopen pairing on the speaker and try again",
            ),
            (
                LoginError::StateMismatch.into(),
                "the sign-in response does not belong to this login (its `state` does not match): ignored it for safety. Close other Amazon sign-in tabs and run pair again",
                "the sign-in response does not belong to this login: ignored it for safety. Close other Amazon sign-in tabs and try again",
            ),
            (
                LoginError::StateMissing.into(),
                "the sign-in response has no `state` parameter, so it can't be matched to this login: run pair again (if you pasted a URL, paste the whole address you landed on)",
                "the sign-in response has no state parameter, so it can't be matched to this login: try again (if you pasted a URL, paste the whole address you landed on)",
            ),
            (
                LoginError::MissingCode.into(),
                "the sign-in response has no authorization code: run pair again",
                "the sign-in response has no authorization code: try again",
            ),
            (
                LoginError::ClientIdRefused {
                    client_id: "amzn1.application-oa2-client.x".into(),
                    said: "invalid_client".into(),
                }
                .into(),
                "Login with Amazon does not know the client id amzn1.application-oa2-client.x: check the client id setting (`avs-companion config --client-id ID`); copy it from your security profile in the Amazon developer console (its 'Other devices and platforms' or Android/iOS settings). LWA said: invalid_client",
                "Login with Amazon does not know the client id amzn1.application-oa2-client.x: check the client id setting; copy it from your security profile in the Amazon developer console (its 'Other devices and platforms' or Android/iOS settings)",
            ),
            (
                LoginError::RedirectUriRefused {
                    redirect_uri: "http://127.0.0.1:9/cb".into(),
                    said: "redirect_uri mismatch".into(),
                }
                .into(),
                "Login with Amazon does not accept the redirect URI http://127.0.0.1:9/cb for this client id: add it to the security profile's Allowed Return URLs in the Amazon developer console, or set one listed there (`avs-companion config --redirect-uri URI`). LWA said: redirect_uri mismatch",
                "Login with Amazon does not accept the redirect URI http://127.0.0.1:9/cb for this client id: add it to the security profile's Allowed Return URLs in the Amazon developer console, or set one listed there",
            ),
            (
                LoginError::RequestRefused {
                    status: 400,
                    said: "bad request".into(),
                }
                .into(),
                "Login with Amazon refused the sign-in request (HTTP 400): check the client id and the redirect URI settings (`avs-companion config`). LWA said: bad request",
                "Login with Amazon refused the sign-in request (HTTP 400): check the client id and the redirect URI settings",
            ),
            (
                LoginError::BadPastes {
                    why: "the pasted address is not this sign-in's".into(),
                    tries: 3,
                }
                .into(),
                "the pasted address is not this sign-in's; gave up after 3 pasted addresses: run pair again",
                "the pasted address is not this sign-in's; gave up after 3 pasted addresses: try again",
            ),
            (
                LinkError::StoppedAnswering.into(),
                "the speaker stopped answering (restarted?); your sign-in was not used — run pair again",
                "the speaker stopped answering (restarted?); your sign-in was not used — try again",
            ),
            // New: "Run" at the start of a sentence.
            (
                failed(AuthFailureClass::InvalidGrant, Some("invalid_grant"), Some("expired")),
                "Amazon refused the authorization code: it expired (codes live 5 minutes), was already used, or the redirect URI or client id differ from the sign-in's. Run pair again and finish within 5 minutes; if it keeps failing, check that http://127.0.0.1:9/cb is in your security profile's Allowed Return URLs and that client id cid belongs to that profile (Amazon said: invalid_grant: expired)",
                "Amazon refused the authorization code: it expired (codes live 5 minutes), was already used, or the redirect URI or client id differ from the sign-in's. Try again and finish within 5 minutes; if it keeps failing, check that http://127.0.0.1:9/cb is in your security profile's Allowed Return URLs and that client id cid belongs to that profile",
            ),
            (
                LoginError::Denied {
                    description: Some("User said no".into()),
                }
                .into(),
                "sign-in declined: the sign-in was declined or cancelled in the browser; nothing was linked. Run pair again and choose Allow to link the speaker (Amazon said: User said no)",
                "sign-in declined: the sign-in was declined or cancelled in the browser; nothing was linked. Try again and choose Allow to link the speaker",
            ),
            // New: Amazon's error code and description are its words, not the window's.
            (
                LoginError::Authorization {
                    error: "invalid_scope".into(),
                    description: Some("bad scope".into()),
                }
                .into(),
                "Amazon returned `invalid_scope`: Amazon refused the alexa:all scope: the speaker's product id is not an AVS product of this security profile (check the product id configured on the speaker) (Amazon said: bad scope)",
                "Amazon refused the alexa:all scope: the speaker's product id is not an AVS product of this security profile (check the product id configured on the speaker)",
            ),
            // New: a flag of the CLI.
            (
                PairError::NotFound {
                    query: None,
                    wanted: Wanted::ReadyToPair,
                    waited: Duration::from_secs(5),
                    seen: vec![],
                },
                "no speaker with an open pairing window found within 5s; none at all: is it powered, on this network, and its pairing window open? (or use --connect IP:PORT)",
                "no speaker with an open pairing window found within 5s; none at all: is it powered, on this network, and its pairing window open?",
            ),
            (
                ConfigError::NoClientId.into(),
                "no LWA client id: pass --client-id or save one with `avs-companion config --client-id …` (it is in your security profile, under Web or Other devices settings)",
                "no LWA client id (it is in your security profile, under Web or Other devices settings)",
            ),
            // The speaker's own words are everyone's.
            (
                failed(AuthFailureClass::Storage, None, Some("disk full")),
                "the speaker could not save its tokens (disk full or read-only?); check its storage and logs, then pair again (speaker said: disk full)",
                "the speaker could not save its tokens (disk full or read-only?); check its storage and logs, then pair again (speaker said: disk full)",
            ),
        ];
        for (err, terminal, plain) in rows {
            let words = err.words();
            assert_eq!(err.to_string(), terminal);
            assert_eq!(words.terminal(), terminal);
            assert_eq!(words.plain(), plain, "from {terminal:?}");
        }
    }

    /// LWA's error code and description reach the window as data, for its Advanced part.
    #[test]
    fn amazons_words_are_data() {
        let said = |e: PairError| e.words().lwa().cloned();
        let lwa = |error: Option<&str>, description: Option<&str>| {
            Some(crate::words::LwaSaid {
                error: error.map(Into::into),
                description: description.map(Into::into),
            })
        };
        assert_eq!(
            said(failed(
                AuthFailureClass::InvalidGrant,
                Some("invalid_grant"),
                Some("expired")
            )),
            lwa(Some("invalid_grant"), Some("expired"))
        );
        assert_eq!(
            said(
                LoginError::Authorization {
                    error: "invalid_scope".into(),
                    description: None
                }
                .into()
            ),
            lwa(Some("invalid_scope"), None)
        );
        assert_eq!(
            said(LoginError::Denied { description: None }.into()),
            lwa(Some("access_denied"), None)
        );
        assert_eq!(
            said(
                LoginError::ClientIdRefused {
                    client_id: "c".into(),
                    said: "The client_id is not registered".into()
                }
                .into()
            ),
            lwa(None, Some("The client_id is not registered"))
        );
        // The speaker's words are not Amazon's.
        assert_eq!(
            said(failed(AuthFailureClass::Storage, None, Some("disk full"))),
            None
        );
        assert_eq!(said(LinkError::StoppedAnswering.into()), None);
    }
}
