//! The companion link, transport by transport: [`session`] is the transport-neutral
//! connection handler (handshake, PKCE per session, code exchange), [`tcp`] the TCP listener.
//! BLE runs the same handler over GATT in [`crate::ble`].

pub mod session;
pub mod slots;
pub mod tcp;

pub use session::{classify, handle_connection, serve_connection};
pub use tcp::serve;

pub use crate::config::LinkConfig;
