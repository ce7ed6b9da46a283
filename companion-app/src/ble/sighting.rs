//! Turning what a BLE scan observes into discovery reports.
//!
//! A speaker advertises the service UUID and `avs-<device id>` only while its pairing window is
//! open. The advertisement alone gives the id (possibly cut) and "pairing open"; the information
//! characteristic gives the whole TXT record (full id, friendly name, paired, window state), so
//! a central reads it once per speaker and reports that. Only when the read fails does the
//! advertisement alone make a report, and only with an id that was certainly not cut.
//!
//! BLE has no goodbye: a speaker that stops advertising (window closed, out of range, switched
//! off) is dropped after [`ADVERT_TTL`] without advertisements ([`Freshness`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use shared_protocol::discovery::{PairingState, TxtError, TxtRecord};
use shared_protocol::gatt::advert::device_id_from_ble_name;
use shared_protocol::ids::DeviceId;
use shared_protocol::message::PROTOCOL_MAJOR;

use crate::discovery::{Endpoint, Sighting};

/// A speaker not heard advertising for this long is reported lost.
pub const ADVERT_TTL: Duration = Duration::from_secs(30);

/// Why an information characteristic's value is not a speaker's record.
#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    /// Not text.
    #[error("the information characteristic is not UTF-8")]
    NotUtf8(#[from] std::str::Utf8Error),
    /// Text, but not a valid record.
    #[error(transparent)]
    Record(#[from] TxtError),
}

/// A report from the information characteristic's value.
pub fn from_info(peripheral: &str, info: &[u8]) -> Result<Sighting, InfoError> {
    let text = std::str::from_utf8(info)?;
    let txt = TxtRecord::from_ble_info(text)?;
    let endpoint = Endpoint::Ble {
        peripheral: peripheral.to_owned(),
    };
    Ok(Sighting::from_txt(peripheral, txt, endpoint))
}

/// A report from the advertisement alone: the id from the local name (refused when it may have
/// been cut), the pairing window open (speakers advertise only then), nothing else known.
pub fn from_advert(peripheral: &str, local_name: &str) -> Option<Sighting> {
    let advertised = device_id_from_ble_name(local_name)?;
    if advertised.maybe_cut {
        return None;
    }
    Some(Sighting {
        source_key: peripheral.to_owned(),
        device_id: DeviceId::new(advertised.id),
        friendly_name: local_name.to_owned(),
        paired: false,
        pairing: PairingState::Open,
        protocol_major: PROTOCOL_MAJOR,
        needs_network: false,
        endpoint: Endpoint::Ble {
            peripheral: peripheral.to_owned(),
        },
    })
}

/// The best report available: the information characteristic, else the advertisement.
pub fn sighting(
    peripheral: &str,
    local_name: Option<&str>,
    info: Option<&[u8]>,
) -> Option<Sighting> {
    match info.map(|i| from_info(peripheral, i)) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            tracing::debug!(%peripheral, error = %e, "unreadable BLE information value");
            local_name.and_then(|n| from_advert(peripheral, n))
        }
        None => local_name.and_then(|n| from_advert(peripheral, n)),
    }
}

/// When each peripheral was last heard advertising. Pure: the caller passes the clock.
#[derive(Debug)]
pub struct Freshness {
    ttl: Duration,
    last: HashMap<String, Instant>,
}

impl Freshness {
    /// Peripherals expire after `ttl` of silence.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            last: HashMap::new(),
        }
    }

    /// Records an advertisement; true if the peripheral is new (or had expired).
    pub fn heard(&mut self, peripheral: &str, now: Instant) -> bool {
        self.last.insert(peripheral.to_owned(), now).is_none()
    }

    /// Forgets a peripheral (verify failed).
    pub fn forget(&mut self, peripheral: &str) {
        self.last.remove(peripheral);
    }

    /// Removes and returns the peripherals silent for longer than the TTL.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let ttl = self.ttl;
        let gone: Vec<String> = self
            .last
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(**t) > ttl)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            self.last.remove(k);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_protocol::message::SECURITY_SCHEME;

    fn info(id: &str, name: &str, paired: bool, pairing: PairingState) -> Vec<u8> {
        TxtRecord {
            protocol_major: 1,
            needs_network: false,
            device_id: DeviceId::new(id),
            friendly_name: name.into(),
            paired,
            pairing,
            security_scheme: SECURITY_SCHEME.into(),
        }
        .to_ble_info()
        .into_bytes()
    }

    #[test]
    fn needs_network_from_the_information_characteristic() {
        let rec = TxtRecord::from_ble_info(
            &String::from_utf8(info("3f9a0c2e11d0", "Kitchen", false, PairingState::Open)).unwrap(),
        )
        .unwrap();
        let offline = rec.clone().with_needs_network(true).to_ble_info();
        let s = sighting("AA:BB", Some("avs-3f9a0c2e11d0"), Some(offline.as_bytes())).unwrap();
        assert!(s.needs_network);
        let online = rec.to_ble_info();
        let s = sighting("AA:BB", Some("avs-3f9a0c2e11d0"), Some(online.as_bytes())).unwrap();
        assert!(!s.needs_network);
        // From the advertisement alone it is not known.
        assert!(
            !sighting("AA:BB", Some("avs-3f9a0c2e11d0"), None)
                .unwrap()
                .needs_network
        );
    }

    #[test]
    fn the_information_characteristic_wins() {
        let value = info(
            "3f9a0c2e11d0",
            "Kitchen; speaker",
            true,
            PairingState::Closed,
        );
        let s = sighting("AA:BB", Some("avs-3f9a0c2e11d0"), Some(&value)).unwrap();
        assert_eq!(s.device_id.as_str(), "3f9a0c2e11d0");
        assert_eq!(s.friendly_name, "Kitchen, speaker");
        assert!(s.paired);
        assert_eq!(s.pairing, PairingState::Closed);
        assert_eq!(
            s.endpoint,
            Endpoint::Ble {
                peripheral: "AA:BB".into()
            }
        );
        assert_eq!(s.source_key, "AA:BB");
    }

    #[test]
    fn the_advertisement_alone_gives_an_open_speaker_with_an_uncut_id() {
        let s = sighting("AA:BB", Some("avs-3f9a0c2e11d0"), None).unwrap();
        assert_eq!(s.device_id.as_str(), "3f9a0c2e11d0");
        assert_eq!(s.pairing, PairingState::Open);
        // Garbage info falls back to the name.
        let s = sighting("AA:BB", Some("avs-3f9a0c2e11d0"), Some(b"\xff\xfe")).unwrap();
        assert_eq!(s.device_id.as_str(), "3f9a0c2e11d0");
        // A name at the maximum length may hide a longer id: no report from it.
        let cut = format!("avs-{}", "a".repeat(25));
        assert!(sighting("AA:BB", Some(&cut), None).is_none());
        // Foreign devices are not speakers.
        assert!(sighting("AA:BB", Some("JBL Flip"), None).is_none());
        assert!(sighting("AA:BB", None, Some(b"ver=1")).is_none());
        assert!(sighting("AA:BB", None, None).is_none());
    }

    #[test]
    fn silent_peripherals_expire() {
        let t0 = Instant::now();
        let mut f = Freshness::new(Duration::from_secs(30));
        assert!(f.heard("a", t0));
        assert!(!f.heard("a", t0 + Duration::from_secs(10)));
        assert!(f.heard("b", t0 + Duration::from_secs(20)));
        assert!(f.expire(t0 + Duration::from_secs(35)).is_empty());
        assert_eq!(f.expire(t0 + Duration::from_secs(41)), vec!["a".to_owned()]);
        f.forget("b");
        assert!(f.expire(t0 + Duration::from_secs(100)).is_empty());
        assert!(f.heard("a", t0 + Duration::from_secs(101)), "new again");
    }
}
