//! The pairing window and the failed-attempt counter.
//!
//! The window is the only time the speaker accepts a setup-code handshake, an authorization
//! code or a reset. It opens at start while unpaired, or when the owner asks (CLI, SIGUSR1,
//! button hook), and closes after `window` (15 min), after a successful link was delivered, or
//! after too many wrong setup codes.
//!
//! Wrong codes are counted in `<state_dir>/pairing.json`, written *before* the agent answers a
//! handshake (the tentative failure is undone when the code proves right). Pulling the plug in
//! the middle of a guess therefore counts the guess. After `max_failures` (20) the window closes
//! and stays closed, across restarts, for a lockout period that doubles with each lockout
//! (1 min, 2 min, 4 min … capped at a day); a successful pairing resets both counters.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use shared_protocol::message::{ErrorBody, ErrorKind, PairingWindow};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::atomic_file;

/// File name inside the state directory.
pub const PAIRING_FILE: &str = "pairing.json";

/// Window and lockout tuning.
#[derive(Debug, Clone)]
pub struct PairingConfig {
    /// How long the window stays open (15 min).
    pub window: Duration,
    /// Wrong codes that close the window (20).
    pub max_failures: u32,
    /// First lockout (doubles each time).
    pub lockout_base: Duration,
    /// Longest lockout.
    pub lockout_max: Duration,
}

impl Default for PairingConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(900),
            max_failures: 20,
            lockout_base: Duration::from_secs(60),
            lockout_max: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Persisted {
    /// Wrong (or tentative) setup codes since the last success or lockout.
    failures: u32,
    /// Lockouts since the last success (drives the backoff).
    lockouts: u32,
    /// Unix seconds until which the window cannot be opened.
    locked_until: Option<u64>,
}

#[derive(Debug)]
struct State {
    persisted: Persisted,
    open_until: Option<Instant>,
}

/// Writing `pairing.json` failed.
#[derive(Debug, thiserror::Error)]
pub enum StateWriteError {
    /// The state could not be encoded.
    #[error("cannot encode the pairing state: {0}")]
    Encode(#[from] serde_json::Error),
    /// The atomic write (temp file, fsync, rename) failed.
    #[error("cannot write the pairing state: {0}")]
    Write(#[from] std::io::Error),
}

/// Why the window could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Too many wrong codes; try again later.
    #[error("pairing is locked after too many wrong setup codes; try again in {retry_in_secs} s")]
    LockedOut {
        /// Seconds to wait.
        retry_in_secs: u64,
    },
    /// The attempt counter file could not be written.
    #[error("could not record the pairing state: {0}")]
    Storage(#[source] StateWriteError),
}

/// Loading the pairing state failed.
#[derive(Debug, thiserror::Error)]
#[error("pairing state {}: {source}", path.display())]
pub struct PairingLoadError {
    path: PathBuf,
    source: PairingLoadCause,
}

/// What went wrong loading the pairing state.
#[derive(Debug, thiserror::Error)]
pub enum PairingLoadCause {
    /// The state directory could not be created or made private.
    #[error("cannot prepare the state directory: {0}")]
    Dir(#[source] std::io::Error),
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    /// The lockout found at load could not be recorded.
    #[error(transparent)]
    Write(StateWriteError),
}

/// The pairing window. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pairing {
    inner: Arc<PairingInner>,
}

#[derive(Debug)]
struct PairingInner {
    path: PathBuf,
    cfg: PairingConfig,
    state: Mutex<State>,
    view: watch::Sender<PairingWindow>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Pairing {
    /// Loads `<state_dir>/pairing.json` (missing = fresh). A counter left at the limit by a
    /// crash becomes a lockout now. A corrupt file is moved aside and treated as a lockout
    /// (fail closed: an attacker must not reset the counter by corrupting the file).
    pub fn load(state_dir: &Path, cfg: PairingConfig) -> Result<Self, PairingLoadError> {
        let path = state_dir.join(PAIRING_FILE);
        let err = |source: PairingLoadCause| PairingLoadError {
            path: path.clone(),
            source,
        };
        atomic_file::ensure_private_dir(state_dir).map_err(|e| err(PairingLoadCause::Dir(e)))?;
        atomic_file::remove_stale_temps(&path);
        let mut persisted = match atomic_file::read_bounded(&path, 4096) {
            Ok(None) => Persisted::default(),
            Ok(Some(bytes)) => match serde_json::from_slice::<Persisted>(&bytes) {
                Ok(p) => p,
                Err(_) => corrupt(&path, &cfg),
            },
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => corrupt(&path, &cfg),
            Err(e) => return Err(err(PairingLoadCause::Read(e))),
        };
        let mut changed = false;
        if persisted.failures >= cfg.max_failures && persisted.locked_until.is_none() {
            lock(&mut persisted, &cfg);
            changed = true;
        }
        let (view, _) = watch::channel(PairingWindow::Closed);
        let pairing = Self {
            inner: Arc::new(PairingInner {
                path: path.clone(),
                cfg,
                state: Mutex::new(State {
                    persisted,
                    open_until: None,
                }),
                view,
            }),
        };
        if changed {
            pairing
                .save(&persisted)
                .map_err(|e| err(PairingLoadCause::Write(e)))?;
        }
        pairing.refresh_view();
        Ok(pairing)
    }

    fn save(&self, p: &Persisted) -> Result<(), StateWriteError> {
        let bytes = serde_json::to_vec(p)?;
        Ok(atomic_file::write_atomic(&self.inner.path, &bytes)?)
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut guard = match self.inner.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut guard)
    }

    fn compute(&self, st: &mut State) -> PairingWindow {
        let now = Instant::now();
        if let Some(until) = st.persisted.locked_until {
            let unix = unix_now();
            if unix < until {
                return PairingWindow::LockedOut {
                    retry_in_secs: until - unix,
                };
            }
        }
        match st.open_until {
            Some(until) if until > now => PairingWindow::Open {
                closes_in_secs: (until - now).as_secs().max(1),
            },
            Some(_) => {
                st.open_until = None;
                PairingWindow::Closed
            }
            None => PairingWindow::Closed,
        }
    }

    /// The window now.
    pub fn window(&self) -> PairingWindow {
        let w = self.with_state(|st| self.compute(st));
        self.publish(w);
        w
    }

    /// True while the window is open.
    pub fn is_open(&self) -> bool {
        matches!(self.window(), PairingWindow::Open { .. })
    }

    fn publish(&self, w: PairingWindow) {
        // Only the kind matters to watchers (mDNS TXT): ignore the ticking seconds.
        self.inner.view.send_if_modified(|cur| {
            if std::mem::discriminant(cur) != std::mem::discriminant(&w) {
                *cur = w;
                true
            } else {
                false
            }
        });
    }

    fn refresh_view(&self) {
        let _ = self.window();
    }

    /// Changes of the window's kind (open / closed / locked out), for advertising.
    pub fn subscribe(&self) -> watch::Receiver<PairingWindow> {
        self.inner.view.subscribe()
    }

    /// When the open window closes by itself, if open (for a timer that republishes).
    pub fn open_until(&self) -> Option<Instant> {
        self.with_state(|st| st.open_until)
    }

    /// Opens (or extends) the window for the configured time. Refused while locked out.
    /// Reopening after a lockout expired starts a fresh failure count.
    pub fn open(&self) -> Result<PairingWindow, OpenError> {
        let result = self.with_state(|st| {
            if let PairingWindow::LockedOut { retry_in_secs } = self.compute(st) {
                return Err(OpenError::LockedOut { retry_in_secs });
            }
            if st.persisted.locked_until.is_some() {
                let mut next = st.persisted;
                next.locked_until = None;
                next.failures = 0;
                self.save(&next).map_err(OpenError::Storage)?;
                st.persisted = next;
            }
            st.open_until = Some(Instant::now() + self.inner.cfg.window);
            Ok(self.compute(st))
        });
        if result.is_ok() {
            tracing::info!(
                secs = self.inner.cfg.window.as_secs(),
                "pairing window open"
            );
        }
        self.refresh_view();
        result
    }

    /// Closes the window.
    pub fn close(&self) {
        self.with_state(|st| st.open_until = None);
        tracing::info!("pairing window closed");
        self.refresh_view();
    }

    /// Wrong codes counted so far.
    pub fn failures(&self) -> u32 {
        self.with_state(|st| st.persisted.failures)
    }

    /// Step 1 of a handshake (before the agent answers the PAKE): the window must be open and
    /// not locked; a tentative failure is persisted. `Err` goes to the peer.
    pub fn before_reply(&self) -> Result<(), ErrorBody> {
        let result = self.with_state(|st| {
            match self.compute(st) {
                PairingWindow::Open { .. } => {}
                PairingWindow::Closed => {
                    return Err(ErrorBody::new(
                        ErrorKind::WindowClosed,
                        "the speaker's pairing window is closed: open it on the speaker \
                         (avs-device-agent pair, or its pairing button) and try again",
                    ))
                }
                PairingWindow::LockedOut { retry_in_secs } => {
                    return Err(locked_body(retry_in_secs));
                }
            }
            if st.persisted.failures >= self.inner.cfg.max_failures {
                return Err(locked_body(self.inner.cfg.lockout_base.as_secs()));
            }
            let mut next = st.persisted;
            next.failures += 1;
            self.save(&next).map_err(|e| {
                tracing::error!(error = %e, "cannot record the pairing attempt; refusing it");
                ErrorBody::new(
                    ErrorKind::Internal,
                    "the speaker cannot record pairing attempts",
                )
            })?;
            st.persisted = next;
            Ok(())
        });
        self.refresh_view();
        result
    }

    /// Step 2 of a handshake: the code was right, undo the tentative failure.
    pub fn on_code_verified(&self) {
        self.with_state(|st| {
            let mut next = st.persisted;
            next.failures = next.failures.saturating_sub(1);
            if let Err(e) = self.save(&next) {
                tracing::error!(error = %e, "cannot update the pairing attempt counter");
            }
            st.persisted = next;
        });
    }

    /// A handshake ended with a wrong code: the tentative failure stays; at the limit the
    /// window closes and a lockout starts.
    pub fn on_wrong_code(&self) {
        let locked = self.with_state(|st| {
            if st.persisted.failures < self.inner.cfg.max_failures {
                return None;
            }
            let mut next = st.persisted;
            if next.locked_until.is_none() {
                lock(&mut next, &self.inner.cfg);
            }
            if let Err(e) = self.save(&next) {
                tracing::error!(error = %e, "cannot record the pairing lockout");
            }
            st.persisted = next;
            st.open_until = None;
            next.locked_until
        });
        if let Some(until) = locked {
            tracing::warn!(
                failures = self.inner.cfg.max_failures,
                retry_in_secs = until.saturating_sub(unix_now()),
                "too many wrong setup codes: pairing window closed and locked"
            );
        }
        self.refresh_view();
    }

    /// A link was delivered: close the window, reset the counters.
    pub fn on_linked(&self) {
        self.with_state(|st| {
            let next = Persisted::default();
            if let Err(e) = self.save(&next) {
                tracing::error!(error = %e, "cannot reset the pairing attempt counter");
            }
            st.persisted = next;
            st.open_until = None;
        });
        tracing::info!("linked: pairing window closed");
        self.refresh_view();
    }
}

fn locked_body(retry_in_secs: u64) -> ErrorBody {
    ErrorBody {
        kind: ErrorKind::LockedOut,
        message: format!(
            "too many wrong setup codes: pairing is locked for {retry_in_secs} s; then reopen the \
             pairing window on the speaker and type the code printed on it"
        ),
        retry_after_secs: Some(retry_in_secs),
    }
}

fn lock(p: &mut Persisted, cfg: &PairingConfig) {
    let factor = 1u32.checked_shl(p.lockouts.min(31)).unwrap_or(u32::MAX);
    let secs = cfg
        .lockout_base
        .saturating_mul(factor)
        .min(cfg.lockout_max)
        .as_secs()
        .max(1);
    p.locked_until = Some(unix_now() + secs);
    p.lockouts = p.lockouts.saturating_add(1);
}

fn corrupt(path: &Path, cfg: &PairingConfig) -> Persisted {
    match atomic_file::move_aside(path) {
        Ok(to) => {
            tracing::error!(moved_to = %to.display(), "pairing state was corrupt; locking pairing for safety")
        }
        Err(e) => {
            tracing::error!(error = %e, "pairing state was corrupt and could not be moved aside")
        }
    }
    Persisted {
        failures: cfg.max_failures,
        lockouts: 0,
        locked_until: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PairingConfig {
        PairingConfig {
            window: Duration::from_secs(60),
            max_failures: 3,
            lockout_base: Duration::from_secs(60),
            lockout_max: Duration::from_secs(3600),
        }
    }

    #[tokio::test]
    async fn counts_persist_and_lock_across_restart() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert_eq!(p.window(), PairingWindow::Closed);
        assert_eq!(p.before_reply().unwrap_err().kind, ErrorKind::WindowClosed);
        p.open().unwrap();
        assert!(p.is_open());
        // right code: tentative failure undone
        p.before_reply().unwrap();
        assert_eq!(
            Pairing::load(dir.path(), cfg()).unwrap().failures(),
            1,
            "persisted before answer"
        );
        p.on_code_verified();
        assert_eq!(p.failures(), 0);
        for _ in 0..3 {
            p.before_reply().unwrap();
            p.on_wrong_code();
        }
        assert!(
            matches!(p.window(), PairingWindow::LockedOut { retry_in_secs } if retry_in_secs > 50)
        );
        assert_eq!(p.before_reply().unwrap_err().kind, ErrorKind::LockedOut);
        assert!(matches!(p.open(), Err(OpenError::LockedOut { .. })));
        drop(p);
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert!(matches!(p.window(), PairingWindow::LockedOut { .. }));
        assert!(p.open().is_err());
    }

    #[tokio::test]
    async fn crash_at_the_limit_locks_on_load_and_corrupt_file_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PAIRING_FILE),
            br#"{"failures":3,"lockouts":0,"locked_until":null}"#,
        )
        .unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert!(matches!(p.window(), PairingWindow::LockedOut { .. }));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PAIRING_FILE), b"garbage").unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert!(matches!(p.window(), PairingWindow::LockedOut { .. }));
    }

    #[test]
    fn lockout_doubles_and_caps() {
        let c = cfg();
        let mut p = Persisted::default();
        let mut last = 0;
        for i in 0..10 {
            lock(&mut p, &c);
            let secs = p.locked_until.unwrap() - unix_now();
            assert!(secs >= last.min(3600), "{i}: {secs}");
            assert!(secs <= 3600);
            last = secs;
        }
        assert_eq!(p.lockouts, 10);
    }
}
