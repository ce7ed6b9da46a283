//! Asking the user before the speaker's account is replaced (issue 15.5, protocol 1.2).
//!
//! Re-pairing a speaker that is linked to Alice with Bob's sign-in used to replace Alice without
//! a word. Now the companion announces [`Capability::ConfirmAccountSwitch`] in its Hello; when
//! the speaker sees that the sign-in is a different account than the linked one, it holds the
//! new tokens unstored and sends `ConfirmAccountSwitch { current, new }`. The companion puts the
//! question to an [`AccountSwitchConfirm`] (the CLI's `[y/N]` prompt or `--yes`, the desktop
//! app's Replace / Keep screen) and answers with `AccountSwitchAnswer`. "Keep", no answer within
//! the speaker's deadline (capped by the companion at
//! [`crate::handover::MAX_SWITCH_ANSWER_WAIT`]), or a closed link: the speaker stays linked to
//! the current account and the pairing ends in [`crate::handover::HandoverError::KeptCurrent`].
//!
//! [`Capability::ConfirmAccountSwitch`]: shared_protocol::message::Capability::ConfirmAccountSwitch

use shared_protocol::message::AccountProfile;

use crate::handover::account_label;
use crate::wifi::BoxFuture;

/// What an [`AccountSwitchConfirm`] is asked: "This speaker is linked to `current`. Replace
/// with `new`?"
#[derive(Debug, Clone, Copy)]
pub struct SwitchQuestion<'a> {
    /// The account the speaker is linked to.
    pub current: &'a AccountProfile,
    /// The account that just signed in.
    pub new: &'a AccountProfile,
}

impl SwitchQuestion<'_> {
    /// The question as the CLI asks it: "This speaker is linked to Alice Example
    /// (alice@example.com). Replace with Bob Example (bob@example.com)? [y/N] " (accounts named
    /// as everywhere else, [`account_label`]).
    pub fn prompt(&self) -> String {
        let (current, new) = (account_label(self.current), account_label(self.new));
        format!("This speaker is linked to {current}. Replace with {new}? [y/N] ")
    }
}

/// Puts the account-switch question to the user: `true` replaces the linked account with the
/// one that just signed in, `false` keeps it.
pub trait AccountSwitchConfirm: Send + std::fmt::Debug {
    /// Asks `question`.
    fn confirm<'a>(&'a mut self, question: SwitchQuestion<'a>) -> BoxFuture<'a, bool>;
}

/// One answer for every question (`--yes`, scripts, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedAnswer(pub bool);

impl AccountSwitchConfirm for FixedAnswer {
    fn confirm<'a>(&'a mut self, _question: SwitchQuestion<'a>) -> BoxFuture<'a, bool> {
        let answer = self.0;
        Box::pin(async move { answer })
    }
}

/// What the user is told when the linked account stays: "Kept: the speaker stays linked to
/// Alice Example (alice@example.com); Bob Example (bob@example.com) was not linked".
pub fn kept_text(
    current: &AccountProfile,
    new: Option<&AccountProfile>,
    timed_out: bool,
) -> String {
    let mut s = format!(
        "kept: the speaker stays linked to {}",
        account_label(current)
    );
    if let Some(n) = new {
        s.push_str(&format!("; {} was not linked", account_label(n)));
    }
    if timed_out {
        s.push_str(" (no answer in time)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, name: &str, email: &str) -> AccountProfile {
        AccountProfile::from_lwa(id.into(), Some(name), Some(email))
    }

    #[test]
    fn the_question_and_the_kept_sentence_name_both_people() {
        let a = p("amzn1.account.A", "Alice Example", "alice@example.com");
        let b = p("amzn1.account.B", "Bob Example", "bob@example.com");
        assert_eq!(
            SwitchQuestion {
                current: &a,
                new: &b
            }
            .prompt(),
            "This speaker is linked to Alice Example (alice@example.com). Replace with Bob Example (bob@example.com)? [y/N] "
        );
        assert_eq!(
            kept_text(&a, Some(&b), false),
            "kept: the speaker stays linked to Alice Example (alice@example.com); Bob Example (bob@example.com) was not linked"
        );
        assert_eq!(
            kept_text(&a, None, true),
            "kept: the speaker stays linked to Alice Example (alice@example.com) (no answer in time)"
        );
        // Known only by their ids: named as the result line and the app name them.
        let (a, b) = (
            AccountProfile::id_only("amzn1.account.A".into()),
            AccountProfile::id_only("amzn1.account.B".into()),
        );
        assert_eq!(
            SwitchQuestion {
                current: &a,
                new: &b
            }
            .prompt(),
            "This speaker is linked to Amazon account amzn1.account.A. Replace with Amazon account amzn1.account.B? [y/N] "
        );
        assert_eq!(
            kept_text(&a, Some(&b), false),
            "kept: the speaker stays linked to Amazon account amzn1.account.A; Amazon account amzn1.account.B was not linked"
        );
    }
}
