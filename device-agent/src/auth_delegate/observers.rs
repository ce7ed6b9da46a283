//! The SDK's `(state, error)` pair and the channel that carries it to observers.
//!
//! A `watch` channel is the right shape: an observer wants the latest state, not a backlog, and
//! a new observer gets the current state at once (the SDK's `addAuthObserver` contract). Only
//! the refresher task writes it.
//!
//! A second watch counts the access tokens published: a refresh that swaps in a new token while
//! the state stays `REFRESHED` changes no `(state, error)`, yet a client holding the old token
//! wants to hear of it (the local API's `subscribe` sends an event on either change).

use serde::Serialize;
use shared_protocol::lwa::{AuthError, AuthState};
use tokio::sync::watch;

/// The SDK's `(state, error)` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AuthStatus {
    /// The state.
    pub state: AuthState,
    /// The error that led to it (`SUCCESS` when none).
    pub error: AuthError,
}

impl AuthStatus {
    pub(crate) const fn new(state: AuthState, error: AuthError) -> Self {
        Self { state, error }
    }
}

/// The status channel.
pub(crate) struct Observers {
    tx: watch::Sender<AuthStatus>,
    /// How many access tokens have been published (rises by one per new token).
    tokens: watch::Sender<u64>,
}

impl Observers {
    pub(crate) fn new(initial: AuthStatus) -> Self {
        Self {
            tx: watch::channel(initial).0,
            tokens: watch::channel(0).0,
        }
    }

    pub(crate) fn current(&self) -> AuthStatus {
        *self.tx.borrow()
    }

    /// A receiver whose first `changed()` returns at once with the current status.
    pub(crate) fn subscribe(&self) -> watch::Receiver<AuthStatus> {
        let mut rx = self.tx.subscribe();
        rx.mark_changed();
        rx
    }

    /// A receiver of the count of tokens published; it changes with every new access token.
    pub(crate) fn subscribe_tokens(&self) -> watch::Receiver<u64> {
        self.tokens.subscribe()
    }

    /// A new access token was published.
    pub(crate) fn token_published(&self) {
        self.tokens.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Publishes `(state, error)`; observers hear of it only if it differs from the last one.
    pub(crate) fn set(&self, state: AuthState, error: AuthError) {
        let next = AuthStatus::new(state, error);
        self.tx.send_if_modified(|s| {
            if *s == next {
                false
            } else {
                tracing::info!(state = %next.state, error = %next.error, "auth state");
                *s = next;
                true
            }
        });
    }
}
