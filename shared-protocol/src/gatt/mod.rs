//! The BLE GATT transport: link frames over one write characteristic and one indicate
//! characteristic, so the same handshake and sealed session run over Bluetooth LE as over TCP.
//!
//! | characteristic | UUID ([`crate::discovery`]) | properties | carries |
//! |---|---|---|---|
//! | info | `339c0002-…` | read | the plain part of the Hello ([`crate::discovery::TxtRecord::to_ble_info`]) |
//! | rx | `339c0003-…` | write (with response) | companion → agent chunks |
//! | tx | `339c0004-…` | indicate | agent → companion chunks |
//!
//! Each frame is cut with [`crate::ble::Chunker`] to the negotiated ATT payload (MTU − 3, at
//! least 20, at most 512) and glued back with [`crate::ble::Reassembler`] (size cap + stall
//! timeout).
//!
//! **Flow control: every chunk is acknowledged by the peer's Bluetooth stack before the next one
//! is sent.** Companion → agent chunks are ATT *Write Requests* (the peripheral answers each with
//! a Write Response, and the agent only answers once its session queue has room); agent →
//! companion chunks are ATT *indications* (the central's stack confirms each one). So neither
//! side ever has more than one chunk in flight, a slow central or a slow speaker just slows the
//! other side down (no buffer in between can overflow and drop a chunk the way unacknowledged
//! notifications can), and radio loss is repaired by the link layer below ATT. What is left is
//! detected, never silently accepted:
//!
//! - a chunk lost *after* its acknowledgement (a buggy stack) breaks the 7-bit chunk sequence
//!   or, for a whole lost frame, the AEAD counter: the session ends with a clear error;
//! - a chunk that is not acknowledged within [`GattOptions::ack_timeout`] means the peer is gone;
//! - a disconnect in the middle of a frame is [`crate::frame::FrameError::Truncated`], between
//!   frames a clean close (`Ok(None)`);
//! - a frame announced over the cap is refused from its first chunk
//!   ([`crate::frame::FrameError::Oversize`]), and a partial frame that stalls is dropped after
//!   [`GattOptions::reassembly_timeout`].
//!
//! After any error the transport disconnects the link and refuses further use, so both ends see
//! the session end. The cost of stop-and-wait is one ATT round trip (about one connection
//! interval) per chunk, which is why the MTU matters; `docs/ble.md` has the numbers.
//!
//! The Bluetooth stacks (BlueZ through `bluer` on the speaker, `btleplug` on the companion) and
//! the in-process model (`model`, feature `gatt-model`) each implement [`GattLink`].

pub mod advert;
mod link;
#[cfg(any(test, feature = "gatt-model"))]
pub mod model;
#[cfg(test)]
mod tests;
mod transport;

pub use link::{att_payload_for_mtu, GattLink, GattLinkError};
pub use transport::{GattOptions, GattStats, GattTransport};
