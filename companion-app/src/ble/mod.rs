//! Bluetooth LE: speakers found and paired over GATT, for networks where mDNS can't reach them
//! (no Wi-Fi credentials yet, multicast blocked).
//!
//! The companion is the BLE central. A [`BleCentral`] does two things:
//!
//! - **discovery**: scan for the avs-pair service UUID, read each speaker's information
//!   characteristic (the TXT record: id, name, paired, pairing window) and report it as a
//!   [`Sighting`](crate::discovery::Sighting) with an [`Endpoint::Ble`], into the *same*
//!   [`Discovery`] as mDNS, so a speaker seen both ways is one device with two transports;
//! - **connect**: open a GATT connection, take the negotiated MTU, subscribe to tx and hand a
//!   [`GattLink`] to the protocol crate's [`shared_protocol::gatt::GattTransport`], on which the
//!   ordinary [`LinkClient`](crate::link::LinkClient) runs the same handshake and session as
//!   over TCP. Commands reach this through the BLE connector ([`crate::connect::ble`]), never
//!   directly.
//!
//! The real central is btleplug ([`btle`], feature `ble`, on by default); tests use the
//! in-process GATT model ([`model`], feature `gatt-model`). A computer without Bluetooth gets
//! one line, [`NO_ADAPTER`], and pairs over Wi-Fi as before.

#[cfg(feature = "ble")]
pub mod btle;
mod link;
#[cfg(feature = "gatt-model")]
pub mod model;
pub mod sighting;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use shared_protocol::gatt::GattLink;
use tokio::sync::OnceCell;

use crate::discovery::{Device, Discovery, DiscoverySource, Endpoint, SourceSink};

pub use link::BoxedLink;

/// The one line a computer without Bluetooth prints.
pub const NO_ADAPTER: &str = "no Bluetooth adapter found; BLE pairing disabled";

/// How long finding the adapter may take before BLE is given up.
pub const ADAPTER_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A boxed future (the central is used as a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why BLE could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BleError {
    /// No adapter, no Bluetooth service, or no system D-Bus.
    #[error("no Bluetooth adapter found; BLE pairing disabled ({0})")]
    NoAdapter(String),
    /// This build has no BLE support.
    #[error("BLE pairing is not built into this companion (feature `ble`)")]
    NotBuilt,
    /// The speaker is not (or no longer) known to the central.
    #[error("the Bluetooth speaker {0} is not in range (scan again)")]
    UnknownPeripheral(String),
    /// Connecting or setting up the GATT connection failed.
    #[error("cannot connect to the Bluetooth speaker {peripheral}: {reason}")]
    Connect {
        /// The peripheral key.
        peripheral: String,
        /// What failed.
        reason: String,
    },
    /// The speaker's GATT table lacks an avs-pair characteristic.
    #[error("the Bluetooth device {peripheral} has no avs-pair {what} characteristic")]
    NotASpeaker {
        /// The peripheral key.
        peripheral: String,
        /// Which characteristic.
        what: &'static str,
    },
    /// Scanning could not start or stopped.
    #[error("Bluetooth scan failed: {0}")]
    Scan(String),
    /// Connecting and setting up the GATT connection took longer than this; the half-made
    /// connection was closed.
    #[error("the Bluetooth connection was not set up within {0:?}")]
    TimedOut(Duration),
}

/// A central's answer to [`BleCentral::connect`]: the link, set up.
pub type LinkSetUp<'a> = BoxFuture<'a, Result<BoxedLink, BleError>>;

/// A BLE central: reports speakers and connects to them. Object-safe, so the pairing flow can
/// hold the real one or a test model alike.
pub trait BleCentral: Send + Sync + std::fmt::Debug {
    /// Starts reporting speakers (as [`crate::discovery::SourceEvent`]s) into `sink`.
    fn discover(
        &self,
        sink: SourceSink,
    ) -> BoxFuture<'_, Result<Box<dyn DiscoverySource>, BleError>>;

    /// Connects to a speaker seen under `peripheral` (an [`Endpoint::Ble`] key): GATT
    /// connection, MTU, service discovery, subscription to tx. Gives up after `within`
    /// ([`BleError::TimedOut`]), closing a connection made half-way: a speaker that stalls in
    /// the middle must not stay connected to the computer (it has one connection to give).
    fn connect(&self, peripheral: &str, within: Duration) -> LinkSetUp<'_>;
}

static SYSTEM: OnceCell<Result<Arc<dyn BleCentral>, BleError>> = OnceCell::const_new();

/// The computer's own Bluetooth central, opened once per process. Without an adapter this is
/// the [`BleError::NoAdapter`] (logged once, as one warning line).
pub async fn system_central() -> Result<Arc<dyn BleCentral>, BleError> {
    SYSTEM
        .get_or_init(|| async {
            let opened = open_system().await;
            if let Err(e) = &opened {
                tracing::warn!("{e}");
            }
            opened
        })
        .await
        .clone()
}

/// Before the process exits: lets the disconnects of links dropped on the way out reach
/// the speaker (bounded), so the next companion starts from a fresh connection.
pub async fn finish_disconnects() {
    #[cfg(feature = "ble")]
    btle::finish_disconnects().await;
}

#[cfg(feature = "ble")]
async fn open_system() -> Result<Arc<dyn BleCentral>, BleError> {
    match tokio::time::timeout(ADAPTER_PROBE_TIMEOUT, btle::BtleCentral::open()).await {
        Ok(Ok(c)) => Ok(Arc::new(c)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BleError::NoAdapter(format!(
            "the Bluetooth service did not answer within {} s",
            ADAPTER_PROBE_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(not(feature = "ble"))]
async fn open_system() -> Result<Arc<dyn BleCentral>, BleError> {
    Err(BleError::NotBuilt)
}

/// Adds BLE discovery to `discovery` (the given central, else the system's). Without Bluetooth
/// the discovery stays as it was (mDNS only) and the reason is returned.
pub async fn attach(
    discovery: &mut Discovery,
    central: Option<Arc<dyn BleCentral>>,
) -> Result<(), BleError> {
    let central = match central {
        Some(c) => c,
        None => system_central().await?,
    };
    let source = central.discover(discovery.sink()).await?;
    discovery.add_source(source);
    Ok(())
}

/// The BLE peripheral key of a device seen over Bluetooth.
pub fn peripheral_of(device: &Device) -> Option<&str> {
    device.endpoints.iter().find_map(|e| match e {
        Endpoint::Ble { peripheral } => Some(peripheral.as_str()),
        Endpoint::Tcp { .. } => None,
    })
}

/// For a [`GattLink`] known at compile time: box it.
pub fn boxed(link: impl GattLink + 'static) -> BoxedLink {
    BoxedLink::new(link)
}
