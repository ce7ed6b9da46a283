//! Why BLE pairing cannot run, by kind. The agent logs it once after [`super::NO_ADAPTER`] and
//! carries on over Wi-Fi, so each kind says what the owner can do about it (start bluetoothd,
//! name another adapter, unblock the radio); the BlueZ error stays attached as the source.

use std::time::Duration;

/// The BlueZ error behind a [`BleError`]. Builds without BLE never produce one, so there it is
/// a type with no values.
#[cfg(all(feature = "ble", target_os = "linux"))]
pub type BluezCause = bluer::Error;
/// The BlueZ error behind a [`BleError`]. Builds without BLE never produce one, so there it is
/// a type with no values.
#[cfg(not(all(feature = "ble", target_os = "linux")))]
pub type BluezCause = std::convert::Infallible;

/// Why the Bluetooth stack could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BleError {
    /// No system D-Bus, or bluetoothd is not on it.
    #[error("cannot reach BlueZ over the system D-Bus: {0}")]
    NoBus(#[source] BluezCause),
    /// BlueZ answered but has no adapter at all.
    #[error("BlueZ reports no adapter")]
    NoAdapter,
    /// BlueZ could not list its adapters.
    #[error("cannot list Bluetooth adapters: {0}")]
    ListAdapters(#[source] BluezCause),
    /// The configured adapter (`ble_adapter`) is missing or would not answer.
    #[error("adapter {adapter}: {source}")]
    Adapter {
        /// The adapter's name (`hci0`).
        adapter: String,
        /// What BlueZ said.
        source: BluezCause,
    },
    /// The adapter is switched off and refused to power on (rfkill, hardware switch).
    #[error("adapter {adapter} is off and could not be switched on: {source}")]
    PoweredOff {
        /// The adapter's name (`hci0`).
        adapter: String,
        /// What BlueZ said.
        source: BluezCause,
    },
    /// BlueZ did not answer the adapter probe in time.
    #[error("BlueZ did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// BlueZ refused the GATT application.
    #[error("cannot register the GATT service: {0}")]
    RegisterService(#[source] BluezCause),
    /// BlueZ refused the advertisement (too many advertisements, adapter gone).
    #[error("cannot advertise: {0}")]
    Advertise(#[source] BluezCause),
}
