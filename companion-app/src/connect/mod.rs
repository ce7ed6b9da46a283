//! Connecting to a speaker: one way for every command.
//!
//! Discovery answers "which speakers are there"; this module answers "give me a link to that
//! one". Each transport is a [`Connector`] ([`tcp`], [`ble`]) registered in a [`Connectors`] set,
//! the way discovery sources are added to a [`Discovery`]; each also starts the discovery source
//! that finds speakers on it ([`Connector::discover`]: mDNS for TCP, a scan for BLE), so
//! [`Connectors::discovery`] is the list of every speaker some registered transport can reach.
//!
//! [`resolve`] takes a [`Target`] (an address, a name to look for, a device picked from a list),
//! finds the speaker ([`find`]) and opens a [`Link`] over the first of its transports that
//! answers, in registration order (TCP, then BLE). `pair`, `status`, `reset`, the desktop app and
//! every later command connect through it, so a speaker reachable only over Bluetooth works for
//! all of them. A new transport is one new file: a `Connector`, added in
//! [`Connectors::standard`].

pub mod ble;
mod error;
mod select;
pub mod tcp;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared_protocol::discovery::PairingState;
use shared_protocol::ids::DeviceId;
use shared_protocol::message::{Hello, PairingWindow};

use crate::ble::{BleCentral, BoxFuture};
use crate::discovery::{
    Device, Discovery, DiscoveryError, DiscoverySource, Endpoint, MdnsOptions, SourceSink,
    TransportKind,
};
use crate::error::PairError;
use crate::link::{LinkClient, LinkError, LinkTimeouts};

pub use ble::BleConnector;
pub use error::ConnectFailure;
pub use select::{choose_device, select, Wanted};
pub use tcp::TcpConnector;
pub use transport::BoxedTransport;

/// A link with Hellos exchanged, over whichever transport reached the speaker.
pub type Link = LinkClient<BoxedTransport>;

/// Where a speaker was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// Over which transport.
    pub transport: TransportKind,
    /// `IP:PORT`, or `ble <peripheral>`.
    pub address: String,
}

impl std::fmt::Display for Reached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.address)
    }
}

/// A connector's answer: the frame stream and where it reached the speaker.
pub type Connecting<'a> = BoxFuture<'a, Result<(BoxedTransport, Reached), LinkError>>;

/// A connector's discovery source, if it has one here.
pub type Discovering<'a> = BoxFuture<'a, Result<Option<Box<dyn DiscoverySource>>, DiscoveryError>>;

/// One transport's way of opening a frame stream to a speaker.
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// The endpoints it handles.
    fn kind(&self) -> TransportKind;

    /// Opens a frame stream to `endpoint` (of this connector's kind), every wait bounded by
    /// `timeouts`. Failures are [`LinkError::Connect`] or [`LinkError::NoAddress`].
    fn connect<'a>(&'a self, endpoint: &'a Endpoint, timeouts: &'a LinkTimeouts) -> Connecting<'a>;

    /// Starts this transport's discovery source reporting into `sink`, if it has one (TCP:
    /// mDNS with `mdns`). A transport that cannot run here (no Bluetooth adapter) answers
    /// `Ok(None)` after logging why; an error is a discovery that should run and cannot.
    fn discover<'a>(&'a self, sink: SourceSink, mdns: &'a MdnsOptions) -> Discovering<'a>;
}

/// The error of a connector handed an endpoint of another transport (a bug in the caller).
fn wrong_endpoint(endpoint: &Endpoint) -> LinkError {
    LinkError::Connect {
        addrs: endpoint.to_string(),
        reason: ConnectFailure::NoConnector(endpoint.kind()),
    }
}

/// The transports this companion connects over, in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct Connectors {
    list: Vec<Arc<dyn Connector>>,
}

impl Connectors {
    /// None at all (add them with [`Connectors::add`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Every transport this build has: TCP (found by mDNS), then Bluetooth LE over `central`
    /// (`None`: the computer's own adapter, opened when first needed). Register a new
    /// transport here.
    pub fn standard(central: Option<Arc<dyn BleCentral>>) -> Self {
        Self::standard_with(true, central)
    }

    /// [`Connectors::standard`], with mDNS on or off (off: TCP speakers are reached by address
    /// only, as in the desktop app with `AVS_COMPANION_MDNS=off`).
    pub fn standard_with(mdns: bool, central: Option<Arc<dyn BleCentral>>) -> Self {
        let mut c = Self::new();
        c.add(if mdns {
            TcpConnector::new()
        } else {
            TcpConnector::without_mdns()
        });
        c.add(BleConnector::new(central));
        c
    }

    /// Adds a transport, tried after those already registered.
    pub fn add(&mut self, connector: impl Connector + 'static) -> &mut Self {
        self.list.push(Arc::new(connector));
        self
    }

    /// The registered transports, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Connector>> {
        self.list.iter()
    }

    /// True when some registered transport handles one of `device`'s endpoints.
    pub fn reaches(&self, device: &Device) -> bool {
        device
            .endpoints
            .iter()
            .any(|e| self.list.iter().any(|c| c.kind() == e.kind()))
    }

    /// Starts every transport's discovery source, reporting into `sink`.
    pub async fn discover(
        &self,
        sink: &SourceSink,
        mdns: &MdnsOptions,
    ) -> Result<Vec<Box<dyn DiscoverySource>>, DiscoveryError> {
        let mut sources = Vec::new();
        for c in &self.list {
            sources.extend(c.discover(sink.clone(), mdns).await?);
        }
        Ok(sources)
    }

    /// One list of the speakers every transport finds (mDNS with `mdns`, Bluetooth, …).
    pub async fn discovery(&self, mdns: MdnsOptions) -> Result<Discovery, DiscoveryError> {
        let mut d = Discovery::new();
        for source in self.discover(&d.sink(), &mdns).await? {
            d.add_source(source);
        }
        Ok(d)
    }

    /// Opens a link to the first of `endpoints` that answers, transports in registration order,
    /// and exchanges Hellos. A transport that cannot connect hands over to the next; an answer
    /// that refuses (versions, a closed window) is final.
    pub async fn open(
        &self,
        endpoints: &[Endpoint],
        timeouts: LinkTimeouts,
    ) -> Result<(Link, Reached), LinkError> {
        let mut last = None;
        for connector in &self.list {
            for endpoint in endpoints.iter().filter(|e| e.kind() == connector.kind()) {
                match connector.connect(endpoint, &timeouts).await {
                    Ok((transport, reached)) => {
                        let client = LinkClient::start(transport, timeouts).await?;
                        return Ok((client, reached));
                    }
                    Err(e) => {
                        tracing::info!(%endpoint, error = %e, "cannot connect; trying the next way");
                        last = Some(e);
                    }
                }
            }
        }
        if let (None, Some(endpoint)) = (&last, endpoints.first()) {
            return Err(wrong_endpoint(endpoint));
        }
        Err(last.unwrap_or(LinkError::NoAddress))
    }
}

/// Where the speaker is.
#[derive(Debug, Clone)]
pub enum Target {
    /// A known address (`--connect`): no discovery.
    Address(Vec<SocketAddr>),
    /// Look for it (mDNS, and every transport's own discovery).
    Discover {
        /// mDNS settings.
        options: MdnsOptions,
        /// Id, id prefix or name; `None` = the only speaker that fits (see [`Wanted`]).
        device: Option<String>,
        /// How long to look.
        timeout: Duration,
    },
    /// Already discovered (a UI list).
    Device(Device),
}

/// A speaker found, not yet connected.
#[derive(Debug)]
pub struct Found {
    /// The device, unless the target was a bare address.
    pub device: Option<Device>,
    /// Its ways in, best first.
    pub endpoints: Vec<Endpoint>,
    /// The discovery that found it (kept so a speaker that stops answering can be re-checked).
    pub discovery: Option<Discovery>,
}

/// Finds the speaker `target` names (discovering it if needed).
pub async fn find(
    target: Target,
    connectors: &Connectors,
    wanted: Wanted,
) -> Result<Found, PairError> {
    match target {
        Target::Address(addrs) => Ok(Found {
            device: None,
            endpoints: vec![address_endpoint(addrs)],
            discovery: None,
        }),
        Target::Device(d) => Ok(Found {
            endpoints: d.endpoints.clone(),
            device: Some(d),
            discovery: None,
        }),
        Target::Discover {
            options,
            device,
            timeout,
        } => {
            let discovery = connectors.discovery(options).await?;
            let found = select(&discovery, device.as_deref(), wanted, timeout, |d| {
                connectors.reaches(d)
            })
            .await?;
            Ok(Found {
                endpoints: found.endpoints.clone(),
                device: Some(found),
                discovery: Some(discovery),
            })
        }
    }
}

/// The endpoint of an address given by hand.
pub fn address_endpoint(addrs: Vec<SocketAddr>) -> Endpoint {
    let instance = match addrs.first() {
        Some(a) => format!("address {a}"),
        None => "address".to_owned(),
    };
    Endpoint::Tcp { addrs, instance }
}

/// A speaker with an open link.
#[derive(Debug)]
pub struct Resolved {
    /// The speaker: as discovered, else as its Hello describes it.
    pub device: Device,
    /// The link, Hellos exchanged, setup code not yet proven.
    pub link: Link,
    /// Where it was reached.
    pub reached: Reached,
    /// The discovery that found it, if one ran.
    pub discovery: Option<Discovery>,
}

/// Finds the speaker `target` names and opens a link to it over the first transport that
/// answers: what every command that talks to one speaker starts with.
pub async fn resolve(
    target: Target,
    connectors: &Connectors,
    wanted: Wanted,
    timeouts: LinkTimeouts,
) -> Result<Resolved, PairError> {
    let found = find(target, connectors, wanted).await?;
    let opened = connectors.open(&found.endpoints, timeouts).await;
    let (link, reached) = match opened {
        Ok(v) => v,
        Err(e) => return Err(found.lost(e.into())),
    };
    let device = found
        .device
        .unwrap_or_else(|| device_from_hello(link.peer_hello(), &found.endpoints, &reached));
    Ok(Resolved {
        device,
        link,
        reached,
        discovery: found.discovery,
    })
}

impl Found {
    /// Passes `err` on; when it says the speaker stopped answering, asks discovery to re-check
    /// it first (so a dead speaker leaves the list in seconds, not minutes).
    pub fn lost(&self, err: PairError) -> PairError {
        if err.speaker_lost() {
            if let (Some(d), Some(dev)) = (&self.discovery, &self.device) {
                let _ = d.verify(&dev.id);
            }
        }
        err
    }
}

/// What a speaker's Hello says about it, for a speaker reached by address.
pub fn device_from_hello(hello: &Hello, endpoints: &[Endpoint], reached: &Reached) -> Device {
    match &hello.agent {
        Some(s) => Device {
            id: s.device_id.clone(),
            name: s.friendly_name.clone(),
            paired: s.paired,
            pairing: match s.window {
                PairingWindow::Open { .. } => PairingState::Open,
                PairingWindow::Closed => PairingState::Closed,
                PairingWindow::LockedOut { .. } => PairingState::LockedOut,
            },
            protocol_major: hello.version.major,
            needs_network: false,
            endpoints: endpoints.to_vec(),
        },
        None => Device {
            id: DeviceId::new("unknown"),
            name: reached.address.clone(),
            paired: false,
            pairing: PairingState::Closed,
            protocol_major: hello.version.major,
            needs_network: false,
            endpoints: endpoints.to_vec(),
        },
    }
}
