//! The avs-pair companion core: everything the laptop side does, as a library the CLI
//! (`avs-companion`) and the desktop app sit on.
//!
//! A pairing ([`pairing::pair`]) runs these parts in order:
//!
//! - [`discovery`]: find speakers (mDNS and [`ble`]), merged by device id, with
//!   appeared/changed/gone events;
//! - [`connect`]: one way to reach a speaker for every command: a connector per transport (TCP,
//!   BLE), `resolve(target)` → the device and a link;
//! - [`link`]: agree on versions, prove the setup code (SPAKE2), then sealed requests;
//! - [`login`]: Login with Amazon in the user's real browser, the redirect captured on loopback
//!   (RFC 8252) or pasted, `state` checked;
//! - [`handover`]: give the speaker the authorization code and follow it to the result, with a
//!   sentence for every failure, asking the user ([`account_switch`]) before the speaker swaps
//!   one account for another;
//! - [`config`]: the user's client id, redirect URI, region and optional LWA base URL. Never a
//!   token: the companion holds none.
//!
//! [`commands`] holds the other commands that talk to one speaker (`status`, `reset`).
//!
//! [`error::PairError`] says what went wrong and which exit code the CLI uses for it; its
//! [`PairError::words`](error::PairError::words) are the sentence in [`words`] pieces, so the CLI
//! and the desktop window each render their own wording of it.

pub mod account_switch;
pub mod ble;
pub mod commands;
pub mod config;
pub mod connect;
pub mod discovery;
pub mod error;
pub mod handover;
pub mod link;
pub mod login;
pub mod pairing;
pub mod wifi;
pub mod words;

#[cfg(test)]
mod test_speaker;

pub use config::{CompanionConfig, RedirectTarget};
pub use error::{ExitKind, PairError};
pub use pairing::{pair, PairEvent, PairOptions, PairReport, Step, Target};
