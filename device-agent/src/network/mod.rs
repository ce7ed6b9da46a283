//! The speaker's network: status, the connectivity check to LWA/AVS, and joining Wi-Fi.
//!
//! A speaker out of the box has no network, and the code exchange needs Login with Amazon, so a
//! pairing puts the speaker on Wi-Fi first, over the sealed link (protocol 1.1,
//! [`shared_protocol::message::wifi`]). The agent does not speak to radios itself; a backend
//! does, chosen by `network_backend`:
//!
//! - [`nm`] (`networkmanager`): NetworkManager over its D-Bus API. NetworkManager stores the
//!   passphrase (in its system connection, root-only); a failed join is rolled back.
//! - [`hook`] (`hook`): a command for platforms without NetworkManager (documented contract in
//!   docs/agent.md); the platform stores the passphrase.
//! - `none`: status and the connectivity check only.
//!
//! [`Network`] puts the pieces together: one join at a time, progress out, the connectivity
//! check after the join, and a rollback when the new network can't reach LWA. The agent never
//! writes the passphrase anywhere: it is handed to the backend and dropped (zeroized).

pub mod check;
pub mod hook;
#[cfg(all(target_os = "linux", feature = "networkmanager"))]
pub mod nm;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shared_protocol::message::{
    ConnectWifi, ConnectivityFailure, NetworkStatus, Ssid, WifiFailure, WifiNetwork, WifiResult,
    WifiStage,
};
use tokio::sync::{mpsc, Mutex};

pub use check::ConnectivityChecker;

/// A boxed future, so the backend trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where progress of a join goes.
pub type ProgressTx = mpsc::UnboundedSender<WifiStage>;

/// What the backend knows about the current link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentLink {
    /// The interface (`wlan0`).
    pub interface: Option<String>,
    /// The Wi-Fi network it is on.
    pub ssid: Option<Ssid>,
    /// Its address.
    pub address: Option<String>,
}

/// A scan or status query failed in the backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot do this (`none`).
    #[error("this speaker has no Wi-Fi backend (network_backend = none)")]
    NotSupported,
    /// No Wi-Fi device.
    #[error("no Wi-Fi device{}", .0.as_deref().map(|i| format!(" named {i}")).unwrap_or_default())]
    NoDevice(Option<String>),
    /// NetworkManager answered with an error or could not be reached.
    #[error("NetworkManager: {0}")]
    Dbus(String),
    /// The hook failed.
    #[error("wifi hook: {0}")]
    Hook(String),
    /// Took too long.
    #[error("the network backend did not answer within {0:?}")]
    Timeout(Duration),
}

/// A network the backend joined, and what it takes to undo that.
#[derive(Debug)]
pub struct Joined {
    /// The speaker's address on it.
    pub address: Option<String>,
    /// What a rollback must restore.
    pub undo: Undo,
}

/// What a rollback restores; each backend reads only its own variant.
#[derive(Debug, Clone)]
pub enum Undo {
    /// NetworkManager: delete `new_connection`, reactivate `previous` on `device`.
    NetworkManager {
        /// The Wi-Fi device's object path.
        device: String,
        /// The profile this join added.
        new_connection: String,
        /// The connection that was active before, if any.
        previous: Option<String>,
    },
    /// The hook is called with `rollback`.
    Hook,
    /// Nothing to undo.
    Nothing,
}

/// A way to reach the radio. Implementations hold no passphrase after `join` returns.
pub trait NetworkBackend: Send + Sync + fmt::Debug {
    /// `networkmanager`, `hook` or `none`.
    fn name(&self) -> &'static str;
    /// True when it can scan and join: every backend but `none`.
    fn can_provision(&self) -> bool {
        true
    }
    /// The current link (best effort: unknown fields are `None`).
    fn current(&self) -> BoxFuture<'_, CurrentLink>;
    /// Scans; strongest first.
    fn scan(&self) -> BoxFuture<'_, Result<Vec<WifiNetwork>, BackendError>>;
    /// Joins `req`, sending progress; on failure the previous network is active again.
    fn join<'a>(
        &'a self,
        req: &'a ConnectWifi,
        progress: &'a ProgressTx,
    ) -> BoxFuture<'a, Result<Joined, WifiFailure>>;
    /// Undoes a successful join whose network turned out useless (no internet).
    fn rollback<'a>(&'a self, joined: &'a Joined) -> BoxFuture<'a, Result<(), BackendError>>;
}

/// `network_backend = "none"`: status only.
#[derive(Debug, Default)]
pub struct NoBackend;

impl NetworkBackend for NoBackend {
    fn name(&self) -> &'static str {
        "none"
    }
    fn can_provision(&self) -> bool {
        false
    }
    fn current(&self) -> BoxFuture<'_, CurrentLink> {
        Box::pin(async { CurrentLink::default() })
    }
    fn scan(&self) -> BoxFuture<'_, Result<Vec<WifiNetwork>, BackendError>> {
        Box::pin(async { Err(BackendError::NotSupported) })
    }
    fn join<'a>(
        &'a self,
        _req: &'a ConnectWifi,
        _progress: &'a ProgressTx,
    ) -> BoxFuture<'a, Result<Joined, WifiFailure>> {
        Box::pin(async { Err(WifiFailure::NotSupported) })
    }
    fn rollback<'a>(&'a self, _joined: &'a Joined) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Each step of the connectivity check (DNS, TCP, HTTP(S)) gets this long; the whole check
/// twice that.
pub const CHECK_STEP_TIMEOUT: Duration = Duration::from_secs(3);

/// The backend, the connectivity check, and the rule of one join at a time.
#[derive(Debug, Clone)]
pub struct Network {
    backend: Arc<dyn NetworkBackend>,
    checker: ConnectivityChecker,
    busy: Arc<Mutex<()>>,
    /// The outcome of the last connectivity check: [`CHECK_UNKNOWN`], [`CHECK_ONLINE`] or
    /// [`CHECK_OFFLINE`]. Read by the BLE info characteristic (`net=1`), so a companion can
    /// offer the Wi-Fi step before anything else; written by every check.
    last_check: Arc<AtomicU8>,
}

const CHECK_UNKNOWN: u8 = 0;
const CHECK_ONLINE: u8 = 1;
const CHECK_OFFLINE: u8 = 2;

impl Network {
    /// A network over `backend`, checked with `checker`.
    pub fn new(backend: Arc<dyn NetworkBackend>, checker: ConnectivityChecker) -> Self {
        Self {
            backend,
            checker,
            busy: Arc::new(Mutex::new(())),
            last_check: Arc::new(AtomicU8::new(CHECK_UNKNOWN)),
        }
    }

    /// True when the last connectivity check failed (none run yet: false). Advertised as
    /// `net=1` ([`shared_protocol::discovery::TXT_NETWORK`]).
    pub fn needs_network(&self) -> bool {
        self.last_check.load(Ordering::Relaxed) == CHECK_OFFLINE
    }

    fn remember(&self, online: bool) {
        let v = if online { CHECK_ONLINE } else { CHECK_OFFLINE };
        self.last_check.store(v, Ordering::Relaxed);
    }

    /// Runs the connectivity check once and remembers it (the agent does so at start when it
    /// can join networks, so the advertisement says `net=1` before any companion asks).
    pub async fn check_now(&self) -> bool {
        let ok = self.checker.run().await.ok;
        self.remember(ok);
        ok
    }

    /// The backend `cfg` names, checking the LWA/AVS hosts `lwa` talks to.
    pub fn from_config(
        cfg: &crate::config::NetworkConfig,
        lwa: crate::lwa_client::LwaClient,
    ) -> Self {
        use crate::config::NetworkBackendKind as K;
        let backend: Arc<dyn NetworkBackend> = match &cfg.backend {
            K::None => Arc::new(NoBackend),
            K::Hook(path) => Arc::new(hook::HookBackend::new(
                path.clone(),
                hook::HookTimeouts::default(),
            )),
            #[cfg(all(target_os = "linux", feature = "networkmanager"))]
            K::NetworkManager => Arc::new(nm::NmBackend::new(
                cfg.interface.clone(),
                nm::NmTimeouts::default(),
            )),
            #[cfg(not(all(target_os = "linux", feature = "networkmanager")))]
            K::NetworkManager => {
                tracing::warn!("network_backend = networkmanager, but this build has no NetworkManager support: status only");
                Arc::new(NoBackend)
            }
        };
        Self::new(backend, ConnectivityChecker::new(lwa, CHECK_STEP_TIMEOUT))
    }

    /// The backend's name.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// True when the backend can scan and join.
    pub fn can_provision(&self) -> bool {
        self.backend.can_provision()
    }

    /// The current link and a fresh connectivity check.
    pub async fn status(&self) -> NetworkStatus {
        let link = self.backend.current().await;
        let check = self.checker.run().await;
        self.remember(check.ok);
        NetworkStatus {
            online: check.ok,
            interface: link.interface,
            ssid: link.ssid,
            address: link.address,
            check: Some(check),
            can_provision: self.backend.can_provision(),
        }
    }

    /// Scans for Wi-Fi networks: strongest first, at most `MAX_SCAN_RESULTS`.
    pub async fn scan(&self) -> Result<Vec<WifiNetwork>, BackendError> {
        let mut networks = self.backend.scan().await?;
        networks.sort_by_key(|n| std::cmp::Reverse(n.signal));
        networks.truncate(shared_protocol::message::wifi::MAX_SCAN_RESULTS);
        Ok(networks)
    }

    /// Joins `req`, then checks the internet; a join that fails either way is rolled back, so
    /// the speaker stays on the network it was on. Busy if another join runs.
    pub async fn connect(&self, req: ConnectWifi, progress: &ProgressTx) -> WifiResult {
        let ssid = req.ssid.clone();
        let failed = |reason: WifiFailure| WifiResult::Failed {
            message: reason.describe(&ssid),
            ssid: ssid.clone(),
            reason,
        };
        let Ok(_one) = self.busy.try_lock() else {
            return failed(WifiFailure::Busy);
        };
        tracing::info!(ssid = %req.ssid, hidden = req.hidden, backend = self.backend.name(), "joining a Wi-Fi network");
        let joined = self.backend.join(&req, progress).await;
        // The passphrase is not needed any more: drop (zeroize) it now.
        drop(req);
        let joined = match joined {
            Ok(j) => j,
            Err(reason) => {
                tracing::warn!(%ssid, ?reason, "Wi-Fi join failed; previous network kept");
                return failed(reason);
            }
        };
        let _ = progress.send(WifiStage::CheckingInternet);
        let check = self.checker.run().await;
        // After a failed join the backend rolls back to the previous network, whose state the
        // last check before the join still describes: only a success is remembered here.
        if check.ok {
            self.remember(true);
            tracing::info!(%ssid, "Wi-Fi joined; LWA and AVS reachable");
            return WifiResult::Connected {
                ssid: ssid.clone(),
                address: joined.address,
            };
        }
        let reason = match check.failure {
            Some(ConnectivityFailure::CaptivePortal) => WifiFailure::CaptivePortal,
            _ => WifiFailure::NoInternet,
        };
        tracing::warn!(%ssid, failure = ?check.failure, "joined, but LWA is unreachable: rolling back");
        if let Err(e) = self.backend.rollback(&joined).await {
            tracing::error!(error = %e, "rollback to the previous network failed");
        }
        failed(reason)
    }
}
