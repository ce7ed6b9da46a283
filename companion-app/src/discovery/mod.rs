//! Finding speakers: one list of devices, whichever transport saw them.
//!
//! Each transport is a [`DiscoverySource`] (mDNS, a BLE scan; each started by its connector in
//! [`crate::connect`]) that reports raw [`SourceEvent`]s. [`Discovery`] merges them by device id ([`registry`]) and hands out a
//! stream of [`DeviceEvent`]s (appeared, changed, gone) plus a snapshot, so a CLI list, a desktop
//! UI and the pairing flow all see the same, de-duplicated devices.
//!
//! A device whose link drops may be gone without having said goodbye (a crash or a pulled plug:
//! mDNS would keep it for 120 s, mdns-notes §5c). [`Discovery::verify`] asks every transport that
//! saw it to re-check now.

pub mod mdns;
pub mod oneshot;
pub mod registry;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shared_protocol::discovery::{PairingState, TxtRecord};
use shared_protocol::ids::DeviceId;
use tokio::sync::{broadcast, mpsc};

pub use mdns::{MdnsOptions, MdnsSource};
pub use registry::Registry;

/// Which transport a device was seen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// TCP, found by mDNS.
    Tcp,
    /// Bluetooth LE GATT.
    Ble,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportKind::Tcp => "tcp/mdns",
            TransportKind::Ble => "ble",
        })
    }
}

/// How to reach a device over one transport.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// TCP addresses, best first (IPv4, then routable IPv6, then scoped link-local IPv6).
    Tcp {
        /// Where the link listens.
        addrs: Vec<SocketAddr>,
        /// The mDNS instance (`avs-<id>._avs-pair._tcp.local.`).
        instance: String,
    },
    /// A BLE peripheral.
    Ble {
        /// The platform's peripheral id (a MAC address on Linux).
        peripheral: String,
    },
}

impl Endpoint {
    /// The transport.
    pub fn kind(&self) -> TransportKind {
        match self {
            Endpoint::Tcp { .. } => TransportKind::Tcp,
            Endpoint::Ble { .. } => TransportKind::Ble,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp { addrs, .. } => match addrs.first() {
                Some(a) => write!(f, "{a}"),
                None => f.write_str("(no address)"),
            },
            Endpoint::Ble { peripheral } => write!(f, "ble {peripheral}"),
        }
    }
}

/// One transport's report of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// Unique per transport (the mDNS instance full name, a BLE peripheral id).
    pub source_key: String,
    /// The device's id (TXT `id`).
    pub device_id: DeviceId,
    /// Its user-visible name.
    pub friendly_name: String,
    /// Holds a refresh token.
    pub paired: bool,
    /// Pairing window as advertised.
    pub pairing: PairingState,
    /// Link protocol major.
    pub protocol_major: u16,
    /// The speaker's last connectivity check failed (BLE info `net=1`): offer the Wi-Fi
    /// step first. False when not advertised (mDNS, older speakers).
    pub needs_network: bool,
    /// How to reach it.
    pub endpoint: Endpoint,
}

impl Sighting {
    /// The sighting a speaker's record describes (the mDNS TXT record or the BLE information
    /// characteristic: the same keys), seen under `source_key`, reachable at `endpoint`.
    pub fn from_txt(source_key: &str, txt: TxtRecord, endpoint: Endpoint) -> Self {
        Self {
            source_key: source_key.to_owned(),
            device_id: txt.device_id,
            friendly_name: txt.friendly_name,
            paired: txt.paired,
            pairing: txt.pairing,
            protocol_major: txt.protocol_major,
            needs_network: txt.needs_network,
            endpoint,
        }
    }
}

/// What a source reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// Seen (or seen again, perhaps with new data).
    Seen(Sighting),
    /// Gone from this transport (goodbye, expiry, failed verify).
    Lost {
        /// The transport.
        transport: TransportKind,
        /// The source key it was seen under.
        key: String,
    },
}

/// A speaker, merged across transports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Stable id.
    pub id: DeviceId,
    /// User-visible name.
    pub name: String,
    /// Holds a refresh token (as advertised; the link's Hello is authoritative).
    pub paired: bool,
    /// The pairing window (as advertised).
    pub pairing: PairingState,
    /// Link protocol major.
    pub protocol_major: u16,
    /// The speaker's last connectivity check failed (BLE info `net=1`): offer the Wi-Fi
    /// step first. False when not advertised (mDNS, older speakers).
    pub needs_network: bool,
    /// One or more ways to reach it.
    pub endpoints: Vec<Endpoint>,
}

impl Device {
    /// All TCP addresses, best first.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.endpoints
            .iter()
            .filter_map(|e| match e {
                Endpoint::Tcp { addrs, .. } => Some(addrs.clone()),
                Endpoint::Ble { .. } => None,
            })
            .flatten()
            .collect()
    }

    /// True when `query` names this device: its full id, an id prefix of at least 4 characters,
    /// or its name (case-insensitive).
    pub fn matches(&self, query: &str) -> bool {
        let q = query.trim();
        let id = self.id.as_str();
        id.eq_ignore_ascii_case(q)
            || (q.len() >= 4 && id.to_ascii_lowercase().starts_with(&q.to_ascii_lowercase()))
            || self.name.eq_ignore_ascii_case(q)
    }
}

/// A device-level event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// First seen.
    Appeared(Device),
    /// Something about it changed (addresses, pairing state, a second transport).
    Changed(Device),
    /// No transport sees it any more.
    Gone(DeviceId),
}

/// Where sources send their reports.
pub type SourceSink = mpsc::UnboundedSender<SourceEvent>;

/// A discovery transport.
pub trait DiscoverySource: Send + Sync + std::fmt::Debug {
    /// The transport.
    fn kind(&self) -> TransportKind;
    /// Re-checks a device seen under `key` now; if it does not answer, the source reports
    /// [`SourceEvent::Lost`].
    fn verify(&self, key: &str) -> Result<(), DiscoveryError>;
    /// Stops (an mDNS source sends its goodbyes/stops its queries).
    fn shutdown(&self);
}

/// A discovery failure.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The mDNS daemon could not start or refused a command.
    #[error("mDNS: {0}")]
    Mdns(String),
    /// An interface name is unknown.
    #[error("network interface {0:?} does not exist")]
    NoSuchInterface(String),
}

struct Shared {
    registry: Mutex<Registry>,
    events: broadcast::Sender<DeviceEvent>,
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The merged view of all sources. Needs a tokio runtime (it runs one merge task).
pub struct Discovery {
    shared: Arc<Shared>,
    sink: SourceSink,
    sources: Vec<Box<dyn DiscoverySource>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// An empty discovery; add sources with [`Discovery::add_source`].
    pub fn new() -> Self {
        let (sink, mut rx) = mpsc::unbounded_channel::<SourceEvent>();
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            registry: Mutex::new(Registry::new()),
            events,
        });
        let task_shared = shared.clone();
        let task = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let mut reg = task_shared.registry();
                for out in reg.apply(ev) {
                    // No subscribers is fine: the snapshot still updates.
                    let _ = task_shared.events.send(out);
                }
            }
        });
        Self {
            shared,
            sink,
            sources: Vec::new(),
            task,
        }
    }

    /// Starts mDNS discovery only (the common case).
    pub fn mdns(options: MdnsOptions) -> Result<Self, DiscoveryError> {
        let mut d = Self::new();
        let src = MdnsSource::start(options, d.sink())?;
        d.add_source(Box::new(src));
        Ok(d)
    }

    /// Where a new source should send its reports.
    pub fn sink(&self) -> SourceSink {
        self.sink.clone()
    }

    /// Adds a started source (built with [`Discovery::sink`]).
    pub fn add_source(&mut self, source: Box<dyn DiscoverySource>) {
        self.sources.push(source);
    }

    /// The devices known now.
    pub fn devices(&self) -> Vec<Device> {
        self.shared.registry().devices()
    }

    /// A snapshot and the events after it, with nothing lost in between.
    pub fn subscribe(&self) -> (Vec<Device>, broadcast::Receiver<DeviceEvent>) {
        // The merge task sends while holding the registry lock, so taking the lock here orders
        // the snapshot before every event the receiver will see.
        let reg = self.shared.registry();
        let rx = self.shared.events.subscribe();
        (reg.devices(), rx)
    }

    /// Waits until a device satisfies `pred` (checking the current list first).
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&Device) -> bool,
    ) -> Option<Device> {
        let (now, mut rx) = self.subscribe();
        if let Some(d) = now.into_iter().find(|d| pred(d)) {
            return Some(d);
        }
        let search = async {
            loop {
                match rx.recv().await {
                    Ok(DeviceEvent::Appeared(d)) | Ok(DeviceEvent::Changed(d)) if pred(&d) => {
                        return Some(d)
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Some(d) = self.devices().into_iter().find(|d| pred(d)) {
                            return Some(d);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        };
        tokio::time::timeout(timeout, search).await.ok().flatten()
    }

    /// Waits until `id` is gone (e.g. after [`Discovery::verify`]). True if it went.
    pub async fn wait_gone(&self, id: &DeviceId, timeout: Duration) -> bool {
        let (now, mut rx) = self.subscribe();
        if !now.iter().any(|d| &d.id == id) {
            return true;
        }
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(DeviceEvent::Gone(g)) if &g == id => return true,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !self.devices().iter().any(|d| &d.id == id) {
                            return true;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return false,
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// Asks every transport that saw `id` to check it is still there (call when its link drops).
    pub fn verify(&self, id: &DeviceId) -> Result<(), DiscoveryError> {
        let keys = self.shared.registry().keys_of(id);
        for (kind, key) in keys {
            for src in self.sources.iter().filter(|s| s.kind() == kind) {
                src.verify(&key)?;
            }
        }
        Ok(())
    }

    /// Stops every source.
    pub fn shutdown(&mut self) {
        for s in self.sources.drain(..) {
            s.shutdown();
        }
    }
}

impl Default for Discovery {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.shutdown();
        self.task.abort();
    }
}
