//! Bluetooth LE: the link to a speaker over its GATT service, through a [`BleCentral`] (btleplug
//! on a real computer, the in-process GATT model in tests). The central also finds speakers, so
//! this connector adds its discovery source to the list: a speaker seen only over Bluetooth is
//! listed, and reached, like any other.
//!
//! Without an adapter the connector stays registered and says so when used (one warning line,
//! [`crate::ble::NO_ADAPTER`]): discovery goes on over the network, and a speaker that is only
//! in Bluetooth range fails with that reason instead of "not found".

use std::sync::Arc;
use std::time::Duration;

use shared_protocol::gatt::GattTransport;

use super::{BoxedTransport, ConnectFailure, Connecting, Connector, Discovering, Reached};
use crate::ble::{self, BleCentral, BleError};
use crate::discovery::{Endpoint, MdnsOptions, SourceSink, TransportKind};
use crate::link::{LinkError, LinkTimeouts};

/// The BLE connector.
#[derive(Debug, Clone, Default)]
pub struct BleConnector {
    /// `None`: the computer's own adapter, opened when first needed.
    central: Option<Arc<dyn BleCentral>>,
}

impl BleConnector {
    /// Over `central`, or the system's adapter when `None`.
    pub fn new(central: Option<Arc<dyn BleCentral>>) -> Self {
        Self { central }
    }

    async fn central(&self) -> Result<Arc<dyn BleCentral>, BleError> {
        match &self.central {
            Some(c) => Ok(c.clone()),
            None => ble::system_central().await,
        }
    }
}

impl Connector for BleConnector {
    fn kind(&self) -> TransportKind {
        TransportKind::Ble
    }

    fn connect<'a>(&'a self, endpoint: &'a Endpoint, timeouts: &'a LinkTimeouts) -> Connecting<'a> {
        Box::pin(async move {
            let Endpoint::Ble { peripheral } = endpoint else {
                return Err(super::wrong_endpoint(endpoint));
            };
            let failed = |reason: ConnectFailure| LinkError::Connect {
                addrs: endpoint.to_string(),
                reason,
            };
            let central = self.central().await.map_err(|e| failed(e.into()))?;
            // Connecting, MTU exchange, service discovery and subscribing take a few round trips.
            let wait = timeouts.connect * 3;
            // The central gives up after `wait` and closes what it opened; the timeout here is
            // only a backstop for a central that does not.
            let backstop = wait + Duration::from_secs(5);
            let link = match tokio::time::timeout(backstop, central.connect(peripheral, wait)).await
            {
                Ok(Ok(link)) => link,
                Ok(Err(BleError::TimedOut(_))) | Err(_) => {
                    return Err(failed(ConnectFailure::TimedOut(wait)))
                }
                Ok(Err(e)) => return Err(failed(e.into())),
            };
            Ok((
                BoxedTransport::new(GattTransport::new(link)),
                Reached {
                    transport: TransportKind::Ble,
                    address: endpoint.to_string(),
                },
            ))
        })
    }

    fn discover<'a>(&'a self, sink: SourceSink, _mdns: &'a MdnsOptions) -> Discovering<'a> {
        Box::pin(async move {
            let started = match self.central().await {
                Ok(central) => central.discover(sink).await,
                Err(e) => Err(e),
            };
            match started {
                Ok(source) => Ok(Some(source)),
                Err(e) => {
                    // Already said once, as a warning, when the adapter was probed.
                    tracing::info!(error = %e, "no Bluetooth discovery");
                    Ok(None)
                }
            }
        })
    }
}
