//! Handing the authorization code to the speaker and following it to the end.
//!
//! The speaker redeems the code itself (it holds the PKCE verifier), so after
//! `ProvideAuthorization` the companion only listens: `Progress` events while the speaker talks
//! to LWA, then one `AuthResult`. Two clocks bound the wait: a gap between messages longer than
//! `idle` (the speaker died or the link broke) and a `total` for the whole exchange (the
//! speaker's own LWA request is capped at 60 s).
//!
//! Every failure class the speaker can report maps to a sentence that tells the user what to do
//! ([`advice`]), with LWA's own words attached when it gave some.
//!
//! Two answers are about people rather than errors (protocol 1.2): the speaker may ask, in the
//! middle of the exchange, whether to replace the account it is linked to with the one that just
//! signed in (`ConfirmAccountSwitch`; see [`crate::account_switch`]), and a companion that lost a
//! race with another one is told who won ("another companion linked this speaker a moment ago
//! (to Alice Example)"). The time the user takes to answer the question does not count against
//! the exchange's clocks.

use std::time::Duration;

use shared_protocol::frame::FrameTransport;
use shared_protocol::ids::{ClientId, RedirectUri, SessionId, UserId};
use shared_protocol::message::{
    AccountProfile, AccountSwitch, AccountSwitchAnswer, AgentMessage, AuthFailure,
    AuthFailureClass, AuthResult, CompanionMessage, ProgressStage, ProvideAuthorization,
};
use shared_protocol::secret::AuthorizationCode;
use tokio::time::Instant;

use crate::account_switch::{kept_text, AccountSwitchConfirm, SwitchQuestion};
use crate::link::{unexpected, LinkError, LinkSession};
use crate::words::{LwaSaid, Words};

/// The longest the companion waits for the user's answer to the account-switch question,
/// whatever `answer_within_secs` the speaker asks for (its default is 2 minutes): a speaker
/// must not be able to hold the companion for hours. After it the answer is "keep".
pub const MAX_SWITCH_ANSWER_WAIT: Duration = Duration::from_secs(10 * 60);

/// Bounds on the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoverTimeouts {
    /// Longest silence between two messages from the speaker.
    pub idle: Duration,
    /// Longest whole exchange.
    pub total: Duration,
}

impl Default for HandoverTimeouts {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(75),
            total: Duration::from_secs(150),
        }
    }
}

/// The speaker linked the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// The pairing session.
    pub session_id: SessionId,
    /// The Amazon account, if the speaker could read it.
    pub user_id: Option<UserId>,
    /// Its name and e-mail address too (a 1.2 speaker with the `profile` scope granted).
    pub account: Option<AccountProfile>,
}

impl Linked {
    /// Who the speaker is linked to, for a sentence ([`account_words`]).
    pub fn account_text(&self) -> Option<String> {
        account_words(self.account.as_ref(), self.user_id.as_ref())
    }
}

/// Who a speaker is linked to, for a sentence: "Alice Example (alice@example.com)", "Amazon
/// account amzn1.account.…" when only the id was readable, `None` when not even the id was.
/// The pair step's detail, the CLI's result line and anything else that names the account
/// take their words from here.
pub fn account_words(account: Option<&AccountProfile>, user_id: Option<&UserId>) -> Option<String> {
    match (account, user_id) {
        (Some(a), _) => Some(account_label(a)),
        (None, Some(u)) => Some(id_label(u)),
        (None, None) => None,
    }
}

/// An account the speaker read, for a sentence: "Alice Example (alice@example.com)", or
/// "Amazon account amzn1.account.…" when its name and e-mail could not be read. What
/// [`account_words`] says of it, and the app's account label.
pub fn account_label(account: &AccountProfile) -> String {
    if account.is_id_only() {
        id_label(&account.user_id)
    } else {
        account.to_string()
    }
}

/// An account known only by its id: "Amazon account amzn1.account.…" (the bare id reads like an
/// error code in a sentence).
fn id_label(user_id: &UserId) -> String {
    format!("Amazon account {user_id}")
}

/// Why the handover did not link the speaker.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// The link failed (closed, timed out, garbled).
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The speaker tried and reports why it failed.
    #[error("{}", advice(.failure, .redirect_uri, .client_id))]
    Failed {
        /// The speaker's report.
        failure: AuthFailure,
        /// For the advice sentence.
        redirect_uri: RedirectUri,
        /// For the advice sentence.
        client_id: ClientId,
    },
    /// The sign-in was a different account and the user said "keep" (or did not answer in
    /// time, or could not be asked): the speaker stays linked to `current`.
    #[error("{}", kept_text(.current, .new.as_deref(), *.timed_out))]
    KeptCurrent {
        /// The account the speaker is still linked to (boxed, like `new`: error types stay
        /// small).
        current: Box<AccountProfile>,
        /// The account that signed in and was not linked.
        new: Option<Box<AccountProfile>>,
        /// The speaker stopped waiting for the answer.
        timed_out: bool,
    },
}

impl HandoverError {
    /// The speaker's failure report, if it sent one.
    pub fn failure(&self) -> Option<&AuthFailure> {
        match self {
            HandoverError::Failed { failure, .. } => Some(failure),
            HandoverError::Link(_) | HandoverError::KeptCurrent { .. } => None,
        }
    }

    /// What happened and what to do, in pieces ([`Words`]); the `Display` is their terminal
    /// rendering.
    pub fn words(&self) -> Words {
        match self {
            HandoverError::Link(e) => e.words(),
            HandoverError::Failed {
                failure,
                redirect_uri,
                client_id,
            } => advice(failure, redirect_uri, client_id),
            HandoverError::KeptCurrent { .. } => self.to_string().into(),
        }
    }
}

/// Sends the code and follows the speaker to its `AuthResult`. `on_progress` sees each stage.
/// A `ConfirmAccountSwitch` question goes to `confirm`; `None` answers "replace" without asking
/// (the behaviour before protocol 1.2). The user's thinking time does not count against
/// `timeouts`; the speaker's own deadline (`answer_within_secs`) bounds it, capped at
/// [`MAX_SWITCH_ANSWER_WAIT`].
#[allow(clippy::too_many_arguments)]
pub async fn hand_over<T: FrameTransport>(
    session: &mut LinkSession<T>,
    session_id: SessionId,
    code: AuthorizationCode,
    client_id: &ClientId,
    redirect_uri: &RedirectUri,
    timeouts: HandoverTimeouts,
    mut on_progress: impl FnMut(ProgressStage),
    mut confirm: Option<&mut (dyn AccountSwitchConfirm + '_)>,
) -> Result<Linked, HandoverError> {
    let provide = CompanionMessage::ProvideAuthorization(ProvideAuthorization {
        session_id,
        authorization_code: code,
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
    });
    session.send(&provide, DURING).await.map_err(stopped)?;
    // The total clock starts once the speaker has the code: that is when its LWA request can
    // begin.
    let mut deadline = Instant::now() + timeouts.total;
    let mut exchange = Exchange {
        session_id,
        client_id,
        redirect_uri,
        asked_about: None,
    };
    loop {
        let message = next_message(session, deadline, timeouts).await?;
        match exchange.turn(message, &mut on_progress) {
            Turn::Listen => {}
            Turn::End(result) => return result,
            Turn::Ask(question) => {
                let asked = Instant::now();
                answer_switch(session, session_id, &question, confirm.as_deref_mut()).await?;
                exchange.asked_about = Some(question.new);
                // The user's time is not the speaker's.
                deadline += asked.elapsed();
            }
        }
    }
}

/// What the handover is doing, for the error messages.
const DURING: &str = "the authorization handover";

/// A link closed while the speaker holds the code means the speaker stopped answering (it
/// died, or the link broke), which is what the user is told.
fn stopped(e: LinkError) -> LinkError {
    match e {
        LinkError::Closed { .. } => LinkError::StoppedAnswering,
        other => other,
    }
}

/// The speaker's next message under both clocks: a silence as long as `idle` is a speaker that
/// stopped answering; running out of `total` (a shorter wait) is the exchange taking too long.
async fn next_message<T: FrameTransport>(
    session: &mut LinkSession<T>,
    deadline: Instant,
    timeouts: HandoverTimeouts,
) -> Result<AgentMessage, HandoverError> {
    let timed_out = || -> HandoverError {
        LinkError::Timeout {
            waiting_for: "the result of the code exchange",
            after: timeouts.total,
        }
        .into()
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out());
    }
    let wait = timeouts.idle.min(left);
    match session.recv(wait, "the speaker's progress").await {
        Err(LinkError::Timeout { .. }) if wait < timeouts.idle => Err(timed_out()),
        other => Ok(other.map_err(stopped)?),
    }
}

/// Asks `confirm` whether to replace the speaker's account (no one to ask: replace) within the
/// speaker's deadline, capped at [`MAX_SWITCH_ANSWER_WAIT`] (no answer in time: keep), and
/// sends the answer.
async fn answer_switch<T: FrameTransport>(
    session: &mut LinkSession<T>,
    session_id: SessionId,
    question: &AccountSwitch,
    confirm: Option<&mut (dyn AccountSwitchConfirm + '_)>,
) -> Result<(), LinkError> {
    let limit = Duration::from_secs(question.answer_within_secs).min(MAX_SWITCH_ANSWER_WAIT);
    let replace = match confirm {
        None => true,
        Some(c) => tokio::time::timeout(
            limit,
            c.confirm(SwitchQuestion {
                current: &question.current,
                new: &question.new,
            }),
        )
        .await
        .unwrap_or(false),
    };
    let answer = CompanionMessage::AccountSwitchAnswer(AccountSwitchAnswer {
        session_id,
        replace,
    });
    session
        .send(&answer, "the answer to the account switch")
        .await
        .map_err(stopped)
}

/// What one message from the speaker means for the handover.
enum Turn {
    /// Keep listening.
    Listen,
    /// The speaker asks whether to replace the account it is linked to.
    Ask(AccountSwitch),
    /// The handover is over.
    End(Result<Linked, HandoverError>),
}

/// The handover's own session and what the messages are checked against.
struct Exchange<'a> {
    session_id: SessionId,
    client_id: &'a ClientId,
    redirect_uri: &'a RedirectUri,
    /// The account the user was asked about, named when the speaker keeps its current one.
    asked_about: Option<AccountProfile>,
}

impl Exchange<'_> {
    /// Reads one message. Anything for another session, that answers nothing asked, or a second
    /// account-switch question ends the handover, except a stale `Progress`, which is ignored.
    fn turn(&mut self, message: AgentMessage, on_progress: &mut impl FnMut(ProgressStage)) -> Turn {
        let ours = self.session_id;
        let result = match message {
            AgentMessage::Progress(p) => {
                if p.session_id == ours {
                    on_progress(p.stage);
                }
                return Turn::Listen;
            }
            // At most one question per handover (docs/protocol.md): a speaker asking again
            // would hold the user (and the cap on the answer) for ever.
            AgentMessage::ConfirmAccountSwitch(q)
                if q.session_id == ours && self.asked_about.is_none() =>
            {
                return Turn::Ask(q)
            }
            AgentMessage::AuthResult(AuthResult::Linked {
                session_id,
                user_id,
                account,
            }) if session_id == ours => Ok(Linked {
                session_id,
                user_id,
                account,
            }),
            AgentMessage::AuthResult(AuthResult::KeptCurrent {
                session_id,
                account,
                timed_out,
            }) if session_id == ours => Err(HandoverError::KeptCurrent {
                current: Box::new(account),
                new: self.asked_about.take().map(Box::new),
                timed_out,
            }),
            AgentMessage::AuthResult(AuthResult::Failed {
                session_id,
                failure,
            }) if session_id == ours => Err(HandoverError::Failed {
                failure,
                redirect_uri: self.redirect_uri.clone(),
                client_id: self.client_id.clone(),
            }),
            AgentMessage::Error(body) => Err(LinkError::Agent(body).into()),
            // A result for another session, or an answer to nothing we asked.
            other @ (AgentMessage::AuthResult(_)
            | AgentMessage::ConfirmAccountSwitch(_)
            | AgentMessage::DeviceInfo(_)
            | AgentMessage::Status(_)
            | AgentMessage::ResetDone
            | AgentMessage::NetworkStatus(_)
            | AgentMessage::WifiScan(_)
            | AgentMessage::WifiProgress(_)
            | AgentMessage::WifiResult(_)
            | AgentMessage::Unknown) => Err(unexpected(DURING, &other).into()),
        };
        Turn::End(result)
    }
}

/// What the loser of a race between two companions is told: "another companion linked this
/// speaker a moment ago (to Alice Example); your sign-in was not used". An account known only
/// by its id is "Amazon account amzn1.account.…" ([`account_label`]), never the bare id.
pub fn linked_by_other_text(account: Option<&AccountProfile>) -> String {
    match account {
        Some(a) => format!(
            "another companion linked this speaker a moment ago (to {}); your sign-in was not used",
            if a.is_id_only() {
                account_label(a)
            } else {
                a.short().to_owned()
            }
        ),
        None => "another companion linked this speaker a moment ago; your sign-in was not used"
            .to_owned(),
    }
}

/// What to tell the user about a failed exchange: what happened and what to do, with LWA's
/// own words kept apart ([`Words::lwa`]).
pub fn advice(failure: &AuthFailure, redirect_uri: &RedirectUri, client_id: &ClientId) -> Words {
    if let Some(by) = &failure.linked_by_other {
        return linked_by_other_text(by.account.as_ref()).into();
    }
    // The speaker refused the grant itself (LWA gave no refresh token): its sentence says what
    // happened and what to do; "Amazon does not accept client id …" would be wrong.
    if failure.class == AuthFailureClass::InvalidClient && failure.lwa_error.is_none() {
        if let Some(d) = &failure.description {
            return d.clone().into();
        }
    }
    let what_to_do = match failure.class {
        AuthFailureClass::InvalidGrant => Words::from(
            "Amazon refused the authorization code: it expired (codes live 5 minutes), was already used, or the redirect URI or client id differ from the sign-in's. ",
        )
        .retry_capital()
        .text(format!(
            " and finish within 5 minutes; if it keeps failing, check that {redirect_uri} is in your security profile's Allowed Return URLs and that client id {client_id} belongs to that profile"
        )),
        AuthFailureClass::InvalidClient => format!(
            "Amazon does not accept client id {client_id}: copy the client id from your security profile (Amazon developer console → your AVS product → Security Profile) and make sure the profile is enabled for the product"
        )
        .into(),
        AuthFailureClass::InvalidRequest => format!(
            "Amazon rejected the speaker's token request: the redirect URI ({redirect_uri}) is not in your security profile's Allowed Return URLs, or the speaker's software is too old; add the exact URI to Allowed Return URLs, update the speaker, and pair again"
        )
        .into(),
        AuthFailureClass::ServerError => {
            Words::from("Amazon's login service had an error; wait a minute and ").retry()
        }
        AuthFailureClass::Unreachable => {
            "the speaker could not reach Amazon (no internet, DNS, a proxy or a wrong clock breaking TLS); fix the speaker's network and pair again".into()
        }
        AuthFailureClass::BadResponse => {
            "the speaker got an answer from Amazon it could not understand (a captive portal or proxy in the way?); check the speaker's network and pair again".into()
        }
        AuthFailureClass::UnknownSession => Words::from(
            "the speaker no longer knows this pairing session (it restarted, or another app started pairing it); ",
        )
        .retry(),
        AuthFailureClass::WindowClosed => Words::from(
            "the speaker's pairing window closed before the code arrived; reopen pairing on the speaker",
        )
        .terminal_only(" (its pairing button, or `avs-device-agent pair` on it)")
        .text(" and ")
        .retry(),
        AuthFailureClass::Storage => {
            "the speaker could not save its tokens (disk full or read-only?); check its storage and logs, then pair again".into()
        }
        AuthFailureClass::Internal => {
            "the speaker hit an internal error; check its logs and pair again".into()
        }
    };
    let said = LwaSaid {
        error: failure.lwa_error.clone(),
        description: failure.description.clone(),
    };
    // No promise that "the same sign-in can be retried": once the automatic resends are
    // exhausted the companion has nothing left that would resend it (issue 15.3).
    match (&failure.lwa_error, &failure.description) {
        (Some(e), Some(d)) => what_to_do.lwa_quote(format!(" (Amazon said: {e}: {d})"), said),
        (Some(e), None) => what_to_do.lwa_quote(format!(" (Amazon said: {e})"), said),
        // The speaker's own words, not Amazon's: for everyone.
        (None, Some(d)) => what_to_do.text(format!(" (speaker said: {d})")),
        (None, None) => what_to_do,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_protocol::lwa::AuthError;

    /// The winner of a race is named as every other sentence names an account: its name, or
    /// "Amazon account amzn1.account.…" when only the id was readable.
    #[test]
    fn the_winner_of_a_race_is_named_like_any_account() {
        let alice = AccountProfile::from_lwa("amzn1.account.A".into(), Some("Alice Example"), None);
        let id_only = AccountProfile::id_only("amzn1.account.W".into());
        assert_eq!(
            linked_by_other_text(Some(&alice)),
            "another companion linked this speaker a moment ago (to Alice Example); your sign-in was not used"
        );
        assert_eq!(
            linked_by_other_text(Some(&id_only)),
            "another companion linked this speaker a moment ago (to Amazon account amzn1.account.W); your sign-in was not used"
        );
        assert_eq!(
            linked_by_other_text(None),
            "another companion linked this speaker a moment ago; your sign-in was not used"
        );
    }

    /// A failure of `class` with LWA's `error` and the speaker's `description`; nothing else.
    fn failure(
        class: AuthFailureClass,
        error: AuthError,
        description: Option<&str>,
    ) -> AuthFailure {
        AuthFailure {
            class,
            error,
            lwa_error: None,
            description: description.map(Into::into),
            retry_with_same_code: false,
            linked_by_other: None,
        }
    }

    /// The advice for `f` with a loopback redirect URI.
    fn advised(f: &AuthFailure) -> String {
        advice(f, &"http://127.0.0.1:1/cb".into(), &"cid".into()).to_string()
    }

    /// A user who never answers.
    #[derive(Debug)]
    struct NeverAnswers;

    impl AccountSwitchConfirm for NeverAnswers {
        fn confirm<'a>(
            &'a mut self,
            _question: SwitchQuestion<'a>,
        ) -> crate::wifi::BoxFuture<'a, bool> {
            Box::pin(std::future::pending())
        }
    }

    /// A speaker that asks for a day to answer its account-switch question: the companion still
    /// answers "keep" after [`MAX_SWITCH_ANSWER_WAIT`] (virtual time: the clock is paused and
    /// jumps ahead while everything waits, so the test takes milliseconds).
    #[tokio::test(start_paused = true)]
    async fn a_speaker_asking_for_a_day_gets_its_answer_within_the_cap() {
        use shared_protocol::message::AccountSwitch;

        let alice = AccountProfile::id_only("amzn1.account.A".into());
        let bob = AccountProfile::id_only("amzn1.account.B".into());
        let (mut session, mut s) = crate::test_speaker::sealed_link(&[]).await;
        let (current, new) = (alice.clone(), bob.clone());
        let speaker = tokio::spawn(async move {
            let CompanionMessage::ProvideAuthorization(p) = s.recv().await.unwrap() else {
                panic!("not the code");
            };
            s.send(&AgentMessage::ConfirmAccountSwitch(AccountSwitch {
                session_id: p.session_id,
                current: current.clone(),
                new,
                answer_within_secs: 24 * 60 * 60,
            }))
            .await
            .unwrap();
            let asked = Instant::now();
            let CompanionMessage::AccountSwitchAnswer(answer) = s.recv().await.unwrap() else {
                panic!("not the answer");
            };
            let waited = asked.elapsed();
            s.send(&AgentMessage::AuthResult(AuthResult::KeptCurrent {
                session_id: p.session_id,
                account: current,
                timed_out: false,
            }))
            .await
            .unwrap();
            (answer.replace, waited)
        });

        let result = hand_over(
            &mut session,
            SessionId::random(),
            AuthorizationCode::new("the-code"),
            &"cid".into(),
            &"http://127.0.0.1:1/cb".into(),
            HandoverTimeouts::default(),
            |_| {},
            Some(&mut NeverAnswers),
        )
        .await;
        match result {
            Err(HandoverError::KeptCurrent { current, new, .. }) => {
                assert_eq!(*current, alice);
                assert_eq!(new.as_deref(), Some(&bob));
            }
            other => panic!("{other:?}"),
        }
        let (replace, waited) = speaker.await.unwrap();
        assert!(!replace, "no answer is a keep");
        // The whole cap, not less: a user who takes 9 minutes still gets to answer.
        let cap = MAX_SWITCH_ANSWER_WAIT - Duration::from_secs(1)
            ..=MAX_SWITCH_ANSWER_WAIT + Duration::from_secs(1);
        assert!(
            cap.contains(&waited),
            "the companion waited {waited:?} for its user"
        );
    }

    /// What one message means, without a link: only this session's messages count; a stale
    /// progress is skipped, a stale result or question ends the handover as a protocol error,
    /// and a kept account names the one the user was asked about.
    #[test]
    fn each_message_is_read_against_this_session() {
        use shared_protocol::message::{AccountSwitch, Progress};

        let (ours, other) = (SessionId::random(), SessionId::random());
        let (client_id, redirect_uri): (ClientId, RedirectUri) =
            ("cid".into(), "http://127.0.0.1:1/cb".into());
        let mut exchange = Exchange {
            session_id: ours,
            client_id: &client_id,
            redirect_uri: &redirect_uri,
            asked_about: None,
        };
        let mut seen = Vec::new();
        let mut turn = |exchange: &mut Exchange<'_>, m| exchange.turn(m, &mut |st| seen.push(st));
        let progress = |session_id| {
            AgentMessage::Progress(Progress {
                session_id,
                stage: ProgressStage::ExchangingCode,
            })
        };
        assert!(matches!(turn(&mut exchange, progress(other)), Turn::Listen));
        assert!(matches!(turn(&mut exchange, progress(ours)), Turn::Listen));

        let alice = AccountProfile::id_only("amzn1.account.A".into());
        let bob = AccountProfile::id_only("amzn1.account.B".into());
        let question = |session_id| {
            AgentMessage::ConfirmAccountSwitch(AccountSwitch {
                session_id,
                current: alice.clone(),
                new: bob.clone(),
                answer_within_secs: 60,
            })
        };
        assert!(matches!(turn(&mut exchange, question(ours)), Turn::Ask(q) if q.new == bob));
        assert!(matches!(
            turn(&mut exchange, question(other)),
            Turn::End(Err(HandoverError::Link(LinkError::Protocol { .. })))
        ));
        let linked = |session_id| {
            AgentMessage::AuthResult(AuthResult::Linked {
                session_id,
                user_id: None,
                account: None,
            })
        };
        assert!(matches!(
            turn(&mut exchange, linked(other)),
            Turn::End(Err(HandoverError::Link(LinkError::Protocol { .. })))
        ));
        assert!(matches!(
            turn(&mut exchange, linked(ours)),
            Turn::End(Ok(Linked { session_id, .. })) if session_id == ours
        ));

        exchange.asked_about = Some(bob.clone());
        assert!(
            matches!(
                turn(&mut exchange, question(ours)),
                Turn::End(Err(HandoverError::Link(LinkError::Protocol { .. })))
            ),
            "a second question is a protocol error"
        );
        let kept = AgentMessage::AuthResult(AuthResult::KeptCurrent {
            session_id: ours,
            account: alice.clone(),
            timed_out: true,
        });
        match turn(&mut exchange, kept) {
            Turn::End(Err(HandoverError::KeptCurrent {
                current,
                new,
                timed_out,
            })) => {
                assert_eq!(
                    (*current, new.as_deref(), timed_out),
                    (alice, Some(&bob), true)
                );
            }
            _ => panic!("a kept account ends the handover naming both accounts"),
        }
        assert_eq!(
            seen,
            vec![ProgressStage::ExchangingCode],
            "only this session's progress"
        );
    }

    #[test]
    fn the_account_is_named_by_its_profile_or_as_an_amazon_account_id() {
        let alice =
            AccountProfile::from_lwa("a".into(), Some("Alice Example"), Some("alice@example.com"));
        let id = UserId::from("amzn1.account.A");
        let id_only = AccountProfile::id_only(id.clone());
        assert_eq!(
            account_words(Some(&alice), Some(&id)).as_deref(),
            Some("Alice Example (alice@example.com)")
        );
        for (account, user_id) in [(Some(&id_only), None), (None, Some(&id))] {
            assert_eq!(
                account_words(account, user_id).as_deref(),
                Some("Amazon account amzn1.account.A")
            );
        }
        assert_eq!(account_words(None, None), None);
    }

    #[test]
    fn every_class_says_what_to_do_and_the_sentences_differ() {
        let mut seen = std::collections::HashSet::new();
        for class in AuthFailureClass::ALL {
            let s = advised(&failure(class, AuthError::UnknownError, None));
            assert!(s.len() > 40, "{class:?}: {s}");
            assert!(
                [
                    "pair again",
                    "run pair",
                    "Allowed Return URLs",
                    "security profile"
                ]
                .iter()
                .any(|k| s.contains(k)),
                "{class:?} tells what to do: {s}"
            );
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn a_speaker_refused_grant_is_told_in_the_speakers_words_and_nothing_is_promised() {
        let reason = "LWA gave no refresh token: this client id needs a secret; use the client id of your companion app's Android/iOS settings or 'Other devices and platforms'";
        let f = failure(
            AuthFailureClass::InvalidClient,
            AuthError::InvalidValue,
            Some(reason),
        );
        assert_eq!(advised(&f), reason);
        let f = AuthFailure {
            retry_with_same_code: true,
            ..failure(AuthFailureClass::ServerError, AuthError::ServerError, None)
        };
        assert_eq!(
            advised(&f),
            "Amazon's login service had an error; wait a minute and run pair again"
        );
    }

    #[test]
    fn redirect_uri_problems_name_the_allowed_return_urls() {
        let f = AuthFailure {
            lwa_error: Some("invalid_request".into()),
            ..failure(
                AuthFailureClass::InvalidRequest,
                AuthError::InvalidRequest,
                Some("redirect_uri mismatch"),
            )
        };
        let s = advice(
            &f,
            &"https://localhost:9745/authresponse".into(),
            &"cid".into(),
        )
        .to_string();
        assert!(s.contains("https://localhost:9745/authresponse is not") || s.contains("(https://localhost:9745/authresponse) is not in your security profile's Allowed Return URLs"), "{s}");
        assert!(s.contains("Amazon said: invalid_request: redirect_uri mismatch"));
    }
}
