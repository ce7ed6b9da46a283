//! The companion's one-shot mDNS query (`companion-app/src/discovery/oneshot.rs`): any host on
//! the laptop's network can send a UDP packet from port 5353 to the query's port. The input is
//! such a packet; its first two bytes double as the query id the parser expects, so the fuzzer
//! reaches past the id check. It goes through `parse_answers` exactly as the companion calls it,
//! then each answer's TXT record through mdns-sd's decoding and `TxtRecord::from_properties`,
//! as `discovery::mdns` does. Nothing may panic; every answer names an instance (a dotted name
//! of bounded length), has at least one IPv4 address (sorted, no duplicates), and its socket
//! addresses all carry its port.
//!
//! Shared by the cargo-fuzz target `fuzz_targets/mdns_answer.rs` and the stable replay of the seeds
//! (`tests/tests/fuzz_seeds.rs`), so the invariants are written once.

use companion_app::discovery::oneshot::{parse_answers, socket_addrs};
use mdns_sd::TxtProperties;
use shared_protocol::discovery::{is_valid_device_id, TxtRecord};

/// Checks one input (the fuzz target's body; the seed replay runs it too).
pub fn run(data: &[u8]) {
    let id = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let Ok(answers) = parse_answers(data, id) else {
        return;
    };
    for a in &answers {
        assert!(a.instance.ends_with('.'), "instance {:?}", a.instance);
        // 255 wire bytes at most; a byte that is not UTF-8 shows as U+FFFD (3 bytes).
        assert!(a.instance.len() <= 3 * 255 + 1);
        assert!(!a.addrs.is_empty());
        assert!(
            a.addrs.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        let addrs = socket_addrs(a);
        assert!(addrs.len() <= a.addrs.len());
        assert!(addrs.iter().all(|s| s.port() == a.port));
        let props = TxtProperties::from(&a.txt[..]).into_property_map_str();
        if let Ok(txt) = TxtRecord::from_properties(&props) {
            assert!(is_valid_device_id(txt.device_id.as_str()));
        }
    }
}
