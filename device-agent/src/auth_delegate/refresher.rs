//! The refresher: the one task that owns the account, the phase and the token.
//!
//! Everything that changes the delegate's state arrives here as a [`Command`] on one channel
//! (the shape of mini-redis's connection tasks), or as a timer or the answer of the one refresh
//! request in flight. Nothing else holds a lock on this state, so there is no order of locks to
//! get wrong and no state spread over atomics: the loop waits on three things and applies each
//! event with a plain method. What others need to read is published (see `snapshot`) and the
//! `(state, error)` goes to observers (see `observers`).
//!
//! The request runs in its own task so commands are still served while LWA takes up to a
//! minute to answer: an install or a clear meanwhile replaces the account and aborts it.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use shared_protocol::lwa::{AuthError, AuthState, TokenRequest};
use shared_protocol::message::AccountProfile;
use shared_protocol::secret::AccessToken;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{sleep_until, Instant};

use super::observers::Observers;
use super::phase::Phase;
use super::snapshot::{Facts, LiveToken, Published};
use super::AuthDelegateConfig;
use crate::lwa_client::{LwaClient, LwaFailure, TokenGrant};
use crate::store::{StoreError, StoredTokens, TokenStore};

/// Smallest request timeout used even when the token has almost no life left.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// What callers ask of the refresher.
pub(crate) enum Command {
    /// Replace the account; the refresh token is on disk before the reply.
    Install {
        tokens: StoredTokens,
        /// A verified grant's access token and expiry; `None` = refresh at once to verify.
        access: Option<(AccessToken, Instant)>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Record the account's profile (on disk before the reply).
    SetProfile {
        profile: AccountProfile,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Forget the account.
    Clear {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// AVS refused the token of generation `gen`.
    AuthFailure { gen: u64 },
    /// A first authorization (CBL) started; shown while no account is held.
    BeginAuthorizing { reply: oneshot::Sender<()> },
    /// A first authorization (CBL) failed; shown while no account is held.
    AuthorizationFailed {
        error: AuthError,
        reply: oneshot::Sender<()>,
    },
    /// End the refresher task (the agent is shutting down).
    Shutdown,
}

struct Account {
    tokens: StoredTokens,
    /// Distinguishes this account from the ones it replaced (an answer for an old one is
    /// dropped).
    gen: u64,
    /// The last save failed: the refresh token in memory is newer than the file.
    dirty: bool,
}

/// The answer of one refresh request, with the account it was for.
struct Reply {
    account_gen: u64,
    verified: bool,
    attempt: usize,
    result: Result<TokenGrant, LwaFailure>,
}

type Flight = JoinHandle<Reply>;

enum Event {
    Command(Option<Command>),
    Reply(Result<Reply, JoinError>),
    Timer,
}

/// The task's state.
pub(crate) struct Refresher {
    lwa: LwaClient,
    store: TokenStore,
    cfg: AuthDelegateConfig,
    rng: StdRng,
    published: Arc<Published>,
    observers: Arc<Observers>,
    account: Option<Account>,
    phase: Phase,
    /// The error behind the latest failure, reported with EXPIRED if the token runs out.
    last_error: AuthError,
    next_gen: u64,
    facts: Facts,
}

impl Refresher {
    pub(crate) fn new(
        lwa: LwaClient,
        store: TokenStore,
        cfg: AuthDelegateConfig,
        published: Arc<Published>,
        observers: Arc<Observers>,
        loaded: Option<StoredTokens>,
    ) -> Self {
        let rng = cfg.retry.rng();
        let facts = published.facts().as_ref().clone();
        let (account, phase) = match loaded {
            Some(tokens) => (
                Some(Account {
                    tokens,
                    gen: 1,
                    dirty: false,
                }),
                Phase::Due { attempt: 0 },
            ),
            None => (None, Phase::Unpaired),
        };
        Self {
            lwa,
            store,
            cfg,
            rng,
            published,
            observers,
            account,
            phase,
            last_error: AuthError::Success,
            next_gen: 2,
            facts,
        }
    }

    /// Runs until [`Command::Shutdown`] or until every sender is gone.
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut flight: Option<Flight> = None;
        loop {
            if flight.is_none() {
                if let Some(attempt) = self.phase.due() {
                    flight = self.send_request(attempt);
                }
            }
            let wake = earliest(
                self.phase.deadline(),
                self.published.token_gen().map(|(_, at)| at),
            );
            let event = tokio::select! {
                c = commands.recv() => Event::Command(c),
                r = answer(&mut flight) => Event::Reply(r),
                _ = sleep_until_some(wake) => Event::Timer,
            };
            match event {
                Event::Command(None | Some(Command::Shutdown)) => break,
                Event::Command(Some(c)) => {
                    if self.on_command(c) {
                        if let Some(f) = flight.take() {
                            f.abort();
                        }
                    }
                }
                Event::Reply(r) => {
                    flight = None;
                    self.on_reply(r);
                }
                Event::Timer => self.on_timer(Instant::now()),
            }
        }
        if let Some(f) = flight {
            f.abort();
        }
        tracing::debug!("refresher stopped");
    }

    /// Applies a command; true when it replaced or dropped the account (so a request in flight
    /// is for an account that is gone).
    fn on_command(&mut self, c: Command) -> bool {
        match c {
            Command::Install {
                tokens,
                access,
                reply,
            } => {
                let result = self.install(tokens, access);
                let replaced = result.is_ok();
                let _ = reply.send(result);
                replaced
            }
            Command::SetProfile { profile, reply } => {
                let _ = reply.send(self.set_profile(profile));
                false
            }
            Command::Clear { reply } => {
                let _ = reply.send(self.clear());
                true
            }
            Command::AuthFailure { gen } => {
                let current = self.published.token_gen().map(|(g, _)| g);
                if current == Some(gen) && matches!(self.phase, Phase::Fresh { .. }) {
                    tracing::info!("AVS refused the current access token; refreshing now");
                    self.phase = self.phase.on_auth_failure();
                }
                false
            }
            Command::BeginAuthorizing { reply } => {
                if self.account.is_none() {
                    self.set_status(AuthState::Authorizing, AuthError::Success);
                }
                let _ = reply.send(());
                false
            }
            Command::AuthorizationFailed { error, reply } => {
                if self.account.is_none() {
                    self.set_status(AuthState::UnrecoverableError, error);
                }
                let _ = reply.send(());
                false
            }
            Command::Shutdown => false,
        }
    }

    fn install(
        &mut self,
        tokens: StoredTokens,
        access: Option<(AccessToken, Instant)>,
    ) -> Result<(), StoreError> {
        // On disk first: a failed save keeps the old account (if any) untouched.
        self.store.save(&tokens)?;
        let verified = access.is_some();
        self.facts.paired = true;
        self.facts.account = Some((tokens.client_id.clone(), tokens.account.clone()));
        self.publish_facts();
        self.account = Some(Account {
            tokens,
            gen: self.take_gen(),
            dirty: false,
        });
        match access {
            Some((token, expires_at)) => self.publish_token(token, expires_at),
            None => {
                self.published.set_token(None);
                self.set_status(AuthState::Authorizing, AuthError::Success);
                self.phase = Phase::Due { attempt: 0 };
            }
        }
        tracing::info!(verified, "account installed");
        Ok(())
    }

    fn set_profile(&mut self, profile: AccountProfile) -> Result<(), StoreError> {
        let Some(a) = self.account.as_mut() else {
            return Ok(());
        };
        let mut tokens = a.tokens.clone();
        tokens.account = Some(profile);
        self.store.save(&tokens)?;
        self.facts.account = Some((tokens.client_id.clone(), tokens.account.clone()));
        a.tokens = tokens;
        self.publish_facts();
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.forget_account();
        let result = self.store.clear();
        self.set_status(AuthState::Uninitialized, AuthError::Success);
        tracing::info!("auth data cleared");
        result
    }

    fn forget_account(&mut self) {
        self.account = None;
        self.phase = Phase::Unpaired;
        self.published.set_token(None);
        self.facts.paired = false;
        self.facts.account = None;
        self.publish_facts();
    }

    /// Starts the refresh request for try `attempt` of the current account.
    fn send_request(&mut self, attempt: usize) -> Option<Flight> {
        let Some(a) = self.account.as_mut() else {
            self.phase = Phase::Unpaired;
            return None;
        };
        if a.dirty {
            match self.store.save(&a.tokens) {
                Ok(()) => a.dirty = false,
                Err(e) => tracing::error!(error = %e, "still cannot save the refresh token"),
            }
        }
        let timeout = request_timeout(&self.cfg, self.published.token_gen().map(|(_, at)| at));
        let refresh_token = a.tokens.refresh_token.clone();
        let client_id = a.tokens.client_id.clone();
        let account_gen = a.gen;
        let verified = a.tokens.verified;
        let lwa = self.lwa.clone();
        self.facts.refreshes += 1;
        self.publish_facts();
        tracing::debug!(attempt, ?timeout, "refreshing the access token");
        Some(tokio::spawn(async move {
            let req = TokenRequest::RefreshToken {
                refresh_token: &refresh_token,
                client_id: &client_id,
                client_secret: None,
            };
            let result = lwa.grant(&req, timeout).await;
            Reply {
                account_gen,
                verified,
                attempt,
                result,
            }
        }))
    }

    fn on_reply(&mut self, reply: Result<Reply, JoinError>) {
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                // The request task panicked: treat it as a transport failure.
                tracing::error!(error = %e, "refresh request task failed; retrying");
                let attempt = self.phase.due().unwrap_or(0);
                self.back_off(attempt, AuthError::UnknownError);
                return;
            }
        };
        if self.account.as_ref().map(|a| a.gen) != Some(reply.account_gen) {
            tracing::debug!("refresh result for a replaced account discarded");
            return;
        }
        match reply.result {
            Ok(grant) => self.apply_refresh(grant),
            Err(failure) if failure.is_retryable() => {
                let delay = self.back_off(reply.attempt, failure.auth_error());
                tracing::warn!(
                    attempt = reply.attempt,
                    ?delay,
                    failure = %failure,
                    "refresh failed; retrying"
                );
            }
            Err(failure) => self.apply_fatal(&failure, reply.verified),
        }
    }

    fn back_off(&mut self, attempt: usize, error: AuthError) -> Duration {
        let delay = self.cfg.retry.delay_with(attempt, &mut self.rng);
        self.last_error = error;
        self.phase = Phase::after_retryable(attempt, delay, Instant::now());
        delay
    }

    /// A successful refresh: the rotated refresh token goes to disk first, then the access
    /// token is published.
    fn apply_refresh(&mut self, grant: TokenGrant) {
        let Some(a) = self.account.as_mut() else {
            return;
        };
        let rotated = grant
            .refresh_token
            .as_ref()
            .is_some_and(|rt| *rt != a.tokens.refresh_token);
        if rotated || !a.tokens.verified || a.dirty {
            let mut tokens = a.tokens.clone();
            if let Some(rt) = grant.refresh_token.clone() {
                tokens.refresh_token = rt;
            }
            tokens.verified = true;
            match self.store.save(&tokens) {
                Ok(()) => a.dirty = false,
                Err(e) => {
                    // LWA may already have retired the old token: keep the new one in memory
                    // and keep trying to save it.
                    tracing::error!(error = %e, "could not save the rotated refresh token; will retry");
                    a.dirty = true;
                }
            }
            a.tokens = tokens;
        }
        let expires_at = grant.expires_at();
        self.publish_token(grant.access_token, expires_at);
    }

    /// An unrecoverable refresh failure.
    fn apply_fatal(&mut self, failure: &LwaFailure, verified: bool) {
        let error = failure.auth_error();
        if error == AuthError::AuthorizationExpired {
            tracing::warn!(
                "LWA says the refresh token is no longer valid (invalid_grant): the user unlinked \
                 this speaker; clearing it"
            );
            self.forget_account();
            if let Err(e) = self.store.clear() {
                tracing::error!(error = %e, "could not delete the revoked refresh token");
            }
            self.set_status(
                AuthState::UnrecoverableError,
                AuthError::AuthorizationExpired,
            );
            return;
        }
        let error = if error == AuthError::InvalidRequest && !verified {
            AuthError::InvalidCblClientId
        } else {
            error
        };
        tracing::error!(%error, failure = %failure, "refresh failed for good; re-pair needed");
        self.phase = Phase::Halted;
        self.published.set_token(None);
        self.set_status(AuthState::UnrecoverableError, error);
    }

    fn on_timer(&mut self, now: Instant) {
        if self
            .published
            .token_gen()
            .is_some_and(|(_, expires_at)| expires_at <= now)
        {
            self.published.set_token(None);
            let error = self.last_error;
            tracing::warn!(%error, "access token expired before it could be refreshed");
            self.set_status(AuthState::Expired, error);
        }
        self.phase = self.phase.on_time(now);
    }

    fn publish_token(&mut self, token: AccessToken, expires_at: Instant) {
        let gen = self.take_gen();
        self.published
            .set_token(Some(LiveToken::new(token, expires_at, gen)));
        self.phase = Phase::fresh(expires_at, self.cfg.refresh_head_start, Instant::now());
        self.set_status(AuthState::Refreshed, AuthError::Success);
        self.observers.token_published();
    }

    fn publish_facts(&self) {
        self.published.set_facts(self.facts.clone());
    }

    fn set_status(&mut self, state: AuthState, error: AuthError) {
        self.last_error = error;
        self.observers.set(state, error);
    }

    fn take_gen(&mut self) -> u64 {
        let gen = self.next_gen;
        self.next_gen += 1;
        gen
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn answer(flight: &mut Option<Flight>) -> Result<Reply, JoinError> {
    match flight {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// The timeout of one refresh request: at most the configured one, and no longer than the
/// current token still lives (the SDK's rule), but never under a second.
fn request_timeout(cfg: &AuthDelegateConfig, expires_at: Option<Instant>) -> Duration {
    let max = cfg.max_request_timeout;
    match expires_at {
        Some(at) => {
            let remaining = at.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                max
            } else {
                max.min(remaining).max(MIN_REQUEST_TIMEOUT.min(max))
            }
        }
        None => max,
    }
}
