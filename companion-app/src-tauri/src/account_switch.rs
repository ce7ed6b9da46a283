//! The account-switch question in the window (issue 15.5): a [`AccountSwitchConfirm`] that shows
//! both accounts on the window's "Replace the account?" screen and waits for its answer.
//!
//! When the speaker is linked to Alice and Bob just signed in, the core asks a confirmer before
//! the speaker replaces Alice ([`companion_app::account_switch`]). Here the question becomes a
//! [`PairingEvent::ConfirmAccountSwitch`] and the answer comes back through the
//! `answer_account_switch` command into a one-shot channel the confirmer awaits. Cancel needs
//! nothing special: `cancel_pairing` aborts the pairing task, which drops the waiting confirmer;
//! the speaker then keeps Alice (a closed link is a "keep").

use std::sync::{Arc, Mutex};

use companion_app::account_switch::{AccountSwitchConfirm, SwitchQuestion};
use companion_app::handover::account_label;
use companion_app::wifi::BoxFuture;
use shared_protocol::message::AccountProfile;
use tokio::sync::oneshot;

use crate::ipc::{AccountView, CommandError, PairingEvent};
use crate::window_question::WindowAsker;

/// Where a pending question waits for `answer_account_switch` (one per pairing attempt).
#[derive(Debug, Clone, Default)]
pub struct SwitchSlot(Arc<Mutex<Option<oneshot::Sender<bool>>>>);

impl SwitchSlot {
    fn put(&self, answer: oneshot::Sender<bool>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer);
    }

    /// Answers the pending question: `true` replaces the linked account.
    pub fn answer(&self, replace: bool) -> Result<(), CommandError> {
        let gone = || CommandError::new("The speaker is not asking about its account any more.");
        let waiting = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        waiting.ok_or_else(gone)?.send(replace).map_err(|_| gone())
    }
}

/// What the window shows of an account: its parts and the line for a person (the CLI's words,
/// [`account_label`]).
pub fn view(a: &AccountProfile) -> AccountView {
    AccountView {
        user_id: a.user_id.to_string(),
        name: a.name.clone(),
        email: a.email.clone(),
        label: account_label(a),
    }
}

/// Asks the window whether to replace the account.
pub type WindowConfirm = WindowAsker<SwitchSlot>;

impl AccountSwitchConfirm for WindowConfirm {
    fn confirm<'a>(&'a mut self, question: SwitchQuestion<'a>) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.slot.put(tx);
            (self.sink)(PairingEvent::ConfirmAccountSwitch {
                pairing_id: self.pairing_id,
                current: view(question.current),
                new: view(question.new),
            });
            // The speaker's own deadline bounds the wait (the core times it out: keep).
            rx.await.unwrap_or(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::PairingSink;

    /// The loser of a race sees who won, in the result screen's title and sentence.
    #[test]
    fn a_lost_race_names_the_winner_on_the_result_screen() {
        let alice =
            AccountProfile::from_lwa("a".into(), Some("Alice Example"), Some("alice@example.com"));
        let v = crate::errors::view(&crate::errors::samples::lost_race(Some(alice)));
        assert_eq!(v.title, "Another device linked this speaker");
        assert!(
            v.message.starts_with(
                "Another companion linked this speaker a moment ago (to Alice Example)"
            ),
            "{}",
            v.message
        );
    }

    /// The window names an account the way the CLI and the pair step do: with its name and
    /// e-mail, or as "Amazon account amzn1.account.…" when only the id was readable (never the
    /// bare id, which reads like an error code in a sentence).
    #[test]
    fn an_account_known_only_by_its_id_is_labelled_as_an_amazon_account() {
        let id = "amzn1.account.AEXAMPLEBOB00000000000000000";
        let v = view(&AccountProfile::id_only(id.into()));
        assert_eq!(v.label, format!("Amazon account {id}"));
        assert_eq!((v.user_id.as_str(), v.name, v.email), (id, None, None));
        let alice =
            AccountProfile::from_lwa(id.into(), Some("Alice Example"), Some("alice@example.com"));
        assert_eq!(view(&alice).label, "Alice Example (alice@example.com)");
    }

    #[tokio::test]
    async fn the_window_answer_reaches_the_waiting_question_once() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let sink: PairingSink = Arc::new(move |e| seen.lock().unwrap().push(e));
        let slot = SwitchSlot::default();
        let mut confirm = WindowConfirm::new(7, sink, slot.clone());
        let alice =
            AccountProfile::from_lwa("a".into(), Some("Alice Example"), Some("alice@example.com"));
        let bob = AccountProfile::id_only("b".into());
        assert!(slot.answer(true).is_err(), "nothing asked yet");
        let asking = tokio::spawn(async move {
            let question = SwitchQuestion {
                current: &alice,
                new: &bob,
            };
            confirm.confirm(question).await
        });
        // The event is out once the slot holds the question.
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while events.lock().unwrap().is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        match &events.lock().unwrap()[0] {
            PairingEvent::ConfirmAccountSwitch { current, new, .. } => {
                assert_eq!(current.label, "Alice Example (alice@example.com)");
                assert_eq!(new.label, "Amazon account b");
            }
            other => panic!("{other:?}"),
        }
        slot.answer(false).unwrap();
        assert!(!asking.await.unwrap());
        assert!(slot.answer(true).is_err(), "answered already");
    }
}
