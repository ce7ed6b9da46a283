//! A question the core puts to the window in the middle of a pairing: which Wi-Fi network
//! ([`crate::wifi`]), replace the linked account or keep it ([`crate::account_switch`]).
//!
//! Both go the same way: the asker sends a [`crate::ipc::PairingEvent`] tagged with its attempt's
//! `pairing_id` through the pairing's sink, leaves a one-shot sender in its slot, and awaits the
//! answer a window command later puts there. [`WindowAsker`] is that pairing id, sink and slot;
//! each question is a trait impl on it with its own slot type.

use crate::pairing::PairingSink;

/// Asks the window during pairing attempt `pairing_id`; the answer comes back through `slot`.
pub struct WindowAsker<S> {
    pub(crate) pairing_id: u64,
    pub(crate) sink: PairingSink,
    pub(crate) slot: S,
}

impl<S> std::fmt::Debug for WindowAsker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowAsker")
            .field("pairing_id", &self.pairing_id)
            .finish_non_exhaustive()
    }
}

impl<S> WindowAsker<S> {
    /// An asker for attempt `pairing_id`, telling `sink`, answered through `slot`.
    pub fn new(pairing_id: u64, sink: PairingSink, slot: S) -> Self {
        Self {
            pairing_id,
            sink,
            slot,
        }
    }
}
