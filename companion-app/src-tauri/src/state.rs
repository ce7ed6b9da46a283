//! What the app keeps between commands: its options, the speakers list, the pairing controller.

use std::path::PathBuf;
use std::sync::Arc;

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
}

impl std::fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppOptions")
            .field("config_path", &self.config_path)
            .field("mdns", &self.mdns)
            .field("opener", &self.opener.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// Environment variable that turns mDNS discovery off (`off`, `0` or `false`).
pub const MDNS_ENV: &str = "AVS_COMPANION_MDNS";

impl AppOptions {
    /// From the environment: the core's config path rules and [`MDNS_ENV`].
    pub fn from_env() -> Result<Self, String> {
        let config_path =
            companion_app::CompanionConfig::default_path().map_err(|e| e.to_string())?;
        let mdns = !matches!(
            std::env::var(MDNS_ENV)
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
                .as_str(),
            "off" | "0" | "false" | "no"
        );
        Ok(Self {
            config_path,
            mdns,
            opener: None,
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
