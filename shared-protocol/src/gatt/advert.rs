//! What a speaker advertises over BLE so a companion can list it before connecting: the service
//! UUID ([`crate::discovery::BLE_SERVICE_UUID`]) and a short local name carrying the device id.
//!
//! An advertising packet has 31 bytes: the flags (3) and the 128-bit service UUID (18) leave too
//! little for a name, so the name goes in the scan response (31 bytes, 2 of them the AD header),
//! hence at most [`MAX_BLE_NAME_LEN`] bytes: `avs-` and up to 25 characters of the device id.
//! Longer ids are cut; the information characteristic always has the full id and the
//! authoritative state.

use crate::discovery::{instance_name, MAX_DEVICE_ID_LEN};
use crate::ids::DeviceId;

/// The local name's prefix.
pub const BLE_NAME_PREFIX: &str = "avs-";
/// Longest local name (a scan response's 31 bytes minus the AD header).
pub const MAX_BLE_NAME_LEN: usize = 29;

/// The local name a speaker advertises: `avs-<device id>`, cut to [`MAX_BLE_NAME_LEN`] bytes.
pub fn ble_local_name(device_id: &DeviceId) -> String {
    let mut name = instance_name(device_id);
    if name.len() > MAX_BLE_NAME_LEN {
        let mut cut = MAX_BLE_NAME_LEN;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    name
}

/// The device id in an advertised local name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertisedId<'a> {
    /// The id, or its first characters when the name was cut.
    pub id: &'a str,
    /// True when the name has the maximum length, so the id may have been cut: read the
    /// information characteristic for the full one.
    pub maybe_cut: bool,
}

/// Reads the device id out of a local name; `None` when it is not an avs-pair name.
pub fn device_id_from_ble_name(name: &str) -> Option<AdvertisedId<'_>> {
    let id = name.strip_prefix(BLE_NAME_PREFIX)?;
    let valid = !id.is_empty()
        && id.len() <= MAX_DEVICE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(AdvertisedId {
        id,
        maybe_cut: name.len() >= MAX_BLE_NAME_LEN,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_id_and_fit_a_scan_response() {
        let id = DeviceId::new("3f9a0c2e11d0");
        let name = ble_local_name(&id);
        assert_eq!(name, "avs-3f9a0c2e11d0");
        assert_eq!(
            device_id_from_ble_name(&name),
            Some(AdvertisedId {
                id: "3f9a0c2e11d0",
                maybe_cut: false
            })
        );
        let long = DeviceId::new("a".repeat(64));
        let name = ble_local_name(&long);
        assert_eq!(name.len(), MAX_BLE_NAME_LEN);
        let parsed = device_id_from_ble_name(&name).unwrap();
        assert!(parsed.maybe_cut);
        assert!(long.as_str().starts_with(parsed.id));
    }

    #[test]
    fn foreign_names_are_not_ids() {
        for name in ["", "avs-", "Speaker", "avs-a b", "AVS-abc", "avs-ü"] {
            assert_eq!(device_id_from_ble_name(name), None, "{name:?}");
        }
    }
}
