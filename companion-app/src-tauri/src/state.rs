//! What the app keeps between commands: its options, the speakers list, the pairing controller.

use std::path::PathBuf;
use std::sync::Arc;

use companion_app::ble::BleCentral;
use companion_app::connect::{BleConnector, Connectors, TcpConnector};

use crate::browser::SignInOpener;
use crate::pairing::PairingController;
use crate::speakers::Speakers;

/// How the app runs: from the environment for the real app, set directly by tests.
#[derive(Clone)]
pub struct AppOptions {
    /// The settings file (shared with the `avs-companion` CLI).
    pub config_path: PathBuf,
    /// Search the network with mDNS. Off with `AVS_COMPANION_MDNS=off` (speakers are then added
    /// by address), and always off in tests on shared machines.
    pub mdns: bool,
    /// How sign-in pages are opened; `None` = the system browser ([`crate::browser::SystemOpener`]).
    pub opener: Option<Arc<dyn SignInOpener>>,
    /// Find and pair speakers over Bluetooth LE. Off with `AVS_COMPANION_BLE=off`; without an
    /// adapter it is skipped quietly either way.
    pub ble: bool,
    /// The Bluetooth central (`None`: the computer's adapter; tests give the GATT model).
    pub ble_central: Option<Arc<dyn BleCentral>>,
}

impl AppOptions {
    /// The transports the app finds speakers on and connects over.
    pub fn connectors(&self) -> Connectors {
        let mut c = Connectors::new();
        c.add(TcpConnector::new());
        if self.ble {
            c.add(BleConnector::new(self.ble_central.clone()));
        }
        c
    }
}

impl std::fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppOptions")
            .field("config_path", &self.config_path)
            .field("mdns", &self.mdns)
            .field("opener", &self.opener.as_ref().map(|_| "custom"))
            .field("ble", &self.ble)
            .field("ble_central", &self.ble_central)
            .finish()
    }
}

/// Environment variable that turns mDNS discovery off (`off`, `0` or `false`).
pub const MDNS_ENV: &str = "AVS_COMPANION_MDNS";

/// Environment variable that turns Bluetooth LE off (`off`, `0` or `false`).
pub const BLE_ENV: &str = "AVS_COMPANION_BLE";

/// True unless `var` says off.
fn env_on(var: &str) -> bool {
    !matches!(
        std::env::var(var)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str(),
        "off" | "0" | "false" | "no"
    )
}

impl AppOptions {
    /// From the environment: the core's config path rules, [`MDNS_ENV`] and [`BLE_ENV`].
    pub fn from_env() -> Result<Self, companion_app::config::ConfigError> {
        Ok(Self {
            config_path: companion_app::CompanionConfig::default_path()?,
            mdns: env_on(MDNS_ENV),
            opener: None,
            ble: env_on(BLE_ENV),
            ble_central: None,
        })
    }
}

/// The managed state.
#[derive(Debug)]
pub struct AppState {
    /// Options in force.
    pub options: AppOptions,
    /// The list.
    pub speakers: Arc<Speakers>,
    /// The pairing.
    pub pairing: Arc<PairingController>,
}

impl AppState {
    /// Stops everything that runs in the background (the window closed, the app exits).
    pub fn shutdown(&self) {
        self.pairing.cancel();
        self.speakers.shutdown();
    }
}
