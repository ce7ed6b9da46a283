//! [`ConnectFailure`]: why one transport could not reach a speaker, as a kind a command can match
//! on (refused or unreachable, no answer in time, no Bluetooth), with the source kept.

use std::time::Duration;

use crate::ble::BleError;
use crate::discovery::TransportKind;

/// Why connecting over one transport failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// The operating system refused (connection refused, network unreachable, …).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Nothing answered in time.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// Bluetooth could not be used or the GATT connection failed.
    #[error(transparent)]
    Ble(#[from] BleError),
    /// No registered connector handles this kind of endpoint.
    #[error("this companion cannot connect over {0}")]
    NoConnector(TransportKind),
}
