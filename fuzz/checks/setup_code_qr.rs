//! The strings a person types or a camera reads: the setup code in every accepted form (8
//! digits, grouped, the manual code with its check digit, the `AVSPAIR:1:<id>:<code>` QR text)
//! and the BLE local name a scan reports. Nothing may panic; whatever parses must print back
//! into forms that parse to the same value.
//!
//! Shared by the cargo-fuzz target `fuzz_targets/setup_code_qr.rs` and the stable replay of the seeds
//! (`tests/tests/fuzz_seeds.rs`), so the invariants are written once.

use shared_protocol::gatt::advert::{device_id_from_ble_name, MAX_BLE_NAME_LEN};
use shared_protocol::ids::DeviceId;
use shared_protocol::setup_code::{verhoeff_valid, SetupCode, SETUP_CODE_DIGITS};

/// Checks one input (the fuzz target's body; the seed replay runs it too).
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = SetupCode::parse(text) {
        let digits = code.expose_secret();
        assert_eq!(digits.len(), SETUP_CODE_DIGITS);
        assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        let manual = code.manual_code();
        assert_eq!(SetupCode::parse(&manual).ok().as_ref(), Some(&code));
        let check: String = manual.chars().filter(char::is_ascii_digit).collect();
        assert!(
            verhoeff_valid(&check),
            "manual code without a valid check digit"
        );
        let qr = code.qr_payload(&DeviceId::new("fuzz-device"));
        let (id, again) = SetupCode::parse_qr(&qr).expect("own QR payload parses");
        assert_eq!(id.as_str(), "fuzz-device");
        assert_eq!(again, code);
    }
    if let Ok((id, code)) = SetupCode::parse_qr(text) {
        // A QR payload names a device id a scanner may show: it must be a valid one.
        assert!(!id.as_str().is_empty() && id.as_str().len() <= 64);
        let (id2, code2) = SetupCode::parse_qr(&code.qr_payload(&id)).expect("reprint parses");
        assert_eq!((id2, code2), (id, code));
    }
    if let Some(adv) = device_id_from_ble_name(text) {
        assert!(!adv.id.is_empty());
        assert!(adv.maybe_cut == (text.len() >= MAX_BLE_NAME_LEN));
    }
}
