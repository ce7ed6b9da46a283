//! The agent's local API socket: any process in the AVS client's group can write request lines
//! (`device-agent/src/local_api.rs`: one JSON object per `\n`-terminated line, at most
//! `MAX_LINE` bytes), and the CLI reads the daemon's answer lines the same way. The input is cut
//! into lines as the daemon cuts it; each line goes through the daemon's request parser and the
//! client's answer parser. Nothing may panic; whatever parses must re-serialize to a line that
//! parses to the same request.
//!
//! Shared by the cargo-fuzz target `fuzz_targets/local_api_line.rs` and the stable replay of the seeds
//! (`tests/tests/fuzz_seeds.rs`), so the invariants are written once.

use device_agent::local_api::{ApiRequest, ApiResponse, MAX_LINE};

/// Checks one input (the fuzz target's body; the seed replay runs it too).
pub fn run(data: &[u8]) {
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.len() > MAX_LINE {
            // The daemon refuses the line before parsing it.
            continue;
        }
        if let Ok(req) = serde_json::from_slice::<ApiRequest>(line) {
            let mut again = serde_json::to_vec(&req).expect("serialize");
            assert!(!again.contains(&b'\n'), "a request serializes to one line");
            again.push(b'\n');
            let back: ApiRequest = serde_json::from_slice(&again).expect("round trip");
            assert_eq!(format!("{back:?}"), format!("{req:?}"));
        }
        if let Ok(resp) = serde_json::from_slice::<ApiResponse>(line) {
            let again = serde_json::to_vec(&resp).expect("serialize");
            assert!(!again.contains(&b'\n'), "an answer serializes to one line");
            let _: ApiResponse = serde_json::from_slice(&again).expect("round trip");
        }
    }
}
