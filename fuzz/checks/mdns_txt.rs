//! The companion's mDNS discovery (`companion-app/src/discovery/mdns.rs`): any host on the
//! laptop's network can answer the browse with any TXT record. The input is the TXT record's
//! raw RDATA (length-prefixed `key=value` strings, RFC 6763 §6); it goes through mdns-sd's own
//! TXT decoding and `into_property_map_str` exactly as the companion calls them, then through
//! `TxtRecord::from_properties`. Nothing may panic; an accepted record holds only valid fields
//! and re-encodes to properties that parse to the same record. The BLE info characteristic
//! (same record, `;`-joined) is checked on the same input.
//!
//! Shared by the cargo-fuzz target `fuzz_targets/mdns_txt.rs` and the stable replay of the seeds
//! (`tests/tests/fuzz_seeds.rs`), so the invariants are written once.

use mdns_sd::TxtProperties;
use shared_protocol::discovery::{is_valid_device_id, TxtRecord, MAX_FRIENDLY_NAME_LEN};

fn check(record: &TxtRecord) {
    assert!(is_valid_device_id(record.device_id.as_str()));
    assert!(!record.friendly_name.chars().any(char::is_control));
    let props = record.to_properties().into_iter().collect();
    let again = TxtRecord::from_properties(&props).expect("own properties parse");
    // The advertising side cuts the name (at a character boundary); everything else survives.
    assert!(record.friendly_name.starts_with(&again.friendly_name));
    assert!(again.friendly_name.len() <= MAX_FRIENDLY_NAME_LEN);
    let cut = TxtRecord {
        friendly_name: again.friendly_name.clone(),
        ..record.clone()
    };
    assert_eq!(again, cut);
}

/// Checks one input (the fuzz target's body; the seed replay runs it too).
pub fn run(data: &[u8]) {
    let props = TxtProperties::from(data).into_property_map_str();
    if let Ok(record) = TxtRecord::from_properties(&props) {
        check(&record);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(record) = TxtRecord::from_ble_info(text) {
            check(&record);
        }
    }
}
