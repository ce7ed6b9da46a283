//! The "Speakers nearby" list: the core's discovery, plus speakers the user adds by address,
//! merged by device id and sent to the window as one sorted list whenever it changes.
//!
//! Why a layer over [`Discovery`]: the window needs a freshness signal (when each speaker was last
//! heard from), speakers typed in by address (networks where multicast is blocked, and tests on
//! machines where mDNS must stay off) and a whole-list event it can render without diffing.
//!
//! Discovery runs over every transport of the core's [`Connectors`] (mDNS unless turned off, and
//! Bluetooth LE when the computer has an adapter: without one the list quietly stays
//! network-only, as in the CLI).
//!
//! A speaker added by address is probed first through the same connectors: a TCP connect and the
//! plain-text Hello, which carries its name, whether it is linked and its pairing window. Nothing
//! secret is exchanged and no pairing attempt is spent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use companion_app::connect::{address_endpoint, device_from_hello, Connectors};
use companion_app::discovery::{Device, DeviceEvent, Discovery, MdnsOptions, TransportKind};
use companion_app::link::LinkTimeouts;
use shared_protocol::discovery::PairingState;
use tokio::sync::broadcast;

use crate::ipc::{CommandError, DiscoveryMode, SpeakerView, SpeakersView, Transport, WindowState};

/// Where list updates go (the window, or a test).
pub type SpeakersSink = Arc<dyn Fn(SpeakersView) + Send + Sync>;

/// How long probing an address may take, end to end.
const PROBE_TIMEOUTS: LinkTimeouts = LinkTimeouts {
    connect: Duration::from_secs(3),
    handshake: Duration::from_secs(5),
    request: Duration::from_secs(5),
};

/// Longest address text accepted.
const MAX_ADDRESS_LEN: usize = 128;

#[derive(Debug, Default)]
struct Entry {
    /// As discovery sees it.
    discovered: Option<Device>,
    /// As the user added it (probed).
    manual: Option<Device>,
    last_seen_ms: u64,
}

impl Entry {
    /// The device to pair with: discovery's view, plus the typed address.
    fn device(&self) -> Option<Device> {
        match (&self.discovered, &self.manual) {
            (Some(d), Some(m)) => {
                let mut d = d.clone();
                for e in &m.endpoints {
                    if !d.endpoints.contains(e) {
                        d.endpoints.push(e.clone());
                    }
                }
                Some(d)
            }
            (Some(d), None) => Some(d.clone()),
            (None, Some(m)) => Some(m.clone()),
            (None, None) => None,
        }
    }

    fn view(&self) -> Option<SpeakerView> {
        let device = self.device()?;
        let mut transports: Vec<Transport> = Vec::new();
        if let Some(d) = &self.discovered {
            for e in &d.endpoints {
                transports.push(match e.kind() {
                    TransportKind::Tcp => Transport::Wifi,
                    TransportKind::Ble => Transport::Ble,
                });
            }
        }
        if self.manual.is_some() {
            transports.push(Transport::Address);
        }
        transports.sort();
        transports.dedup();
        Some(SpeakerView {
            id: device.id.as_str().to_owned(),
            name: device.name.clone(),
            transports,
            address: device.tcp_addrs().first().map(ToString::to_string),
            paired: device.paired,
            window: match device.pairing {
                PairingState::Open => WindowState::Open,
                PairingState::Closed => WindowState::Closed,
                PairingState::LockedOut => WindowState::LockedOut,
            },
            last_seen_ms: self.last_seen_ms,
            live: self.discovered.is_some(),
            needs_network: device.needs_network,
        })
    }
}

struct Inner {
    mode: Option<DiscoveryMode>,
    message: Option<String>,
    discovery: Option<Discovery>,
    forward: Option<tokio::task::JoinHandle<()>>,
    entries: BTreeMap<String, Entry>,
}

/// The list and the discovery behind it.
pub struct Speakers {
    inner: Mutex<Inner>,
    sink: SpeakersSink,
    connectors: Connectors,
}

impl std::fmt::Debug for Speakers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speakers").finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Speakers {
    /// An empty list that reports to `sink`, over the computer's own transports (mDNS, and
    /// Bluetooth if there is an adapter). Nothing runs until [`Speakers::start`].
    pub fn new(sink: SpeakersSink) -> Arc<Self> {
        Self::with_connectors(sink, Connectors::standard(None))
    }

    /// An empty list over `connectors`.
    pub fn with_connectors(sink: SpeakersSink, connectors: Connectors) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                mode: None,
                message: None,
                discovery: None,
                forward: None,
                entries: BTreeMap::new(),
            }),
            sink,
            connectors,
        })
    }

    /// The transports the list finds speakers on and pairings connect over.
    pub fn connectors(&self) -> &Connectors {
        &self.connectors
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts discovery over every transport (once; later calls just return the list). With
    /// `mdns` false the network is not searched (speakers are added by address); transports
    /// that find speakers by themselves (Bluetooth) still do. Must run inside the async runtime.
    pub fn start(self: &Arc<Self>, mdns: bool) -> SpeakersView {
        let mut inner = self.lock();
        if inner.mode.is_none() {
            if mdns {
                inner.mode = Some(DiscoveryMode::Searching);
            } else {
                inner.mode = Some(DiscoveryMode::Off);
                inner.message =
                    Some("Automatic discovery is turned off on this computer.".to_owned());
            }
            self.begin_search(&mut inner, mdns);
        }
        Self::view_of(&inner)
    }

    /// A fresh [`Discovery`] fed by every transport's source (attached in the background).
    fn begin_search(self: &Arc<Self>, inner: &mut Inner, mdns: bool) {
        let discovery = Discovery::new();
        let (_, rx) = discovery.subscribe();
        let sink = discovery.sink();
        inner.discovery = Some(discovery);
        let me = Arc::downgrade(self);
        inner.forward = Some(tokio::spawn(forward(me.clone(), rx)));
        tokio::spawn(attach_sources(me, sink, mdns));
    }

    /// "Search again" on the list: stops every transport's search and starts it afresh (a new
    /// mDNS daemon sends new queries, Bluetooth scans again), forgets what only the old search
    /// had seen, and asks each speaker added by address again. So a speaker switched off
    /// without a goodbye leaves the list now instead of when its record expires (up to about
    /// 2 minutes), a speaker whose pairing window was just opened shows it, and a search that
    /// had failed (no network yet) is tried again. Answers the list after the re-checks;
    /// discovery's finds follow as events.
    pub async fn search_again(self: &Arc<Self>, mdns: bool) -> SpeakersView {
        let manual: Vec<Device> = {
            let mut inner = self.lock();
            if inner.mode.is_none() {
                drop(inner);
                return self.start(mdns);
            }
            if let Some(t) = inner.forward.take() {
                t.abort();
            }
            if let Some(mut d) = inner.discovery.take() {
                d.shutdown();
            }
            inner.entries.retain(|_, e| {
                e.discovered = None;
                e.manual.is_some()
            });
            if mdns {
                inner.mode = Some(DiscoveryMode::Searching);
                inner.message = None;
            }
            self.begin_search(&mut inner, mdns);
            inner
                .entries
                .values()
                .filter_map(|e| e.manual.clone())
                .collect()
        };
        self.publish();
        for old in manual {
            let Ok((client, reached)) = self.connectors.open(&old.endpoints, PROBE_TIMEOUTS).await
            else {
                continue; // not answering now: the row keeps when it last answered
            };
            if client.agent().is_none() {
                continue;
            }
            let device = device_from_hello(client.peer_hello(), &old.endpoints, &reached);
            drop(client);
            {
                let mut inner = self.lock();
                if let Some(e) = inner.entries.get_mut(device.id.as_str()) {
                    e.manual = Some(device);
                    e.last_seen_ms = now_ms();
                }
            }
            self.publish();
        }
        self.view()
    }

    fn view_of(inner: &Inner) -> SpeakersView {
        let mut speakers: Vec<SpeakerView> =
            inner.entries.values().filter_map(Entry::view).collect();
        speakers.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        SpeakersView {
            discovery: inner.mode.unwrap_or(DiscoveryMode::Off),
            message: inner.message.clone(),
            speakers,
        }
    }

    /// The list now.
    pub fn view(&self) -> SpeakersView {
        Self::view_of(&self.lock())
    }

    fn publish(&self) {
        let view = self.view();
        (self.sink)(view);
    }

    fn apply(&self, event: DeviceEvent) {
        {
            let mut inner = self.lock();
            match event {
                DeviceEvent::Appeared(d) | DeviceEvent::Changed(d) => {
                    let e = inner.entries.entry(d.id.as_str().to_owned()).or_default();
                    e.discovered = Some(d);
                    e.last_seen_ms = now_ms();
                }
                DeviceEvent::Gone(id) => {
                    let remove = match inner.entries.get_mut(id.as_str()) {
                        Some(e) => {
                            e.discovered = None;
                            e.manual.is_none()
                        }
                        None => false,
                    };
                    if remove {
                        inner.entries.remove(id.as_str());
                    }
                }
            }
        }
        self.publish();
    }

    /// The device behind a row, ready for pairing.
    pub fn device(&self, id: &str) -> Option<Device> {
        self.lock().entries.get(id).and_then(Entry::device)
    }

    /// Probes `address` (`IP:PORT`) and adds the speaker that answers.
    pub async fn add(&self, address: &str) -> Result<SpeakerView, CommandError> {
        let addr = parse_address(address)?;
        let endpoints = [address_endpoint(vec![addr])];
        let (client, reached) = self
            .connectors
            .open(&endpoints, PROBE_TIMEOUTS)
            .await
            .map_err(|e| CommandError::new(format!("No speaker answered at {addr}: {e}.")))?;
        if client.agent().is_none() {
            return Err(CommandError::new(format!(
                "Something answered at {addr}, but it is not a speaker that can be set up."
            )));
        }
        let device = device_from_hello(client.peer_hello(), &endpoints, &reached);
        drop(client);
        let id = device.id.as_str().to_owned();
        let view = {
            let mut inner = self.lock();
            let e = inner.entries.entry(id.clone()).or_default();
            e.manual = Some(device);
            e.last_seen_ms = now_ms();
            e.view()
        };
        self.publish();
        view.ok_or_else(|| CommandError::new("the speaker vanished from the list"))
    }

    /// Records what a finished pairing learnt (the speaker is now linked).
    pub fn mark_paired(&self, id: &str) {
        {
            let mut inner = self.lock();
            let Some(e) = inner.entries.get_mut(id) else {
                return;
            };
            for d in [&mut e.discovered, &mut e.manual].into_iter().flatten() {
                d.paired = true;
            }
            e.last_seen_ms = now_ms();
        }
        self.publish();
    }

    /// Stops discovery (the app is closing).
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        if let Some(t) = inner.forward.take() {
            t.abort();
        }
        if let Some(mut d) = inner.discovery.take() {
            d.shutdown();
        }
    }
}

/// Starts every transport's discovery source and adds it to the list's discovery. mDNS that
/// cannot start marks the list failed (with why); a transport that cannot run here (no
/// Bluetooth adapter) is left out quietly.
async fn attach_sources(
    me: std::sync::Weak<Speakers>,
    sink: companion_app::discovery::SourceSink,
    mdns: bool,
) {
    let Some(speakers) = me.upgrade() else {
        return;
    };
    let options = MdnsOptions::default();
    for connector in speakers.connectors.iter() {
        if connector.kind() == TransportKind::Tcp && !mdns {
            continue;
        }
        match connector.discover(sink.clone(), &options).await {
            Ok(Some(source)) => {
                let mut inner = speakers.lock();
                match inner.discovery.as_mut() {
                    Some(d) => d.add_source(source),
                    None => source.shutdown(), // the app is closing
                }
            }
            Ok(None) => {}
            Err(e) => {
                {
                    let mut inner = speakers.lock();
                    inner.mode = Some(DiscoveryMode::Failed);
                    inner.message = Some(format!(
                        "Can't search this network for speakers ({e}). You can still add a speaker by its address."
                    ));
                }
                speakers.publish();
            }
        }
    }
}

async fn forward(me: std::sync::Weak<Speakers>, mut rx: broadcast::Receiver<DeviceEvent>) {
    loop {
        let event = rx.recv().await;
        let Some(speakers) = me.upgrade() else {
            return;
        };
        match event {
            Ok(ev) => speakers.apply(ev),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Missed some: rebuild from discovery's snapshot.
                let now = {
                    let inner = speakers.lock();
                    inner.discovery.as_ref().map(Discovery::devices)
                };
                if let Some(now) = now {
                    for d in now {
                        speakers.apply(DeviceEvent::Changed(d));
                    }
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// `IP:PORT` (IPv6 in brackets), with a sentence for every way it can be wrong.
pub fn parse_address(text: &str) -> Result<SocketAddr, CommandError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(CommandError::new(
            "Type the speaker's address, like 192.168.1.20:4100.",
        ));
    }
    if t.len() > MAX_ADDRESS_LEN {
        return Err(CommandError::new("That address is too long."));
    }
    if let Ok(a) = t.parse::<SocketAddr>() {
        if a.port() == 0 {
            return Err(CommandError::new("Port 0 is not a speaker's port."));
        }
        return Ok(a);
    }
    if t.parse::<std::net::IpAddr>().is_ok() {
        return Err(CommandError::new(
            "Add the port too, like 192.168.1.20:4100 (the speaker shows it next to its address).",
        ));
    }
    Err(CommandError::new(
        "That is not an IP address and port, like 192.168.1.20:4100.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use companion_app::discovery::Endpoint;

    #[test]
    fn addresses_say_what_is_missing() {
        assert_eq!(
            parse_address(" 127.0.0.1:4100 ").unwrap(),
            "127.0.0.1:4100".parse().unwrap()
        );
        assert!(parse_address("[::1]:7").is_ok());
        assert!(parse_address("10.0.0.1")
            .unwrap_err()
            .message
            .contains("port"));
        assert!(parse_address("speaker.local:1").is_err());
        assert!(parse_address("").is_err());
        assert!(parse_address("10.0.0.1:0").is_err());
    }

    fn device(id: &str, name: &str, pairing: PairingState) -> Device {
        Device {
            id: id.into(),
            name: name.into(),
            paired: false,
            pairing,
            protocol_major: 1,
            needs_network: false,
            endpoints: vec![Endpoint::Tcp {
                addrs: vec!["10.0.0.2:4100".parse().unwrap()],
                instance: format!("avs-{id}"),
            }],
        }
    }

    #[test]
    fn events_keep_a_sorted_list_and_gone_removes() {
        let seen: Arc<Mutex<Vec<SpeakersView>>> = Arc::default();
        let s2 = seen.clone();
        let speakers = Speakers::new(Arc::new(move |v| s2.lock().unwrap().push(v)));
        speakers.apply(DeviceEvent::Appeared(device(
            "b",
            "Kitchen",
            PairingState::Open,
        )));
        speakers.apply(DeviceEvent::Appeared(device(
            "a",
            "Study",
            PairingState::Closed,
        )));
        let last = seen.lock().unwrap().last().cloned().unwrap();
        let names: Vec<_> = last.speakers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Kitchen", "Study"]);
        assert_eq!(last.speakers[0].transports, [Transport::Wifi]);
        assert_eq!(last.speakers[0].address.as_deref(), Some("10.0.0.2:4100"));
        assert_eq!(last.speakers[1].window, WindowState::Closed);
        assert!(last.speakers[0].last_seen_ms > 0);
        assert!(last.speakers[0].live);
        speakers.apply(DeviceEvent::Gone("b".into()));
        assert_eq!(speakers.view().speakers.len(), 1);
        assert!(speakers.device("a").is_some() && speakers.device("b").is_none());
        speakers.mark_paired("a");
        assert!(speakers.view().speakers[0].paired);
    }
}
