//! The mDNS transport: browse `_avs-pair._tcp` with mdns-sd and report what resolves.
//!
//! Measured behaviour this code is shaped by (`shared/reference/mdns-notes.md` §5):
//!
//! - a resolution is reported again whenever the address set grows, and the first one may carry
//!   only a link-local IPv6 address: every report replaces the previous one for that instance,
//!   and addresses are sorted IPv4 first, then routable IPv6, then link-local IPv6 with its
//!   scope (a link-local address without a scope cannot be used and is dropped);
//! - instances are renamed on a clash: devices are keyed by the TXT `id`, not the label;
//! - goodbye removes an instance about 1 s later; a crash only after 120 s, so
//!   [`DiscoverySource::verify`] (a 2 s re-query) is what notices a dead speaker quickly;
//! - one long-lived browse: re-browsing inside the responder's 1 s rate-limit window is ignored;
//! - a browse's first answer takes 20–100 ms (random delays on both sides), or ~1.05 s when
//!   the speaker multicast its records in the last second: beside the browse, a one-shot query
//!   ([`super::oneshot`], answered by unicast at once) finds speakers already advertising in one
//!   round trip. It only adds what the browse has not reported yet.
//!
//! Creating the daemon joins the multicast group on every up interface *of the current network
//! namespace* before an interface filter can apply (§2). A real laptop is fine with that; tests
//! on shared machines run this inside a network namespace they own.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mdns_sd::{IfKind, ScopedIp, ServiceDaemon, ServiceEvent, TxtProperties};
use shared_protocol::discovery::{TxtRecord, MDNS_SERVICE_TYPE};

use super::oneshot::{self, Resolved};
use super::{
    DiscoveryError, DiscoverySource, Endpoint, Sighting, SourceEvent, SourceSink, TransportKind,
};

/// How often the daemon re-reads the interface list.
const IP_CHECK_INTERVAL_SECS: u32 = 1;

/// mDNS options.
#[derive(Debug, Clone)]
pub struct MdnsOptions {
    /// Only these interfaces (by name); `None` = all.
    pub interfaces: Option<Vec<String>>,
    /// Use IPv6 too (default on: IPv4-only networks just won't answer over it).
    pub ipv6: bool,
    /// How long a verify waits for an answer before dropping the device.
    pub verify_timeout: Duration,
    /// Also send the one-shot query at start ([`super::oneshot`]; default on). Off: the browse
    /// alone (how discovery worked before; the bench compares the two).
    pub oneshot: bool,
}

impl Default for MdnsOptions {
    fn default() -> Self {
        Self {
            interfaces: None,
            ipv6: true,
            verify_timeout: Duration::from_secs(2),
            oneshot: true,
        }
    }
}

/// A running mDNS browse.
pub struct MdnsSource {
    daemon: ServiceDaemon,
    options: MdnsOptions,
    /// Ends the one-shot query early.
    stop: Arc<AtomicBool>,
    /// The instances the browse has reported (the others were seen by the one-shot query only).
    browsed: Resolved,
    /// Where reports go (a verify of a one-shot-only instance reports its loss itself).
    sink: SourceSink,
    /// The one-shot query's interfaces.
    interfaces: Vec<std::net::Ipv4Addr>,
}

impl std::fmt::Debug for MdnsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdnsSource")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn mdns_err(e: mdns_sd::Error) -> DiscoveryError {
    DiscoveryError::Mdns(e.to_string())
}

impl MdnsSource {
    /// Starts the daemon, applies the interface filter, and starts browsing; reports go to `sink`.
    pub fn start(options: MdnsOptions, sink: SourceSink) -> Result<Self, DiscoveryError> {
        if let Some(names) = &options.interfaces {
            check_interfaces(names)?;
        }
        let daemon = start_daemon(&options)?;
        let rx = daemon.browse(MDNS_SERVICE_TYPE).map_err(mdns_err)?;
        let browsed = Resolved::default();
        let stop = Arc::new(AtomicBool::new(false));
        let interfaces = if options.oneshot {
            oneshot::query_interfaces(options.interfaces.as_deref())
        } else {
            Vec::new()
        };
        if options.oneshot {
            start_oneshot(&interfaces, &sink, &browsed, &stop)?;
        }
        let (browse_sink, browse_seen) = (sink.clone(), browsed.clone());
        std::thread::Builder::new()
            .name("mdns-browse".into())
            .spawn(move || forward_browse(&rx, &browse_sink, &browse_seen))
            .map_err(|e| DiscoveryError::Mdns(format!("cannot start the browse thread: {e}")))?;
        Ok(Self {
            daemon,
            options,
            stop,
            browsed,
            sink,
            interfaces,
        })
    }
}

/// The mDNS daemon, on the interfaces and IP versions `options` allow.
fn start_daemon(options: &MdnsOptions) -> Result<ServiceDaemon, DiscoveryError> {
    let daemon = ServiceDaemon::new().map_err(mdns_err)?;
    // Re-scan interfaces every second instead of every 5 s: an address that was still
    // tentative (IPv6 DAD) when the daemon started would otherwise keep the interface out
    // of the browse for up to 5 s. The companion is short-lived; the extra wakeups are
    // free.
    daemon
        .set_ip_check_interval(IP_CHECK_INTERVAL_SECS)
        .map_err(mdns_err)?;
    if let Some(names) = &options.interfaces {
        // Last matching selection wins (mdns-notes §2): everything off, then ours on.
        daemon.disable_interface(IfKind::All).map_err(mdns_err)?;
        let kinds: Vec<IfKind> = names.iter().map(|n| IfKind::Name(n.clone())).collect();
        daemon.enable_interface(kinds).map_err(mdns_err)?;
    }
    if !options.ipv6 {
        daemon.disable_interface(IfKind::IPv6).map_err(mdns_err)?;
    }
    Ok(daemon)
}

/// The browse thread: reports what the daemon resolves or loses to `sink`, through `seen` (so
/// a one-shot answer for the same instance is dropped). Ends when the daemon shuts down (the
/// channel disconnects) or nobody listens.
fn forward_browse(rx: &mdns_sd::Receiver<ServiceEvent>, sink: &SourceSink, seen: &Resolved) {
    while let Ok(event) = rx.recv() {
        let Some(report) = browse_report(event) else {
            continue;
        };
        let key = match &report {
            SourceEvent::Seen(s) => s.source_key.clone(),
            SourceEvent::Lost { key, .. } => key.clone(),
        };
        let mut gone = false;
        seen.browsed(&key, || gone = sink.send(report).is_err());
        if gone {
            break;
        }
    }
}

/// What a browse event means for the list: a resolved instance is a sighting (if its TXT and
/// addresses make one), a removed one is lost; the rest say nothing.
fn browse_report(event: ServiceEvent) -> Option<SourceEvent> {
    match event {
        ServiceEvent::ServiceResolved(r) => {
            let props = r.txt_properties.clone().into_property_map_str();
            sighting(
                &r.fullname,
                &props,
                usable_addrs(r.addresses.iter(), r.port),
            )
        }
        ServiceEvent::ServiceRemoved(_, fullname) => Some(SourceEvent::Lost {
            transport: TransportKind::Tcp,
            key: fullname,
        }),
        _ => None,
    }
}

impl DiscoverySource for MdnsSource {
    fn kind(&self) -> TransportKind {
        TransportKind::Tcp
    }

    fn verify(&self, key: &str) -> Result<(), DiscoveryError> {
        if self.browsed.contains(key) || !self.options.oneshot {
            return self
                .daemon
                .verify(key.to_owned(), self.options.verify_timeout)
                .map_err(mdns_err);
        }
        // Seen by the one-shot query only: mdns-sd has no record of it to verify (and would
        // never report it gone). Ask again the same way; no answer in time = gone.
        let (key, timeout) = (key.to_owned(), self.options.verify_timeout);
        let (interfaces, sink, browsed) = (
            self.interfaces.clone(),
            self.sink.clone(),
            self.browsed.clone(),
        );
        std::thread::Builder::new()
            .name("mdns-verify".into())
            .spawn(move || {
                let found = AtomicBool::new(false);
                let result = oneshot::run(&interfaces, timeout, &found, |answer| {
                    if answer.instance.eq_ignore_ascii_case(&key) {
                        found.store(true, Ordering::Relaxed);
                    }
                });
                if let Err(e) = result {
                    tracing::debug!("one-shot verify stopped: {e}");
                }
                if !found.load(Ordering::Relaxed) {
                    browsed.unless_browsed(&key, || {
                        let _ = sink.send(SourceEvent::Lost {
                            transport: TransportKind::Tcp,
                            key: key.clone(),
                        });
                    });
                }
            })
            .map_err(|e| DiscoveryError::Mdns(format!("cannot start the verify: {e}")))?;
        Ok(())
    }

    fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for MdnsSource {
    fn drop(&mut self) {
        // Idempotent: a second shutdown just fails quietly.
        self.shutdown();
    }
}

/// A sighting from a resolved instance's TXT properties and addresses (`None`: a bad TXT record,
/// logged and ignored). The browse and the one-shot query report through it alike.
fn sighting(
    fullname: &str,
    props: &HashMap<String, String>,
    addrs: Vec<SocketAddr>,
) -> Option<SourceEvent> {
    match TxtRecord::from_properties(props) {
        Ok(txt) => {
            let endpoint = Endpoint::Tcp {
                addrs,
                instance: fullname.to_owned(),
            };
            Some(SourceEvent::Seen(Sighting::from_txt(
                fullname, txt, endpoint,
            )))
        }
        Err(e) => {
            tracing::debug!(instance = %fullname, "ignoring a service with a bad TXT record: {e}");
            None
        }
    }
}

/// Starts the one-shot query ([`oneshot`]) on its own thread: its answers are reported unless
/// the browse got there first.
fn start_oneshot(
    interfaces: &[std::net::Ipv4Addr],
    sink: &SourceSink,
    browsed: &Resolved,
    stop: &Arc<AtomicBool>,
) -> Result<(), DiscoveryError> {
    let interfaces = interfaces.to_vec();
    let (sink, browsed, stop) = (sink.clone(), browsed.clone(), stop.clone());
    std::thread::Builder::new()
        .name("mdns-oneshot".into())
        .spawn(move || {
            let result = oneshot::run(&interfaces, oneshot::LISTEN, &stop, |answer| {
                let props = TxtProperties::from(&answer.txt[..]).into_property_map_str();
                if let Some(report) =
                    sighting(&answer.instance, &props, oneshot::socket_addrs(&answer))
                {
                    browsed.unless_browsed(&answer.instance, || {
                        let _ = sink.send(report);
                    });
                }
            });
            if let Err(e) = result {
                tracing::debug!("one-shot mDNS query stopped: {e}");
            }
        })
        .map_err(|e| DiscoveryError::Mdns(format!("cannot start the one-shot query: {e}")))?;
    Ok(())
}

/// Sorts and filters a resolution's addresses: IPv4, then routable IPv6, then link-local IPv6
/// with a scope; unspecified, multicast and unscoped link-local addresses are dropped.
pub fn usable_addrs<'a>(addrs: impl Iterator<Item = &'a ScopedIp>, port: u16) -> Vec<SocketAddr> {
    let mut out: Vec<(u8, SocketAddr)> = addrs
        .filter_map(|a| match a {
            ScopedIp::V4(v4) => {
                let ip = *v4.addr();
                (!ip.is_unspecified() && !ip.is_multicast())
                    .then_some((0, SocketAddr::new(IpAddr::V4(ip), port)))
            }
            ScopedIp::V6(v6) => {
                let ip = *v6.addr();
                if ip.is_unspecified() || ip.is_multicast() {
                    None
                } else if ip.is_unicast_link_local() {
                    let scope = v6.scope_id().index;
                    (scope != 0)
                        .then_some((2, SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))))
                } else {
                    Some((1, SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0))))
                }
            }
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out.into_iter().map(|(_, a)| a).collect()
}

fn check_interfaces(names: &[String]) -> Result<(), DiscoveryError> {
    // Linux: the interfaces of this thread's network namespace. (`/sys/class/net` would show
    // the namespace sysfs was mounted in, which differs for a thread that entered another.)
    // Elsewhere trust the user: mdns-sd simply won't find a wrong name.
    let Ok(dev) = std::fs::read_to_string("/proc/thread-self/net/dev") else {
        return Ok(());
    };
    let present: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    for n in names {
        if !present.contains(&n.as_str()) {
            return Err(DiscoveryError::NoSuchInterface(n.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn prefers_ipv4_then_routable_v6_then_scoped_link_local() {
        let v4 = ScopedIp::from(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let g6 = ScopedIp::from(IpAddr::V6("2001:db8::1".parse().unwrap()));
        // An unscoped link-local address is useless: dropped.
        let ll_unscoped = ScopedIp::from(IpAddr::V6("fe80::1".parse().unwrap()));
        let addrs = [ll_unscoped, g6, v4];
        let sorted = usable_addrs(addrs.iter(), 7000);
        assert!(check_interfaces(&["lo".to_owned()]).is_ok());
        assert!(matches!(
            check_interfaces(&["no-such-if0".to_owned()]),
            Err(DiscoveryError::NoSuchInterface(_))
        ));
        assert_eq!(
            sorted,
            vec![
                "10.0.0.1:7000".parse::<SocketAddr>().unwrap(),
                "[2001:db8::1]:7000".parse().unwrap()
            ]
        );
    }
}
