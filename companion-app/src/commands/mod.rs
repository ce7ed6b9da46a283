//! The commands besides pairing that talk to one speaker: [`status`] and [`reset`]. Each starts
//! with [`crate::connect::resolve`], so it reaches a speaker over whichever transport it has
//! (TCP or Bluetooth LE), like `pair`. The CLI only parses flags and prints; a later command (the
//! Wi-Fi step) is one more file here.

mod reset;
mod status;

pub use reset::reset;
pub use status::{status, StatusReport};
