//! The companion link, transport by transport: [`session`] is the transport-neutral
//! connection handler (handshake, PKCE per session, code exchange), [`tcp`] the TCP listener.
//! BLE runs the same handler over GATT in [`crate::ble`].

pub mod session;
pub mod tcp;

use std::time::Duration;

pub use session::{classify, handle_connection};
pub use tcp::serve;

/// Limits of the link server.
#[derive(Debug, Clone)]
pub struct LinkLimits {
    /// Concurrent sessions.
    pub max_sessions: usize,
    /// Whole handshake.
    pub handshake_timeout: Duration,
    /// Between two messages of an established session.
    pub idle_timeout: Duration,
    /// The code exchange request.
    pub exchange_timeout: Duration,
}
