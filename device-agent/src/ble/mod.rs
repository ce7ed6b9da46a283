//! Pairing over Bluetooth LE: the agent as a GATT peripheral.
//!
//! The speaker serves the avs-pair GATT service (`shared_protocol::gatt`: info read, rx write
//! with response, tx indicate) and runs exactly the same connection handler as over TCP
//! ([`crate::link::handle_connection`]) on a [`GattTransport`] per connected companion. A new
//! companion's Hello written into a sealed session ends it and starts the next session on the
//! same link ([`newcomer`]).
//! It advertises the service UUID and `avs-<device id>` only while the pairing window is open
//! ([`advertising::follow_window`]).
//!
//! The Bluetooth stack is BlueZ through `bluer` (D-Bus, with a vendored libdbus), compiled with
//! the `ble` feature (on by default) on Linux. A speaker without Bluetooth (no adapter, no
//! `bluetoothd`, no system D-Bus) logs [`NO_ADAPTER`] once and keeps pairing over Wi-Fi.

pub mod advertising;
#[cfg(all(feature = "ble", target_os = "linux"))]
mod bluez;
mod error;
mod newcomer;

pub use error::{BleError, BluezCause};

use std::sync::Arc;
use std::time::Duration;

use shared_protocol::discovery::TxtRecord;
use shared_protocol::gatt::{GattLink, GattOptions, GattTransport};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::core::Core;
use crate::link::{handle_connection, LinkConfig};
use newcomer::{Seen, Watched};

/// The one line a speaker without Bluetooth prints.
pub const NO_ADAPTER: &str = "no Bluetooth adapter found; BLE pairing disabled";

/// How long looking for the adapter may take before BLE is given up.
pub const ADAPTER_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where BLE pairing stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BleStatus {
    /// Switched off in the configuration.
    Off,
    /// This build has no BLE support (feature `ble` off, or not Linux).
    NotBuilt,
    /// No usable adapter; the reason (no D-Bus, no bluetoothd, no adapter, powered off…).
    Unavailable(BleError),
    /// Serving the GATT service on this adapter.
    Running {
        /// The adapter's name (`hci0`).
        adapter: String,
    },
}

impl std::fmt::Display for BleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BleStatus::Off => f.write_str("BLE pairing off (config ble = false)"),
            BleStatus::NotBuilt => {
                f.write_str("BLE pairing not built into this agent (feature `ble`, Linux only)")
            }
            BleStatus::Unavailable(why) => write!(f, "{NO_ADAPTER} ({why})"),
            BleStatus::Running { adapter } => write!(f, "BLE pairing on adapter {adapter}"),
        }
    }
}

/// The information characteristic's value now: the plain part of the Hello, as the TXT record,
/// plus `net=1` when the last connectivity check failed (the speaker needs a network).
pub fn info_value(ctx: &Core) -> Vec<u8> {
    TxtRecord::for_agent(&ctx.summary())
        .with_needs_network(ctx.network.needs_network())
        .to_ble_info()
        .into_bytes()
}

/// The GATT transport's limits for the link server's: a partial frame may wait as long as the
/// idle timeout allows, capped at the protocol's 10 s default.
pub fn gatt_options(limits: &LinkConfig) -> GattOptions {
    let default = GattOptions::default();
    GattOptions {
        reassembly_timeout: default.reassembly_timeout.min(limits.idle_timeout),
        ..default
    }
}

/// Serves one connected companion over `link` with the link server's connection handler. The
/// link is dropped (and so disconnected) when the session ends, unless a new companion's Hello
/// ended it: then the next session starts with that Hello on the same link ([`newcomer`]).
pub async fn serve_link<L: GattLink>(link: L, peer: &str, ctx: &Core, limits: &LinkConfig) {
    let mut transport = GattTransport::with_options(link, gatt_options(limits));
    let mut seen = Seen::default();
    loop {
        handle_connection(
            Watched::new(&mut transport, &mut seen),
            format!("ble {peer}"),
            ctx,
            limits,
        )
        .await;
        let Some(hello) = std::mem::take(&mut seen).into_new_hello() else {
            return;
        };
        tracing::info!(
            %peer,
            "a new companion's hello arrived in the sealed BLE session: that session ended, a new one starts"
        );
        seen = Seen::starting_with(hello);
    }
}

/// [`serve_link`] as a task that also ends on shutdown.
pub fn spawn_session<L: GattLink + 'static>(
    link: L,
    peer: String,
    ctx: Arc<Core>,
    limits: LinkConfig,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            _ = serve_link(link, &peer, &ctx, &limits) => {}
            _ = shutdown.changed() => {}
        }
    })
}

/// Starts BLE pairing: finds the adapter (bounded by [`ADAPTER_PROBE_TIMEOUT`]), registers the
/// GATT service and follows the pairing window with advertising. Without an adapter it logs
/// [`NO_ADAPTER`] with the reason and returns no task: the agent carries on over Wi-Fi.
pub async fn start(
    adapter: Option<&str>,
    ctx: Arc<Core>,
    limits: LinkConfig,
    shutdown: watch::Receiver<bool>,
) -> (BleStatus, Option<JoinHandle<()>>) {
    #[cfg(all(feature = "ble", target_os = "linux"))]
    let (status, task) = start_stack(adapter, ctx, limits, shutdown).await;
    #[cfg(not(all(feature = "ble", target_os = "linux")))]
    let (status, task) = {
        let _ = (adapter, ctx, limits, shutdown);
        (BleStatus::NotBuilt, None)
    };
    match &status {
        BleStatus::Running { adapter } => {
            tracing::info!(%adapter, "BLE pairing ready (GATT service registered)")
        }
        BleStatus::Unavailable(why) => tracing::warn!("{NO_ADAPTER} ({why})"),
        BleStatus::NotBuilt => tracing::warn!("{}", BleStatus::NotBuilt),
        BleStatus::Off => {}
    }
    (status, task)
}

#[cfg(all(feature = "ble", target_os = "linux"))]
async fn start_stack(
    adapter: Option<&str>,
    ctx: Arc<Core>,
    limits: LinkConfig,
    shutdown: watch::Receiver<bool>,
) -> (BleStatus, Option<JoinHandle<()>>) {
    let opened =
        tokio::time::timeout(ADAPTER_PROBE_TIMEOUT, bluez::Peripheral::open(adapter)).await;
    let peripheral = match opened {
        Ok(Ok(p)) => p,
        Ok(Err(why)) => return (BleStatus::Unavailable(why), None),
        Err(_) => {
            return (
                BleStatus::Unavailable(BleError::Timeout(ADAPTER_PROBE_TIMEOUT)),
                None,
            )
        }
    };
    let name = peripheral.adapter_name().to_owned();
    match peripheral.serve(ctx, limits, shutdown).await {
        Ok(task) => (BleStatus::Running { adapter: name }, Some(task)),
        Err(why) => (BleStatus::Unavailable(why), None),
    }
}
