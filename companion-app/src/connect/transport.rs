//! [`BoxedTransport`]: the frame stream to a speaker over whichever transport reached it, behind
//! one type, so the link (Hellos, PAKE, sealed requests) is the same code for TCP, BLE and any
//! transport added later, and no command is generic over how the speaker was reached.

use shared_protocol::frame::{FrameError, FrameTransport};

use crate::ble::BoxFuture;

/// The object-safe face of a [`FrameTransport`].
trait DynFrameTransport: Send {
    fn send_frame(&mut self, frame: Vec<u8>) -> BoxFuture<'_, Result<(), FrameError>>;
    fn recv_frame(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, FrameError>>;
}

impl<T: FrameTransport> DynFrameTransport for T {
    fn send_frame(&mut self, frame: Vec<u8>) -> BoxFuture<'_, Result<(), FrameError>> {
        Box::pin(FrameTransport::send_frame(self, frame))
    }
    fn recv_frame(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, FrameError>> {
        Box::pin(FrameTransport::recv_frame(self))
    }
}

/// Any [`FrameTransport`], boxed.
pub struct BoxedTransport(Box<dyn DynFrameTransport>);

impl BoxedTransport {
    /// Boxes `transport`.
    pub fn new(transport: impl FrameTransport + 'static) -> Self {
        Self(Box::new(transport))
    }
}

impl std::fmt::Debug for BoxedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxedTransport").finish_non_exhaustive()
    }
}

impl FrameTransport for BoxedTransport {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), FrameError> {
        self.0.send_frame(frame).await
    }

    async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.0.recv_frame().await
    }
}
