//! How an emulator instance behaves: where it listens, TLS, and the knobs for the behaviours the
//! LWA spec leaves UNCONFIRMED (each defaults to the RFC behaviour or the observed one).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::registry::Registry;

/// What the refresh grant returns as `refresh_token` (lwa-spec §3.3: UNCONFIRMED on Amazon).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshTokenMode {
    /// The same refresh token comes back (default).
    #[default]
    Same,
    /// A new refresh token each time; the old one stays valid for
    /// [`Settings::refresh_token_grace_secs`] (0 = invalid at once).
    Rotate,
    /// No `refresh_token` in the refresh answer: RFC 6749 §6 lets the server keep the one
    /// presented, which then stays valid. Amazon documents this for a refresh without
    /// `client_secret` in one non-AVS product (lwa-spec §3.3). Code and device-code grants
    /// still carry one. A client must keep the token it sent.
    Omit,
}

/// Behaviour settings (also the `[settings]` table of the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `expires_in` of access tokens, seconds (≥ 1). Default 3600.
    pub access_token_lifetime_secs: u64,
    /// Same, rotating or omitted refresh tokens in refresh answers.
    pub refresh_token_mode: RefreshTokenMode,
    /// Rotate mode: how long a replaced refresh token still works. Default 0.
    pub refresh_token_grace_secs: u64,
    /// Authorization code life. Default 300 (lwa-spec §1.5).
    pub code_lifetime_secs: u64,
    /// CBL code pair life (`expires_in`). Default 600.
    pub codepair_lifetime_secs: u64,
    /// CBL `interval` in the code-pair response. Default 30 (a real capture).
    pub codepair_interval_secs: u64,
    /// Answer `slow_down` to a device_code poll that comes sooner than `interval` after the
    /// previous one. Default off (the SDK polls every 5 s regardless of `interval`).
    pub slow_down: bool,
    /// The `error` a poll gets after the user denied the code pair. Default `invalid_code_pair`
    /// (real value UNCONFIRMED).
    pub denied_code_pair_error: String,
    /// Refuse `/ap/oa` requests without a `code_challenge` (AVS companion apps always send one).
    /// Default off: PKCE is optional in RFC 6749/7636.
    pub require_pkce: bool,
    /// `verification_uri` in code-pair responses. Default: this emulator's own `/code` page.
    pub verification_uri: Option<String>,
    /// How long `GET /v20160207/directives` keeps its (empty) response open. Default 3600.
    pub directives_hold_secs: u64,
    /// `GET /user/profile` answers `user_id` only, even for a grant with the `profile` scope
    /// (as LWA does for a security profile that may not read the customer profile). Default
    /// off. Tests use it for the companion's fall-back to the account id.
    pub withhold_profile: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_token_lifetime_secs: 3600,
            refresh_token_mode: RefreshTokenMode::Same,
            refresh_token_grace_secs: 0,
            code_lifetime_secs: 300,
            codepair_lifetime_secs: 600,
            codepair_interval_secs: 30,
            slow_down: false,
            denied_code_pair_error: "invalid_code_pair".into(),
            require_pkce: false,
            verification_uri: None,
            directives_hold_secs: 3600,
            withhold_profile: false,
        }
    }
}

/// HTTPS with a freshly generated CA and leaf certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// Extra subject alternative names (IP addresses or DNS names) for the leaf certificate.
    /// `127.0.0.1`, `::1`, `localhost` and the bind address are always included.
    pub sans: Vec<String>,
    /// Where to write the CA certificate (PEM). Default: a temporary file that lives as long as
    /// the emulator.
    pub ca_out: Option<PathBuf>,
}

/// Everything needed to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Listen address. Default `127.0.0.1:0` (any free port).
    pub bind: SocketAddr,
    /// Allow plain HTTP on a non-loopback address (off: plain HTTP binds loopback only).
    pub allow_non_loopback_http: bool,
    /// `Some` = HTTPS.
    pub tls: Option<TlsConfig>,
    /// Users, clients, products.
    pub registry: Registry,
    /// Behaviour knobs.
    pub settings: Settings,
    /// Emit a `tracing` event (redacted) per request at INFO level.
    pub log_requests: bool,
    /// How long a request's body may take to arrive once its head is in; a peer that is
    /// slower gets `408` and is not recorded. Default [`DEFAULT_BODY_TIMEOUT`] (10 s): long
    /// enough for any honest client on a loaded CI machine, short enough that a stalled peer
    /// does not hold a connection for long. Tests of the cut-off set it shorter.
    pub body_timeout: Duration,
}

/// The default [`EmulatorConfig::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            allow_non_loopback_http: false,
            tls: None,
            registry: Registry::default(),
            settings: Settings::default(),
            log_requests: false,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// Builder methods that set one field of the config (`name: type => path.in.config;`).
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => $($field:ident).+;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.config.$($field).+ = value;
                self
            }
        )*
    };
}

/// Fluent construction of an [`EmulatorConfig`]; finish with [`EmulatorBuilder::start`].
#[derive(Debug, Clone, Default)]
pub struct EmulatorBuilder {
    config: EmulatorConfig,
}

impl EmulatorBuilder {
    setters! {
        /// Listen address.
        bind: SocketAddr => bind;
        /// Replace the registry.
        registry: Registry => registry;
        /// Replace all settings.
        settings: Settings => settings;
        /// Emit `slow_down` for too-fast CBL polling.
        slow_down: bool => settings.slow_down;
        /// `/user/profile` answers the user id only (no name, no e-mail address).
        withhold_profile: bool => settings.withhold_profile;
        /// Require PKCE at `/ap/oa`.
        require_pkce: bool => settings.require_pkce;
        /// Allow plain HTTP on a non-loopback bind address.
        allow_non_loopback_http: bool => allow_non_loopback_http;
        /// Log each request (redacted) through `tracing`.
        log_requests: bool => log_requests;
        /// How long a request body may take ([`EmulatorConfig::body_timeout`]).
        body_timeout: Duration => body_timeout;
    }

    /// Serve HTTPS with a generated CA; `sans` are added to the loopback defaults.
    pub fn https(mut self, sans: Vec<String>) -> Self {
        let ca_out = self.config.tls.take().and_then(|t| t.ca_out);
        self.config.tls = Some(TlsConfig { sans, ca_out });
        self
    }

    /// Write the CA certificate here (HTTPS mode).
    pub fn ca_out(mut self, path: PathBuf) -> Self {
        self.config
            .tls
            .get_or_insert_with(TlsConfig::default)
            .ca_out = Some(path);
        self
    }

    /// Access-token lifetime in seconds (clamped to ≥ 1).
    pub fn access_token_lifetime(mut self, secs: u64) -> Self {
        self.config.settings.access_token_lifetime_secs = secs.max(1);
        self
    }

    /// Rotating refresh tokens with a grace period for the replaced one.
    pub fn rotate_refresh_tokens(mut self, grace_secs: u64) -> Self {
        self.config.settings.refresh_token_mode = RefreshTokenMode::Rotate;
        self.config.settings.refresh_token_grace_secs = grace_secs;
        self
    }

    /// Refresh answers carry no `refresh_token`; the one presented stays valid
    /// ([`RefreshTokenMode::Omit`]).
    pub fn omit_refresh_tokens(mut self) -> Self {
        self.config.settings.refresh_token_mode = RefreshTokenMode::Omit;
        self
    }

    /// The config built so far.
    pub fn config(self) -> EmulatorConfig {
        self.config
    }

    /// Starts the emulator.
    pub async fn start(self) -> Result<crate::RunningEmulator, crate::StartError> {
        crate::Emulator::start(self.config).await
    }
}
