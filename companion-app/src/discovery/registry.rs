//! Turns what the transports report into one list of speakers, keyed by device id.
//!
//! Transports are noisy (mdns-notes §5): mDNS resolves the same instance two or more times as
//! addresses accumulate, may report a link-local IPv6 address before the IPv4 one, renames an
//! instance on a name clash, and reports removals for instances it never resolved. BLE
//! will see the same speakers again under another transport. The registry keeps one
//! [`Sighting`] per (transport, source key) and derives a [`Device`] per device id from them,
//! emitting an event only when that derived view really changes, so consumers can be simple.

use std::collections::BTreeMap;

use shared_protocol::ids::DeviceId;

use super::{Device, DeviceEvent, Sighting, SourceEvent, TransportKind};

/// The merge state. Pure logic: no I/O, no clock.
#[derive(Debug, Default)]
pub struct Registry {
    sightings: BTreeMap<(TransportKind, String), (u64, Sighting)>,
    seq: u64,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one transport report; returns the device-level events it causes (often none).
    pub fn apply(&mut self, event: SourceEvent) -> Vec<DeviceEvent> {
        let (affected, before) = match &event {
            SourceEvent::Seen(s) => {
                let key = (s.endpoint.kind(), s.source_key.clone());
                let mut ids = vec![s.device_id.clone()];
                if let Some((_, old)) = self.sightings.get(&key) {
                    if old.device_id != s.device_id {
                        ids.push(old.device_id.clone());
                    }
                }
                let before = ids.iter().map(|id| self.device(id)).collect::<Vec<_>>();
                (ids, before)
            }
            SourceEvent::Lost { transport, key } => {
                match self.sightings.get(&(*transport, key.clone())) {
                    Some((_, old)) => {
                        let id = old.device_id.clone();
                        let before = vec![self.device(&id)];
                        (vec![id], before)
                    }
                    None => return Vec::new(),
                }
            }
        };
        match event {
            SourceEvent::Seen(s) => {
                self.seq += 1;
                self.sightings
                    .insert((s.endpoint.kind(), s.source_key.clone()), (self.seq, s));
            }
            SourceEvent::Lost { transport, key } => {
                self.sightings.remove(&(transport, key));
            }
        }
        let mut events = Vec::new();
        for (id, before) in affected.iter().zip(before) {
            match (before, self.device(id)) {
                (None, Some(now)) => events.push(DeviceEvent::Appeared(now)),
                (Some(old), Some(now)) if old != now => events.push(DeviceEvent::Changed(now)),
                (Some(_), None) => events.push(DeviceEvent::Gone(id.clone())),
                _ => {}
            }
        }
        events
    }

    /// The current view of one device.
    pub fn device(&self, id: &DeviceId) -> Option<Device> {
        let mut mine: Vec<&(u64, Sighting)> = self
            .sightings
            .values()
            .filter(|(_, s)| &s.device_id == id)
            .collect();
        if mine.is_empty() {
            return None;
        }
        // The newest report wins for the descriptive fields.
        mine.sort_by_key(|(seq, _)| *seq);
        let (_, latest) = mine.last()?;
        let mut endpoints: Vec<_> = mine.iter().map(|(_, s)| s.endpoint.clone()).collect();
        endpoints.sort();
        endpoints.dedup();
        Some(Device {
            id: id.clone(),
            name: latest.friendly_name.clone(),
            paired: latest.paired,
            pairing: latest.pairing,
            protocol_major: latest.protocol_major,
            needs_network: mine.iter().any(|(_, s)| s.needs_network),
            endpoints,
        })
    }

    /// Every device, sorted by name then id.
    pub fn devices(&self) -> Vec<Device> {
        let mut ids: Vec<&DeviceId> = self.sightings.values().map(|(_, s)| &s.device_id).collect();
        ids.sort();
        ids.dedup();
        let mut out: Vec<Device> = ids.into_iter().filter_map(|id| self.device(id)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// The source keys under which a device was seen (for `verify`).
    pub fn keys_of(&self, id: &DeviceId) -> Vec<(TransportKind, String)> {
        self.sightings
            .iter()
            .filter(|(_, (_, s))| &s.device_id == id)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Endpoint;
    use shared_protocol::discovery::PairingState;
    use std::net::SocketAddr;

    fn seen(key: &str, id: &str, addrs: &[&str], pairing: PairingState) -> SourceEvent {
        SourceEvent::Seen(Sighting {
            source_key: key.into(),
            device_id: id.into(),
            friendly_name: format!("speaker {id}"),
            paired: false,
            pairing,
            protocol_major: 1,
            needs_network: false,
            endpoint: Endpoint::Tcp {
                addrs: addrs
                    .iter()
                    .map(|a| a.parse::<SocketAddr>().unwrap())
                    .collect(),
                instance: key.into(),
            },
        })
    }

    fn lost(key: &str) -> SourceEvent {
        SourceEvent::Lost {
            transport: TransportKind::Tcp,
            key: key.into(),
        }
    }

    #[test]
    fn repeated_resolutions_are_one_device_and_address_growth_is_a_change() {
        let mut r = Registry::new();
        let ev = r.apply(seen(
            "a._x",
            "d1",
            &["[fe80::1%2]:7000"],
            PairingState::Open,
        ));
        assert!(matches!(&ev[..], [DeviceEvent::Appeared(d)] if d.id.as_str() == "d1"));
        // Same report again: nothing.
        assert!(r
            .apply(seen(
                "a._x",
                "d1",
                &["[fe80::1%2]:7000"],
                PairingState::Open
            ))
            .is_empty());
        // IPv4 arrives: a change, and the device now prefers it (the source sorts addresses).
        let ev = r.apply(seen(
            "a._x",
            "d1",
            &["10.0.0.1:7000", "[fe80::1%2]:7000"],
            PairingState::Open,
        ));
        match &ev[..] {
            [DeviceEvent::Changed(d)] => {
                assert_eq!(d.tcp_addrs()[0], "10.0.0.1:7000".parse().unwrap())
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.devices().len(), 1);
    }

    #[test]
    fn renamed_instances_merge_by_device_id_and_goodbye_removes() {
        let mut r = Registry::new();
        r.apply(seen("a._x", "d1", &["10.0.0.1:7000"], PairingState::Open));
        // A second instance (mDNS rename "a (2)") for the same id: still one device, changed.
        let ev = r.apply(seen(
            "a (2)._x",
            "d1",
            &["10.0.0.2:7000"],
            PairingState::Open,
        ));
        assert!(matches!(&ev[..], [DeviceEvent::Changed(d)] if d.endpoints.len() == 2));
        assert_eq!(r.devices().len(), 1);
        let ev = r.apply(lost("a._x"));
        assert!(matches!(&ev[..], [DeviceEvent::Changed(d)] if d.endpoints.len() == 1));
        let ev = r.apply(lost("a (2)._x"));
        assert!(matches!(&ev[..], [DeviceEvent::Gone(id)] if id.as_str() == "d1"));
        // A removal for something never seen is ignored.
        assert!(r.apply(lost("never")).is_empty());
        assert!(r.devices().is_empty());
    }

    #[test]
    fn state_change_is_reported_and_latest_wins() {
        let mut r = Registry::new();
        r.apply(seen("a._x", "d1", &["10.0.0.1:7000"], PairingState::Open));
        let ev = r.apply(seen("a._x", "d1", &["10.0.0.1:7000"], PairingState::Closed));
        assert!(matches!(&ev[..], [DeviceEvent::Changed(d)] if d.pairing == PairingState::Closed));
    }

    #[test]
    fn an_instance_that_changes_its_id_moves() {
        let mut r = Registry::new();
        r.apply(seen("a._x", "d1", &["10.0.0.1:7000"], PairingState::Open));
        let ev = r.apply(seen("a._x", "d2", &["10.0.0.1:7000"], PairingState::Open));
        assert_eq!(ev.len(), 2);
        assert!(ev
            .iter()
            .any(|e| matches!(e, DeviceEvent::Appeared(d) if d.id.as_str() == "d2")));
        assert!(ev
            .iter()
            .any(|e| matches!(e, DeviceEvent::Gone(id) if id.as_str() == "d1")));
    }
}
