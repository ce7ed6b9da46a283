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

    async fn check_one(&self, target: &Url) -> Result<(), HostFailure> {
        let host = target.host_str().unwrap_or_default().to_owned();
        let fail = |failure| HostFailure {
            host: host.clone(),
            failure,
        };
        let port = target.port_or_known_default().unwrap_or(443);
        let lookup_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let addrs: Vec<_> = match timeout(
            self.step_timeout,
            tokio::net::lookup_host((lookup_host.as_str(), port)),
        )
        .await
        {
            Err(_) => return Err(fail(ConnectivityFailure::Dns)),
            Ok(Err(_)) => return Err(fail(ConnectivityFailure::Dns)),
            Ok(Ok(a)) => a.collect(),
        };
        if addrs.is_empty() {
            return Err(fail(ConnectivityFailure::Dns));
        }
        let mut connected = false;
        let mut timed_out = false;
        // At most two addresses (say one IPv6, one IPv4): the check is bounded, not exhaustive.
        for addr in addrs.iter().take(2) {
            match timeout(self.step_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(_)) => {
                    connected = true;
                    break;
                }
                Ok(Err(_)) => {}
                Err(_) => timed_out = true,
            }
        }
        if !connected {
            return Err(fail(if timed_out {
                ConnectivityFailure::Timeout
            } else {
                ConnectivityFailure::NoRoute
            }));
        }
        let response = timeout(
            self.step_timeout,
            self.client.http().head(target.clone()).send(),
        )
        .await;
        match response {
            Err(_) => Err(fail(ConnectivityFailure::Timeout)),
            Ok(Err(e)) if e.is_timeout() => Err(fail(ConnectivityFailure::Timeout)),
            // Connected a moment ago, so a failed request is the TLS handshake (or a peer that
            // closes on us, which on a portal network is the same story).
            Ok(Err(_)) => Err(fail(ConnectivityFailure::Tls)),
            Ok(Ok(resp)) if resp.status().is_redirection() => {
                let elsewhere = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| target.join(l).ok())
                    .is_some_and(|l| l.host_str() != target.host_str());
                if elsewhere {
                    Err(fail(ConnectivityFailure::CaptivePortal))
                } else {
                    Ok(())
                }
            }
            Ok(Ok(_)) => Ok(()),
        }
    }
}
