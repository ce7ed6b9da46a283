//! What the app's list tests share: waiting, with a deadline, for a list the sink reported.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use avs_companion_app::ipc::SpeakersView;

/// The first list from `rx` that satisfies `f` within `within`; panics naming `what` otherwise.
pub fn wait_until(
    rx: &mpsc::Receiver<SpeakersView>,
    what: &str,
    within: Duration,
    f: impl Fn(&SpeakersView) -> bool,
) -> SpeakersView {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if f(&v) => return v,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}
