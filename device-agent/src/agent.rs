//! The agent, the composition root: builds the [`Core`] from the config, hands it to every
//! listener (TCP link, BLE, local API, mDNS advertiser, hooks) and takes them down in order.
//!
//! Every task gets a receiver of one shutdown channel (as in mini-redis): [`Agent::shutdown`]
//! flips it, waits for each task to finish, lets mDNS say goodbye and stops the refresher.
//! Nothing else lives here; the state the listeners share is the core's.
//!
//! [`Agent::start`] is what the daemon binary runs and what tests and the demo embed: it returns
//! once everything listens, with the link address and socket path to connect to.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shared_protocol::ids::DeviceId;
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::setup_code::SetupCode;
use tokio::io::AsyncBufReadExt as _;
use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::auth_delegate::{AuthDelegate, StartReport};
use crate::ble::BleStatus;
use crate::cbl::CblPrompt;
use crate::config::AgentConfig;
use crate::core::{CblRunError, CblRunner, Core, StatusReport};
use crate::link::{self, LinkConfig};
use crate::local_api;
use crate::lwa_client::LwaClient;
use crate::mdns::Advertiser;
use crate::network::Network;
use crate::pairing::Pairing;
use crate::provision;
use crate::store::TokenStore;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// HTTP client.
    #[error(transparent)]
    Client(#[from] crate::lwa_client::ClientBuildError),
    /// The token store could not be opened or read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Another agent on the state directory, or the directory is not writable.
    #[error(transparent)]
    StateLock(#[from] crate::state_lock::StateLockError),
    /// The pairing state (attempt counter, lockout) could not be loaded.
    #[error(transparent)]
    Pairing(#[from] crate::pairing::PairingLoadError),
    /// The setup code is unusable or could not be stored.
    #[error(transparent)]
    SetupCode(#[from] provision::ProvisionError),
    /// The link's TCP listener could not bind.
    #[error("cannot listen for the link on {addr}: {source}; fix: choose another link_bind")]
    LinkBind {
        /// The address tried (after the IPv4 fallback, if any).
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// The local API socket could not be created.
    #[error("cannot create the local API socket {path}: {source}; fix: check socket_path and its directory's permissions")]
    Socket {
        /// The socket path from the config.
        path: PathBuf,
        /// The create, bind or chmod error.
        source: std::io::Error,
    },
    /// mDNS.
    #[error(transparent)]
    Mdns(#[from] crate::mdns::MdnsError),
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    core: Arc<Core>,
    socket_path: PathBuf,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    mdns_task: Option<JoinHandle<Option<Advertiser>>>,
    first_start_code: Option<SetupCode>,
    start_report: StartReport,
    link_limits: LinkConfig,
    ble_status: BleStatus,
    /// Held for the agent's lifetime: one agent per state directory.
    _state_lock: crate::state_lock::StateLock,
}

impl Agent {
    /// Starts everything; returns once the link and the socket listen.
    pub async fn start(cfg: AgentConfig) -> Result<Self, AgentError> {
        // First, before any file in the state directory is read or written.
        let state_lock = crate::state_lock::StateLock::acquire(&cfg.state_dir)?;
        let provisioned = provision::provision(cfg.setup_code.as_deref(), &cfg.setup_code_file)?;
        let (delegate, start_report, pairing) = load_account_and_window(&cfg)?;
        let (listener, link_addr) = listen_link(cfg.link.bind).await?;
        let core = Arc::new(assemble_core(
            &cfg,
            provisioned.code.clone(),
            pairing,
            delegate,
            link_addr,
        ));
        // Bound before any task runs: a socket error leaves nothing behind.
        let socket = local_api::bind(&cfg.socket_path).map_err(|source| AgentError::Socket {
            path: cfg.socket_path.clone(),
            source,
        })?;
        let (shutdown, _) = watch::channel(false);
        let mut tasks = spawn_listeners(&cfg, &core, listener, socket, &shutdown);
        let mdns_task = start_mdns(&cfg, &core, &shutdown)?;
        let ble_status = start_ble(&cfg, &core, &shutdown, &mut tasks).await;
        tracing::info!(
            device_id = %cfg.device_id,
            link = %link_addr,
            socket = %cfg.socket_path.display(),
            paired = core.delegate.is_paired(),
            "agent started"
        );
        Ok(Self {
            core,
            link_limits: cfg.link.clone(),
            socket_path: cfg.socket_path,
            shutdown,
            tasks,
            mdns_task,
            first_start_code: provisioned.generated.then_some(provisioned.code),
            start_report,
            ble_status,
            _state_lock: state_lock,
        })
    }

    /// The agent's core (identity, window, delegate), e.g. for the BLE info value.
    pub fn core(&self) -> Arc<Core> {
        self.core.clone()
    }

    /// The same as [`Agent::core`] (the name from before the core had its own module).
    pub fn link_context(&self) -> Arc<Core> {
        self.core()
    }

    /// Where BLE pairing stands (off, not built, no adapter, or running).
    pub fn ble_status(&self) -> &BleStatus {
        &self.ble_status
    }

    /// Serves one companion over a BLE GATT link with this agent's link handler, limits and
    /// shutdown (the BlueZ peripheral does this per connection; tests drive it with the
    /// in-process GATT model).
    pub fn serve_gatt<L: shared_protocol::gatt::GattLink + 'static>(
        &self,
        link: L,
        peer: String,
    ) -> JoinHandle<()> {
        crate::ble::spawn_session(
            link,
            peer,
            self.core.clone(),
            self.link_limits.clone(),
            self.shutdown.subscribe(),
        )
    }

    /// The id the speaker goes by on the link, in mDNS and in BLE.
    pub fn device_id(&self) -> &DeviceId {
        &self.core.device_id
    }

    /// Where the link listens.
    pub fn link_addr(&self) -> SocketAddr {
        self.core.link_addr
    }

    /// The local API socket.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// The auth delegate (token access for an in-process AVS client).
    pub fn delegate(&self) -> &AuthDelegate {
        &self.core.delegate
    }

    /// The pairing window.
    pub fn pairing(&self) -> &Pairing {
        &self.core.pairing
    }

    /// Status as the local API reports it.
    pub fn status_report(&self) -> StatusReport {
        self.core.status_report()
    }

    /// What loading the token store found.
    pub fn start_report(&self) -> &StartReport {
        &self.start_report
    }

    /// Runs code-based linking in-process.
    pub async fn run_cbl(&self, on_prompt: impl FnOnce(&CblPrompt)) -> Result<(), CblRunError> {
        self.core.run_cbl(on_prompt).await
    }

    /// The code generated at this start, once (to show it to the owner).
    pub fn take_first_start_code(&mut self) -> Option<SetupCode> {
        self.first_start_code.take()
    }

    /// `AVS_AGENT_READY device_id=… link=IP:PORT socket=PATH`, for scripts and tests.
    pub fn ready_line(&self) -> String {
        format!(
            "AVS_AGENT_READY device_id={} link={} socket={}",
            self.device_id(),
            self.link_addr(),
            self.socket_path.display()
        )
    }

    /// Graceful stop: listeners close, mDNS says goodbye, the refresher stops. Stored tokens
    /// are always on disk already (every write is synchronous and atomic).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(t) = self.mdns_task {
            if let Ok(Some(adv)) = t.await {
                adv.shutdown().await;
            }
        }
        self.core.delegate.shutdown().await;
        let _ = std::fs::remove_file(&self.socket_path);
        tracing::info!("agent stopped");
    }
}

/// Opens the token store and starts the refresher, then loads the pairing window; an unpaired
/// speaker opens its window at boot (the store is read first: a paired one does not).
fn load_account_and_window(
    cfg: &AgentConfig,
) -> Result<(AuthDelegate, StartReport, Pairing), AgentError> {
    let lwa = LwaClient::new(cfg.lwa.endpoints.clone(), cfg.lwa.ca_file.as_deref())?;
    let store = TokenStore::open(&cfg.state_dir)?;
    let (delegate, start_report) = AuthDelegate::start(lwa, store, cfg.auth.clone())?;
    let pairing = Pairing::load(&cfg.state_dir, cfg.pairing.clone())?;
    if !delegate.is_paired() {
        match pairing.open_at_boot() {
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "unpaired, but the pairing window stays closed")
            }
        }
    }
    Ok((delegate, start_report, pairing))
}

/// The link listener and the address it got (the port, when `bind` asked for port 0).
async fn listen_link(bind: SocketAddr) -> Result<(TcpListener, SocketAddr), AgentError> {
    let listener = bind_link(bind).await?;
    let addr = listener
        .local_addr()
        .map_err(|source| AgentError::LinkBind { addr: bind, source })?;
    Ok((listener, addr))
}

/// The state every listener shares, from the config and what was loaded.
fn assemble_core(
    cfg: &AgentConfig,
    setup_code: SetupCode,
    pairing: Pairing,
    delegate: AuthDelegate,
    link_addr: SocketAddr,
) -> Core {
    Core {
        device_id: cfg.device_id.clone(),
        friendly_name: cfg.friendly_name.clone(),
        product_id: cfg.product_id.clone(),
        dsn: cfg.dsn.clone(),
        setup_code,
        pairing,
        network: Network::from_config(&cfg.network, delegate.lwa().clone()),
        delegate,
        exchange_lock: Mutex::new(()),
        links: Default::default(),
        link_addr,
        cbl: CblRunner::new(cfg.client_id.clone(), cfg.cbl.clone(), cfg.cbl_hook.clone()),
    }
}

/// The tasks that stop with the shutdown channel: the TCP link, the local API, the reopening
/// after an unlink, the connectivity check at start and the button hook.
fn spawn_listeners(
    cfg: &AgentConfig,
    core: &Arc<Core>,
    listener: TcpListener,
    socket: tokio::net::UnixListener,
    shutdown: &watch::Sender<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(link::serve(
            listener,
            core.clone(),
            cfg.link.clone(),
            shutdown.subscribe(),
        )),
        tokio::spawn(local_api::serve_with(
            socket,
            cfg.socket_path.clone(),
            core.clone(),
            local_api::Policy::new(&cfg.api_group),
            shutdown.subscribe(),
        )),
        tokio::spawn(reopen_on_unlink(core.clone(), shutdown.subscribe())),
    ];
    if core.network.can_provision() {
        tasks.push(tokio::spawn(check_network_at_start(
            core.clone(),
            shutdown.subscribe(),
        )));
    }
    if let Some(cmd) = cfg.button_hook.clone() {
        tasks.push(tokio::spawn(button_hook(
            cmd,
            core.pairing.clone(),
            shutdown.subscribe(),
        )));
    }
    tasks
}

/// Remembers whether the speaker is online, so the BLE info says `net=1` (needs a network)
/// before a companion connects. Bounded by the check's own deadlines; a shutdown does not wait
/// for it.
async fn check_network_at_start(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    tokio::select! {
        online = core.network.check_now() => {
            tracing::info!(online, "connectivity check at start");
        }
        _ = stop.changed() => {}
    }
}

/// The mDNS advertiser and the task keeping its record current, when mDNS is on.
fn start_mdns(
    cfg: &AgentConfig,
    core: &Arc<Core>,
    shutdown: &watch::Sender<bool>,
) -> Result<Option<JoinHandle<Option<Advertiser>>>, AgentError> {
    if !cfg.mdns.enabled {
        return Ok(None);
    }
    let adv = Advertiser::start(&core.summary(), core.link_addr.port(), &cfg.mdns.interfaces)?;
    Ok(Some(tokio::spawn(advertise(
        adv,
        core.clone(),
        shutdown.subscribe(),
    ))))
}

/// Starts BLE pairing when it is on; its task (if any) joins `tasks`.
async fn start_ble(
    cfg: &AgentConfig,
    core: &Arc<Core>,
    shutdown: &watch::Sender<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> BleStatus {
    if !cfg.ble.enabled {
        return BleStatus::Off;
    }
    let (status, task) = crate::ble::start(
        cfg.ble.adapter.as_deref(),
        core.clone(),
        cfg.link.clone(),
        shutdown.subscribe(),
    )
    .await;
    tasks.extend(task);
    status
}

/// Binds the link listener; `[::]` falls back to `0.0.0.0` on hosts without IPv6.
async fn bind_link(addr: SocketAddr) -> Result<TcpListener, AgentError> {
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            tracing::info!(error = %e, "IPv6 unavailable; listening on IPv4 only");
            TcpListener::bind(v4)
                .await
                .map_err(|source| AgentError::LinkBind { addr: v4, source })
        }
        Err(source) => Err(AgentError::LinkBind { addr, source }),
    }
}

/// `invalid_grant`: the user unlinked the speaker; let them pair again.
async fn reopen_on_unlink(ctx: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let mut rx = ctx.delegate.subscribe();
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let s = *rx.borrow_and_update();
        if s.state == AuthState::UnrecoverableError && s.error == AuthError::AuthorizationExpired {
            match ctx.pairing.open_after_unlink() {
                Ok(true) => tracing::info!("the speaker was unlinked; pairing window reopened"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the speaker was unlinked; pairing window stays closed")
                }
            }
        }
    }
}

/// Keeps the mDNS TXT record in step with pairing and auth state.
async fn advertise(
    mut adv: Advertiser,
    ctx: Arc<Core>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Advertiser> {
    let mut auth = ctx.delegate.subscribe();
    let mut window = ctx.pairing.subscribe();
    loop {
        let closes_at = ctx.pairing.open_until();
        tokio::select! {
            _ = auth.changed() => {}
            _ = window.changed() => {}
            _ = async {
                match closes_at {
                    Some(at) => tokio::time::sleep_until(at + std::time::Duration::from_millis(10)).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = shutdown.changed() => return Some(adv),
        }
        if let Err(e) = adv.update(&ctx.summary()) {
            tracing::warn!(error = %e, "could not update the mDNS record");
        }
    }
}

/// Every line the hook prints is a press of the pairing button.
async fn button_hook(cmd: String, pairing: Pairing, mut shutdown: watch::Receiver<bool>) {
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "button_hook could not be started");
            return;
        }
    };
    let Some(stdout) = child.stdout.take() else {
        return;
    };
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(_)) => match pairing.press_button() {
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pairing button pressed"),
                },
                Ok(None) | Err(_) => {
                    tracing::warn!("button_hook exited; the pairing button no longer works");
                    return;
                }
            },
            _ = shutdown.changed() => {
                let _ = child.kill().await;
                return;
            }
        }
    }
}
