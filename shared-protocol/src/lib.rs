//! Everything the avs-pair device agent and companion must agree on.
//!
//! The agent and the companion never link each other's code; this crate is the contract.
//!
//! - [`secret`], [`ids`]: typed secrets (redacted, zeroized) and identifiers.
//! - [`json`]: JSON errors described without the JSON (which may hold a secret).
//! - [`pkce`]: RFC 7636 verifier and S256 challenge; the verifier never leaves the device.
//! - [`lwa`]: Login with Amazon wire types, the authorize-URL builder, the SDK error mapping.
//! - [`message`]: link messages: a plain phase, then a sealed phase with one message set per
//!   direction (companion → agent, agent → companion).
//! - [`setup_code`]: the 8-digit setup code, its manual (check digit) and QR forms.
//! - [`frame`]: length-prefixed frames and the [`frame::FrameTransport`] abstraction.
//! - [`session`]: SPAKE2 handshake with key confirmation, then AEAD-sealed messages.
//! - [`discovery`]: mDNS service type, TXT record, BLE UUIDs.
//! - [`ble`]: cutting frames into ATT-sized chunks and gluing them back.
//! - [`gatt`]: the BLE GATT transport (acknowledged chunks over write + indicate), and an
//!   in-process GATT model for tests (feature `gatt-model`).

pub mod ble;
pub mod discovery;
pub mod frame;
pub mod gatt;
pub mod ids;
pub mod json;
pub mod lwa;
pub mod message;
pub mod pkce;
pub mod secret;
pub mod session;
pub mod setup_code;
