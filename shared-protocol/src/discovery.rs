//! How a companion finds speakers: the mDNS service, its TXT record, and the BLE GATT UUIDs.
//!
//! A speaker advertises `_avs-pair._tcp.local.` with instance name `avs-<device id>` (the id
//! keeps names unique; mDNS renames clashing instances, so a browser keys on the TXT `id`, never
//! on the instance label). TXT keys are short because every TXT string costs multicast bytes and
//! must fit in 255 bytes:
//!
//! | key      | value                                    | example |
//! |----------|------------------------------------------|---------|
//! | `ver`    | link protocol major version              | `1` |
//! | `id`     | stable device id (letters, digits, `-`, `_`; ≤ 64) | `3f9a0c2e11d04b7a` |
//! | `name`   | friendly name, UTF-8, ≤ 63 bytes         | `Kitchen speaker` |
//! | `paired` | `1` if the speaker holds a refresh token, else `0` | `0` |
//! | `pair`   | pairing window: `open`, `closed`, `locked` | `open` |
//! | `sec`    | handshake scheme ([`crate::message::SECURITY_SCHEME`]) | `spake2-ed25519-hkdf-sha256-chacha20poly1305` |
//! | `net`    | optional: `1` when the speaker's last connectivity check failed (it needs a network: the Wi-Fi step) | `1` |
//!
//! `net` is written only when it is `1`, so a speaker that is online (or has not checked yet)
//! sends the same record as before it existed, and an old companion, which ignores unknown
//! keys, reads a `net=1` record as before. Absent, `0` or any other value reads as "no need
//! known".
//!
//! Unknown keys are ignored (a newer speaker may add some). The TXT record is a hint for the
//! list of speakers; the authoritative state is the agent's Hello on the link.
//!
//! BLE: one primary service with three characteristics, all derived from one random 128-bit
//! base UUID `339cXXXX-4fb6-4cc3-a83f-363019dd0cb0` (XXXX = 0001 service, 0002 info,
//! 0003 rx, 0004 tx). `info` is readable and holds the same key=value pairs as the TXT record
//! (`;`-separated); `rx` is written by the companion (frames into the agent), `tx` indicates
//! (frames out of the agent), both carrying [`crate::ble`] chunks.

use std::collections::HashMap;

use uuid::Uuid;

use crate::ids::DeviceId;
use crate::message::{AgentSummary, PairingWindow, PROTOCOL_MAJOR, SECURITY_SCHEME};

/// The DNS-SD service type.
pub const MDNS_SERVICE_TYPE: &str = "_avs-pair._tcp.local.";

/// TXT key: protocol major version.
pub const TXT_VERSION: &str = "ver";
/// TXT key: device id.
pub const TXT_DEVICE_ID: &str = "id";
/// TXT key: friendly name.
pub const TXT_NAME: &str = "name";
/// TXT key: paired flag.
pub const TXT_PAIRED: &str = "paired";
/// TXT key: pairing window state.
pub const TXT_PAIRING: &str = "pair";
/// TXT key: security scheme.
pub const TXT_SECURITY: &str = "sec";
/// TXT key (optional): the speaker needs a network (`1`).
pub const TXT_NETWORK: &str = "net";

/// Longest friendly name written to a TXT record, in bytes (longer names are cut at a char
/// boundary).
pub const MAX_FRIENDLY_NAME_LEN: usize = 63;
/// Longest device id accepted.
pub const MAX_DEVICE_ID_LEN: usize = 64;
/// Longest value read for any key (a TXT string is at most 255 bytes).
const MAX_TXT_VALUE_LEN: usize = 255;

/// The BLE primary service.
pub const BLE_SERVICE_UUID: Uuid = Uuid::from_u128(0x339c0001_4fb6_4cc3_a83f_363019dd0cb0);
/// Readable: the TXT key=value pairs, `;`-separated.
pub const BLE_INFO_CHAR_UUID: Uuid = Uuid::from_u128(0x339c0002_4fb6_4cc3_a83f_363019dd0cb0);
/// Write (with response): companion → agent chunks.
pub const BLE_RX_CHAR_UUID: Uuid = Uuid::from_u128(0x339c0003_4fb6_4cc3_a83f_363019dd0cb0);
/// Indicate (each chunk confirmed, see [`crate::gatt`]): agent → companion chunks.
pub const BLE_TX_CHAR_UUID: Uuid = Uuid::from_u128(0x339c0004_4fb6_4cc3_a83f_363019dd0cb0);

/// The pairing window as advertised (no timers: those are on the link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairingState {
    /// Accepting handshakes.
    Open,
    /// Status only.
    Closed,
    /// Closed after too many wrong codes.
    LockedOut,
}

impl PairingState {
    /// The TXT value.
    pub fn as_str(self) -> &'static str {
        match self {
            PairingState::Open => "open",
            PairingState::Closed => "closed",
            PairingState::LockedOut => "locked",
        }
    }
}

impl From<&PairingWindow> for PairingState {
    fn from(window: &PairingWindow) -> Self {
        match window {
            PairingWindow::Open { .. } => PairingState::Open,
            PairingWindow::Closed => PairingState::Closed,
            PairingWindow::LockedOut { .. } => PairingState::LockedOut,
        }
    }
}

/// Why a TXT record was not understood. Values quoted here are public (TXT is broadcast).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxtError {
    /// A required key is absent.
    #[error("TXT record has no `{key}` key (not an avs-pair speaker, or a broken one)")]
    Missing {
        /// The TXT key that is absent (`id`, `ver`, …).
        key: &'static str,
    },
    /// A key's value is not valid.
    #[error("TXT `{key}` value {value:?} is invalid: {reason}")]
    Invalid {
        /// The TXT key whose value is wrong.
        key: &'static str,
        /// The value (cut to 64 chars).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The TXT record of a speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    /// `ver`.
    pub protocol_major: u16,
    /// `id`.
    pub device_id: DeviceId,
    /// `name`.
    pub friendly_name: String,
    /// `paired`.
    pub paired: bool,
    /// `pair`.
    pub pairing: PairingState,
    /// `sec`.
    pub security_scheme: String,
    /// `net=1`: the speaker's last connectivity check failed, so a pairing starts with the
    /// Wi-Fi step. False when absent (an older speaker, or one that is online).
    pub needs_network: bool,
}

fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn invalid(key: &'static str, value: &str, reason: &'static str) -> TxtError {
    TxtError::Invalid {
        key,
        value: cut_at_char_boundary(value, 64).to_owned(),
        reason,
    }
}

/// True for a well-formed device id.
pub fn is_valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_DEVICE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl TxtRecord {
    /// The record for an agent with this summary (this build's version and scheme).
    pub fn for_agent(summary: &AgentSummary) -> Self {
        Self {
            protocol_major: PROTOCOL_MAJOR,
            device_id: summary.device_id.clone(),
            friendly_name: summary.friendly_name.clone(),
            paired: summary.paired,
            pairing: PairingState::from(&summary.window),
            security_scheme: SECURITY_SCHEME.to_owned(),
            needs_network: false,
        }
    }

    /// The same record with `net` set from the agent's last connectivity check.
    pub fn with_needs_network(mut self, needs_network: bool) -> Self {
        self.needs_network = needs_network;
        self
    }

    /// Key/value pairs for `mdns_sd::ServiceInfo::new(…, properties)`. The name is cut to
    /// [`MAX_FRIENDLY_NAME_LEN`] bytes.
    pub fn to_properties(&self) -> Vec<(String, String)> {
        let mut props = vec![
            (TXT_VERSION.to_owned(), self.protocol_major.to_string()),
            (TXT_DEVICE_ID.to_owned(), self.device_id.as_str().to_owned()),
            (
                TXT_NAME.to_owned(),
                cut_at_char_boundary(&self.friendly_name, MAX_FRIENDLY_NAME_LEN).to_owned(),
            ),
            (
                TXT_PAIRED.to_owned(),
                if self.paired { "1" } else { "0" }.to_owned(),
            ),
            (TXT_PAIRING.to_owned(), self.pairing.as_str().to_owned()),
            (TXT_SECURITY.to_owned(), self.security_scheme.clone()),
        ];
        if self.needs_network {
            props.push((TXT_NETWORK.to_owned(), "1".to_owned()));
        }
        props
    }

    /// Parses a TXT record (e.g. `ResolvedService`'s properties as a string map). Unknown keys
    /// are ignored; a missing `name` reads as the empty string.
    pub fn from_properties(props: &HashMap<String, String>) -> Result<Self, TxtError> {
        let get = |key: &'static str| -> Result<&str, TxtError> {
            let value = props
                .get(key)
                .map(String::as_str)
                .ok_or(TxtError::Missing { key })?;
            if value.len() > MAX_TXT_VALUE_LEN {
                return Err(invalid(key, value, "longer than 255 bytes"));
            }
            Ok(value)
        };

        let ver = get(TXT_VERSION)?;
        let protocol_major = ver
            .parse::<u16>()
            .map_err(|_| invalid(TXT_VERSION, ver, "not a number from 0 to 65535"))?;

        let id = get(TXT_DEVICE_ID)?;
        if !is_valid_device_id(id) {
            return Err(invalid(
                TXT_DEVICE_ID,
                id,
                "must be 1-64 letters, digits, '-' or '_'",
            ));
        }

        let friendly_name = match props.get(TXT_NAME) {
            None => String::new(),
            Some(_) => {
                let name = get(TXT_NAME)?;
                if name.chars().any(char::is_control) {
                    return Err(invalid(TXT_NAME, name, "contains control characters"));
                }
                name.to_owned()
            }
        };

        let paired = match get(TXT_PAIRED)? {
            "1" | "true" => true,
            "0" | "false" => false,
            other => return Err(invalid(TXT_PAIRED, other, "must be 1 or 0")),
        };

        let pairing = match get(TXT_PAIRING)? {
            "open" => PairingState::Open,
            "closed" => PairingState::Closed,
            "locked" => PairingState::LockedOut,
            other => {
                return Err(invalid(
                    TXT_PAIRING,
                    other,
                    "must be open, closed or locked",
                ))
            }
        };

        let sec = get(TXT_SECURITY)?;
        if sec.is_empty() {
            return Err(invalid(TXT_SECURITY, sec, "is empty"));
        }

        Ok(Self {
            protocol_major,
            device_id: DeviceId::new(id),
            friendly_name,
            paired,
            pairing,
            security_scheme: sec.to_owned(),
            needs_network: props.get(TXT_NETWORK).map(String::as_str) == Some("1"),
        })
    }

    /// The BLE info characteristic value: `key=value` pairs joined by `;` (a `;` in the name is
    /// replaced by `,`).
    pub fn to_ble_info(&self) -> String {
        self.to_properties()
            .into_iter()
            .map(|(k, v)| format!("{k}={}", v.replace(';', ",")))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Parses the BLE info characteristic value.
    pub fn from_ble_info(info: &str) -> Result<Self, TxtError> {
        let props = info
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<HashMap<_, _>>();
        Self::from_properties(&props)
    }
}

/// The mDNS instance name: `avs-<device id>`.
pub fn instance_name(device_id: &DeviceId) -> String {
    format!("avs-{}", device_id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TxtRecord {
        TxtRecord {
            protocol_major: 1,
            device_id: DeviceId::new("3f9a0c2e11d04b7a"),
            friendly_name: "Kitchen speaker".into(),
            paired: false,
            pairing: PairingState::Open,
            security_scheme: SECURITY_SCHEME.into(),
            needs_network: false,
        }
    }

    fn map(props: Vec<(String, String)>) -> HashMap<String, String> {
        props.into_iter().collect()
    }

    #[test]
    fn txt_round_trips() {
        for pairing in [
            PairingState::Open,
            PairingState::Closed,
            PairingState::LockedOut,
        ] {
            for paired in [true, false] {
                let rec = TxtRecord {
                    pairing,
                    paired,
                    ..sample()
                };
                assert_eq!(
                    TxtRecord::from_properties(&map(rec.to_properties())).unwrap(),
                    rec
                );
                assert_eq!(TxtRecord::from_ble_info(&rec.to_ble_info()).unwrap(), rec);
            }
        }
    }

    #[test]
    fn needs_network_round_trips_and_is_optional() {
        let online = sample();
        let offline = sample().with_needs_network(true);
        for rec in [&online, &offline] {
            assert_eq!(
                &TxtRecord::from_properties(&map(rec.to_properties())).unwrap(),
                rec
            );
            assert_eq!(&TxtRecord::from_ble_info(&rec.to_ble_info()).unwrap(), rec);
        }
        // Online: byte for byte the record from before `net` existed.
        assert!(!online.to_ble_info().contains("net="));
        assert!(offline.to_ble_info().ends_with(";net=1"));
        // A record from an older speaker (no `net`) and odd values read as "no need known".
        let old = "ver=1;id=3f9a0c2e11d04b7a;name=Kitchen speaker;paired=0;pair=open;sec=x";
        assert!(!TxtRecord::from_ble_info(old).unwrap().needs_network);
        for value in ["0", "yes", "", "11"] {
            let rec = TxtRecord::from_ble_info(&format!("{old};net={value}")).unwrap();
            assert!(!rec.needs_network, "{value:?}");
        }
        assert!(
            TxtRecord::from_ble_info(&format!("{old};net=1"))
                .unwrap()
                .needs_network
        );
    }

    /// What a peer built before `net` existed does with a new record: it keeps only the keys
    /// it knows (as `from_properties` ignores unknown ones), so it must parse exactly as the
    /// record without `net`.
    #[test]
    fn an_old_peer_reads_a_needs_network_record_as_before() {
        let known = [
            TXT_VERSION,
            TXT_DEVICE_ID,
            TXT_NAME,
            TXT_PAIRED,
            TXT_PAIRING,
            TXT_SECURITY,
        ];
        let new = sample().with_needs_network(true);
        let seen_by_old: HashMap<String, String> = new
            .to_properties()
            .into_iter()
            .filter(|(k, _)| known.contains(&k.as_str()))
            .collect();
        assert_eq!(TxtRecord::from_properties(&seen_by_old).unwrap(), sample());
        // And the BLE value stays within one ATT read at the smallest MTU's long-read budget.
        assert!(new.to_ble_info().len() <= 255);
    }

    #[test]
    fn txt_keys_are_the_documented_ones() {
        let props = map(sample().to_properties());
        let mut keys: Vec<_> = props.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["id", "name", "pair", "paired", "sec", "ver"]);
        assert_eq!(props["ver"], "1");
        assert_eq!(props["pair"], "open");
        assert_eq!(props["paired"], "0");
    }

    #[test]
    fn unknown_keys_are_ignored_and_errors_name_the_key() {
        let mut props = map(sample().to_properties());
        props.insert("future".into(), "x".into());
        assert!(TxtRecord::from_properties(&props).is_ok());

        let mut missing = props.clone();
        missing.remove("id");
        assert_eq!(
            TxtRecord::from_properties(&missing),
            Err(TxtError::Missing { key: "id" })
        );

        for (key, value) in [
            ("ver", "one"),
            ("ver", "70000"),
            ("id", ""),
            ("id", "a b"),
            ("paired", "yes"),
            ("pair", "ajar"),
            ("sec", ""),
            ("name", "bell\u{7}"),
        ] {
            let mut bad = props.clone();
            bad.insert(key.into(), value.into());
            match TxtRecord::from_properties(&bad) {
                Err(TxtError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}={value:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn long_names_are_cut_at_a_char_boundary() {
        let rec = TxtRecord {
            friendly_name: "é".repeat(40),
            ..sample()
        };
        let props = map(rec.to_properties());
        assert!(props["name"].len() <= MAX_FRIENDLY_NAME_LEN);
        assert_eq!(props["name"], "é".repeat(31));
    }

    #[test]
    fn identifiers() {
        assert_eq!(MDNS_SERVICE_TYPE, "_avs-pair._tcp.local.");
        assert_eq!(
            instance_name(&DeviceId::new("3f9a0c2e11d04b7a")),
            "avs-3f9a0c2e11d04b7a"
        );
        assert_eq!(
            BLE_SERVICE_UUID.to_string(),
            "339c0001-4fb6-4cc3-a83f-363019dd0cb0"
        );
        let all = [
            BLE_SERVICE_UUID,
            BLE_INFO_CHAR_UUID,
            BLE_RX_CHAR_UUID,
            BLE_TX_CHAR_UUID,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn txt_for_agent_follows_the_window() {
        let summary = AgentSummary {
            device_id: DeviceId::new("abc"),
            friendly_name: "Den".into(),
            paired: true,
            window: PairingWindow::LockedOut { retry_in_secs: 60 },
        };
        let rec = TxtRecord::for_agent(&summary);
        assert_eq!(rec.pairing, PairingState::LockedOut);
        assert!(rec.paired);
        assert_eq!(rec.protocol_major, PROTOCOL_MAJOR);
    }
}
