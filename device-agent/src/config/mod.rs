//! Configuration: a TOML file, overridden by environment variables (`AVS_AGENT_*`), overridden
//! by command-line flags. Every key has the same name in all three places (`client_id` in TOML,
//! `AVS_AGENT_CLIENT_ID`, `--client-id`).
//!
//! Each key is declared once, in [`ConfigValues`] (the shape of the file, the environment and
//! the flags; values that have a type, such as `region` and `link_bind`, are parsed there, see
//! [`Parsed`]). Keys that belong together resolve into one sub-config each ([`LwaConfig`],
//! [`LinkConfig`], [`MdnsConfig`], [`BleConfig`]), which checks its keys and fills defaults.
//!
//! [`AgentConfig::resolve`] checks everything up front, so a bad value is reported at start
//! with the key's name and the fix, not as a confusing failure an hour later at the first
//! refresh.

mod network;
mod parsed;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use shared_protocol::ids::{ClientId, DeviceId, DeviceSerialNumber, ProductId};
use shared_protocol::lwa::{LwaEndpoints, Region};

pub use self::network::{NetworkBackendKind, NetworkConfig};
pub use self::parsed::Parsed;
use crate::auth_delegate::AuthDelegateConfig;
use crate::cbl::CblPolicy;
use crate::pairing::PairingConfig;

/// Where the daemon keeps its files unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/avs-device-agent";
/// The local API socket's name in the state directory, unless `socket_path` says otherwise.
pub const SOCKET_FILE: &str = "agent.sock";
/// The setup code file's name in the state directory, unless `setup_code_file` says otherwise.
pub const SETUP_CODE_FILE: &str = "setup-code";

/// A configuration problem, naming the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is missing or wrong.
    #[error("config key `{key}`: {problem}; fix: {fix}")]
    Invalid {
        /// The key (TOML name).
        key: &'static str,
        /// What is wrong.
        problem: String,
        /// What to do.
        fix: String,
    },
    /// The file could not be read or parsed.
    #[error("config file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: FileError,
    },
}

/// Why the config file was not usable.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It could not be read.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// It is not TOML of the expected shape (toml names the unknown or mistyped key and its
    /// line).
    #[error(transparent)]
    Parse(#[from] toml::de::Error),
}

fn invalid(key: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Declares [`ConfigValues`] and its overlay from one list of keys.
macro_rules! config_keys {
    ($(#[$sm:meta])* pub struct $name:ident { $($(#[$m:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$sm])*
        pub struct $name { $($(#[$m])* pub $f: $t,)* }

        impl $name {
            /// `self` with every value set in `over` replaced.
            pub fn overlay(self, over: $name) -> $name {
                $name { $($f: over.$f.or(self.$f),)* }
            }
        }
    };
}

config_keys! {
    /// The TOML file and the flag/env overrides share this shape: every key optional.
    #[derive(Debug, Default, Clone, Deserialize, clap::Args)]
    #[serde(deny_unknown_fields)]
    pub struct ConfigValues {
        /// LWA client id ("Other devices and platforms" security profile; needed for CBL).
        #[arg(long, env = "AVS_AGENT_CLIENT_ID")]
        pub client_id: Option<String>,
        /// AVS product id (required).
        #[arg(long, env = "AVS_AGENT_PRODUCT_ID")]
        pub product_id: Option<String>,
        /// Device serial number (default: derived from /etc/machine-id).
        #[arg(long, env = "AVS_AGENT_DSN")]
        pub dsn: Option<String>,
        /// Name shown to the companion ("Kitchen speaker").
        #[arg(long, env = "AVS_AGENT_FRIENDLY_NAME")]
        pub friendly_name: Option<String>,
        /// Amazon region for the default endpoints: na, eu or fe.
        #[arg(long, env = "AVS_AGENT_REGION")]
        pub region: Option<Parsed<Region>>,
        /// One base URL for every LWA/AVS endpoint (the emulator). http:// only for loopback.
        #[arg(long, env = "AVS_AGENT_LWA_BASE_URL")]
        pub lwa_base_url: Option<String>,
        /// Extra trusted root certificate (PEM) for LWA/AVS HTTPS, e.g. the emulator's CA.
        #[arg(long, env = "AVS_AGENT_LWA_CA_FILE")]
        pub lwa_ca_file: Option<PathBuf>,
        /// State directory (tokens, attempt counter, setup code).
        #[arg(long, env = "AVS_AGENT_STATE_DIR")]
        pub state_dir: Option<PathBuf>,
        /// Local API socket (default: <state_dir>/agent.sock).
        #[arg(long, env = "AVS_AGENT_SOCKET_PATH")]
        pub socket_path: Option<PathBuf>,
        /// Group whose members may read tokens over the local API (default avs-agent); pair,
        /// reset and cbl stay with root and the agent's own user.
        #[arg(long, env = "AVS_AGENT_API_GROUP")]
        pub api_group: Option<String>,
        /// File holding the 8-digit setup code (default: <state_dir>/setup-code).
        #[arg(long, env = "AVS_AGENT_SETUP_CODE_FILE")]
        pub setup_code_file: Option<PathBuf>,
        /// Link listener address (default [::]:0, a free port, dual-stack).
        #[arg(long, env = "AVS_AGENT_LINK_BIND")]
        pub link_bind: Option<Parsed<SocketAddr>>,
        /// Advertise over mDNS (default true).
        #[arg(long, env = "AVS_AGENT_MDNS")]
        pub mdns: Option<bool>,
        /// Restrict mDNS to these interfaces (default: all).
        #[arg(long, env = "AVS_AGENT_MDNS_INTERFACES", value_delimiter = ',')]
        pub mdns_interfaces: Option<Vec<String>>,
        /// Pair over Bluetooth LE too, advertising while the pairing window is open (default
        /// true; without an adapter the agent says so once and carries on over Wi-Fi).
        #[arg(long, env = "AVS_AGENT_BLE")]
        pub ble: Option<bool>,
        /// The Bluetooth adapter (default: hci0, else the first one).
        #[arg(long, env = "AVS_AGENT_BLE_ADAPTER")]
        pub ble_adapter: Option<String>,
        /// Pairing window length in seconds (default 900).
        #[arg(long, env = "AVS_AGENT_PAIRING_WINDOW_SECS")]
        pub pairing_window_secs: Option<u64>,
        /// The window opened at boot while unpaired, in seconds (default: pairing_window_secs;
        /// 0: only the pairing button opens it).
        #[arg(long, env = "AVS_AGENT_BOOT_WINDOW_SECS")]
        pub boot_window_secs: Option<u64>,
        /// Reopen the window by itself after an unlink (default false: press the button).
        #[arg(long, env = "AVS_AGENT_REOPEN_AFTER_UNLINK")]
        pub reopen_after_unlink: Option<bool>,
        /// Least seconds between two counted setup-code attempts (default 1; 0 for tests).
        #[arg(long, env = "AVS_AGENT_ATTEMPT_INTERVAL_SECS")]
        pub attempt_interval_secs: Option<u64>,
        /// Refresh this many seconds before expiry (default 600).
        #[arg(long, env = "AVS_AGENT_REFRESH_HEAD_START_SECS")]
        pub refresh_head_start_secs: Option<u64>,
        /// Longest LWA request in seconds (default 60).
        #[arg(long, env = "AVS_AGENT_REQUEST_TIMEOUT_SECS")]
        pub request_timeout_secs: Option<u64>,
        /// Most concurrent link connections, in any phase (default 16).
        #[arg(long, env = "AVS_AGENT_MAX_SESSIONS")]
        pub max_sessions: Option<usize>,
        /// Most connections that have not yet sent their PAKE message (default 8; fewer than
        /// `max_sessions`, so a peer proving the code always finds room). When full, a new
        /// connection takes the place of one of them, which is closed.
        #[arg(long, env = "AVS_AGENT_MAX_PENDING")]
        pub max_pending: Option<usize>,
        /// Most such connections from one source address (default 2); a new one beyond it
        /// replaces that address's oldest.
        #[arg(long, env = "AVS_AGENT_MAX_PENDING_PER_SOURCE")]
        pub max_pending_per_source: Option<usize>,
        /// Seconds a new connection has to send its Hello (default 5).
        #[arg(long, env = "AVS_AGENT_HELLO_TIMEOUT_SECS")]
        pub hello_timeout_secs: Option<u64>,
        /// Seconds after the Hello exchange to send the PAKE message (default 5).
        #[arg(long, env = "AVS_AGENT_PAKE_TIMEOUT_SECS")]
        pub pake_timeout_secs: Option<u64>,
        /// Seconds allowed for the link handshake (default 30).
        #[arg(long, env = "AVS_AGENT_HANDSHAKE_TIMEOUT_SECS")]
        pub handshake_timeout_secs: Option<u64>,
        /// Seconds a link session may stay silent (default 600: the user is logging in).
        #[arg(long, env = "AVS_AGENT_IDLE_TIMEOUT_SECS")]
        pub idle_timeout_secs: Option<u64>,
        /// Seconds the companion has to answer "replace the linked account?" before the agent
        /// keeps it (default 120).
        #[arg(long, env = "AVS_AGENT_SWITCH_ANSWER_TIMEOUT_SECS")]
        pub switch_answer_timeout_secs: Option<u64>,
        /// Command whose every output line means "pairing button pressed" (run with sh -c).
        #[arg(long, env = "AVS_AGENT_BUTTON_HOOK")]
        pub button_hook: Option<String>,
        /// Command run with AVS_CBL_USER_CODE / AVS_CBL_VERIFICATION_URI set (e.g. text to
        /// speech).
        #[arg(long, env = "AVS_AGENT_CBL_HOOK")]
        pub cbl_hook: Option<String>,
        /// How the speaker joins Wi-Fi: none (default), networkmanager or hook.
        #[arg(long, env = "AVS_AGENT_NETWORK_BACKEND")]
        pub network_backend: Option<String>,
        /// The Wi-Fi interface (default: the first Wi-Fi device).
        #[arg(long, env = "AVS_AGENT_WIFI_INTERFACE")]
        pub wifi_interface: Option<String>,
        /// The Wi-Fi hook executable, for network_backend = hook (contract in docs/agent.md).
        #[arg(long, env = "AVS_AGENT_WIFI_HOOK")]
        pub wifi_hook: Option<PathBuf>,
    }
}

impl ConfigValues {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let file_error = |source: FileError| ConfigError::File {
            path: path.to_path_buf(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.into()))?;
        Self::from_toml(&text).map_err(|e| file_error(e.into()))
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

/// Where LWA and AVS are and how long a request to them may take.
#[derive(Debug, Clone)]
pub struct LwaConfig {
    /// Every LWA/AVS URL (Amazon's for `region`, or all under `lwa_base_url`).
    pub endpoints: LwaEndpoints,
    /// An extra trusted root certificate (PEM), e.g. the emulator's CA.
    pub ca_file: Option<PathBuf>,
    /// The longest LWA request (`request_timeout_secs`).
    pub request_timeout: Duration,
}

impl LwaConfig {
    fn resolve(v: &ConfigValues) -> Result<Self, ConfigError> {
        let region = match &v.region {
            None => Region::Na,
            Some(Parsed::Ok(r)) => *r,
            Some(Parsed::Bad(text)) if text.trim().is_empty() => {
                return Err(empty("region"));
            }
            Some(Parsed::Bad(text)) => {
                return Err(invalid(
                    "region",
                    format!("{:?} is not a region", text.trim()),
                    "use na, eu or fe",
                ))
            }
        };
        let endpoints = match nonempty("lwa_base_url", &v.lwa_base_url)? {
            Some(base) => LwaEndpoints::from_base(&base).map_err(|e| {
                invalid(
                    "lwa_base_url",
                    e.to_string(),
                    "use https://… (plain http:// only to 127.0.0.1, ::1 or localhost), or remove it to use Amazon's endpoints",
                )
            })?,
            None => LwaEndpoints::amazon(region),
        };
        if let Some(ca) = &v.lwa_ca_file {
            if !ca.is_file() {
                return Err(invalid(
                    "lwa_ca_file",
                    format!("{} is not a readable file", ca.display()),
                    "point it at a PEM certificate file, or remove it",
                ));
            }
        }
        Ok(Self {
            endpoints,
            ca_file: v.lwa_ca_file.clone(),
            request_timeout: secs("request_timeout_secs", v.request_timeout_secs, 60, 1, 600)?,
        })
    }
}

/// The link listener and the limits of its sessions (TCP and BLE alike).
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Where the TCP link listens (`link_bind`).
    pub bind: SocketAddr,
    /// Concurrent connections in any phase; the next one gets `Busy` (`max_sessions`).
    pub max_sessions: usize,
    /// Connections that have not sent their PAKE message yet (`max_pending`, < `max_sessions`);
    /// when full, a newcomer evicts one (`link::slots`).
    pub max_pending: usize,
    /// Of those, from one source address (`max_pending_per_source`).
    pub max_pending_per_source: usize,
    /// Deadline for the peer's Hello (`hello_timeout_secs`).
    pub hello_timeout: Duration,
    /// Deadline for the PAKE message after the Hello exchange (`pake_timeout_secs`).
    pub pake_timeout: Duration,
    /// Deadline for the whole handshake: Hello, SPAKE2, key confirmation
    /// (`handshake_timeout_secs`).
    pub handshake_timeout: Duration,
    /// Silence allowed between two messages of an established session (`idle_timeout_secs`).
    pub idle_timeout: Duration,
    /// Deadline for the code exchange request to LWA (`request_timeout_secs`).
    pub exchange_timeout: Duration,
    /// How long a different account's tokens wait in memory for the companion's answer to
    /// "replace the linked account?" (`switch_answer_timeout_secs`); then the old one is kept.
    pub switch_answer_timeout: Duration,
}

impl LinkConfig {
    fn resolve(v: &ConfigValues, lwa: &LwaConfig) -> Result<Self, ConfigError> {
        let bind = Self::bind(v)?;
        let max_sessions = v.max_sessions.unwrap_or(16);
        if !(2..=256).contains(&max_sessions) {
            return Err(invalid(
                "max_sessions",
                format!("{max_sessions} is out of range"),
                "use 2 to 256 (default 16)",
            ));
        }
        let max_pending = v.max_pending.unwrap_or(8.min(max_sessions - 1));
        if max_pending == 0 || max_pending >= max_sessions {
            return Err(invalid(
                "max_pending",
                format!("{max_pending} is out of range"),
                format!(
                    "use 1 to {} (fewer than max_sessions; default 8)",
                    max_sessions - 1
                ),
            ));
        }
        let max_pending_per_source = v.max_pending_per_source.unwrap_or(2.min(max_pending));
        if max_pending_per_source == 0 || max_pending_per_source > max_pending {
            return Err(invalid(
                "max_pending_per_source",
                format!("{max_pending_per_source} is out of range"),
                format!("use 1 to {max_pending} (at most max_pending; default 2)"),
            ));
        }
        Ok(Self {
            bind,
            max_sessions,
            max_pending,
            max_pending_per_source,
            hello_timeout: secs("hello_timeout_secs", v.hello_timeout_secs, 5, 1, 60)?,
            pake_timeout: secs("pake_timeout_secs", v.pake_timeout_secs, 5, 1, 60)?,
            handshake_timeout: secs(
                "handshake_timeout_secs",
                v.handshake_timeout_secs,
                30,
                1,
                600,
            )?,
            idle_timeout: secs("idle_timeout_secs", v.idle_timeout_secs, 600, 5, 3600)?,
            exchange_timeout: lwa.request_timeout,
            switch_answer_timeout: secs(
                "switch_answer_timeout_secs",
                v.switch_answer_timeout_secs,
                120,
                1,
                600,
            )?,
        })
    }

    /// `link_bind`: `[::]:0` (any free port, dual-stack) unless given.
    fn bind(v: &ConfigValues) -> Result<SocketAddr, ConfigError> {
        match &v.link_bind {
            None => Ok(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))),
            Some(Parsed::Ok(addr)) => Ok(*addr),
            Some(Parsed::Bad(text)) if text.trim().is_empty() => Err(empty("link_bind")),
            Some(Parsed::Bad(text)) => Err(invalid(
                "link_bind",
                format!("{:?} is not an address:port", text.trim()),
                "use e.g. [::]:0 (any free port, dual-stack), 0.0.0.0:47000 or 127.0.0.1:0",
            )),
        }
    }
}

/// `_avs-pair._tcp` advertising.
#[derive(Debug, Clone)]
pub struct MdnsConfig {
    /// Advertise at all (`mdns`).
    pub enabled: bool,
    /// Only on these interfaces; empty: all (`mdns_interfaces`).
    pub interfaces: Vec<String>,
}

impl MdnsConfig {
    fn resolve(v: &ConfigValues) -> Result<Self, ConfigError> {
        let interfaces = v.mdns_interfaces.clone().unwrap_or_default();
        if interfaces.iter().any(|i| i.trim().is_empty()) {
            return Err(invalid(
                "mdns_interfaces",
                "contains an empty name",
                "list interface names such as [\"wlan0\"]",
            ));
        }
        Ok(Self {
            enabled: v.mdns.unwrap_or(true),
            interfaces,
        })
    }
}

/// Pairing over Bluetooth LE.
#[derive(Debug, Clone)]
pub struct BleConfig {
    /// Serve the GATT service at all (`ble`).
    pub enabled: bool,
    /// The adapter's name; `None`: hci0, else the first (`ble_adapter`).
    pub adapter: Option<String>,
}

impl BleConfig {
    fn resolve(v: &ConfigValues) -> Result<Self, ConfigError> {
        Ok(Self {
            enabled: v.ble.unwrap_or(true),
            adapter: nonempty("ble_adapter", &v.ble_adapter)?,
        })
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The "Other devices and platforms" client id, for CBL only (the companion brings its own).
    pub client_id: Option<ClientId>,
    /// AVS product id.
    pub product_id: ProductId,
    /// Device serial number, given or derived from the machine id.
    pub dsn: DeviceSerialNumber,
    /// Stable id on the link (derived from product id and DSN).
    pub device_id: DeviceId,
    /// The name the companion shows.
    pub friendly_name: String,
    /// LWA/AVS endpoints and request deadline.
    pub lwa: LwaConfig,
    /// Tokens, attempt counter and setup code live here.
    pub state_dir: PathBuf,
    /// Local API socket.
    pub socket_path: PathBuf,
    /// Where the setup code is stored (generated on first start if missing).
    pub setup_code_file: PathBuf,
    /// A setup code given directly (AVS_AGENT_SETUP_CODE); wins over the file.
    pub setup_code: Option<String>,
    /// The link listener and its session limits.
    pub link: LinkConfig,
    /// mDNS advertising.
    pub mdns: MdnsConfig,
    /// BLE pairing.
    pub ble: BleConfig,
    /// Joining Wi-Fi.
    pub network: NetworkConfig,
    /// Command whose every output line is a press of the pairing button.
    pub button_hook: Option<String>,
    /// The local API's client group (`api_group`).
    pub api_group: String,
    /// Command told the CBL code (e.g. text to speech).
    pub cbl_hook: Option<String>,
    /// Token lifecycle tuning.
    pub auth: AuthDelegateConfig,
    /// Window and lockout tuning.
    pub pairing: PairingConfig,
    /// CBL polling.
    pub cbl: CblPolicy,
}

fn empty(key: &'static str) -> ConfigError {
    invalid(
        key,
        "is empty",
        format!("remove `{key}` or give it a value"),
    )
}

fn nonempty(key: &'static str, v: &Option<String>) -> Result<Option<String>, ConfigError> {
    match v {
        Some(s) if s.trim().is_empty() => Err(empty(key)),
        Some(s) => Ok(Some(s.trim().to_owned())),
        None => Ok(None),
    }
}

fn secs(
    key: &'static str,
    v: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    let v = v.unwrap_or(default);
    if v < min || v > max {
        return Err(invalid(
            key,
            format!("{v} is out of range"),
            format!("use a number of seconds from {min} to {max} (default {default})"),
        ));
    }
    Ok(Duration::from_secs(v))
}

/// Who the speaker is: product id, DSN, the device id derived from both, its name.
struct Identity {
    product_id: String,
    dsn: String,
    friendly_name: String,
}

impl Identity {
    fn resolve(v: &ConfigValues) -> Result<Self, ConfigError> {
        let product_id = nonempty("product_id", &v.product_id)?.ok_or_else(|| {
            invalid(
                "product_id",
                "is missing",
                "set product_id to the AVS product id from the developer console (or AVS_AGENT_PRODUCT_ID / --product-id)",
            )
        })?;
        if product_id.len() > 128 {
            return Err(invalid(
                "product_id",
                "is longer than 128 bytes",
                "use the product id exactly as registered",
            ));
        }
        let dsn = match nonempty("dsn", &v.dsn)? {
            Some(d) => d,
            None => derive_dsn().ok_or_else(|| {
                invalid(
                    "dsn",
                    "is not set and /etc/machine-id is unreadable",
                    "set dsn to the device serial number",
                )
            })?,
        };
        if dsn.len() > 64 || !dsn.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "dsn",
                "must be 1-64 printable ASCII characters",
                "use the serial number printed on the device",
            ));
        }
        let friendly_name = nonempty("friendly_name", &v.friendly_name)?
            .unwrap_or_else(|| "AVS speaker".to_owned());
        let max = shared_protocol::discovery::MAX_FRIENDLY_NAME_LEN;
        if friendly_name.len() > max {
            return Err(invalid(
                "friendly_name",
                "is too long",
                format!("use at most {max} bytes"),
            ));
        }
        Ok(Self {
            product_id,
            dsn,
            friendly_name,
        })
    }
}

/// The state directory and the files in it.
struct Paths {
    state_dir: PathBuf,
    socket_path: PathBuf,
    setup_code_file: PathBuf,
}

impl Paths {
    fn resolve(v: &ConfigValues) -> Result<Self, ConfigError> {
        let state_dir = v
            .state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        if state_dir.as_os_str().is_empty() {
            return Err(invalid(
                "state_dir",
                "is empty",
                format!("use a directory such as {DEFAULT_STATE_DIR}"),
            ));
        }
        let socket_path = v
            .socket_path
            .clone()
            .unwrap_or_else(|| state_dir.join(SOCKET_FILE));
        if socket_path.as_os_str().len() > 100 {
            return Err(invalid(
                "socket_path",
                "is longer than a Unix socket path may be (about 100 bytes)",
                "use a shorter path, e.g. /run/avs-device-agent/agent.sock",
            ));
        }
        let setup_code_file = v
            .setup_code_file
            .clone()
            .unwrap_or_else(|| state_dir.join(SETUP_CODE_FILE));
        Ok(Self {
            state_dir,
            socket_path,
            setup_code_file,
        })
    }
}

/// The refresher's settings: `refresh_head_start_secs`, and LWA's request timeout as its
/// longest.
fn auth_config(values: &ConfigValues, lwa: &LwaConfig) -> Result<AuthDelegateConfig, ConfigError> {
    let head_start = secs(
        "refresh_head_start_secs",
        values.refresh_head_start_secs,
        600,
        0,
        3000,
    )?;
    Ok(AuthDelegateConfig {
        refresh_head_start: head_start,
        max_request_timeout: lwa.request_timeout,
        ..AuthDelegateConfig::default()
    })
}

/// The pairing window's settings (`window` already checked): the boot window (0 = none,
/// unset = `window`), reopening after an unlink and the interval between attempts.
fn pairing_config(values: &ConfigValues, window: Duration) -> Result<PairingConfig, ConfigError> {
    Ok(PairingConfig {
        window,
        boot_window: match values.boot_window_secs {
            Some(0) => Duration::ZERO,
            Some(_) => secs("boot_window_secs", values.boot_window_secs, 900, 10, 86_400)?,
            None => window,
        },
        reopen_after_unlink: values.reopen_after_unlink.unwrap_or(false),
        attempt_interval: secs(
            "attempt_interval_secs",
            values.attempt_interval_secs,
            1,
            0,
            60,
        )?,
        ..PairingConfig::default()
    })
}

fn check_setup_code(code: &str) -> Result<(), ConfigError> {
    shared_protocol::setup_code::SetupCode::parse(code).map_err(|e| {
        invalid(
            "setup_code",
            e.to_string(),
            "give 8 digits that are not trivial (not all equal, not 12345678/87654321), or unset AVS_AGENT_SETUP_CODE to generate one",
        )
    })?;
    Ok(())
}

impl AgentConfig {
    /// Checks `values` (file overlaid with env and flags) and fills defaults.
    pub fn resolve(values: ConfigValues, setup_code: Option<String>) -> Result<Self, ConfigError> {
        let id = Identity::resolve(&values)?;
        let client_id = nonempty("client_id", &values.client_id)?.map(ClientId::new);
        let lwa = LwaConfig::resolve(&values)?;
        let paths = Paths::resolve(&values)?;
        if let Some(code) = &setup_code {
            check_setup_code(code)?;
        }
        let link = LinkConfig::resolve(&values, &lwa)?;
        let mdns = MdnsConfig::resolve(&values)?;
        let ble = BleConfig::resolve(&values)?;
        let network = NetworkConfig::resolve(&values)?;
        // The keys are checked in a fixed order: of several mistakes, the first is reported.
        let window = secs(
            "pairing_window_secs",
            values.pairing_window_secs,
            900,
            10,
            86_400,
        )?;
        let auth = auth_config(&values, &lwa)?;
        let button_hook = nonempty("button_hook", &values.button_hook)?;
        let api_group = nonempty("api_group", &values.api_group)?
            .unwrap_or_else(|| crate::local_api::DEFAULT_API_GROUP.to_owned());
        let cbl_hook = nonempty("cbl_hook", &values.cbl_hook)?;
        let pairing = pairing_config(&values, window)?;
        Ok(Self {
            client_id,
            device_id: derive_device_id(&id.product_id, &id.dsn),
            product_id: ProductId::new(id.product_id),
            dsn: DeviceSerialNumber::new(id.dsn),
            friendly_name: id.friendly_name,
            auth,
            lwa,
            state_dir: paths.state_dir,
            socket_path: paths.socket_path,
            setup_code_file: paths.setup_code_file,
            setup_code,
            link,
            mdns,
            ble,
            network,
            button_hook,
            api_group,
            cbl_hook,
            pairing,
            cbl: CblPolicy::default(),
        })
    }

    /// A configuration for tests and embedding: everything in `state_dir`, LWA at `base_url`,
    /// link on 127.0.0.1, no mDNS, no BLE.
    pub fn for_local(
        state_dir: &Path,
        base_url: &str,
        setup_code: &str,
    ) -> Result<Self, ConfigError> {
        let values = ConfigValues {
            client_id: Some("amzn1.application-oa2-client.avs-pair-test".into()),
            product_id: Some("avs_pair_test".into()),
            dsn: Some("TEST-DSN-0001".into()),
            friendly_name: Some("Test speaker".into()),
            lwa_base_url: Some(base_url.into()),
            state_dir: Some(state_dir.to_path_buf()),
            link_bind: Some(Parsed::Ok(SocketAddr::from(([127, 0, 0, 1], 0)))),
            mdns: Some(false),
            ble: Some(false),
            ..ConfigValues::default()
        };
        Self::resolve(values, Some(setup_code.to_owned()))
    }
}

/// A stable DSN from the machine id: the same machine always gets the same serial.
fn derive_dsn() -> Option<String> {
    let id = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())?;
    let digest = Sha256::digest(format!("avs-pair dsn\n{id}").as_bytes());
    Some(hex(&digest[..8]).to_ascii_uppercase())
}

/// The link id: a hash of product and DSN (no raw serial number in broadcasts).
pub fn derive_device_id(product_id: &str, dsn: &str) -> DeviceId {
    let digest = Sha256::digest(format!("avs-pair device id\n{product_id}\n{dsn}").as_bytes());
    DeviceId::new(hex(&digest[..6]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ConfigValues {
        ConfigValues {
            product_id: Some("p".into()),
            dsn: Some("D1".into()),
            ..Default::default()
        }
    }

    fn key_of(e: ConfigError) -> &'static str {
        match e {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_amazon_and_sdk() {
        let c = AgentConfig::resolve(base(), None).unwrap();
        assert_eq!(
            c.lwa.endpoints.token.as_str(),
            "https://api.amazon.com/auth/o2/token"
        );
        assert_eq!(c.pairing.window, Duration::from_secs(900));
        assert_eq!(c.auth.refresh_head_start, Duration::from_secs(600));
        assert_eq!(c.link.bind.to_string(), "[::]:0");
        assert_eq!(
            c.socket_path,
            PathBuf::from(DEFAULT_STATE_DIR).join("agent.sock")
        );
        assert_eq!(c.device_id, derive_device_id("p", "D1"));
        assert!(c.mdns.enabled);
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        let mut v = base();
        v.lwa_base_url = Some("http://10.0.0.5:8080".into());
        let e = AgentConfig::resolve(v, None).unwrap_err();
        assert!(
            e.to_string().contains("lwa_base_url") && e.to_string().contains("fix:"),
            "{e}"
        );
        assert_eq!(
            key_of(AgentConfig::resolve(ConfigValues::default(), None).unwrap_err()),
            "product_id"
        );
        let mut v = base();
        v.region = Some("mars".into());
        assert_eq!(key_of(AgentConfig::resolve(v, None).unwrap_err()), "region");
        let mut v = base();
        v.link_bind = Some("nope".into());
        assert_eq!(
            key_of(AgentConfig::resolve(v, None).unwrap_err()),
            "link_bind"
        );
        let mut v = base();
        v.pairing_window_secs = Some(0);
        assert_eq!(
            key_of(AgentConfig::resolve(v, None).unwrap_err()),
            "pairing_window_secs"
        );
        assert_eq!(
            key_of(AgentConfig::resolve(base(), Some("11111111".into())).unwrap_err()),
            "setup_code"
        );
        let err = ConfigValues::from_toml("product_idd = \"x\"").unwrap_err();
        assert!(err.to_string().contains("product_idd"), "{err}");
    }

    #[test]
    fn typed_keys_from_the_file_still_name_the_key_and_the_fix() {
        for (toml, key) in [
            ("region = \"mars\"", "region"),
            ("link_bind = \"nope\"", "link_bind"),
            ("region = \" \"", "region"),
        ] {
            let file = ConfigValues::from_toml(toml).unwrap();
            let e = AgentConfig::resolve(base().overlay(file), None).unwrap_err();
            assert!(e.to_string().contains("fix:"), "{e}");
            assert_eq!(key_of(e), key, "{toml}");
        }
        let file =
            ConfigValues::from_toml("region = \"EU\"\nlink_bind = \"127.0.0.1:47000\"").unwrap();
        let c = AgentConfig::resolve(base().overlay(file), None).unwrap();
        assert_eq!(
            c.lwa.endpoints.token.as_str(),
            "https://api.amazon.co.uk/auth/o2/token"
        );
        assert_eq!(c.link.bind, SocketAddr::from(([127, 0, 0, 1], 47000)));
    }

    #[test]
    fn file_then_overrides() {
        let file = ConfigValues::from_toml(
            "product_id = \"p\"\ndsn = \"D\"\nlwa_base_url = \"http://127.0.0.1:9\"\nmdns = false\nmdns_interfaces = [\"eth0\"]\n",
        )
        .unwrap();
        let over = ConfigValues {
            dsn: Some("E".into()),
            ..Default::default()
        };
        let c = AgentConfig::resolve(file.overlay(over), None).unwrap();
        assert_eq!(c.dsn.as_str(), "E");
        assert_eq!(c.product_id.as_str(), "p");
        assert_eq!(
            c.lwa.endpoints.token.as_str(),
            "http://127.0.0.1:9/auth/o2/token"
        );
        assert!(!c.mdns.enabled);
        assert_eq!(c.mdns.interfaces, vec!["eth0".to_owned()]);
    }
}
