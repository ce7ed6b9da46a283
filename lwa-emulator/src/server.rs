//! Starting, running and stopping an emulator, in-process or from the binary.
//!
//! [`Emulator::start`] goes in an order that matters:
//! 1. [`check`] the config (registry, settings, plain HTTP only on loopback) before anything
//!    else, so a refused config binds no port and writes no file.
//! 2. Bind, and derive the base URL from the bound address ([`base_url`]): port 0 becomes the
//!    real port, and a wildcard address the loopback one, since the URL is what clients on this
//!    machine are given.
//! 3. [`listener`]: plain, or TLS with a CA generated for the bound address and written out
//!    ([`CaFile::write`]). After the bind, so a failed bind leaves no CA file behind.
//! 4. [`serve`] in the background until the shutdown signal; only then is "listening" logged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shared_protocol::lwa::{LwaEndpoints, TokenResponse};
use shared_protocol::secret::RefreshToken;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{EmulatorBuilder, EmulatorConfig, RefreshTokenMode};
use crate::conn::{ConnMeta, EmuListener};
use crate::control::{ControlError, RevokeSummary};
use crate::fault::{Endpoint, Fault};
use crate::record::RecordedRequest;
use crate::registry::{Registry, RegistryError};
use crate::store::Store;
use crate::tls::{self, TlsError};

/// How long [`RunningEmulator::shutdown`] waits for open requests before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// State shared by every handler and the control handle.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    store: Mutex<Store>,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub(crate) base_url: String,
    pub(crate) https: bool,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) log: bool,
    /// [`EmulatorConfig::body_timeout`].
    pub(crate) body_timeout: Duration,
}

/// Without the store: it holds live CBL user codes (and the request record, printed through
/// [`RunningEmulator::requests`] when a test wants it).
impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("base_url", &self.base_url)
            .field("https", &self.https)
            .field("log", &self.log)
            .field("body_timeout", &self.body_timeout)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The store. A panic while holding the lock cannot leave it half-updated in a way that
    /// matters for an emulator, so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Entry point: [`Emulator::builder`] or [`Emulator::start`].
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// A builder with the defaults (loopback, any port, plain HTTP, built-in registry).
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Binds, generates TLS material if asked, and starts serving in the background.
    pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, StartError> {
        check(&config)?;
        let bind_error = |e| StartError::Bind(config.bind, e);
        let tcp = TcpListener::bind(config.bind).await.map_err(bind_error)?;
        let local = tcp.local_addr().map_err(bind_error)?;
        let base_url = base_url(local, config.tls.is_some());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (listener, ca) = listener(tcp, &config, shutdown_rx.clone())?;
        let shared = Arc::new(Shared {
            registry: config.registry,
            store: Mutex::new(Store::new(config.settings)),
            base_url: base_url.clone(),
            https: config.tls.is_some(),
            shutdown: shutdown_rx.clone(),
            log: config.log_requests,
            body_timeout: config.body_timeout,
        });
        let task = serve(listener, shared.clone(), shutdown_rx);
        tracing::info!("lwa-emulator listening on {base_url}");
        Ok(RunningEmulator {
            base_url,
            local,
            ca,
            shared,
            shutdown_tx,
            task: Some(task),
        })
    }
}

/// What is refused before anything is bound: a bad registry, settings that cannot work, plain
/// HTTP off loopback without the explicit allowance.
fn check(config: &EmulatorConfig) -> Result<(), StartError> {
    config.registry.validate()?;
    if config.settings.access_token_lifetime_secs == 0 {
        return Err(StartError::Settings(SettingsError::ZeroAccessTokenLifetime));
    }
    if config.tls.is_none() && !config.bind.ip().is_loopback() && !config.allow_non_loopback_http {
        return Err(StartError::PlainHttpNotLoopback(config.bind));
    }
    Ok(())
}

/// `scheme://host:port` for the bound address, a wildcard host named by its loopback address.
fn base_url(local: SocketAddr, https: bool) -> String {
    let host_ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}", SocketAddr::new(host_ip, local.port()))
}

/// The listener to serve on: `tcp` itself, or TLS over it with a fresh certificate whose names
/// add the bind address (unless a wildcard) to the configured ones, and the CA written out.
fn listener(
    tcp: TcpListener,
    config: &EmulatorConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(EmuListener, Option<CaFile>), StartError> {
    let Some(tls_config) = &config.tls else {
        return Ok((EmuListener::plain(tcp), None));
    };
    let mut sans = tls_config.sans.clone();
    if !config.bind.ip().is_unspecified() {
        sans.push(config.bind.ip().to_string());
    }
    let material = tls::generate(&sans)?;
    let ca = CaFile::write(tls_config.ca_out.as_ref(), &material.ca_pem)?;
    let listener = EmuListener::tls(tcp, material.acceptor, shutdown)
        .map_err(|e| StartError::Bind(config.bind, e))?;
    Ok((listener, Some(ca)))
}

/// Serves `shared`'s routes on `listener` until `shutdown` says stop, letting open requests end.
fn serve(
    listener: EmuListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let app = crate::routes::router(shared).into_make_service_with_connect_info::<ConnMeta>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
    })
}

/// The CA certificate clients should trust, as written.
#[derive(Debug)]
struct CaFile {
    path: PathBuf,
    pem: String,
    /// The directory of a temporary CA file, removed with the emulator.
    _tempdir: Option<tempfile::TempDir>,
}

impl CaFile {
    /// Writes `pem` to `path`, or to a fresh temporary directory when none is given.
    fn write(path: Option<&PathBuf>, pem: &str) -> Result<Self, StartError> {
        let (path, tempdir) = match path {
            Some(path) => (path.clone(), None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("lwa-emulator-ca")
                    .tempdir()
                    .map_err(|e| StartError::CaOut(PathBuf::from("<tempdir>"), e))?;
                (dir.path().join("ca.pem"), Some(dir))
            }
        };
        std::fs::write(&path, pem.as_bytes()).map_err(|e| StartError::CaOut(path.clone(), e))?;
        Ok(Self {
            path,
            pem: pem.to_owned(),
            _tempdir: tempdir,
        })
    }
}

/// A running emulator: its address, its CA (HTTPS), and the control handle. Dropping it stops
/// the server without waiting; [`RunningEmulator::shutdown`] stops it gracefully.
#[derive(Debug)]
pub struct RunningEmulator {
    base_url: String,
    local: SocketAddr,
    ca: Option<CaFile>,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT` or `https://…` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `base_url` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Every endpoint under this emulator, as the agent and companion configure them.
    pub fn endpoints(&self) -> LwaEndpoints {
        // The base URL is built from a socket address, so it always parses; plain HTTP is
        // loopback unless `allow_non_loopback_http` was set, in which case validation fails and
        // callers must build their own endpoints.
        LwaEndpoints::from_base(&self.base_url).unwrap_or_else(|_| {
            let mut e = LwaEndpoints::amazon(Default::default());
            if let Ok(base) = url::Url::parse(&self.base_url) {
                for (slot, path) in [
                    (&mut e.authorize, "/ap/oa"),
                    (&mut e.token, "/auth/o2/token"),
                    (&mut e.codepair, "/auth/O2/create/codepair"),
                    (&mut e.profile, "/user/profile"),
                    (&mut e.avs, "/"),
                ] {
                    if let Ok(u) = base.join(path) {
                        *slot = u;
                    }
                }
            }
            e
        })
    }

    /// HTTPS mode: the CA certificate file clients should trust.
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca.as_ref().map(|c| c.path.as_path())
    }

    /// HTTPS mode: the CA certificate (PEM).
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|c| c.pem.as_str())
    }

    /// The registry in use.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Makes the next `count` requests to `endpoint` fail with `fault`.
    pub fn inject_fault(&self, endpoint: Endpoint, fault: Fault, count: u32) {
        self.shared.lock().faults.push(endpoint, fault, count);
    }

    /// Removes every queued fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// The user (email or user id) unlinks everything: all their refresh and access tokens
    /// stop working (`invalid_grant` on refresh, 403 from AVS).
    pub fn revoke_user_tokens(&self, user: &str) -> Result<RevokeSummary, ControlError> {
        self.shared.revoke_user(user)
    }

    /// Revokes one refresh token; false when it was unknown or already revoked.
    pub fn revoke_refresh_token(&self, token: &RefreshToken) -> bool {
        self.shared
            .lock()
            .revoke_refresh_token(token.expose_secret())
    }

    /// Approves a pending CBL user code as `user` (email or user id), like a user typing it at
    /// the verification page.
    pub fn approve_user_code(&self, user_code: &str, user: &str) -> Result<(), ControlError> {
        self.shared.decide_user_code(user_code, Some(user))
    }

    /// Denies a pending CBL user code.
    pub fn deny_user_code(&self, user_code: &str) -> Result<(), ControlError> {
        self.shared.decide_user_code(user_code, None)
    }

    /// Every request received so far (oldest first, at most 10 000), secrets redacted.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().clear_requests();
    }

    /// `expires_in` for tokens issued from now on (seconds, clamped to ≥ 1).
    pub fn set_access_token_lifetime(&self, secs: u64) {
        self.shared.lock().settings.access_token_lifetime_secs = secs.max(1);
    }

    /// What refresh answers carry as `refresh_token` from now on (the grace period of
    /// [`RefreshTokenMode::Rotate`] stays as configured).
    pub fn set_refresh_token_mode(&self, mode: RefreshTokenMode) {
        self.shared.lock().settings.refresh_token_mode = mode;
    }

    /// Expires every live access token now; returns how many.
    pub fn expire_access_tokens(&self) -> usize {
        self.shared.lock().expire_access_tokens()
    }

    /// Moves the emulator's clock forward (codes, code pairs, tokens and grace periods age).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().advance_clock(by);
    }

    /// Issues tokens to `user` for `client_id` with scope `alexa:all`, as if a login had just
    /// completed. For tests that need a linked state without running a login.
    pub fn mint_tokens(&self, user: &str, client_id: &str) -> Result<TokenResponse, ControlError> {
        self.shared.mint_tokens(user, client_id)
    }

    /// Stops accepting, lets open requests finish (at most 5 s), and waits for the server.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Plain HTTP asked on a non-loopback address without the explicit allowance.
    #[error("refusing plain HTTP on non-loopback address {0}: tokens would cross a network unencrypted; use HTTPS (--https) or allow it explicitly (--allow-non-loopback-http)")]
    PlainHttpNotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    /// Bad registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// TLS set-up failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The CA file could not be written.
    #[error("cannot write the CA certificate to {0}: {1}")]
    CaOut(PathBuf, #[source] std::io::Error),
    /// Bad settings.
    #[error("invalid settings: {0}")]
    Settings(#[source] SettingsError),
}

/// Settings an emulator cannot run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Access tokens would expire as they are issued.
    #[error("access_token_lifetime_secs must be at least 1")]
    ZeroAccessTokenLifetime,
}
