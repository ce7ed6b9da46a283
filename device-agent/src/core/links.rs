//! Which companion linked the speaker last, so a companion that lost a race hears why.
//!
//! Two companions can hold sealed sessions at once (both proved the setup code, both signed in).
//! The first `ProvideAuthorization` links the speaker; the second must not silently replace it,
//! and "the pairing window is closed" would be true but useless to the person holding the second
//! phone. Each session notes [`Links::count`] when it hands out its `DeviceInfo`; a link made
//! since then by another session means this one lost, and [`Links::last_account`] names the
//! account the winner linked ("another companion linked this speaker a moment ago (to Alice
//! Example)").
//!
//! A plain mutex: every access is a few instructions and never waits on anything.

use std::sync::Mutex;

use shared_protocol::message::AccountProfile;

#[derive(Debug, Default)]
struct Inner {
    count: u64,
    last_account: Option<AccountProfile>,
}

/// The count of companion links since start, and the last one's account.
#[derive(Debug, Default)]
pub struct Links(Mutex<Inner>);

impl Links {
    /// Companion links since the agent started.
    pub fn count(&self) -> u64 {
        self.0.lock().map(|i| i.count).unwrap_or(0)
    }

    /// Records a link (its account, if `/user/profile` answered).
    pub fn record(&self, account: Option<AccountProfile>) {
        if let Ok(mut i) = self.0.lock() {
            i.count += 1;
            i.last_account = account;
        }
    }

    /// The account of the last link, if known; `None` also when no link happened.
    pub fn last_account(&self) -> Option<AccountProfile> {
        self.0.lock().ok().and_then(|i| i.last_account.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_links_and_keeps_the_last_account() {
        let links = Links::default();
        assert_eq!(links.count(), 0);
        assert_eq!(links.last_account(), None);
        links.record(Some(AccountProfile::id_only("a".into())));
        links.record(None);
        assert_eq!(links.count(), 2);
        assert_eq!(links.last_account(), None);
    }
}
