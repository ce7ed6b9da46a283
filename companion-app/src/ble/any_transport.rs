//! [`AnyTransport`]: the link to a speaker over whichever transport reached it, so the pairing
//! flow after "connect" is the same code for TCP and BLE.

use shared_protocol::frame::{FrameError, FrameTransport};
use shared_protocol::gatt::GattTransport;

use super::BoxedLink;
use crate::link::TcpTransport;

/// TCP (found by mDNS or given) or BLE GATT.
#[derive(Debug)]
pub enum AnyTransport {
    /// Length-prefixed frames over TCP.
    Tcp(TcpTransport),
    /// Chunked frames over a GATT connection.
    Ble(GattTransport<BoxedLink>),
}

impl FrameTransport for AnyTransport {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), FrameError> {
        match self {
            AnyTransport::Tcp(t) => t.send_frame(frame).await,
            AnyTransport::Ble(t) => t.send_frame(frame).await,
        }
    }

    async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        match self {
            AnyTransport::Tcp(t) => t.recv_frame().await,
            AnyTransport::Ble(t) => t.recv_frame().await,
        }
    }
}
