//! Configuration: a TOML file, overridden by environment variables (`AVS_AGENT_*`), overridden
//! by command-line flags. Every key has the same name in all three places (`client_id` in TOML,
//! `AVS_AGENT_CLIENT_ID`, `--client-id`).
//!
//! [`AgentConfig::resolve`] checks everything up front, so a bad value is reported at start
//! with the key's name and the fix, not as a confusing failure an hour later at the first
//! refresh.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use shared_protocol::ids::{ClientId, DeviceId, DeviceSerialNumber, ProductId};
use shared_protocol::lwa::{LwaEndpoints, Region};

use crate::auth_delegate::AuthDelegateConfig;
use crate::cbl::CblPolicy;
use crate::pairing::PairingConfig;

/// Where the daemon keeps its files unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/avs-device-agent";

/// A configuration problem, naming the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong (toml names the unknown or mistyped key and its line).
        message: String,
    },
}

fn invalid(key: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
        fix: fix.into(),
    }
}

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
    pub region: Option<String>,
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
    /// File holding the 8-digit setup code (default: <state_dir>/setup-code).
    #[arg(long, env = "AVS_AGENT_SETUP_CODE_FILE")]
    pub setup_code_file: Option<PathBuf>,
    /// Link listener address (default [::]:0, a free port, dual-stack).
    #[arg(long, env = "AVS_AGENT_LINK_BIND")]
    pub link_bind: Option<String>,
    /// Advertise over mDNS (default true).
    #[arg(long, env = "AVS_AGENT_MDNS")]
    pub mdns: Option<bool>,
    /// Restrict mDNS to these interfaces (default: all).
    #[arg(long, env = "AVS_AGENT_MDNS_INTERFACES", value_delimiter = ',')]
    pub mdns_interfaces: Option<Vec<String>>,
    /// Pair over Bluetooth LE too, advertising while the pairing window is open (default true;
    /// without an adapter the agent says so once and carries on over Wi-Fi).
    #[arg(long, env = "AVS_AGENT_BLE")]
    pub ble: Option<bool>,
    /// The Bluetooth adapter (default: hci0, else the first one).
    #[arg(long, env = "AVS_AGENT_BLE_ADAPTER")]
    pub ble_adapter: Option<String>,
    /// Pairing window length in seconds (default 900).
    #[arg(long, env = "AVS_AGENT_PAIRING_WINDOW_SECS")]
    pub pairing_window_secs: Option<u64>,
    /// Refresh this many seconds before expiry (default 600).
    #[arg(long, env = "AVS_AGENT_REFRESH_HEAD_START_SECS")]
    pub refresh_head_start_secs: Option<u64>,
    /// Longest LWA request in seconds (default 60).
    #[arg(long, env = "AVS_AGENT_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Most concurrent link sessions (default 4).
    #[arg(long, env = "AVS_AGENT_MAX_SESSIONS")]
    pub max_sessions: Option<usize>,
    /// Seconds allowed for the link handshake (default 30).
    #[arg(long, env = "AVS_AGENT_HANDSHAKE_TIMEOUT_SECS")]
    pub handshake_timeout_secs: Option<u64>,
    /// Seconds a link session may stay silent (default 600: the user is logging in).
    #[arg(long, env = "AVS_AGENT_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Command whose every output line means "pairing button pressed" (run with sh -c).
    #[arg(long, env = "AVS_AGENT_BUTTON_HOOK")]
    pub button_hook: Option<String>,
    /// Command run with AVS_CBL_USER_CODE / AVS_CBL_VERIFICATION_URI set (e.g. text to speech).
    #[arg(long, env = "AVS_AGENT_CBL_HOOK")]
    pub cbl_hook: Option<String>,
}

impl ConfigValues {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::File {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// `self` with every value set in `over` replaced.
    pub fn overlay(self, over: ConfigValues) -> ConfigValues {
        macro_rules! pick {
            ($($f:ident),*) => { ConfigValues { $($f: over.$f.or(self.$f)),* } };
        }
        pick!(
            client_id,
            product_id,
            dsn,
            friendly_name,
            region,
            lwa_base_url,
            lwa_ca_file,
            state_dir,
            socket_path,
            setup_code_file,
            link_bind,
            mdns,
            mdns_interfaces,
            ble,
            ble_adapter,
            pairing_window_secs,
            refresh_head_start_secs,
            request_timeout_secs,
            max_sessions,
            handshake_timeout_secs,
            idle_timeout_secs,
            button_hook,
            cbl_hook
        )
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// For CBL (the companion brings its own client id).
    pub client_id: Option<ClientId>,
    /// AVS product id.
    pub product_id: ProductId,
    /// DSN.
    pub dsn: DeviceSerialNumber,
    /// Stable id on the link (derived from product id and DSN).
    pub device_id: DeviceId,
    /// Friendly name.
    pub friendly_name: String,
    /// LWA/AVS endpoints.
    pub endpoints: LwaEndpoints,
    /// Extra CA.
    pub lwa_ca_file: Option<PathBuf>,
    /// State directory.
    pub state_dir: PathBuf,
    /// Local API socket.
    pub socket_path: PathBuf,
    /// Setup code file.
    pub setup_code_file: PathBuf,
    /// A setup code given directly (AVS_AGENT_SETUP_CODE); wins over the file.
    pub setup_code: Option<String>,
    /// Link listener.
    pub link_bind: SocketAddr,
    /// mDNS on/off.
    pub mdns: bool,
    /// mDNS interfaces (empty: all).
    pub mdns_interfaces: Vec<String>,
    /// BLE pairing on/off.
    pub ble: bool,
    /// BLE adapter name (`None`: the default adapter).
    pub ble_adapter: Option<String>,
    /// Most concurrent link sessions.
    pub max_sessions: usize,
    /// Handshake deadline.
    pub handshake_timeout: Duration,
    /// Idle deadline for an established session.
    pub idle_timeout: Duration,
    /// Button hook.
    pub button_hook: Option<String>,
    /// CBL hook.
    pub cbl_hook: Option<String>,
    /// Token lifecycle tuning.
    pub auth: AuthDelegateConfig,
    /// Window and lockout tuning.
    pub pairing: PairingConfig,
    /// CBL polling.
    pub cbl: CblPolicy,
    /// Timeout for the code exchange request.
    pub exchange_timeout: Duration,
}

fn nonempty(key: &'static str, v: Option<String>) -> Result<Option<String>, ConfigError> {
    match v {
        Some(s) if s.trim().is_empty() => Err(invalid(
            key,
            "is empty",
            format!("remove `{key}` or give it a value"),
        )),
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

impl AgentConfig {
    /// Checks `values` (file overlaid with env and flags) and fills defaults.
    pub fn resolve(values: ConfigValues, setup_code: Option<String>) -> Result<Self, ConfigError> {
        let product_id = nonempty("product_id", values.product_id)?.ok_or_else(|| {
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
        let client_id = nonempty("client_id", values.client_id)?.map(ClientId::new);
        let dsn = match nonempty("dsn", values.dsn)? {
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
        let device_id = derive_device_id(&product_id, &dsn);
        let friendly_name = nonempty("friendly_name", values.friendly_name)?
            .unwrap_or_else(|| "AVS speaker".to_owned());
        if friendly_name.len() > shared_protocol::discovery::MAX_FRIENDLY_NAME_LEN {
            return Err(invalid(
                "friendly_name",
                "is too long",
                format!(
                    "use at most {} bytes",
                    shared_protocol::discovery::MAX_FRIENDLY_NAME_LEN
                ),
            ));
        }
        let region: Region = match nonempty("region", values.region)? {
            Some(r) => r.parse().map_err(|_| {
                invalid(
                    "region",
                    format!("{r:?} is not a region"),
                    "use na, eu or fe",
                )
            })?,
            None => Region::Na,
        };
        let endpoints = match nonempty("lwa_base_url", values.lwa_base_url)? {
            Some(base) => LwaEndpoints::from_base(&base).map_err(|e| {
                invalid(
                    "lwa_base_url",
                    e.to_string(),
                    "use https://… (plain http:// only to 127.0.0.1, ::1 or localhost), or remove it to use Amazon's endpoints",
                )
            })?,
            None => LwaEndpoints::amazon(region),
        };
        if let Some(ca) = &values.lwa_ca_file {
            if !ca.is_file() {
                return Err(invalid(
                    "lwa_ca_file",
                    format!("{} is not a readable file", ca.display()),
                    "point it at a PEM certificate file, or remove it",
                ));
            }
        }
        let state_dir = values
            .state_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        if state_dir.as_os_str().is_empty() {
            return Err(invalid(
                "state_dir",
                "is empty",
                format!("use a directory such as {DEFAULT_STATE_DIR}"),
            ));
        }
        let socket_path = values
            .socket_path
            .unwrap_or_else(|| state_dir.join("agent.sock"));
        if socket_path.as_os_str().len() > 100 {
            return Err(invalid(
                "socket_path",
                "is longer than a Unix socket path may be (about 100 bytes)",
                "use a shorter path, e.g. /run/avs-device-agent/agent.sock",
            ));
        }
        let setup_code_file = values
            .setup_code_file
            .unwrap_or_else(|| state_dir.join("setup-code"));
        if let Some(code) = &setup_code {
            shared_protocol::setup_code::SetupCode::parse(code).map_err(|e| {
                invalid(
                    "setup_code",
                    e.to_string(),
                    "give 8 digits that are not trivial (not all equal, not 12345678/87654321), or unset AVS_AGENT_SETUP_CODE to generate one",
                )
            })?;
        }
        let link_bind_text =
            nonempty("link_bind", values.link_bind)?.unwrap_or_else(|| "[::]:0".to_owned());
        let link_bind: SocketAddr = link_bind_text.parse().map_err(|_| {
            invalid(
                "link_bind",
                format!("{link_bind_text:?} is not an address:port"),
                "use e.g. [::]:0 (any free port, dual-stack), 0.0.0.0:47000 or 127.0.0.1:0",
            )
        })?;
        let mdns = values.mdns.unwrap_or(true);
        let mdns_interfaces = values.mdns_interfaces.unwrap_or_default();
        if mdns_interfaces.iter().any(|i| i.trim().is_empty()) {
            return Err(invalid(
                "mdns_interfaces",
                "contains an empty name",
                "list interface names such as [\"wlan0\"]",
            ));
        }
        let ble = values.ble.unwrap_or(true);
        let ble_adapter = nonempty("ble_adapter", values.ble_adapter)?;
        let window = secs(
            "pairing_window_secs",
            values.pairing_window_secs,
            900,
            10,
            86_400,
        )?;
        let head_start = secs(
            "refresh_head_start_secs",
            values.refresh_head_start_secs,
            600,
            0,
            3000,
        )?;
        let request_timeout = secs(
            "request_timeout_secs",
            values.request_timeout_secs,
            60,
            1,
            600,
        )?;
        let max_sessions = values.max_sessions.unwrap_or(4);
        if !(1..=64).contains(&max_sessions) {
            return Err(invalid(
                "max_sessions",
                format!("{max_sessions} is out of range"),
                "use 1 to 64 (default 4)",
            ));
        }
        let handshake_timeout = secs(
            "handshake_timeout_secs",
            values.handshake_timeout_secs,
            30,
            1,
            600,
        )?;
        let idle_timeout = secs("idle_timeout_secs", values.idle_timeout_secs, 600, 5, 3600)?;
        let button_hook = nonempty("button_hook", values.button_hook)?;
        let cbl_hook = nonempty("cbl_hook", values.cbl_hook)?;
        Ok(Self {
            client_id,
            product_id: ProductId::new(product_id),
            dsn: DeviceSerialNumber::new(dsn),
            device_id,
            friendly_name,
            endpoints,
            lwa_ca_file: values.lwa_ca_file,
            state_dir,
            socket_path,
            setup_code_file,
            setup_code,
            link_bind,
            mdns,
            mdns_interfaces,
            ble,
            ble_adapter,
            max_sessions,
            handshake_timeout,
            idle_timeout,
            button_hook,
            cbl_hook,
            auth: AuthDelegateConfig {
                refresh_head_start: head_start,
                max_request_timeout: request_timeout,
                ..AuthDelegateConfig::default()
            },
            pairing: PairingConfig {
                window,
                ..PairingConfig::default()
            },
            cbl: CblPolicy::default(),
            exchange_timeout: request_timeout,
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
            link_bind: Some("127.0.0.1:0".into()),
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
            c.endpoints.token.as_str(),
            "https://api.amazon.com/auth/o2/token"
        );
        assert_eq!(c.pairing.window, Duration::from_secs(900));
        assert_eq!(c.auth.refresh_head_start, Duration::from_secs(600));
        assert_eq!(c.link_bind.to_string(), "[::]:0");
        assert_eq!(
            c.socket_path,
            PathBuf::from(DEFAULT_STATE_DIR).join("agent.sock")
        );
        assert_eq!(c.device_id, derive_device_id("p", "D1"));
        assert!(c.mdns);
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
        assert!(err.contains("product_idd"), "{err}");
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
            c.endpoints.token.as_str(),
            "http://127.0.0.1:9/auth/o2/token"
        );
        assert!(!c.mdns);
        assert_eq!(c.mdns_interfaces, vec!["eth0".to_owned()]);
    }
}
