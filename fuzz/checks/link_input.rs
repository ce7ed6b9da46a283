//! Everything a peer on the network or in Bluetooth range can feed avs-pair before (and
//! including) the handshake: stream frames, the message JSON of both phases and both
//! directions (a peer may send anything, whichever way it is meant to travel), BLE chunks,
//! and the strings a user or a QR code supplies (setup code, TXT record). None may panic,
//! allocate without bound, or accept more than its cap.
//!
//! Shared by the cargo-fuzz target `fuzz_targets/link_input.rs` and the stable replay of the seeds
//! (`tests/tests/fuzz_seeds.rs`), so the invariants are written once.

use std::time::{Duration, Instant};

use shared_protocol::ble::Reassembler;
use shared_protocol::discovery::TxtRecord;
use shared_protocol::frame::{decode_all, MAX_FRAME_LEN};
use shared_protocol::message::{AgentMessage, CompanionMessage, PlainMessage, WireMessage};
use shared_protocol::setup_code::SetupCode;

/// Whatever parses as `M` has a name, serializes, and parses back to the same value.
fn round_trip<M: WireMessage + PartialEq>(data: &[u8]) {
    if let Ok(msg) = serde_json::from_slice::<M>(data) {
        assert!(!msg.type_name().is_empty());
        let again = serde_json::to_vec(&msg).expect("serialize");
        assert!(serde_json::from_slice::<M>(&again).ok() == Some(msg));
    }
}

/// Checks one input (the fuzz target's body; the seed replay runs it too).
pub fn run(data: &[u8]) {
    // 1. The stream frame decoder, then each frame as every message set.
    let (frames, _) = decode_all(data);
    for frame in &frames {
        assert!(frame.len() <= MAX_FRAME_LEN);
        let _ = serde_json::from_slice::<PlainMessage>(frame);
        let _ = serde_json::from_slice::<CompanionMessage>(frame);
        let _ = serde_json::from_slice::<AgentMessage>(frame);
    }
    // The whole input as one message too (most inputs don't frame).
    round_trip::<PlainMessage>(data);
    round_trip::<CompanionMessage>(data);
    round_trip::<AgentMessage>(data);

    // 2. BLE reassembly: the first byte picks a small cap, then chunks are length-prefixed by
    //    one byte each; time advances one second per chunk against a 3-second timeout.
    if let Some((&cap_sel, mut rest)) = data.split_first() {
        let cap = usize::from(cap_sel) * 64;
        let mut r = Reassembler::new(cap, Duration::from_secs(3));
        let t0 = Instant::now();
        let mut tick = 0u64;
        while let Some((&len, tail)) = rest.split_first() {
            let take = usize::from(len).min(tail.len());
            let (chunk, next) = tail.split_at(take);
            tick += 1;
            if let Ok(Some(frame)) = r.push(chunk, t0 + Duration::from_secs(tick)) {
                assert!(frame.len() <= cap);
            }
            rest = next;
        }
    }

    // 3. User / QR / mDNS strings.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(code) = SetupCode::parse(text) {
            assert_eq!(code.expose_secret().len(), 8);
            assert_eq!(SetupCode::parse(&code.manual_code()).ok(), Some(code));
        }
        let _ = TxtRecord::from_ble_info(text);
    }
}
