//! The auth delegate: owns the account, keeps an access token fresh, tells observers.
//!
//! It is the AVS Device SDK's `AuthDelegateInterface` with the rough edges removed:
//!
//! - [`AuthDelegate::auth_token`] never waits: it loads the token the refresher published (no
//!   lock, no clock, no copy: 7 ns, 32 ns with 4 threads on 2 cores) or returns `None`.
//! - One task, the refresher (`refresher.rs`), owns all the state: the account, the token and
//!   where it stands in the token's life, an explicit phase (`phase.rs`: unpaired, fresh, due,
//!   backoff, halted). Callers send it commands on one channel and read what it publishes
//!   (`snapshot.rs`); observers get `(state, error)` through a watch channel (`observers.rs`).
//!   The state used to sit behind two mutexes, a read-write lock and five atomics, two with
//!   `u64::MAX` sentinels, driven by a 99-line loop nested six deep; one owner makes each rule
//!   below a line or two of one method.
//! - Single flight: one request at a time, whatever the number of callers. A thousand callers
//!   at expiry, or a thousand `on_auth_failure` reports of the same refused token, cause one
//!   refresh (the first report of a token is the only one sent to the refresher).
//! - Refresh starts `refresh_head_start` before expiry; failures retry on the SDK table with
//!   jitter; each request's timeout is capped by the current token's remaining life.
//! - Observers ([`AuthDelegate::subscribe`]) see the current `(state, error)` at once, then
//!   every change.
//! - `invalid_grant` on refresh means the user unlinked the speaker: the stored token is deleted
//!   and the state becomes `UNRECOVERABLE_ERROR / AUTHORIZATION_EXPIRED` (the agent reopens the
//!   pairing window when it sees that).
//! - A rotated refresh token is written to disk before the new access token is published, so
//!   a crash can never leave the only valid refresh token in memory.

mod observers;
mod phase;
mod refresher;
mod snapshot;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared_protocol::ids::ClientId;
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::message::AccountProfile;
use shared_protocol::secret::AccessToken;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use self::observers::AuthStatus;
use self::observers::Observers;
use self::refresher::{Command, Refresher};
pub use self::snapshot::AuthToken;
use self::snapshot::{Facts, Published};
use crate::lwa_client::{LwaClient, TokenGrant};
use crate::retry::RetryPolicy;
use crate::store::{LoadOutcome, StoreError, StoredTokens, TokenStore};

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

/// The auth delegate. Cheap to clone; all clones talk to one refresher.
#[derive(Clone)]
pub struct AuthDelegate {
    published: Arc<Published>,
    observers: Arc<Observers>,
    commands: mpsc::UnboundedSender<Command>,
    lwa: LwaClient,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for AuthDelegate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthDelegate")
            .field("status", &self.status())
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
        /// What was wrong with it.
        reason: String,
    },
}

/// The refresher has stopped ([`AuthDelegate::shutdown`]): nothing can change any more.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the auth delegate has stopped")]
pub struct Stopped;

/// Changing the stored account failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Writing or deleting the store file failed (`set_profile`: nothing changed; `clear_data`:
    /// the account is forgotten in memory all the same).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The delegate was shut down.
    #[error(transparent)]
    Stopped(#[from] Stopped),
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
    /// The delegate was shut down.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

impl AuthDelegate {
    /// Loads the store and starts the refresher. Must run inside a tokio runtime.
    pub fn start(
        lwa: LwaClient,
        store: TokenStore,
        cfg: AuthDelegateConfig,
    ) -> Result<(Self, StartReport), StoreError> {
        let (loaded, report) = match store.load()? {
            LoadOutcome::Empty => (None, StartReport::Unpaired),
            LoadOutcome::Loaded(tokens) => (Some(tokens), StartReport::Paired),
            LoadOutcome::Corrupt { moved_to, reason } => {
                (None, StartReport::CorruptStore { moved_to, reason })
            }
        };
        let initial = if loaded.is_some() {
            AuthStatus::new(AuthState::Authorizing, AuthError::Success)
        } else {
            AuthStatus::new(AuthState::Uninitialized, AuthError::Success)
        };
        let published = Arc::new(Published::new(Facts {
            paired: loaded.is_some(),
            account: loaded
                .as_ref()
                .map(|t: &StoredTokens| (t.client_id.clone(), t.account.clone())),
            refreshes: 0,
        }));
        let observers = Arc::new(Observers::new(initial));
        let (commands, rx) = mpsc::unbounded_channel();
        let refresher = Refresher::new(
            lwa.clone(),
            store,
            cfg,
            published.clone(),
            observers.clone(),
            loaded,
        );
        let task = tokio::spawn(refresher.run(rx));
        Ok((
            Self {
                published,
                observers,
                commands,
                lwa,
                task: Arc::new(Mutex::new(Some(task))),
            },
            report,
        ))
    }

    /// The current access token and when it expires; `None` when there is no valid one.
    /// Never waits and copies nothing (see [`AuthToken`]).
    pub fn auth_token(&self) -> Option<AuthToken> {
        self.published.token()
    }

    /// The current `(state, error)`.
    pub fn status(&self) -> AuthStatus {
        self.observers.current()
    }

    /// A receiver that yields the current status at once (its first `changed()` returns
    /// immediately) and then every change.
    pub fn subscribe(&self) -> watch::Receiver<AuthStatus> {
        self.observers.subscribe()
    }

    /// A receiver whose value rises by one with every new access token, also when a refresh
    /// keeps the state `REFRESHED` (which [`subscribe`](Self::subscribe) does not report).
    pub fn subscribe_tokens(&self) -> watch::Receiver<u64> {
        self.observers.subscribe_tokens()
    }

    /// AVS refused `token` (HTTP 403): if it is the current token (or empty), refresh now.
    /// Reports of an older token, and all but the first report of the current one, are
    /// dropped here, so many reporters cause one refresh.
    pub fn on_auth_failure(&self, token: &AccessToken) {
        let Some(live) = self.published.live() else {
            return;
        };
        if (token.is_empty() || live.token == *token) && live.first_report() {
            let _ = self.commands.send(Command::AuthFailure { gen: live.gen });
        }
    }

    /// True while an account (refresh token) is held.
    pub fn is_paired(&self) -> bool {
        self.published.facts().paired
    }

    /// The linked account and client, if any.
    pub fn account(&self) -> Option<(ClientId, Option<AccountProfile>)> {
        self.published.facts().account.clone()
    }

    /// How many refresh requests were sent since start (for status and tests).
    pub fn refresh_count(&self) -> u64 {
        self.published.facts().refreshes
    }

    /// Installs a new account from a successful grant, replacing any old one. The refresh
    /// token is on disk before this returns. `verified = false` (fresh from CBL) makes the
    /// delegate refresh at once to prove the client id, as the SDK does.
    pub async fn install(
        &self,
        grant: TokenGrant,
        client_id: ClientId,
        account: Option<AccountProfile>,
        verified: bool,
    ) -> Result<(), InstallError> {
        let expires_at = grant.expires_at();
        let refresh_token = grant.refresh_token.ok_or(InstallError::NoRefreshToken)?;
        let tokens = StoredTokens {
            refresh_token,
            client_id,
            account,
            verified,
        };
        let access = verified.then_some((grant.access_token, expires_at));
        self.ask(|reply| Command::Install {
            tokens,
            access,
            reply,
        })
        .await?
        .map_err(InstallError::Store)
    }

    /// Records the account (id, name, e-mail) once `/user/profile` answered.
    pub async fn set_profile(&self, profile: AccountProfile) -> Result<(), AccountError> {
        Ok(self
            .ask(|reply| Command::SetProfile { profile, reply })
            .await??)
    }

    /// Marks the start of a first authorization (CBL) when no account is held.
    pub async fn begin_authorizing(&self) {
        let _ = self.ask(|reply| Command::BeginAuthorizing { reply }).await;
    }

    /// Reports a failed first authorization (CBL) when no account is held.
    pub async fn authorization_failed(&self, error: AuthError) {
        let _ = self
            .ask(|reply| Command::AuthorizationFailed { error, reply })
            .await;
    }

    /// Forgets the account: in-memory token, stored refresh token (factory reset / logout).
    pub async fn clear_data(&self) -> Result<(), AccountError> {
        Ok(self.ask(|reply| Command::Clear { reply }).await??)
    }

    /// Stops the refresher and waits for it.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The LWA client the delegate uses (shared by the link server and CBL).
    pub fn lwa(&self) -> &LwaClient {
        &self.lwa
    }

    /// Sends a command and waits for the refresher's answer.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(command(tx)).map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}
