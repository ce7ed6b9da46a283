//! What the refresher publishes for everyone else to read without waiting.
//!
//! The refresher task is the only writer; readers ([`AuthDelegate::auth_token`] on every AVS
//! request, the status report, the local API) load a pointer through [`arc_swap`], which costs
//! no lock, no reference-count write (so no cache line bounces between cores) and no allocation.
//! Two pointers, because they change at different rates: the token about once an hour, the facts
//! (paired, account ids, refresh count) at every request.
//!
//! `auth_token()` does not read the clock either (`Instant::now()` alone measured 52 ns on the
//! reference machine, more than the whole 50 ns budget): the refresher withdraws a token at its
//! expiry with a timer, so a published token is a valid one, give or take the scheduling
//! latency of that timer (the handed-out expiry lets a caller check for itself).
//!
//! [`AuthDelegate::auth_token`]: super::AuthDelegate::auth_token

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::{ArcSwap, ArcSwapOption, Guard};
use shared_protocol::ids::ClientId;
use shared_protocol::message::AccountProfile;
use shared_protocol::secret::AccessToken;
use tokio::time::Instant;

/// One published access token.
pub(crate) struct LiveToken {
    pub(crate) token: AccessToken,
    pub(crate) expires_at: Instant,
    /// Distinguishes this token from every other one the delegate published.
    pub(crate) gen: u64,
    /// An `on_auth_failure` for this token was already sent to the refresher: the thousand
    /// reporters of one refused token send one command, not a thousand.
    reported: AtomicBool,
}

impl LiveToken {
    pub(crate) fn new(token: AccessToken, expires_at: Instant, gen: u64) -> Self {
        Self {
            token,
            expires_at,
            gen,
            reported: AtomicBool::new(false),
        }
    }

    /// True for the first report of this token only.
    pub(crate) fn first_report(&self) -> bool {
        !self.reported.load(Ordering::Relaxed) && !self.reported.swap(true, Ordering::AcqRel)
    }
}

/// Slow-changing facts about the delegate.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    /// An account (refresh token) is held.
    pub(crate) paired: bool,
    /// The account's client and user.
    pub(crate) account: Option<(ClientId, Option<AccountProfile>)>,
    /// Refresh requests sent since start.
    pub(crate) refreshes: u64,
}

/// The refresher's published view.
pub(crate) struct Published {
    token: ArcSwapOption<LiveToken>,
    facts: ArcSwap<Facts>,
}

impl Published {
    pub(crate) fn new(facts: Facts) -> Self {
        Self {
            token: ArcSwapOption::empty(),
            facts: ArcSwap::from_pointee(facts),
        }
    }

    /// The current token, if one is published.
    pub(crate) fn token(&self) -> Option<AuthToken> {
        let guard = self.token.load();
        guard.is_some().then_some(AuthToken(guard))
    }

    /// The current token's generation (the refresher's own bookkeeping; not the hot path).
    pub(crate) fn token_gen(&self) -> Option<(u64, Instant)> {
        self.token.load().as_ref().map(|t| (t.gen, t.expires_at))
    }

    /// The current token's record (to report a failure against it).
    pub(crate) fn live(&self) -> Option<Arc<LiveToken>> {
        self.token.load_full()
    }

    pub(crate) fn set_token(&self, token: Option<LiveToken>) {
        self.token.store(token.map(Arc::new));
    }

    pub(crate) fn facts(&self) -> Arc<Facts> {
        self.facts.load_full()
    }

    pub(crate) fn set_facts(&self, facts: Facts) {
        self.facts.store(Arc::new(facts));
    }
}

/// A valid access token as the delegate published it: a borrowed view, so handing it out copies
/// nothing (an owned 365-byte token costs an allocation, a copy and a zeroizing free per call).
/// Hold it briefly: it keeps that token's memory alive until dropped.
pub struct AuthToken(Guard<Option<Arc<LiveToken>>>);

impl AuthToken {
    /// The token.
    pub fn token(&self) -> &AccessToken {
        match self.0.as_ref() {
            Some(t) => &t.token,
            // Unreachable: an `AuthToken` is only made from a published token.
            None => empty(),
        }
    }

    /// When it stops working.
    pub fn expires_at(&self) -> Instant {
        match self.0.as_ref() {
            Some(t) => t.expires_at,
            None => Instant::now(),
        }
    }

    /// An owned copy of the token and its expiry.
    pub fn to_parts(&self) -> (AccessToken, Instant) {
        (self.token().clone(), self.expires_at())
    }
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthToken")
            .field("token", self.token())
            .field("expires_at", &self.expires_at())
            .finish()
    }
}

fn empty() -> &'static AccessToken {
    static EMPTY: OnceLock<AccessToken> = OnceLock::new();
    EMPTY.get_or_init(|| AccessToken::new(String::new()))
}
