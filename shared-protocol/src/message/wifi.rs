//! Network messages: the speaker's network status, the Wi-Fi scan, and joining a network.
//!
//! A speaker fresh out of the box has no network, yet the code exchange needs Login with Amazon.
//! So a pairing puts the speaker on the network first (as Espressif's BLE provisioning, Matter's
//! network commissioning and the Alexa app do), over the sealed session only: these messages are
//! variants of [`super::CompanionMessage`] / [`super::AgentMessage`], so they cannot cross before
//! the PAKE. Added in protocol 1.1; the agent announces [`super::Capability::Wifi`] when it can
//! join networks.
//!
//! SSIDs are bytes, not strings (IEEE 802.11: 0-32 octets, any value, NULs included). They cross
//! the wire as lowercase hex so no byte is lost; [`Ssid::display`] gives the lossy UTF-8 form for
//! a person.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secret::WifiPassphrase;

/// Longest SSID (IEEE 802.11).
pub const MAX_SSID_LEN: usize = 32;
/// Most networks in one scan answer (bounds a frame; the strongest are kept).
pub const MAX_SCAN_RESULTS: usize = 40;
/// Longest passphrase accepted: 64 hex digits is WPA2's longest; SAE passwords are capped here.
pub const MAX_PASSPHRASE_LEN: usize = 128;

/// A Wi-Fi network name: 0-32 arbitrary bytes. Empty means hidden (the AP does not broadcast it).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssid(Vec<u8>);

/// An SSID longer than 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an SSID is at most 32 bytes (got {0})")]
pub struct SsidTooLong(pub usize);

impl Ssid {
    /// Wraps raw SSID bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, SsidTooLong> {
        let bytes = bytes.into();
        if bytes.len() > MAX_SSID_LEN {
            return Err(SsidTooLong(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name for a person: UTF-8 with invalid bytes replaced, control characters escaped.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0)
            .chars()
            .flat_map(|c| {
                if c.is_control() {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect()
    }

    /// True for an empty SSID (a hidden network in a scan).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lowercase hex, the wire form.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the wire form.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() % 2 != 0 || hex.len() > 2 * MAX_SSID_LEN {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Self(bytes))
    }
}

impl fmt::Debug for Ssid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ssid({:?})", self.display())
    }
}

impl fmt::Display for Ssid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl Serialize for Ssid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Ssid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("an SSID is 0-32 bytes as lowercase hex"))
    }
}

/// Why the speaker cannot reach Login with Amazon / AVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectivityFailure {
    /// No network, or no route to the host (no interface up, connection refused/unreachable).
    NoRoute,
    /// The host name did not resolve.
    Dns,
    /// TCP connected but the TLS handshake failed (wrong clock, interception).
    Tls,
    /// A captive portal answers instead of the host (hotel or guest Wi-Fi asking for a login).
    CaptivePortal,
    /// No answer within the check's time limit.
    Timeout,
}

impl ConnectivityFailure {
    /// A sentence for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NoRoute => "the speaker has no route to the internet",
            Self::Dns => "the speaker cannot resolve Amazon's host names (DNS)",
            Self::Tls => {
                "the speaker cannot open a secure connection to Amazon (TLS; check its clock)"
            }
            Self::CaptivePortal => "the network asks for a login page first (captive portal)",
            Self::Timeout => "Amazon did not answer the speaker in time",
        }
    }
}

/// The outcome of the agent's connectivity check to its configured LWA and AVS hosts
/// (DNS + TCP + TLS handshake, bounded time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectivityCheck {
    /// Every host answered.
    pub ok: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<ConnectivityFailure>,
    /// The host that failed (`api.amazon.com`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// How long the check took.
    pub elapsed_ms: u64,
}

/// The speaker's network as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// The connectivity check passed: the sign-in may start.
    pub online: bool,
    /// The interface carrying the default route or the Wi-Fi interface (`wlan0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The Wi-Fi network it is on, if it is on Wi-Fi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssid: Option<Ssid>,
    /// Its address (IPv4 or IPv6, text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The check's details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<ConnectivityCheck>,
    /// The agent can scan and join Wi-Fi networks (a backend other than `none`).
    pub can_provision: bool,
}

/// A network's security, as far as the speaker can join it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WifiSecurity {
    /// No passphrase.
    Open,
    /// WPA2 personal (or WPA2/WPA3 transition).
    Wpa2Psk,
    /// WPA3 personal only (SAE).
    Wpa3Sae,
    /// 802.1X enterprise: not supported (needs a user name and certificates).
    Enterprise,
    /// WEP, OWE or something else: not supported.
    #[serde(other)]
    Unsupported,
}

impl WifiSecurity {
    /// True when the speaker can join it with at most a passphrase.
    pub fn is_supported(self) -> bool {
        matches!(self, Self::Open | Self::Wpa2Psk | Self::Wpa3Sae)
    }

    /// True when joining needs a passphrase.
    pub fn needs_passphrase(self) -> bool {
        matches!(self, Self::Wpa2Psk | Self::Wpa3Sae)
    }
}

/// Radio band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WifiBand {
    /// 2.4 GHz.
    #[serde(rename = "2.4ghz")]
    Ghz2_4,
    /// 5 GHz.
    #[serde(rename = "5ghz")]
    Ghz5,
    /// 6 GHz.
    #[serde(rename = "6ghz")]
    Ghz6,
    /// Not known.
    #[serde(other)]
    Unknown,
}

impl WifiBand {
    /// The band of a channel's centre frequency.
    pub fn from_mhz(mhz: u32) -> Self {
        match mhz {
            2400..=2500 => Self::Ghz2_4,
            4900..=5899 => Self::Ghz5,
            5925..=7125 => Self::Ghz6,
            _ => Self::Unknown,
        }
    }
}

/// One network in a scan (the strongest access point of that SSID and security).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WifiNetwork {
    /// Its name; empty for a hidden network.
    pub ssid: Ssid,
    /// Signal strength, percent (0-100).
    pub signal: u8,
    /// Its security.
    pub security: WifiSecurity,
    /// Its band.
    pub band: WifiBand,
    /// The speaker has a saved profile for it.
    #[serde(default)]
    pub known: bool,
}

/// Answers `ScanWifi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WifiScan {
    /// Strongest first, at most [`MAX_SCAN_RESULTS`].
    pub networks: Vec<WifiNetwork>,
}

/// Companion → agent: join this network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectWifi {
    /// The network's name (bytes).
    pub ssid: Ssid,
    /// Absent for an open network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<WifiPassphrase>,
    /// The network does not broadcast its name: probe for it.
    #[serde(default)]
    pub hidden: bool,
}

/// Where the agent is in joining a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WifiStage {
    /// Finding and associating with the access point.
    Associating,
    /// The WPA handshake (the passphrase is being checked).
    Authenticating,
    /// DHCP / router advertisements.
    GettingAddress,
    /// The connectivity check to LWA and AVS.
    CheckingInternet,
}

/// Agent → companion while joining.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WifiProgress {
    /// The stage just entered.
    pub stage: WifiStage,
}

/// Exactly why joining failed. In every case the speaker is back on the network it was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WifiFailure {
    /// The access point refused the passphrase.
    WrongPassword,
    /// No network of that name is in range.
    NetworkNotFound,
    /// Joined, but no address came (DHCP).
    NoAddress,
    /// Joined with an address, but LWA/AVS cannot be reached.
    NoInternet,
    /// Joined, but a captive portal stands in the way.
    CaptivePortal,
    /// Nothing decided within the time limit.
    Timeout,
    /// Enterprise, WEP or another security the speaker cannot join.
    UnsupportedSecurity,
    /// The speaker cannot join networks (backend `none`).
    NotSupported,
    /// Another Wi-Fi request is running.
    Busy,
    /// Anything else (the network stack failed).
    #[serde(other)]
    Internal,
}

impl WifiFailure {
    /// The reason in words, naming the network ("Wrong password for Home-5G").
    pub fn describe(self, ssid: &Ssid) -> String {
        let name = ssid.display();
        match self {
            Self::WrongPassword => format!("Wrong password for {name}"),
            Self::NetworkNotFound => format!("{name} is not in range of the speaker"),
            Self::NoAddress => format!("{name} gave the speaker no address (DHCP)"),
            Self::NoInternet => format!("{name} does not reach the internet from the speaker"),
            Self::CaptivePortal => {
                format!("{name} needs a login page (captive portal); speakers can't use it")
            }
            Self::Timeout => format!("Joining {name} took too long"),
            Self::UnsupportedSecurity => {
                format!("{name} uses a security the speaker can't join (enterprise or WEP)")
            }
            Self::NotSupported => "This speaker cannot join Wi-Fi networks".to_owned(),
            Self::Busy => "The speaker is already joining a network".to_owned(),
            Self::Internal => format!("The speaker's network stack failed joining {name}"),
        }
    }
}

/// The end of a `ConnectWifi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WifiResult {
    /// On the network, and the connectivity check passed.
    Connected {
        /// The network.
        ssid: Ssid,
        /// The speaker's address on it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    /// Not joined; the previous network (if any) is active again.
    Failed {
        /// The network that was tried.
        ssid: Ssid,
        /// Why, by kind (the companion picks its advice from it).
        reason: WifiFailure,
        /// The reason in words. Never contains the passphrase.
        message: String,
    },
}
