//! mDNS/DNS-SD advertising of `_avs-pair._tcp` (mdns-sd), per `reference/mdns-notes.md`.
//!
//! The instance name carries the device id (`avs-<id>`), so two speakers never fight over a
//! name; the TXT record (from the protocol crate) carries whether the speaker is paired and the
//! state of its pairing window, and is re-announced whenever either changes so a companion's
//! list stays current. On shutdown the daemon sends goodbye packets (TTL 0) so companions drop
//! the speaker within a second instead of after the 120 s record TTL.
//!
//! A change is announced at once, without probing the name again (RFC 6762 §8.4: changed
//! record data is announced; probing is for a name not yet ours). mdns-sd would otherwise take
//! the new TXT record for a new one, probe for ~0.75 s and answer no query meanwhile: a
//! companion already browsing saw a window opened ~0.9 s late, one started just after it found
//! nothing until then. Only the first registration probes (and an update that comes before that
//! probe can have finished).
//!
//! Note: creating a `ServiceDaemon` joins the mDNS multicast group on every interface at once,
//! before the interface filter applies. That is fine on a speaker; tests run it only inside a
//! network namespace they created.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};
use shared_protocol::discovery::{instance_name, TxtRecord, MDNS_SERVICE_TYPE};
use shared_protocol::message::AgentSummary;

/// Why advertising could not start.
#[derive(Debug, thiserror::Error)]
#[error("mDNS advertising: {0}")]
pub struct MdnsError(String);

/// A running advertisement.
pub struct Advertiser {
    daemon: ServiceDaemon,
    fullname: String,
    port: u16,
    last: Option<Vec<(String, String)>>,
    /// When the name was first registered (its probe is over [`PROBE_DONE`] later).
    registered: Option<Instant>,
}

/// Past this after the first registration the name's probe is over (mdns-sd: a 0–250 ms wait,
/// three probes 250 ms apart; measured ~0.8–1.0 s to the first announcement).
const PROBE_DONE: Duration = Duration::from_secs(2);

impl std::fmt::Debug for Advertiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advertiser")
            .field("fullname", &self.fullname)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Advertiser {
    /// Starts the daemon (restricted to `interfaces` when not empty) and registers the service.
    pub fn start(
        summary: &AgentSummary,
        port: u16,
        interfaces: &[String],
    ) -> Result<Self, MdnsError> {
        let daemon = ServiceDaemon::new().map_err(|e| MdnsError(e.to_string()))?;
        if !interfaces.is_empty() {
            daemon
                .disable_interface(IfKind::All)
                .map_err(|e| MdnsError(e.to_string()))?;
            daemon
                .enable_interface(
                    interfaces
                        .iter()
                        .map(|i| IfKind::Name(i.clone()))
                        .collect::<Vec<_>>(),
                )
                .map_err(|e| MdnsError(e.to_string()))?;
        }
        // Interface changes are rare on a speaker; re-scan every 30 s instead of every 5 s.
        let _ = daemon.set_ip_check_interval(30);
        let name = instance_name(&summary.device_id);
        let fullname = format!("{name}.{MDNS_SERVICE_TYPE}");
        let mut adv = Self {
            daemon,
            fullname,
            port,
            last: None,
            registered: None,
        };
        adv.update(summary)?;
        tracing::info!(instance = %name, port, "advertising over mDNS");
        Ok(adv)
    }

    /// Re-announces the TXT record if it changed.
    pub fn update(&mut self, summary: &AgentSummary) -> Result<(), MdnsError> {
        let props = TxtRecord::for_agent(summary).to_properties();
        if self.last.as_ref() == Some(&props) {
            return Ok(());
        }
        let name = instance_name(&summary.device_id);
        let host = format!("{name}.local.");
        let map: HashMap<String, String> = props.iter().cloned().collect();
        let mut info = ServiceInfo::new(MDNS_SERVICE_TYPE, &name, &host, "", self.port, map)
            .map_err(|e| MdnsError(e.to_string()))?
            .enable_addr_auto();
        let registered = *self.registered.get_or_insert_with(Instant::now);
        if registered.elapsed() >= PROBE_DONE {
            // The name is ours already: announce the new data now (RFC 6762 §8.4).
            info.set_requires_probe(false);
        }
        self.daemon
            .register(info)
            .map_err(|e| MdnsError(e.to_string()))?;
        tracing::debug!(txt = ?props, "mDNS TXT updated");
        self.last = Some(props);
        Ok(())
    }

    /// Sends goodbye packets and stops the daemon.
    pub async fn shutdown(self) {
        let Self {
            daemon, fullname, ..
        } = self;
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(rx) = daemon.unregister(&fullname) {
                let _ = rx.recv_timeout(Duration::from_secs(2));
            }
            if let Ok(rx) = daemon.shutdown() {
                let _ = rx.recv_timeout(Duration::from_secs(2));
            }
        })
        .await;
        tracing::info!("mDNS goodbye sent");
    }
}
