//! The avs-pair device agent: the speaker's side.
//!
//! It advertises itself, pairs with a companion over a PAKE-secured link, redeems the
//! authorization code with a verifier that never left the speaker, and from then on keeps an
//! access token fresh for the AVS client, forever, through restarts, crashes and LWA outages.
//!
//! | module | concept |
//! |---|---|
//! | [`config`] | TOML + env + flags: keys declared once, parsed typed, resolved into sub-configs (LWA, link, mDNS, BLE), checked up front |
//! | [`provision`] | the setup code: given, stored, or generated and shown once |
//! | [`store`], [`atomic_file`] | the refresh token on disk, crash-safe |
//! | [`lwa_client`] | LWA/AVS HTTP with deadlines and precise failures |
//! | [`retry`] | the SDK's backoff table |
//! | [`auth_delegate`] | states, observers, single-flight refresh |
//! | [`cbl`] | code-based linking |
//! | [`pairing`] | the pairing window and the persistent attempt counter |
//! | [`boot_clock`] | time since boot with the boot's id: a lockout survives `kill -9` with its countdown |
//! | [`core`] | the agent's core, shared by every listener: identity, setup code, pairing window, delegate, status report, CBL runner |
//! | [`link`] | the companion link: session (handshake, PKCE per session, exchange), TCP listener |
//! | [`local_api`] | the Unix socket for the AVS client and the CLI (takes the core) |
//! | [`mdns`] | `_avs-pair._tcp` advertising |
//! | [`network`] | network status, the connectivity check to LWA/AVS, joining Wi-Fi (NetworkManager, hook, none) |
//! | [`ble`] | pairing over Bluetooth LE: GATT peripheral, advertising while the window is open |
//! | [`agent`] | the composition root: builds the core, wires the listeners, shuts them down in order |
//! | [`sd_notify`] | systemd readiness |
//! | [`state_lock`] | one agent per state directory (`flock`, the holder's pid), unwritable-directory errors |
//!
//! Embedding (tests, the demo):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use device_agent::{agent::Agent, config::AgentConfig};
//! let dir = std::path::Path::new("/tmp/agent-state");
//! let cfg = AgentConfig::for_local(dir, "http://127.0.0.1:8080", "24681357")?;
//! let agent = Agent::start(cfg).await?;
//! println!("{}", agent.ready_line());
//! let token = agent.delegate().auth_token(); // never blocks
//! agent.shutdown().await;
//! # Ok(()) }
//! ```

pub mod agent;
pub mod atomic_file;
pub mod auth_delegate;
pub mod ble;
pub mod boot_clock;
pub mod cbl;
pub mod cli;
pub mod config;
pub mod core;
pub mod link;
pub mod local_api;
pub mod log_safe;
pub mod lwa_client;
pub mod mdns;
pub mod network;
pub mod pairing;
pub mod provision;
pub mod retry;
pub mod sd_notify;
pub mod state_lock;
pub mod store;
