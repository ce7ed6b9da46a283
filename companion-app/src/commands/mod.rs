//! The commands besides pairing that talk to one speaker: [`status`], [`reset`] and [`wifi`]. Each starts
//! with [`crate::connect::resolve`], so it reaches a speaker over whichever transport it has
//! (TCP or Bluetooth LE), like `pair`. The CLI only parses flags and prints; a later command (the
//! Wi-Fi step) is one more file here.

mod reset;
mod status;
mod wifi;
mod window;

pub use reset::reset;
pub use status::{status, StatusReport};
pub use wifi::{wifi, WifiOutcome};
