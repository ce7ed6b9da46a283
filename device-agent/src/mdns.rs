//! mDNS/DNS-SD advertising of `_avs-pair._tcp` (mdns-sd), per `reference/mdns-notes.md`.
//!
//! The instance name carries the device id (`avs-<id>`), so two speakers never fight over a
//! name; the TXT record (from the protocol crate) carries whether the speaker is paired and the
//! state of its pairing window, and is re-announced whenever either changes so a companion's
//! list stays current. On shutdown the daemon sends goodbye packets (TTL 0) so companions drop
//! the speaker within a second instead of after the 120 s record TTL.
//!
//! Note: creating a `ServiceDaemon` joins the mDNS multicast group on every interface at once,
//! before the interface filter applies. That is fine on a speaker; tests run it only inside a
//! network namespace they created.

use std::collections::HashMap;
use std::time::Duration;

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
}

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
        let info = ServiceInfo::new(MDNS_SERVICE_TYPE, &name, &host, "", self.port, map)
            .map_err(|e| MdnsError(e.to_string()))?
            .enable_addr_auto();
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
