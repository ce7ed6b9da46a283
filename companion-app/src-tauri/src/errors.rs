//! A failed pairing, as the result screen shows it: a heading, the core's exact sentence (what
//! happened and what to do), and which next step the primary button offers.
//!
//! The classification follows the core's [`ExitKind`] (the CLI's exit codes), so the app and the
//! CLI never disagree about what kind of failure something is.

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
    let exact = err.to_string();
    let message = sentence(&crate::plain_words::for_people(&exact));
    let exact = sentence(&exact);
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

/// The cases the exit kind alone would tell wrongly come first (a refused setting is not a
/// "sign-in failed", the last wrong code is not "try a new code"); the rest follow the CLI.
fn classify(err: &PairError) -> Verdict {
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
        PairError::Handover(HandoverError::Failed { failure, .. }) => exchange_failed(failure),
        // That wrong code was the last try: pairing is locked, a new code can't help now.
        PairError::Link(LinkError::WrongSetupCode {
            tries: Some(TriesLeft { left: 0, .. }),
        }) => (
            ErrorKind::WrongSetupCode,
            "Wrong setup code: pairing is locked",
            RetryMode::ChooseSpeaker,
        ),
        // The agent's pacing: a code within a second of the last one is answered "busy, try
        // again in 1 s". Nothing is wrong with the speaker or the code: the same code again works.
        PairError::Link(LinkError::Refused(body))
            if body.kind == shared_protocol::message::ErrorKind::Busy =>
        {
            (
                ErrorKind::NotPairable,
                "The speaker is busy for a moment",
                RetryMode::SameCode,
            )
        }
        other => by_exit_kind(other.exit_kind()),
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
        _ => (
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
        _ => (
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
}
