//! The auth delegate: owns the account, keeps an access token fresh, tells observers.
//!
//! It is the AVS Device SDK's `AuthDelegateInterface` with the rough edges removed:
//!
//! - [`AuthDelegate::auth_token`] never touches the network: it reads the current token under a
//!   read lock and returns it with its expiry, or `None` (and nudges the refresher).
//! - One task does every refresh (single flight). Callers only signal it: a thousand callers at
//!   expiry, or a thousand `on_auth_failure` reports of the same stale token, cause one refresh.
//! - Refresh starts `refresh_head_start` before expiry; failures retry on the SDK table with
//!   jitter; each request's timeout is capped by the current token's remaining life.
//! - Observers ([`AuthDelegate::subscribe`]) see the current `(state, error)` at once, then
//!   every change.
//! - `invalid_grant` on refresh means the user unlinked the speaker: the stored token is deleted
//!   and the state becomes `UNRECOVERABLE_ERROR / AUTHORIZATION_EXPIRED` (the agent reopens the
//!   pairing window when it sees that).
//! - A rotated refresh token is written to disk before the new access token is published, so
//!   a crash can never leave the only valid refresh token in memory.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use shared_protocol::ids::{ClientId, UserId};
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::secret::AccessToken;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use crate::lwa_client::{LwaClient, LwaFailure, TokenGrant};
use crate::retry::RetryPolicy;
use crate::store::{LoadOutcome, StoreError, StoredTokens, TokenStore};

/// Smallest request timeout used even when the token has almost no life left.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// Tuning knobs (defaults are the SDK's).
#[derive(Debug, Clone)]
pub struct AuthDelegateConfig {
    /// Refresh this long before the access token expires (SDK: 10 min).
    pub refresh_head_start: Duration,
    /// Upper bound of one refresh request (SDK: 60 s); capped further by the token's life.
    pub max_request_timeout: Duration,
    /// Backoff between failed refreshes.
    pub retry: RetryPolicy,
}

impl Default for AuthDelegateConfig {
    fn default() -> Self {
        Self {
            refresh_head_start: Duration::from_secs(600),
            max_request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::sdk(),
        }
    }
}

/// The SDK's `(state, error)` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AuthStatus {
    /// The state.
    pub state: AuthState,
    /// The error that led to it (`SUCCESS` when none).
    pub error: AuthError,
}

impl AuthStatus {
    const fn new(state: AuthState, error: AuthError) -> Self {
        Self { state, error }
    }
}

struct Current {
    token: AccessToken,
    expires_at: Instant,
    gen: u64,
}

struct Account {
    tokens: StoredTokens,
    gen: u64,
    /// The last save failed: the in-memory refresh token is newer than the file.
    dirty: bool,
}

struct Inner {
    lwa: LwaClient,
    store: TokenStore,
    cfg: AuthDelegateConfig,
    status: watch::Sender<AuthStatus>,
    last_error: Mutex<AuthError>,
    current: RwLock<Option<Current>>,
    account: Mutex<Option<Account>>,
    paired: AtomicBool,
    next_gen: AtomicU64,
    /// Token generation an `on_auth_failure` asked to replace (u64::MAX: none).
    forced_gen: AtomicU64,
    /// Account generation whose refresh hit an unrecoverable error (u64::MAX: none).
    halted_gen: AtomicU64,
    wake: Notify,
    shutdown: watch::Sender<bool>,
    refreshes: AtomicU64,
}

/// The auth delegate. Cheap to clone; all clones share one refresher.
#[derive(Clone)]
pub struct AuthDelegate {
    inner: Arc<Inner>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for AuthDelegate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthDelegate")
            .field("status", &*self.inner.status.borrow())
            .field("paired", &self.is_paired())
            .finish()
    }
}

/// What loading the store found, for the caller to report.
#[derive(Debug)]
pub enum StartReport {
    /// No stored account.
    Unpaired,
    /// An account was loaded; a refresh is under way.
    Paired,
    /// The store was corrupt and moved aside.
    CorruptStore {
        /// Where it went.
        moved_to: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

impl AuthDelegate {
    /// Loads the store and starts the refresher. Must run inside a tokio runtime.
    pub fn start(
        lwa: LwaClient,
        store: TokenStore,
        cfg: AuthDelegateConfig,
    ) -> Result<(Self, StartReport), StoreError> {
        let loaded = store.load()?;
        let (account, report) = match loaded {
            LoadOutcome::Empty => (None, StartReport::Unpaired),
            LoadOutcome::Loaded(tokens) => (Some(tokens), StartReport::Paired),
            LoadOutcome::Corrupt { moved_to, reason } => {
                (None, StartReport::CorruptStore { moved_to, reason })
            }
        };
        let initial = if account.is_some() {
            AuthStatus::new(AuthState::Authorizing, AuthError::Success)
        } else {
            AuthStatus::new(AuthState::Uninitialized, AuthError::Success)
        };
        let (status, _) = watch::channel(initial);
        let (shutdown, _) = watch::channel(false);
        let paired = account.is_some();
        let inner = Arc::new(Inner {
            lwa,
            store,
            cfg,
            status,
            last_error: Mutex::new(AuthError::Success),
            current: RwLock::new(None),
            account: Mutex::new(account.map(|tokens| Account {
                tokens,
                gen: 1,
                dirty: false,
            })),
            paired: AtomicBool::new(paired),
            next_gen: AtomicU64::new(2),
            forced_gen: AtomicU64::new(u64::MAX),
            halted_gen: AtomicU64::new(u64::MAX),
            wake: Notify::new(),
            shutdown,
            refreshes: AtomicU64::new(0),
        });
        let task = tokio::spawn(refresher(inner.clone()));
        Ok((
            Self {
                inner,
                task: Arc::new(Mutex::new(Some(task))),
            },
            report,
        ))
    }

    /// The current access token and when it expires; `None` when there is no valid one.
    /// Never waits on the network.
    pub fn auth_token(&self) -> Option<(AccessToken, Instant)> {
        if let Ok(guard) = self.inner.current.read() {
            if let Some(c) = guard.as_ref() {
                if Instant::now() < c.expires_at {
                    return Some((c.token.clone(), c.expires_at));
                }
            }
        }
        if self.inner.paired.load(Ordering::Acquire) {
            // The refresher may be asleep past expiry (a suspended machine): let it look.
            self.inner.wake.notify_one();
        }
        None
    }

    /// The current `(state, error)`.
    pub fn status(&self) -> AuthStatus {
        *self.inner.status.borrow()
    }

    /// A receiver that yields the current status at once (its first `changed()` returns
    /// immediately) and then every change.
    pub fn subscribe(&self) -> watch::Receiver<AuthStatus> {
        let mut rx = self.inner.status.subscribe();
        rx.mark_changed();
        rx
    }

    /// AVS refused `token` (HTTP 403): if it is the current token (or empty), refresh now.
    /// Reports of an older token are ignored, so many reporters cause one refresh.
    pub fn on_auth_failure(&self, token: &AccessToken) {
        let gen = match self.inner.current.read() {
            Ok(guard) => match guard.as_ref() {
                Some(c) if token.is_empty() || c.token == *token => Some(c.gen),
                _ => None,
            },
            Err(_) => None,
        };
        if let Some(gen) = gen {
            tracing::info!("AVS refused the current access token; refreshing now");
            self.inner.forced_gen.store(gen, Ordering::Release);
            self.inner.wake.notify_one();
        }
    }

    /// True while an account (refresh token) is held.
    pub fn is_paired(&self) -> bool {
        self.inner.paired.load(Ordering::Acquire)
    }

    /// The linked account and client, if any.
    pub fn account(&self) -> Option<(ClientId, Option<UserId>)> {
        let guard = self.inner.account.lock().ok()?;
        guard
            .as_ref()
            .map(|a| (a.tokens.client_id.clone(), a.tokens.user_id.clone()))
    }

    /// How many refresh requests were sent since start (for status and tests).
    pub fn refresh_count(&self) -> u64 {
        self.inner.refreshes.load(Ordering::Relaxed)
    }

    /// Installs a new account from a successful grant, replacing any old one. The refresh
    /// token is on disk before this returns. `verified = false` (fresh from CBL) makes the
    /// delegate refresh at once to prove the client id, as the SDK does.
    pub fn install(
        &self,
        grant: TokenGrant,
        client_id: ClientId,
        user_id: Option<UserId>,
        verified: bool,
    ) -> Result<(), InstallError> {
        let expires_at = grant.expires_at();
        let refresh_token = grant.refresh_token.ok_or(InstallError::NoRefreshToken)?;
        let tokens = StoredTokens {
            refresh_token,
            client_id,
            user_id,
            verified,
        };
        let gen = self.inner.next_gen.fetch_add(1, Ordering::Relaxed);
        {
            let mut acct = self
                .inner
                .account
                .lock()
                .map_err(|_| InstallError::Poisoned)?;
            self.inner.store.save(&tokens)?;
            *acct = Some(Account {
                tokens,
                gen,
                dirty: false,
            });
            self.inner.paired.store(true, Ordering::Release);
            self.inner.halted_gen.store(u64::MAX, Ordering::Release);
            if verified {
                self.inner.publish(grant.access_token, expires_at);
            } else {
                self.inner.clear_current();
                self.inner
                    .set_state(AuthState::Authorizing, AuthError::Success);
            }
        }
        tracing::info!(verified, "account installed");
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Records the account id once `/user/profile` answered.
    pub fn set_user_id(&self, user_id: UserId) -> Result<(), StoreError> {
        let Ok(mut acct) = self.inner.account.lock() else {
            return Ok(());
        };
        if let Some(a) = acct.as_mut() {
            let mut tokens = a.tokens.clone();
            tokens.user_id = Some(user_id);
            self.inner.store.save(&tokens)?;
            a.tokens = tokens;
        }
        Ok(())
    }

    /// Marks the start of a first authorization (CBL) when no account is held.
    pub fn begin_authorizing(&self) {
        if !self.is_paired() {
            self.inner
                .set_state(AuthState::Authorizing, AuthError::Success);
        }
    }

    /// Reports a failed first authorization (CBL) when no account is held.
    pub fn authorization_failed(&self, error: AuthError) {
        if !self.is_paired() {
            self.inner.set_state(AuthState::UnrecoverableError, error);
        }
    }

    /// Forgets the account: in-memory token, stored refresh token (factory reset / logout).
    pub fn clear_data(&self) -> Result<(), StoreError> {
        let result = {
            let mut acct = match self.inner.account.lock() {
                Ok(a) => a,
                Err(p) => p.into_inner(),
            };
            *acct = None;
            self.inner.paired.store(false, Ordering::Release);
            self.inner.clear_current();
            self.inner.store.clear()
        };
        self.inner
            .set_state(AuthState::Uninitialized, AuthError::Success);
        self.inner.wake.notify_one();
        tracing::info!("auth data cleared");
        result
    }

    /// Stops the refresher and waits for it.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The LWA client the delegate uses (shared by the link server and CBL).
    pub fn lwa(&self) -> &LwaClient {
        &self.inner.lwa
    }
}

/// Installing an account failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The grant had no refresh token.
    #[error("the grant has no refresh token")]
    NoRefreshToken,
    /// Writing the store failed: the old account (if any) is kept.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Internal lock poisoned by a panic elsewhere.
    #[error("internal state is poisoned")]
    Poisoned,
}

impl Inner {
    fn set_state(&self, state: AuthState, error: AuthError) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = error;
        }
        let next = AuthStatus::new(state, error);
        self.status.send_if_modified(|s| {
            if *s == next {
                false
            } else {
                tracing::info!(state = %next.state, error = %next.error, "auth state");
                *s = next;
                true
            }
        });
    }

    fn clear_current(&self) {
        if let Ok(mut c) = self.current.write() {
            *c = None;
        }
    }

    fn publish(&self, token: AccessToken, expires_at: Instant) {
        let gen = self.next_gen.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.current.write() {
            *c = Some(Current {
                token,
                expires_at,
                gen,
            });
        }
        self.set_state(AuthState::Refreshed, AuthError::Success);
    }

    fn account_snapshot(&self) -> Option<(u64, StoredTokens, bool)> {
        let guard = self.account.lock().ok()?;
        guard.as_ref().map(|a| (a.gen, a.tokens.clone(), a.dirty))
    }

    /// `(expires_at, token gen)` of the current token, if any.
    fn current_snapshot(&self) -> Option<(Instant, u64)> {
        let guard = self.current.read().ok()?;
        guard.as_ref().map(|c| (c.expires_at, c.gen))
    }

    /// The token ran out before a refresh succeeded.
    fn expire(&self) {
        let had = self.current.read().map(|c| c.is_some()).unwrap_or(false);
        self.clear_current();
        if had {
            let error = self
                .last_error
                .lock()
                .map(|e| *e)
                .unwrap_or(AuthError::UnknownError);
            tracing::warn!(%error, "access token expired before it could be refreshed");
            self.set_state(AuthState::Expired, error);
        }
    }

    fn retry_dirty_save(&self, gen: u64) {
        if let Ok(mut acct) = self.account.lock() {
            if let Some(a) = acct.as_mut().filter(|a| a.gen == gen && a.dirty) {
                match self.store.save(&a.tokens) {
                    Ok(()) => a.dirty = false,
                    Err(e) => tracing::error!(error = %e, "still cannot save the refresh token"),
                }
            }
        }
    }

    /// Applies a successful refresh: rotated refresh token to disk first, then publish.
    fn apply_refresh(&self, gen: u64, grant: TokenGrant) {
        let Ok(mut acct) = self.account.lock() else {
            return;
        };
        let Some(a) = acct.as_mut().filter(|a| a.gen == gen) else {
            tracing::debug!("refresh result for a replaced account discarded");
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
        self.publish(grant.access_token, expires_at);
    }

    /// Applies an unrecoverable refresh failure.
    fn apply_fatal(&self, gen: u64, failure: &LwaFailure, verified: bool) {
        let Ok(mut acct) = self.account.lock() else {
            return;
        };
        if acct.as_ref().map(|a| a.gen) != Some(gen) {
            return;
        }
        let error = failure.auth_error();
        if error == AuthError::AuthorizationExpired {
            tracing::warn!(
                "LWA says the refresh token is no longer valid (invalid_grant): the user unlinked \
                 this speaker; clearing it"
            );
            *acct = None;
            self.paired.store(false, Ordering::Release);
            self.clear_current();
            if let Err(e) = self.store.clear() {
                tracing::error!(error = %e, "could not delete the revoked refresh token");
            }
            self.set_state(
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
        self.halted_gen.store(gen, Ordering::Release);
        self.clear_current();
        self.set_state(AuthState::UnrecoverableError, error);
    }
}

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

async fn refresher(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut attempt = 0usize;
    let mut next_try: Option<Instant> = None;
    let mut seen_gen = 0u64;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let snapshot = inner.account_snapshot();
        let Some((gen, tokens, dirty)) =
            snapshot.filter(|(gen, _, _)| inner.halted_gen.load(Ordering::Acquire) != *gen)
        else {
            // Nothing to refresh: wait for an install or shutdown.
            tokio::select! {
                _ = inner.wake.notified() => continue,
                _ = shutdown.changed() => break,
            }
        };
        if gen != seen_gen {
            seen_gen = gen;
            attempt = 0;
            next_try = None;
        }
        if dirty {
            inner.retry_dirty_save(gen);
        }
        let now = Instant::now();
        let current = inner.current_snapshot();
        let valid = current.filter(|(exp, _)| *exp > now);
        let forced = next_try.is_none()
            && valid.is_some_and(|(_, tgen)| inner.forced_gen.load(Ordering::Acquire) == tgen);
        let due = match (next_try, valid) {
            (Some(t), _) => t,
            (None, Some((exp, _))) => exp.checked_sub(inner.cfg.refresh_head_start).unwrap_or(now),
            (None, None) => now,
        };
        if current.is_some() && valid.is_none() {
            inner.expire();
        }
        if !forced && now < due {
            let expiry = valid.map(|(exp, _)| exp).filter(|exp| *exp < due);
            tokio::select! {
                _ = sleep_until(due) => {}
                _ = async {
                    match expiry {
                        Some(at) => sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    inner.expire();
                    continue;
                }
                _ = inner.wake.notified() => continue,
                _ = shutdown.changed() => break,
            }
            // Re-check after the sleep: an install or clear may have happened meanwhile.
            if inner.account_snapshot().map(|s| s.0) != Some(gen) {
                continue;
            }
        }
        let expires_at = inner.current_snapshot().map(|(exp, _)| exp);
        let timeout = request_timeout(&inner.cfg, expires_at);
        inner.refreshes.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(attempt, ?timeout, "refreshing the access token");
        let result = tokio::select! {
            r = inner.lwa.refresh(&tokens.refresh_token, &tokens.client_id, timeout) => r,
            _ = shutdown.changed() => break,
        };
        match result {
            Ok(grant) => {
                attempt = 0;
                next_try = None;
                inner.forced_gen.store(u64::MAX, Ordering::Release);
                inner.apply_refresh(gen, grant);
            }
            Err(failure) if failure.is_retryable() => {
                let delay = inner.cfg.retry.delay(attempt);
                tracing::warn!(
                    attempt,
                    ?delay,
                    failure = %failure,
                    "refresh failed; retrying"
                );
                if let Ok(mut e) = inner.last_error.lock() {
                    *e = failure.auth_error();
                }
                attempt += 1;
                next_try = Some(Instant::now() + delay);
            }
            Err(failure) => {
                next_try = None;
                attempt = 0;
                inner.apply_fatal(gen, &failure, tokens.verified);
            }
        }
    }
    tracing::debug!("refresher stopped");
}
