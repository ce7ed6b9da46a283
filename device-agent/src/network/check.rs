//! The connectivity check: can the speaker reach the LWA and AVS hosts it is configured for?
//!
//! "Has an address" is not "online": a hotel network with a captive portal, a router without an
//! uplink, a broken DNS server or a clock so wrong that TLS fails all leave the speaker unable to
//! exchange the code. So the check does what the exchange will do, step by step, per host: DNS,
//! TCP connect, then an HTTP(S) request through the agent's own LWA client (the same TLS roots,
//! so a TLS failure here is a TLS failure there). A redirect to another host is a captive portal.
//! Each step has a deadline and the whole check is bounded (two step deadlines), so the
//! companion hears an answer in seconds, with the class of failure it can explain to a person.

use std::time::{Duration, Instant};

use shared_protocol::message::{ConnectivityCheck, ConnectivityFailure};
use tokio::net::TcpStream;
use tokio::time::timeout;
use url::Url;

use crate::lwa_client::LwaClient;

/// Runs the check against the token and AVS hosts of an [`LwaClient`]'s endpoints.
#[derive(Debug, Clone)]
pub struct ConnectivityChecker {
    client: LwaClient,
    step_timeout: Duration,
}

struct HostFailure {
    host: String,
    failure: ConnectivityFailure,
}

impl ConnectivityChecker {
    /// Checks `client`'s token and AVS hosts, each step within `step_timeout`.
    pub fn new(client: LwaClient, step_timeout: Duration) -> Self {
        Self {
            client,
            step_timeout,
        }
    }

    /// The hosts checked (scheme://host:port), token host first, without duplicates.
    pub fn targets(&self) -> Vec<Url> {
        let e = self.client.endpoints();
        let mut out: Vec<Url> = Vec::new();
        for u in [&e.token, &e.avs] {
            let mut base = u.clone();
            base.set_path("/");
            base.set_query(None);
            if !out.iter().any(|o| o.origin() == base.origin()) {
                out.push(base);
            }
        }
        out
    }

    /// Runs the check.
    pub async fn run(&self) -> ConnectivityCheck {
        let started = Instant::now();
        // The whole check stays within two step deadlines, so it fits inside the companion's
        // wait for the device info it rides on (10 s).
        let deadline = tokio::time::Instant::now() + self.step_timeout * 2;
        let mut result = Ok(());
        for target in self.targets() {
            let one = tokio::time::timeout_at(deadline, self.check_one(&target)).await;
            let failed = match one {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(_) => HostFailure {
                    host: target.host_str().unwrap_or_default().to_owned(),
                    failure: ConnectivityFailure::Timeout,
                },
            };
            result = Err(failed);
            break;
        }
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(()) => ConnectivityCheck {
                ok: true,
                failure: None,
                host: None,
                elapsed_ms,
            },
            Err(HostFailure { host, failure }) => {
                tracing::info!(%host, ?failure, "connectivity check failed");
                ConnectivityCheck {
                    ok: false,
                    failure: Some(failure),
                    host: Some(host),
                    elapsed_ms,
                }
            }
        }
    }

    /// One target: its name resolves, one of its first two addresses takes a TCP connection,
    /// and a HEAD request is answered without a redirect to another host.
    async fn check_one(&self, target: &Url) -> Result<(), HostFailure> {
        let host = target.host_str().unwrap_or_default().to_owned();
        let port = target.port_or_known_default().unwrap_or(443);
        let steps = async {
            let addrs = self.resolve(&host, port).await?;
            self.reach(&addrs).await?;
            self.head(target).await
        };
        steps.await.map_err(|failure| HostFailure { host, failure })
    }

    /// DNS: the host's addresses (none is a DNS failure too).
    async fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<std::net::SocketAddr>, ConnectivityFailure> {
        let lookup_host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<_> = match timeout(
            self.step_timeout,
            tokio::net::lookup_host((lookup_host, port)),
        )
        .await
        {
            Err(_) => return Err(ConnectivityFailure::Dns),
            Ok(Err(_)) => return Err(ConnectivityFailure::Dns),
            Ok(Ok(a)) => a.collect(),
        };
        if addrs.is_empty() {
            return Err(ConnectivityFailure::Dns);
        }
        Ok(addrs)
    }

    /// TCP: a connection to one of the first two addresses.
    async fn reach(&self, addrs: &[std::net::SocketAddr]) -> Result<(), ConnectivityFailure> {
        let mut timed_out = false;
        // At most two addresses (say one IPv6, one IPv4): the check is bounded, not exhaustive.
        for addr in addrs.iter().take(2) {
            match timeout(self.step_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(_)) => {}
                Err(_) => timed_out = true,
            }
        }
        Err(if timed_out {
            ConnectivityFailure::Timeout
        } else {
            ConnectivityFailure::NoRoute
        })
    }

    /// HTTP(S): a HEAD request answered, not redirected to another host (a captive portal).
    async fn head(&self, target: &Url) -> Result<(), ConnectivityFailure> {
        let response = timeout(
            self.step_timeout,
            self.client.http().head(target.clone()).send(),
        )
        .await;
        match response {
            Err(_) => Err(ConnectivityFailure::Timeout),
            Ok(Err(e)) if e.is_timeout() => Err(ConnectivityFailure::Timeout),
            // Connected a moment ago, so a failed request is the TLS handshake (or a peer that
            // closes on us, which on a portal network is the same story).
            Ok(Err(_)) => Err(ConnectivityFailure::Tls),
            Ok(Ok(resp)) if resp.status().is_redirection() => {
                let elsewhere = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| target.join(l).ok())
                    .is_some_and(|l| l.host_str() != target.host_str());
                if elsewhere {
                    Err(ConnectivityFailure::CaptivePortal)
                } else {
                    Ok(())
                }
            }
            Ok(Ok(_)) => Ok(()),
        }
    }
}
