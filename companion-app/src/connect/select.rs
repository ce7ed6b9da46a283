//! Picking one speaker from what discovery sees: by id, id prefix or name, or, when none is
//! named, the only one that fits what the command needs ([`Wanted`]). Several that fit is an
//! error listing them; none is an error listing what was seen instead.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shared_protocol::discovery::PairingState;

use crate::discovery::{Device, Discovery};
use crate::error::PairError;

/// Which speaker a command can use when none is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// One whose pairing window is open (`pair`).
    ReadyToPair,
    /// Any speaker (`status`, `reset`: a paired speaker has its window closed).
    Any,
}

impl Wanted {
    /// True when `device` fits.
    pub fn admits(self, device: &Device) -> bool {
        match self {
            Wanted::ReadyToPair => device.pairing == PairingState::Open,
            Wanted::Any => true,
        }
    }

    /// How the speakers that fit are described to the user.
    pub fn describe(self) -> &'static str {
        match self {
            Wanted::ReadyToPair => "ready to pair",
            Wanted::Any => "in reach",
        }
    }
}

/// Picks the speaker for `pair`: by `query`, or the only one with an open pairing window, among
/// those some transport of this build can reach.
pub async fn choose_device(
    discovery: &Discovery,
    query: Option<&str>,
    timeout: Duration,
) -> Result<Device, PairError> {
    let usable = crate::connect::Connectors::standard(None);
    select(discovery, query, Wanted::ReadyToPair, timeout, |d| {
        usable.reaches(d)
    })
    .await
}

/// Picks the speaker: by `query`, or the only one `wanted` admits, among those `usable` accepts.
/// Prefers to wait a moment for an IPv4 address when only a link-local IPv6 one arrived first
/// (mdns-notes §5a).
pub async fn select(
    discovery: &Discovery,
    query: Option<&str>,
    wanted: Wanted,
    timeout: Duration,
    usable: impl Fn(&Device) -> bool,
) -> Result<Device, PairError> {
    let started = Instant::now();
    let found = match query {
        Some(q) => {
            discovery
                .wait_for(timeout, |d| d.matches(q) && usable(d))
                .await
        }
        None => {
            let fits = |d: &Device| wanted.admits(d) && usable(d);
            let first = discovery.wait_for(timeout, fits).await;
            if first.is_some() {
                // Other speakers answering the same query arrive within a few tens of ms.
                tokio::time::sleep(Duration::from_millis(150)).await;
                let all: Vec<Device> = discovery.devices().into_iter().filter(fits).collect();
                if all.len() > 1 {
                    return Err(PairError::Ambiguous {
                        wanted,
                        candidates: all
                            .iter()
                            .map(|d| format!("{} ({})", d.name, d.id))
                            .collect(),
                    });
                }
                all.into_iter().next().or(first)
            } else {
                None
            }
        }
    };
    let Some(device) = found else {
        return Err(PairError::NotFound {
            query: query.map(str::to_owned),
            wanted,
            waited: timeout,
            seen: discovery
                .devices()
                .iter()
                .map(|d| format!("{} ({}, pairing {})", d.name, d.id, d.pairing.as_str()))
                .collect(),
        });
    };
    let has_v4 = |d: &Device| d.tcp_addrs().iter().any(SocketAddr::is_ipv4);
    if has_v4(&device) {
        return Ok(device);
    }
    let left = timeout
        .saturating_sub(started.elapsed())
        .min(Duration::from_secs(1));
    let id = device.id.clone();
    Ok(discovery
        .wait_for(left, |d| d.id == id && has_v4(d))
        .await
        .unwrap_or(device))
}
