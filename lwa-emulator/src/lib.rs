//! `lwa-emulator`: a local stand-in for Login with Amazon (LWA) and the token-checking part of
//! the Alexa Voice Service (AVS).
//!
//! No test, demo or developer here can reach Amazon. This crate is a real HTTP(S) server that
//! speaks LWA's wire format closely enough that a client which works against it works against
//! Amazon (facts and sources: `shared/reference/lwa-spec.md` §0–§8; where Amazon's behaviour is
//! unconfirmed the RFC behaviour is the default and [`Settings`] makes it configurable).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use lwa_emulator::{Emulator, Endpoint, Fault};
//! let emulator = Emulator::builder().access_token_lifetime(5).start().await?;
//! println!("LWA at {}", emulator.base_url());
//! emulator.inject_fault(Endpoint::Token, Fault::unavailable(1), 2);
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! - [`server`]: start/stop and the control handle ([`RunningEmulator`]).
//! - [`registry`]: users, clients, products (built-in defaults or a TOML file).
//! - [`config`]: listen address, TLS, behaviour [`Settings`].
//! - [`config_error`]: a config file that does not parse, said without quoting its secrets.
//! - [`fault`]: fault injection per endpoint.
//! - [`browser`]: the scripted user that signs in and consents like a person in a browser.
//! - [`control`]: the `/_emulator/…` JSON API.
//! - [`redact`]: how secrets appear in logs and in the request record.

pub mod browser;
pub mod config;
pub mod config_error;
mod conn;
pub mod control;
pub mod fault;
mod html_entities;
mod oauth_error;
mod params;
pub mod record;
pub mod redact;
pub mod registry;
mod return_url;
mod routes;
pub mod server;
mod store;
pub mod tls;
mod tokens;

pub use browser::{BrowseError, Consent, Landing, ScriptedUser};
pub use config::{EmulatorBuilder, EmulatorConfig, RefreshTokenMode, Settings, TlsConfig};
pub use config_error::ConfigParseError;
pub use control::{ControlError, RevokeSummary};
pub use fault::{Endpoint, Fault};
pub use record::RecordedRequest;
pub use registry::{Client, ClientKind, Product, Registry, RegistryError, User};
pub use return_url::PatternError;
pub use server::{Emulator, RunningEmulator, SettingsError, StartError};
