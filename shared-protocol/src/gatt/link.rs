//! The seam between the GATT transport and a Bluetooth stack: one connection's values, each way.

use std::future::Future;
use std::time::Duration;

use crate::ble::{MAX_ATT_PAYLOAD, MIN_ATT_PAYLOAD};

/// The ATT payload for a negotiated ATT MTU: MTU − 3, at least 20 (the default MTU 23 is the
/// floor every stack supports) and at most 512 (the longest attribute value).
pub fn att_payload_for_mtu(mtu: u16) -> usize {
    usize::from(mtu)
        .saturating_sub(3)
        .clamp(MIN_ATT_PAYLOAD, MAX_ATT_PAYLOAD)
}

/// Why a GATT operation failed. Says what happened on the link; never carries a value's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GattLinkError {
    /// The connection is gone (the peer disconnected, walked out of range, or was disconnected).
    #[error("the Bluetooth LE connection was lost")]
    Disconnected,
    /// The peer's stack did not acknowledge a write or an indication in time.
    #[error("the Bluetooth LE peer did not acknowledge a chunk within {0:?}")]
    Unacknowledged(Duration),
    /// A value longer than the negotiated ATT payload. [`crate::gatt::GattTransport`] checks
    /// every chunk before handing it to a link, so a link need not check again.
    #[error("a {len}-byte BLE value does not fit the negotiated ATT payload of {max} bytes")]
    ValueTooLong {
        /// The value's length.
        len: usize,
        /// The payload limit.
        max: usize,
    },
    /// The Bluetooth stack refused or failed the operation.
    #[error("Bluetooth stack error: {0}")]
    Stack(String),
}

/// One GATT connection as the transport sees it: values to the peer (acknowledged one by one)
/// and values from the peer, in order.
///
/// On the companion (central) `send_value` is a write-with-response to the rx characteristic and
/// `recv_value` yields tx indications; on the agent (peripheral) it is the other way round.
pub trait GattLink: Send {
    /// The largest value the link carries now: [`att_payload_for_mtu`] of the negotiated MTU.
    /// Read before every frame, so an MTU learned late (the agent learns it from the first
    /// write) is used from the next frame on.
    fn att_payload(&self) -> usize;

    /// Sends one value and resolves once the peer's stack acknowledged it (write response or
    /// indication confirmation). Values are delivered in the order sent. The transport never
    /// passes a value longer than [`GattLink::att_payload`].
    fn send_value(
        &mut self,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<(), GattLinkError>> + Send;

    /// The next value from the peer, in order. `Ok(None)` once the connection is gone and every
    /// value received before that was returned. Must be cancel-safe (the transport races it
    /// against the reassembly deadline).
    fn recv_value(&mut self)
        -> impl Future<Output = Result<Option<Vec<u8>>, GattLinkError>> + Send;

    /// Ends the connection. Best effort and idempotent.
    fn disconnect(&mut self) -> impl Future<Output = ()> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_follows_the_mtu_within_the_att_limits() {
        assert_eq!(att_payload_for_mtu(0), 20);
        assert_eq!(att_payload_for_mtu(23), 20);
        assert_eq!(att_payload_for_mtu(185), 182);
        assert_eq!(att_payload_for_mtu(247), 244);
        assert_eq!(att_payload_for_mtu(515), 512);
        assert_eq!(att_payload_for_mtu(517), 512);
        assert_eq!(att_payload_for_mtu(u16::MAX), 512);
    }
}
