//! The pairing window and the failed-attempt counter.
//!
//! The window is the only time the speaker accepts a setup-code handshake, an authorization
//! code or a reset. It closes after `window` (15 min), after a successful link was delivered, or
//! after `max_failures` (20) wrong setup codes.
//!
//! Who opened it decides what a lockout means:
//!
//! - **the pairing button** ([`Pairing::press_button`]): someone is at the speaker. It always
//!   opens the window at once with a fresh budget of `max_failures`, whatever lockout is
//!   running (as Matter lets the user reopen a commissioning window). A stranger who burns the
//!   budget cannot keep the owner out; the owner presses again.
//! - **nobody present** ([`Pairing::open`]: boot while unpaired, reopening after an unlink, the
//!   local API, SIGUSR1): refused while a lockout runs. After `max_failures` wrong codes the
//!   lockout is `lockout_base` doubling with each lockout (1, 2, 4 … min), capped at
//!   `lockout_max` (a day); a success resets it.
//!
//! Wrong codes are paced: at most one counted attempt per `attempt_interval` (1 s), so the 20
//! guesses of a window take at least 20 s; an attempt inside the interval is answered `busy`
//! and costs nothing.
//!
//! Wrong codes are counted in `<state_dir>/pairing.json`, written *before* the agent answers a
//! handshake (the tentative failure is undone when the code proves right). Pulling the plug in
//! the middle of a guess therefore counts the guess.
//!
//! A lockout is kept as **remaining time**, never as a wall-clock deadline: while the agent
//! runs it counts down on the monotonic clock, and the file holds the time left (rewritten at
//! most every `checkpoint` and at each change). A board without an RTC that boots in 1970, or
//! an NTP step, neither erases nor stretches it. The file is written (temp file, fsync,
//! rename, fsync of the directory) the moment a lockout starts, before the peer hears of it.
//!
//! Each write also records the lockout's end on the [boot clock](crate::boot_clock) (boot id
//! plus time since boot): an agent killed and restarted within the same boot resumes the
//! lockout with the time it was down counted, to the second — `kill -9` neither restarts nor
//! shortens it. After a reboot that point means nothing and the lockout resumes from the time
//! left at the last write: a power cut loses at most one checkpoint interval of countdown (the
//! lockout gets longer, never shorter). The wall clock is never used, deliberately: it can
//! only be trusted to shorten a lockout if it cannot jump forward, which an NTP step after an
//! RTC-less boot does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared_protocol::message::{ErrorBody, ErrorKind, PairingWindow};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::atomic_file;
use crate::boot_clock::{BootClock, BootInstant, NoBootClock, SystemBootClock};

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
    /// Least time between two counted attempts (1 s).
    pub attempt_interval: Duration,
    /// How often a running lockout's remaining time is written to the file (60 s).
    pub checkpoint: Duration,
    /// The window opened at boot while unpaired (`window` by default; zero: only the button
    /// opens it).
    pub boot_window: Duration,
    /// Reopen the window by itself when LWA says the speaker was unlinked (default false:
    /// someone must press the button).
    pub reopen_after_unlink: bool,
}

impl Default for PairingConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(900),
            max_failures: 20,
            lockout_base: Duration::from_secs(60),
            lockout_max: Duration::from_secs(24 * 3600),
            attempt_interval: Duration::from_secs(1),
            checkpoint: Duration::from_secs(60),
            boot_window: Duration::from_secs(900),
            reopen_after_unlink: false,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Persisted {
    /// Wrong (or tentative) setup codes since the window opened.
    failures: u32,
    /// Lockouts since the last success (drives the backoff).
    lockouts: u32,
    /// Seconds of lockout left when this was written.
    #[serde(default)]
    locked_for_secs: Option<u64>,
    /// The lockout's end on the boot clock when this was written (a restart in the same boot
    /// counts the time the agent was down; ignored after a reboot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    locked_until_boot: Option<BootInstant>,
    /// Old format: a wall-clock deadline. Read as a fresh `lockout_base` lock, never written.
    #[serde(default, skip_serializing)]
    locked_until: Option<u64>,
}

#[derive(Debug)]
struct State {
    failures: u32,
    lockouts: u32,
    locked_until: Option<Instant>,
    open_until: Option<Instant>,
    /// No counted attempt before this (pacing).
    next_attempt: Option<Instant>,
    /// When the file was last written (for the lockout checkpoint).
    saved_at: Instant,
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
    /// Too many wrong codes; try again later (or press the pairing button).
    #[error("pairing is locked after too many wrong setup codes; try again in {retry_in_secs} s, or press the speaker's pairing button")]
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
    clock: Box<dyn BootClock>,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Pairing {
    /// Loads `<state_dir>/pairing.json` (missing = fresh). A counter left at the limit by a
    /// crash becomes a lockout now. A corrupt file is moved aside and treated as a lockout
    /// (fail closed: an attacker must not reset the counter by corrupting the file).
    pub fn load(state_dir: &Path, cfg: PairingConfig) -> Result<Self, PairingLoadError> {
        Self::load_with_clock(state_dir, cfg, default_clock())
    }

    fn load_with_clock(
        state_dir: &Path,
        cfg: PairingConfig,
        clock: Box<dyn BootClock>,
    ) -> Result<Self, PairingLoadError> {
        let path = state_dir.join(PAIRING_FILE);
        let err = |source: PairingLoadCause| PairingLoadError {
            path: path.clone(),
            source,
        };
        atomic_file::ensure_private_dir(state_dir).map_err(|e| err(PairingLoadCause::Dir(e)))?;
        atomic_file::remove_stale_temps(&path);
        let persisted = read_persisted(&path, &cfg).map_err(|e| err(PairingLoadCause::Read(e)))?;
        let now = Instant::now();
        let locked_for = lockout_left(&persisted, clock.now(), &cfg);
        let mut state = State {
            failures: persisted.failures,
            lockouts: persisted.lockouts,
            locked_until: locked_for.map(|d| now + d),
            open_until: None,
            next_attempt: None,
            saved_at: now,
        };
        let mut changed = persisted.locked_until.is_some();
        if state.failures >= cfg.max_failures && state.locked_until.is_none() {
            lock(&mut state, &cfg, now);
            changed = true;
        }
        let (view, _) = watch::channel(PairingWindow::Closed);
        let pairing = Self {
            inner: Arc::new(PairingInner {
                path: path.clone(),
                cfg,
                state: Mutex::new(state),
                view,
                clock,
            }),
        };
        if changed {
            pairing
                .with_state(|st| pairing.save(st, now))
                .map_err(|e| err(PairingLoadCause::Write(e)))?;
        } else if locked_for.is_some() {
            // A running lockout is written again at once: its end on this boot's clock (after a
            // reboot the file's point is another boot's) and the time left. Not fatal: the file
            // already holds the lockout; only its countdown across the next crash is coarser.
            if let Err(e) = pairing.with_state(|st| pairing.save(st, now)) {
                tracing::warn!(error = %e, "cannot record the resumed pairing lockout");
            }
        }
        pairing.refresh_view();
        Ok(pairing)
    }

    /// Writes `st` (the lockout as the time left at `now`).
    fn save(&self, st: &mut State, now: Instant) -> Result<(), StateWriteError> {
        // An expired lockout is written as 0 s left (not as none): with the counter still at
        // the limit, "none" would make the next start lock again.
        let left = st
            .locked_until
            .map(|until| until.saturating_duration_since(now));
        let p = Persisted {
            failures: st.failures,
            lockouts: st.lockouts,
            locked_for_secs: left.map(ceil_secs),
            locked_until_boot: left
                .zip(self.inner.clock.now())
                .map(|(left, boot_now)| boot_now.after(left)),
            locked_until: None,
        };
        let bytes = serde_json::to_vec(&p)?;
        atomic_file::write_atomic(&self.inner.path, &bytes)?;
        st.saved_at = now;
        Ok(())
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
        if let Some(until) = st.locked_until {
            if until > now {
                if now.duration_since(st.saved_at) >= self.inner.cfg.checkpoint {
                    if let Err(e) = self.save(st, now) {
                        tracing::warn!(error = %e, "cannot checkpoint the pairing lockout");
                    }
                }
                return PairingWindow::LockedOut {
                    retry_in_secs: ceil_secs(until - now).max(1),
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

    /// What a peer is told when the window is not open (`None` while open).
    pub fn refusal(&self) -> Option<ErrorBody> {
        match self.window() {
            PairingWindow::Open { .. } => None,
            PairingWindow::LockedOut { retry_in_secs } => Some(locked_body(retry_in_secs)),
            _ => Some(closed_body()),
        }
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

    /// Opens (or extends) the window with nobody known to be present (boot while unpaired,
    /// after an unlink, the local API, SIGUSR1). Refused while locked out. Reopening after a
    /// lockout expired starts a fresh failure count; the backoff stays until a success.
    pub fn open(&self) -> Result<PairingWindow, OpenError> {
        self.open_for(self.inner.cfg.window)
    }

    /// The unpaired speaker boots: opens the window for `boot_window` (unless that is zero:
    /// then only the button opens it). Returns whether it opened.
    pub fn open_at_boot(&self) -> Result<bool, OpenError> {
        let len = self.inner.cfg.boot_window;
        if len.is_zero() {
            tracing::info!(
                "unpaired; the window opens with the pairing button (boot_window_secs = 0)"
            );
            return Ok(false);
        }
        self.open_for(len).map(|_| true)
    }

    /// LWA says the speaker was unlinked: reopen only if `reopen_after_unlink` (nobody is known
    /// to be there; by default the owner presses the button). Returns whether it opened.
    pub fn open_after_unlink(&self) -> Result<bool, OpenError> {
        if !self.inner.cfg.reopen_after_unlink {
            tracing::info!("the speaker was unlinked; press the pairing button to pair it again");
            return Ok(false);
        }
        self.open().map(|_| true)
    }

    /// [`Pairing::open`] for `len` instead of the configured window.
    pub fn open_for(&self, len: Duration) -> Result<PairingWindow, OpenError> {
        let result = self.with_state(|st| {
            if let PairingWindow::LockedOut { retry_in_secs } = self.compute(st) {
                return Err(OpenError::LockedOut { retry_in_secs });
            }
            let now = Instant::now();
            if st.locked_until.is_some() {
                st.locked_until = None;
                st.failures = 0;
                self.save(st, now).map_err(OpenError::Storage)?;
            }
            st.open_until = Some(now + len);
            Ok(self.compute(st))
        });
        if result.is_ok() {
            tracing::info!(secs = len.as_secs(), "pairing window open");
        }
        self.refresh_view();
        result
    }

    /// The pairing button: someone is at the speaker. Opens the window at once with a fresh
    /// budget, ending any lockout (the backoff counter stays until a success).
    pub fn press_button(&self) -> Result<PairingWindow, OpenError> {
        let result = self.with_state(|st| {
            let now = Instant::now();
            st.locked_until = None;
            st.failures = 0;
            st.next_attempt = None;
            self.save(st, now).map_err(OpenError::Storage)?;
            st.open_until = Some(now + self.inner.cfg.window);
            Ok(self.compute(st))
        });
        if result.is_ok() {
            tracing::info!(
                secs = self.inner.cfg.window.as_secs(),
                "pairing button pressed: window open with a fresh attempt budget"
            );
        }
        self.refresh_view();
        result
    }

    /// Writes a running lockout's remaining time now (e.g. before a planned shutdown).
    pub fn checkpoint(&self) {
        self.with_state(|st| {
            if st.locked_until.is_some() {
                if let Err(e) = self.save(st, Instant::now()) {
                    tracing::warn!(error = %e, "cannot checkpoint the pairing lockout");
                }
            }
        });
    }

    /// Closes the window.
    pub fn close(&self) {
        self.with_state(|st| st.open_until = None);
        tracing::info!("pairing window closed");
        self.refresh_view();
    }

    /// Wrong codes counted so far.
    pub fn failures(&self) -> u32 {
        self.with_state(|st| st.failures)
    }

    /// Step 1 of a handshake (before the agent answers the PAKE): the window must be open, not
    /// locked, and the last counted attempt at least `attempt_interval` ago; a tentative
    /// failure is persisted. `Err` goes to the peer.
    pub fn before_reply(&self) -> Result<(), ErrorBody> {
        let result = self.with_state(|st| {
            match self.compute(st) {
                PairingWindow::Open { .. } => {}
                PairingWindow::LockedOut { retry_in_secs } => {
                    return Err(locked_body(retry_in_secs))
                }
                _ => return Err(closed_body()),
            }
            if st.failures >= self.inner.cfg.max_failures {
                return Err(locked_body(self.inner.cfg.lockout_base.as_secs()));
            }
            let now = Instant::now();
            if let Some(next) = st.next_attempt.filter(|next| *next > now) {
                let wait = ceil_secs(next - now).max(1);
                return Err(ErrorBody {
                    kind: ErrorKind::Busy,
                    message: format!(
                        "another setup code was tried a moment ago; try again in {wait} s"
                    ),
                    retry_after_secs: Some(wait),
                    attempts_left: None,
                    lockout_secs: None,
                });
            }
            st.failures += 1;
            if let Err(e) = self.save(st, now) {
                st.failures -= 1;
                tracing::error!(error = %e, "cannot record the pairing attempt; refusing it");
                return Err(ErrorBody::new(
                    ErrorKind::Internal,
                    "the speaker cannot record pairing attempts",
                ));
            }
            st.next_attempt = Some(now + self.inner.cfg.attempt_interval);
            Ok(())
        });
        self.refresh_view();
        result
    }

    /// Step 2 of a handshake: the code was right, undo the tentative failure.
    pub fn on_code_verified(&self) {
        self.with_state(|st| {
            st.failures = st.failures.saturating_sub(1);
            st.next_attempt = None;
            if let Err(e) = self.save(st, Instant::now()) {
                tracing::error!(error = %e, "cannot update the pairing attempt counter");
            }
        });
    }

    /// What a companion that got the code wrong is told (protocol 1.2): the wrong codes this
    /// window still takes (the one just made is counted already) and how long pairing then
    /// locks; when that one used the last try, `attempts_left` is 0 and `lockout_secs` is the
    /// lock it starts (or the one already running).
    pub fn wrong_code_answer(&self) -> ErrorBody {
        let cfg = &self.inner.cfg;
        let (left, lock_secs) = self.with_state(|st| {
            let now = Instant::now();
            match st.locked_until.filter(|until| *until > now) {
                Some(until) => (0, ceil_secs(until - now)),
                None => (
                    cfg.max_failures.saturating_sub(st.failures),
                    ceil_secs(lockout_len(st.lockouts, cfg)),
                ),
            }
        });
        let message = if left == 0 {
            format!(
                "the setup code does not match this speaker's, and that was the last try: \
                 pairing is locked for {lock_secs} s (the speaker's pairing button reopens it)"
            )
        } else {
            format!(
                "the setup code does not match this speaker's: {left} more wrong codes lock \
                 pairing for {lock_secs} s"
            )
        };
        ErrorBody::new(ErrorKind::WrongSetupCode, message).with_attempts(left, lock_secs)
    }

    /// A handshake ended with a wrong code: the tentative failure stays; at the limit the
    /// window closes and a lockout starts.
    pub fn on_wrong_code(&self) {
        let locked = self.with_state(|st| {
            if st.failures < self.inner.cfg.max_failures {
                return None;
            }
            let now = Instant::now();
            if st.locked_until.is_none() {
                lock(st, &self.inner.cfg, now);
            }
            st.open_until = None;
            if let Err(e) = self.save(st, now) {
                tracing::error!(error = %e, "cannot record the pairing lockout");
            }
            st.locked_until.map(|until| ceil_secs(until - now))
        });
        if let Some(secs) = locked {
            tracing::warn!(
                failures = self.inner.cfg.max_failures,
                retry_in_secs = secs,
                "too many wrong setup codes: pairing window closed and locked (the pairing button reopens it)"
            );
        }
        self.refresh_view();
    }

    /// A link was delivered: close the window, reset the counters and the backoff.
    pub fn on_linked(&self) {
        self.with_state(|st| {
            st.failures = 0;
            st.lockouts = 0;
            st.locked_until = None;
            st.open_until = None;
            st.next_attempt = None;
            if let Err(e) = self.save(st, Instant::now()) {
                tracing::error!(error = %e, "cannot reset the pairing attempt counter");
            }
        });
        tracing::info!("linked: pairing window closed");
        self.refresh_view();
    }
}

/// The system's boot clock. Unit tests run on tokio's paused clock, which the system's boot
/// clock does not follow: they get none unless they inject one.
fn default_clock() -> Box<dyn BootClock> {
    if cfg!(test) {
        Box::new(NoBootClock)
    } else {
        Box::new(SystemBootClock)
    }
}

fn closed_body() -> ErrorBody {
    ErrorBody::new(
        ErrorKind::WindowClosed,
        "the speaker's pairing window is closed: open it on the speaker \
         (avs-device-agent pair, or its pairing button) and try again",
    )
}

fn locked_body(retry_in_secs: u64) -> ErrorBody {
    ErrorBody {
        kind: ErrorKind::LockedOut,
        message: format!(
            "too many wrong setup codes: pairing is locked for {retry_in_secs} s; press the \
             speaker's pairing button (or wait) and type the code printed on it"
        ),
        retry_after_secs: Some(retry_in_secs),
        attempts_left: None,
        lockout_secs: None,
    }
}

/// The next lockout: `lockout_base` doubled per earlier lockout, capped at `lockout_max`.
fn lockout_len(lockouts: u32, cfg: &PairingConfig) -> Duration {
    let factor = 1u32.checked_shl(lockouts.min(31)).unwrap_or(u32::MAX);
    cfg.lockout_base
        .saturating_mul(factor)
        .min(cfg.lockout_max)
        .max(Duration::from_secs(1))
}

fn lock(st: &mut State, cfg: &PairingConfig, now: Instant) {
    st.locked_until = Some(now + lockout_len(st.lockouts, cfg));
    st.lockouts = st.lockouts.saturating_add(1);
    st.open_until = None;
}

/// The pairing file's state: missing = fresh, corrupt = moved aside and locked ([`corrupt`]);
/// `Err` only when it cannot be read at all.
fn read_persisted(path: &Path, cfg: &PairingConfig) -> std::io::Result<Persisted> {
    match atomic_file::read_bounded(path, 4096) {
        Ok(None) => Ok(Persisted::default()),
        Ok(Some(bytes)) => match serde_json::from_slice::<Persisted>(&bytes) {
            Ok(p) => Ok(p),
            Err(_) => Ok(corrupt(path, cfg)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Ok(corrupt(path, cfg)),
        Err(e) => Err(e),
    }
}

/// How much of a persisted lockout is left now (`boot_now`: the boot clock, if it can say),
/// at most `lockout_max`; an old-format lockout is a fresh `lockout_base` one.
fn lockout_left(
    persisted: &Persisted,
    boot_now: Option<BootInstant>,
    cfg: &PairingConfig,
) -> Option<Duration> {
    match (persisted.locked_for_secs, persisted.locked_until) {
        (Some(secs), _) => {
            // Same boot: the boot clock kept counting while the agent was down.
            let on_boot_clock = persisted
                .locked_until_boot
                .as_ref()
                .zip(boot_now.as_ref())
                .and_then(|(end, now)| end.left_at(now));
            let left = Duration::from_secs(secs);
            let left = on_boot_clock.map_or(left, |b| b.min(left));
            Some(left.min(cfg.lockout_max))
        }
        (None, Some(_)) => Some(cfg.lockout_base),
        (None, None) => None,
    }
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
        locked_for_secs: None,
        locked_until_boot: None,
        locked_until: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PairingConfig {
        PairingConfig {
            window: Duration::from_secs(600),
            max_failures: 3,
            lockout_base: Duration::from_secs(60),
            lockout_max: Duration::from_secs(240),
            attempt_interval: Duration::from_secs(1),
            checkpoint: Duration::from_secs(60),
            boot_window: Duration::from_secs(600),
            reopen_after_unlink: false,
        }
    }

    /// One wrong guess, then the pacing interval (fake clock).
    async fn wrong_guess(p: &Pairing) {
        p.before_reply().unwrap();
        p.on_wrong_code();
        tokio::time::advance(Duration::from_secs(1)).await;
    }

    fn locked_for(p: &Pairing) -> Option<u64> {
        match p.window() {
            PairingWindow::LockedOut { retry_in_secs } => Some(retry_in_secs),
            _ => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn counts_persist_and_lock_across_restart() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert_eq!(p.window(), PairingWindow::Closed);
        assert_eq!(p.before_reply().unwrap_err().kind, ErrorKind::WindowClosed);
        assert_eq!(p.refusal().unwrap().kind, ErrorKind::WindowClosed);
        p.open().unwrap();
        assert!(p.is_open() && p.refusal().is_none());
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
            wrong_guess(&p).await;
        }
        assert!(locked_for(&p).is_some_and(|s| s > 50));
        assert_eq!(p.before_reply().unwrap_err().kind, ErrorKind::LockedOut);
        assert_eq!(p.refusal().unwrap().kind, ErrorKind::LockedOut);
        assert!(matches!(p.open(), Err(OpenError::LockedOut { .. })));
        drop(p);
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert!(locked_for(&p).is_some());
        assert!(p.open().is_err());
    }

    /// 15.7: what a companion that got the code wrong is told: the tries this window still
    /// takes and the lock that follows; the try that locks says 0 and the lock it started; the
    /// next window's lock is the doubled one.
    #[tokio::test(start_paused = true)]
    async fn a_wrong_code_is_answered_with_the_tries_left_and_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        p.open().unwrap();
        let mut told = Vec::new();
        for _ in 0..3 {
            p.before_reply().unwrap();
            let body = p.wrong_code_answer();
            assert_eq!(body.kind, ErrorKind::WrongSetupCode);
            told.push((body.attempts_left, body.lockout_secs));
            p.on_wrong_code();
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(
            told,
            [
                (Some(2), Some(60)),
                (Some(1), Some(60)),
                (Some(0), Some(60))
            ]
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        p.open().unwrap();
        p.before_reply().unwrap();
        let body = p.wrong_code_answer();
        assert_eq!(
            (body.attempts_left, body.lockout_secs),
            (Some(2), Some(120))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn crash_at_the_limit_locks_on_load_and_corrupt_file_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PAIRING_FILE),
            br#"{"failures":3,"lockouts":0,"locked_for_secs":null}"#,
        )
        .unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert_eq!(locked_for(&p), Some(60));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PAIRING_FILE), b"garbage").unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert!(locked_for(&p).is_some());
    }

    /// 18.1: the escalation on a fake clock. Lockouts of 1, 2, 4 min, then the cap (4 min
    /// here); each time the window refuses to reopen until the lockout has run out to the
    /// second, and reopens after; a success resets the backoff to 1 min.
    #[tokio::test(start_paused = true)]
    async fn lockout_escalates_caps_expires_and_resets_on_success() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        for expected in [60u64, 120, 240, 240, 240] {
            p.open().unwrap();
            for _ in 0..3 {
                wrong_guess(&p).await;
            }
            // The last guess was 1 s ago (the pacing advance).
            assert_eq!(locked_for(&p), Some(expected - 1), "lockout {expected}");
            assert!(matches!(p.open(), Err(OpenError::LockedOut { .. })));
            tokio::time::advance(Duration::from_secs(expected - 2)).await;
            assert_eq!(locked_for(&p), Some(1));
            assert!(p.open().is_err(), "still locked 1 s before the end");
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(p.open().is_ok(), "reopens once the lockout ran out");
            assert_eq!(p.failures(), 0, "a fresh budget after the lockout");
            p.close();
        }
        // A success resets the backoff.
        p.open().unwrap();
        p.before_reply().unwrap();
        p.on_code_verified();
        p.on_linked();
        p.open().unwrap();
        for _ in 0..3 {
            wrong_guess(&p).await;
        }
        assert_eq!(locked_for(&p), Some(59));
    }

    /// 12.2: the button always reopens at once with a fresh budget; nobody-present openings
    /// stay refused; the backoff continues.
    #[tokio::test(start_paused = true)]
    async fn the_button_reopens_a_locked_window_with_a_fresh_budget() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        p.open().unwrap();
        for _ in 0..3 {
            wrong_guess(&p).await;
        }
        assert!(p.open().is_err());
        assert!(p.press_button().is_ok());
        assert!(p.is_open());
        assert_eq!(p.failures(), 0);
        // Three more wrong guesses are allowed (a fresh budget), then the next lockout is
        // longer: the button does not reset the backoff, only a success does.
        for _ in 0..3 {
            wrong_guess(&p).await;
        }
        assert_eq!(locked_for(&p), Some(119));
        // The button survives a restart's lockout too.
        drop(p);
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert!(locked_for(&p).is_some());
        p.press_button().unwrap();
        assert!(p.is_open());
    }

    /// Guesses are paced: a second counted attempt within `attempt_interval` is answered busy
    /// and not counted.
    #[tokio::test(start_paused = true)]
    async fn attempts_are_paced() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        p.open().unwrap();
        p.before_reply().unwrap();
        p.on_wrong_code();
        let busy = p.before_reply().unwrap_err();
        assert_eq!(busy.kind, ErrorKind::Busy);
        assert_eq!(busy.retry_after_secs, Some(1));
        assert_eq!(p.failures(), 1, "the refused attempt is not counted");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(p.before_reply().unwrap_err().kind, ErrorKind::Busy);
        tokio::time::advance(Duration::from_millis(1)).await;
        p.before_reply().unwrap();
        assert_eq!(p.failures(), 2);
    }

    /// The lockout is remaining time: the file holds seconds left (no wall clock), checkpointed
    /// while running, so a restart resumes where it was, whatever the date says.
    #[tokio::test(start_paused = true)]
    async fn lockout_is_kept_as_remaining_time() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = || PairingConfig {
            checkpoint: Duration::from_secs(10),
            ..cfg()
        };
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        p.open().unwrap();
        for _ in 0..3 {
            wrong_guess(&p).await;
        }
        let file = dir.path().join(PAIRING_FILE);
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(on_disk["locked_for_secs"], 60, "{on_disk}");
        assert!(on_disk.get("locked_until").is_none(), "{on_disk}");
        // 41 s into the lockout: the next look at the window checkpoints the time left
        // (the last write is older than `checkpoint`).
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(locked_for(&p), Some(19));
        drop(p);
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert_eq!(locked_for(&p), Some(19), "resumed from the time left");
        tokio::time::advance(Duration::from_secs(18)).await;
        p.checkpoint();
        drop(p);
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert_eq!(locked_for(&p), Some(1), "an explicit checkpoint");
        // A file from the old format (a wall-clock deadline, here in 1970) still locks.
        std::fs::write(&file, br#"{"failures":0,"lockouts":1,"locked_until":5}"#).unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert_eq!(locked_for(&p), Some(60));
    }

    /// 12.10: after an unlink the window stays shut unless configured; a zero boot window
    /// leaves the opening to the button.
    #[tokio::test(start_paused = true)]
    async fn unattended_openings_follow_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairing::load(dir.path(), cfg()).unwrap();
        assert!(!p.open_after_unlink().unwrap());
        assert_eq!(p.window(), PairingWindow::Closed);
        assert!(p.open_at_boot().unwrap());
        assert!(
            matches!(p.window(), PairingWindow::Open { closes_in_secs } if closes_in_secs == 600)
        );
        p.close();
        let c = PairingConfig {
            boot_window: Duration::ZERO,
            reopen_after_unlink: true,
            ..cfg()
        };
        let p = Pairing::load(dir.path(), c).unwrap();
        assert!(!p.open_at_boot().unwrap());
        assert_eq!(p.window(), PairingWindow::Closed);
        assert!(p.open_after_unlink().unwrap());
        assert!(p.is_open());
    }

    /// A boot clock that follows tokio's (paused) clock: `id` names the boot.
    #[derive(Debug)]
    struct FakeBoot {
        id: &'static str,
        base: Instant,
    }

    impl BootClock for FakeBoot {
        fn now(&self) -> Option<BootInstant> {
            Some(BootInstant {
                boot_id: self.id.into(),
                since_boot_ms: 5_000 + self.base.elapsed().as_millis() as u64,
            })
        }
    }

    fn load_on(dir: &Path, id: &'static str, base: Instant) -> Pairing {
        Pairing::load_with_clock(dir, cfg(), Box::new(FakeBoot { id, base })).unwrap()
    }

    /// The agent is dead for `secs`, then starts on boot `id`.
    async fn restart_after(secs: u64, dir: &Path, id: &'static str, base: Instant) -> Pairing {
        tokio::time::advance(Duration::from_secs(secs)).await;
        load_on(dir, id, base)
    }

    /// The lockout is on disk the moment it starts (no read, no checkpoint needed), with its
    /// end on the boot clock. A restart in the same boot counts the time the agent was dead
    /// (`kill -9` neither restarts nor erases it); after a reboot it resumes from the time left
    /// at the last write (the power-off time does not count).
    #[tokio::test(start_paused = true)]
    async fn a_restart_counts_the_time_the_agent_was_dead_on_the_same_boot_only() {
        let dir = tempfile::tempdir().unwrap();
        let base = Instant::now();
        let p = load_on(dir.path(), "boot-1", base);
        p.open().unwrap();
        for _ in 0..2 {
            wrong_guess(&p).await;
        }
        p.before_reply().unwrap();
        p.on_wrong_code(); // the lockout starts here, at 2 s on the boot clock
        let file = dir.path().join(PAIRING_FILE);
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(on_disk["locked_for_secs"], 60, "{on_disk}");
        assert_eq!(
            on_disk["locked_until_boot"],
            serde_json::json!({"boot_id": "boot-1", "since_boot_ms": 5_000 + 2_000 + 60_000}),
            "{on_disk}"
        );
        drop(p); // kill -9: nothing more is written
        let p = restart_after(25, dir.path(), "boot-1", base).await;
        assert_eq!(
            locked_for(&p),
            Some(35),
            "60 s less the 25 s the agent was dead"
        );
        drop(p);
        // Another boot: the point on the old boot's clock means nothing; the time left at the
        // last write holds (the restart above wrote 35 s), however long the power was off.
        let p = restart_after(25, dir.path(), "boot-2", base).await;
        assert_eq!(
            locked_for(&p),
            Some(35),
            "a power cut never shortens a lockout"
        );
        // Dead past the end on the same boot: unlocked, and the next start does not lock again
        // (the counter is still at the limit; the file says 0 s left, not "no lockout").
        drop(p);
        let p = restart_after(70, dir.path(), "boot-2", base).await;
        assert_eq!(locked_for(&p), None);
        drop(p);
        let p = load_on(dir.path(), "boot-2", base);
        assert_eq!(locked_for(&p), None, "an expired lockout stays expired");
        p.open().unwrap();
        assert_eq!(p.failures(), 0, "a fresh budget after the lockout");
    }
}
