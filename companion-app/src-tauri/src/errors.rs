//! A failed pairing, as the result screen shows it: a heading, the core's sentence in the
//! window's words (what happened and what to do), the exact terminal sentence under Advanced,
//! and which next step the primary button offers.
//!
//! Both come from types, never from reading text: the heading and the next step from an
//! exhaustive match on the core's failure kinds (a new kind in the core is a compile error here
//! until it has a heading), the sentence from the core's [`Words`](companion_app::words::Words),
//! which leave out what only a terminal can use (commands, "run pair again", Amazon's quoted
//! words). The classification follows the core's [`ExitKind`] (the CLI's exit codes) wherever
//! that tells the right story, so the app and the CLI never disagree about what kind of failure
//! something is.

use companion_app::handover::HandoverError;
use companion_app::link::{LinkError, TriesLeft};
use companion_app::login::LoginError;
use companion_app::{ExitKind, PairError};
use shared_protocol::lwa::AuthError;
use shared_protocol::message::{AuthFailure, AuthFailureClass};

use crate::ipc::{ErrorKind, PairingErrorView, RetryMode};

/// The result screen's view of `err`.
pub fn view(err: &PairError) -> PairingErrorView {
    let (kind, title, retry) = classify(err);
    let words = err.words();
    let message = sentence(&words.plain());
    let exact = sentence(&words.terminal());
    PairingErrorView {
        kind,
        title: title.to_owned(),
        detail: (exact != message).then_some(exact),
        message,
        retry,
    }
}

/// What the result screen says about a failure: its kind, the heading, and the next step.
type Verdict = (ErrorKind, &'static str, RetryMode);

/// Every kind of failure, without a catch-all arm: the cases the exit kind alone would tell
/// wrongly have their own (a refused setting is not a "sign-in failed", the last wrong code is
/// not "try a new code"); the rest follow the CLI.
fn classify(err: &PairError) -> Verdict {
    let by_exit = || by_exit_kind(err.exit_kind());
    match err {
        PairError::Config(_) => (
            ErrorKind::Settings,
            "Check your settings",
            RetryMode::Settings,
        ),
        PairError::SetupCode(_) => (
            ErrorKind::WrongSetupCode,
            "That setup code isn't valid",
            RetryMode::NewCode,
        ),
        PairError::Login(e) => sign_in_failed(e),
        PairError::Link(e) => link_failed(e).unwrap_or_else(by_exit),
        PairError::Handover(HandoverError::Failed { failure, .. }) => exchange_failed(failure),
        PairError::Handover(HandoverError::Link(_) | HandoverError::KeptCurrent { .. })
        | PairError::Discovery(_)
        | PairError::NotFound { .. }
        | PairError::Ambiguous { .. }
        | PairError::SpeakerOffline { .. }
        | PairError::Cancelled
        | PairError::Usage(_) => by_exit(),
    }
}

/// The link failures whose exit kind would tell them wrongly; `None`: the exit kind's words.
fn link_failed(e: &LinkError) -> Option<Verdict> {
    match e {
        // That wrong code was the last try: pairing is locked, a new code can't help now.
        LinkError::WrongSetupCode {
            tries: Some(TriesLeft { left: 0, .. }),
        } => Some((
            ErrorKind::WrongSetupCode,
            "Wrong setup code: pairing is locked",
            RetryMode::ChooseSpeaker,
        )),
        // The agent's pacing: a code within a second of the last one is answered "busy, try
        // again in 1 s". Nothing is wrong with the speaker or the code: the same code again works.
        LinkError::Refused(body) if body.kind == shared_protocol::message::ErrorKind::Busy => {
            Some((
                ErrorKind::NotPairable,
                "The speaker is busy for a moment",
                RetryMode::SameCode,
            ))
        }
        LinkError::WrongSetupCode { .. }
        | LinkError::Refused(_)
        | LinkError::NoAddress
        | LinkError::Connect { .. }
        | LinkError::Timeout { .. }
        | LinkError::Incompatible(_)
        | LinkError::Closed { .. }
        | LinkError::Protocol { .. }
        | LinkError::Agent(_)
        | LinkError::StoppedAnswering
        | LinkError::NotASpeaker { .. } => None,
    }
}

/// The sign-in failed: the user stopped, or LWA refused one of the settings (fixed in the
/// settings, not by signing in again), or something else went wrong on the way.
fn sign_in_failed(e: &LoginError) -> Verdict {
    match e {
        LoginError::Denied { .. } | LoginError::Timeout(_) => (
            ErrorKind::SignInCancelled,
            "Sign-in didn't finish",
            RetryMode::SameCode,
        ),
        LoginError::NoWayBack(_) => (
            ErrorKind::Settings,
            "The redirect URI can't be used here",
            RetryMode::Settings,
        ),
        // The sign-in pre-flight: LWA refused a setting before any browser opened.
        LoginError::ClientIdRefused { .. } => (
            ErrorKind::Settings,
            "Amazon doesn't know this client id",
            RetryMode::Settings,
        ),
        LoginError::RedirectUriRefused { .. } => (
            ErrorKind::Settings,
            "Amazon doesn't accept the redirect URI",
            RetryMode::Settings,
        ),
        LoginError::RequestRefused { .. } => (
            ErrorKind::Settings,
            "Amazon refused the sign-in request",
            RetryMode::Settings,
        ),
        LoginError::Authorization { error, .. }
            if AuthError::from_lwa_error(error) == AuthError::InvalidValue =>
        {
            (
                ErrorKind::Settings,
                "Amazon doesn't recognise this app",
                RetryMode::Settings,
            )
        }
        LoginError::Authorization { .. }
        | LoginError::StateMismatch
        | LoginError::StateMissing
        | LoginError::MissingCode
        | LoginError::Listen { .. }
        | LoginError::Tls(_)
        | LoginError::Browser(_)
        | LoginError::BadPastes { .. } => (
            ErrorKind::SignInFailed,
            "Sign-in with Amazon failed",
            RetryMode::SameCode,
        ),
    }
}

/// The speaker tried to redeem the code and reports why it could not.
fn exchange_failed(failure: &AuthFailure) -> Verdict {
    match failure.class {
        AuthFailureClass::InvalidClient | AuthFailureClass::InvalidRequest => (
            ErrorKind::AmazonRefused,
            "Amazon refused the speaker's sign-in",
            RetryMode::Settings,
        ),
        // Two companions at once and this one lost: say who won, not "pairing ended".
        AuthFailureClass::WindowClosed if failure.linked_by_other.is_some() => (
            ErrorKind::NotPairable,
            "Another device linked this speaker",
            RetryMode::ChooseSpeaker,
        ),
        AuthFailureClass::WindowClosed => (
            ErrorKind::NotPairable,
            "The speaker stopped accepting pairing",
            RetryMode::ChooseSpeaker,
        ),
        AuthFailureClass::Unreachable | AuthFailureClass::BadResponse => (
            ErrorKind::AmazonRefused,
            "The speaker couldn't reach Amazon",
            RetryMode::SameCode,
        ),
        AuthFailureClass::InvalidGrant
        | AuthFailureClass::ServerError
        | AuthFailureClass::UnknownSession
        | AuthFailureClass::Storage
        | AuthFailureClass::Internal => (
            ErrorKind::AmazonRefused,
            "The speaker couldn't finish signing in",
            RetryMode::SameCode,
        ),
    }
}

/// Everything else, by the CLI's exit kind.
fn by_exit_kind(kind: ExitKind) -> Verdict {
    match kind {
        ExitKind::WrongSetupCode => (
            ErrorKind::WrongSetupCode,
            "Wrong setup code",
            RetryMode::NewCode,
        ),
        ExitKind::NotPairable => (
            ErrorKind::NotPairable,
            "The speaker isn't accepting pairing",
            RetryMode::ChooseSpeaker,
        ),
        ExitKind::Unreachable => (
            ErrorKind::Unreachable,
            "Can't reach the speaker",
            RetryMode::SameCode,
        ),
        ExitKind::Incompatible => (
            ErrorKind::Incompatible,
            "An update is needed",
            RetryMode::ChooseSpeaker,
        ),
        ExitKind::Cancelled => (
            ErrorKind::SignInCancelled,
            "Pairing was cancelled",
            RetryMode::SameCode,
        ),
        ExitKind::Usage => (
            ErrorKind::Settings,
            "Check your settings",
            RetryMode::Settings,
        ),
        ExitKind::LwaError => (
            ErrorKind::AmazonRefused,
            "Amazon refused the sign-in",
            RetryMode::SameCode,
        ),
        ExitKind::Success | ExitKind::Failure => (
            ErrorKind::Failure,
            "Something went wrong",
            RetryMode::SameCode,
        ),
    }
}

/// The core's messages are lower-case clauses made for a terminal line; the window shows them as
/// a sentence.
pub(crate) fn sentence(text: &str) -> String {
    let mut chars = text.trim().chars();
    let mut out = match chars.next() {
        Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// Failures that several test modules build.
#[cfg(test)]
pub(crate) mod samples {
    use super::*;
    use shared_protocol::message::{AccountProfile, LinkedByOther};

    /// The handover's failure when another companion linked the speaker while this one was
    /// signing in (protocol 1.2: `window_closed`, with the winner's account when the speaker
    /// could read it).
    pub(crate) fn lost_race(winner: Option<AccountProfile>) -> PairError {
        HandoverError::Failed {
            failure: AuthFailure {
                class: AuthFailureClass::WindowClosed,
                error: AuthError::AuthorizationFailed,
                lwa_error: None,
                description: None,
                retry_with_same_code: false,
                linked_by_other: Some(Box::new(LinkedByOther { account: winner })),
            },
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            client_id: "c".into(),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_protocol::message::{ErrorBody, ErrorKind as WireKind};

    #[test]
    fn a_busy_speaker_offers_the_same_code_again() {
        // Issue 15.10 (found by the window e2e): the right code typed within a second of a wrong
        // one was "isn't accepting pairing" with "Back to speakers"; it is a moment's wait.
        let busy: PairError = LinkError::Refused(ErrorBody::new(
            WireKind::Busy,
            "another setup code was tried a moment ago; try again in 1 s",
        ))
        .into();
        let v = view(&busy);
        assert_eq!(
            (v.kind, v.retry, v.title.as_str()),
            (
                ErrorKind::NotPairable,
                RetryMode::SameCode,
                "The speaker is busy for a moment"
            )
        );
        assert!(v.message.contains("try again in 1 s"), "{}", v.message);
    }

    #[test]
    fn the_window_gets_people_words_and_the_exact_sentence_under_advanced() {
        // Issue 15.10: no CLI command in the result screen's sentence; the core's own is the
        // detail. A sentence with nothing to take out has no detail.
        let v = view(&LinkError::StoppedAnswering.into());
        assert_eq!(
            v.message,
            "The speaker stopped answering (restarted?); your sign-in was not used — try again."
        );
        assert_eq!(
            v.detail.as_deref(),
            Some("The speaker stopped answering (restarted?); your sign-in was not used — run pair again.")
        );
        let v = view(&LinkError::WrongSetupCode { tries: None }.into());
        assert_eq!(v.detail, None, "{}", v.message);
    }

    #[test]
    fn classes_match_the_cli_exit_codes() {
        let wrong: PairError = LinkError::WrongSetupCode { tries: None }.into();
        let v = view(&wrong);
        assert_eq!(
            (v.kind, v.retry),
            (ErrorKind::WrongSetupCode, RetryMode::NewCode)
        );
        assert!(v.message.starts_with("Wrong setup code"), "{}", v.message);
        assert!(v.message.ends_with('.'));

        // Issue 15.7: the speaker's count reaches the window; the last try offers no new code.
        let counted = |left| -> PairError {
            LinkError::WrongSetupCode {
                tries: Some(TriesLeft {
                    left,
                    lockout: std::time::Duration::from_secs(60),
                }),
            }
            .into()
        };
        let v = view(&counted(3));
        assert_eq!(
            v.message,
            "Wrong setup code: 3 tries left before pairing locks for 1 minute (check the label or the code shown at first boot)."
        );
        assert_eq!(v.retry, RetryMode::NewCode);
        let v = view(&counted(0));
        assert_eq!(
            (v.kind, v.title.as_str(), v.retry),
            (
                ErrorKind::WrongSetupCode,
                "Wrong setup code: pairing is locked",
                RetryMode::ChooseSpeaker
            )
        );
        assert!(
            v.message.contains("pairing is locked for 1 minute"),
            "{}",
            v.message
        );

        let locked: PairError =
            LinkError::Refused(ErrorBody::new(WireKind::LockedOut, "locked for 60 s")).into();
        assert_eq!(view(&locked).kind, ErrorKind::NotPairable);

        let gone: PairError = LinkError::Closed {
            during: "the hello",
        }
        .into();
        assert_eq!(
            (view(&gone).kind, view(&gone).retry),
            (ErrorKind::Unreachable, RetryMode::SameCode)
        );

        let denied: PairError = LoginError::Denied { description: None }.into();
        assert_eq!(view(&denied).kind, ErrorKind::SignInCancelled);

        let mismatch: PairError = LoginError::StateMismatch.into();
        assert_eq!(view(&mismatch).kind, ErrorKind::SignInFailed);

        let lwa = |error: &str| -> PairError {
            LoginError::Authorization {
                error: error.into(),
                description: None,
            }
            .into()
        };
        let unknown_client = view(&lwa("invalid_client"));
        assert_eq!(
            (unknown_client.kind, unknown_client.retry),
            (ErrorKind::Settings, RetryMode::Settings)
        );
        assert_eq!(view(&lwa("invalid_scope")).kind, ErrorKind::SignInFailed);
    }

    #[test]
    fn sentences_start_upper_case_and_end_with_a_stop() {
        assert_eq!(sentence("cannot connect"), "Cannot connect.");
        assert_eq!(sentence("done (x)"), "Done (x).");
        assert_eq!(sentence(""), "");
    }

    fn failed(class: AuthFailureClass, lwa_error: Option<&str>) -> PairError {
        HandoverError::Failed {
            failure: AuthFailure {
                class,
                error: AuthError::UnknownError,
                lwa_error: lwa_error.map(Into::into),
                description: lwa_error.map(|_| "LWA's description".into()),
                retry_with_same_code: false,
                linked_by_other: None,
            },
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            client_id: "amzn1.application-oa2-client.x".into(),
        }
        .into()
    }

    /// A sample of every failure kind of the core, with example values. The result screen's
    /// heading and next step come from exhaustive matches (`classify`, `link_failed`,
    /// `sign_in_failed`, `exchange_failed`) and the sentence from the core's exhaustive
    /// `words()`: a new kind in the core does not compile until both name it; add its sample
    /// here too.
    fn every_kind() -> Vec<PairError> {
        use companion_app::config::ConfigError;
        use companion_app::connect::{ConnectFailure, Wanted};
        use companion_app::discovery::DiscoveryError;
        use shared_protocol::message::{AccountProfile, VersionMismatch};
        use shared_protocol::setup_code::SetupCodeError;
        use std::time::Duration;
        let body = |kind, text: &str| ErrorBody::new(kind, text);
        let mut all: Vec<PairError> = vec![
            ConfigError::NoConfigDir.into(),
            ConfigError::TooLarge("/home/u/.config/avs-pair/companion.toml".into()).into(),
            ConfigError::NoClientId.into(),
            ConfigError::BadClientId { id: "abc".into() }.into(),
            SetupCodeError::Empty.into(),
            DiscoveryError::Mdns("the daemon stopped".into()).into(),
            PairError::NotFound {
                query: None,
                wanted: Wanted::ReadyToPair,
                waited: Duration::from_secs(5),
                seen: vec![],
            },
            PairError::NotFound {
                query: Some("Kitchen".into()),
                wanted: Wanted::Any,
                waited: Duration::from_secs(5),
                seen: vec!["Hall (0123456789abcdef)".into()],
            },
            PairError::Ambiguous {
                wanted: Wanted::ReadyToPair,
                candidates: vec!["Hall".into(), "Kitchen".into()],
            },
            PairError::SpeakerOffline {
                reason: "the speaker could not join Home: wrong password".into(),
            },
            PairError::Cancelled,
            PairError::Usage("that is not a speaker address".into()),
            LoginError::Denied {
                description: Some("User said no".into()),
            }
            .into(),
            LoginError::Authorization {
                error: "invalid_scope".into(),
                description: Some("bad scope".into()),
            }
            .into(),
            LoginError::Authorization {
                error: "invalid_client".into(),
                description: None,
            }
            .into(),
            LoginError::StateMismatch.into(),
            LoginError::StateMissing.into(),
            LoginError::MissingCode.into(),
            LoginError::Timeout(Duration::from_secs(300)).into(),
            LoginError::Listen {
                addr: "127.0.0.1:9".into(),
                reason: "address in use".into(),
            }
            .into(),
            LoginError::Tls("no randomness".into()).into(),
            LoginError::Browser("could not open a browser (false: exit 1)".into()).into(),
            // A browser command that started and failed, as the app's watch reports it.
            LoginError::browser_failed(&companion_app::login::BrowserFailure {
                program: "xdg-open".into(),
                how: "exit 3".into(),
                said: "no display".into(),
            })
            .into(),
            LoginError::NoWayBack("https://example.com/cb".into()).into(),
            LoginError::ClientIdRefused {
                client_id: "amzn1.application-oa2-client.x".into(),
                said: "invalid_client".into(),
            }
            .into(),
            LoginError::RedirectUriRefused {
                redirect_uri: "http://127.0.0.1:9/cb".into(),
                said: "redirect_uri mismatch".into(),
            }
            .into(),
            LoginError::RequestRefused {
                status: 400,
                said: "bad request".into(),
            }
            .into(),
            LoginError::BadPastes {
                why: "the pasted address is not this sign-in's".into(),
                tries: 3,
            }
            .into(),
            LinkError::NoAddress.into(),
            LinkError::Connect {
                addrs: "10.0.0.2:4545".into(),
                reason: ConnectFailure::TimedOut(Duration::from_secs(5)),
            }
            .into(),
            LinkError::Timeout {
                waiting_for: "the hello",
                after: Duration::from_secs(10),
            }
            .into(),
            LinkError::WrongSetupCode { tries: None }.into(),
            LinkError::Refused(body(WireKind::LockedOut, "locked for 60 s")).into(),
            LinkError::Refused(body(WireKind::Busy, "try again in 1 s")).into(),
            LinkError::Incompatible(VersionMismatch::NoCommonScheme(vec!["x".into()])).into(),
            LinkError::Closed {
                during: "the hello",
            }
            .into(),
            LinkError::Protocol {
                during: "the hello",
                detail: "not a hello".into(),
            }
            .into(),
            LinkError::Agent(body(
                WireKind::Internal,
                "the speaker cannot read its store",
            ))
            .into(),
            LinkError::StoppedAnswering.into(),
            LinkError::NotASpeaker {
                like: "an HTTP server",
            }
            .into(),
            HandoverError::Link(LinkError::StoppedAnswering).into(),
            HandoverError::KeptCurrent {
                current: Box::new(AccountProfile::from_lwa(
                    "a".into(),
                    Some("Alice Example"),
                    Some("alice@example.com"),
                )),
                new: None,
                timed_out: false,
            }
            .into(),
            super::samples::lost_race(None),
        ];
        for class in AuthFailureClass::ALL {
            all.push(failed(class, None));
            all.push(failed(class, Some("invalid_grant")));
        }
        all
    }

    /// Every failure reaches the result screen with a heading and a sentence in the window's
    /// words: no CLI command or flag, no backticks, no "run pair again", no quote of Amazon
    /// (those are under Advanced, in the exact sentence). These were the expectations of the
    /// text surgery this replaced (`plain_words`), now for every kind rather than for the
    /// sentences someone remembered to list.
    #[test]
    fn every_failure_kind_has_window_words_without_terminal_material() {
        for err in every_kind() {
            let v = view(&err);
            let exact = err.to_string();
            assert!(!v.title.is_empty(), "no heading for {exact:?}");
            for bad in [
                "`",
                "avs-device-agent",
                "avs-companion",
                "--",
                "run pair",
                "Run pair",
                "LWA said",
                "Amazon said",
                "Amazon returned",
            ] {
                assert!(
                    !v.message.contains(bad),
                    "{bad:?} left in {:?} (from {exact:?})",
                    v.message
                );
            }
            assert!(
                !v.message.contains("  ") && !v.message.contains("()"),
                "{}",
                v.message
            );
            // When something was left out, enough is left to read.
            assert!(
                v.message.len() > 20 || v.detail.is_none(),
                "too little of {exact:?}: {:?}",
                v.message
            );
            assert!(v.message.ends_with(['.', '!', '?']), "{}", v.message);
            // Under Advanced: the CLI's sentence, whenever the window's differs.
            match &v.detail {
                Some(detail) => {
                    assert_eq!(detail, &sentence(&exact));
                    assert_ne!(detail, &v.message);
                }
                None => assert_eq!(v.message, sentence(&exact)),
            }
            // Amazon's own words are developer material: under Advanced, not in the sentence.
            if let Some(said) = err.words().lwa() {
                assert!(v.detail.is_some(), "{exact:?}");
                for words in [&said.error, &said.description].into_iter().flatten() {
                    assert!(
                        !v.message.contains(words.as_str()),
                        "{words:?} in {:?}",
                        v.message
                    );
                }
            }
        }
    }

    /// The former `plain_words` tests' sentences, as the result screen now shows them.
    #[test]
    fn the_window_sentences_read_as_before() {
        for (err, plain) in [
            (
                failed(AuthFailureClass::WindowClosed, None),
                "the speaker's pairing window closed before the code arrived; reopen pairing on the speaker and try again",
            ),
            (
                LoginError::ClientIdRefused {
                    client_id: "amzn1.application-oa2-client.x".into(),
                    said: "invalid_client".into(),
                }
                .into(),
                "Login with Amazon does not know the client id amzn1.application-oa2-client.x: check the client id setting; copy it from your security profile in the Amazon developer console (its 'Other devices and platforms' or Android/iOS settings)",
            ),
            (
                LoginError::StateMismatch.into(),
                "the sign-in response does not belong to this login: ignored it for safety. Close other Amazon sign-in tabs and try again",
            ),
            (
                failed(AuthFailureClass::ServerError, None),
                "Amazon's login service had an error; wait a minute and try again",
            ),
        ] {
            assert_eq!(view(&err).message, sentence(plain), "from {err}");
        }
        // Words without commands stay as they are, with nothing under Advanced.
        let counted: PairError = LinkError::WrongSetupCode {
            tries: Some(TriesLeft {
                left: 19,
                lockout: std::time::Duration::from_secs(60),
            }),
        }
        .into();
        let v = view(&counted);
        assert!(
            v.message
                .starts_with("Wrong setup code: 19 tries left before pairing locks for 1 minute"),
            "{}",
            v.message
        );
        assert_eq!(
            (v.message, v.detail),
            (sentence(&counted.to_string()), None)
        );
    }
}
