//! The agent's core: the state every listener serves from.
//!
//! The TCP link, the BLE peripheral, the local API and the mDNS advertiser each take an
//! `Arc<Core>`; none of them knows the others or the composition root ([`crate::agent`]), which
//! only builds the core, hands it out and shuts the tasks down. What lives here:
//!
//! - identity (device id, product id, DSN, friendly name) and the setup code keying the PAKE;
//! - the pairing window ([`Pairing`]) and the account holder ([`AuthDelegate`]);
//! - the exchange lock, so two companions racing never interleave installs (never held while a
//!   companion is asked about an account switch), and the record of links ([`links`]) that
//!   tells the loser of such a race who won;
//! - what anyone may know ([`Core::summary`]) and the status reports ([`status`]);
//! - code-based linking, one run at a time ([`cbl`]);
//! - the network ([`Network`]): status, the connectivity check, joining Wi-Fi.

pub mod cbl;
pub mod links;
pub mod status;

use std::net::SocketAddr;

use shared_protocol::ids::{DeviceId, DeviceSerialNumber, ProductId};
use shared_protocol::message::{AgentSummary, Capability, Hello, Role, Status};
use shared_protocol::setup_code::SetupCode;
use tokio::sync::Mutex;

use crate::auth_delegate::AuthDelegate;
use crate::network::Network;
use crate::pairing::Pairing;

pub use cbl::{CblRunError, CblRunner};
pub use links::Links;
pub use status::StatusReport;

/// The agent's state, shared by every listener.
#[derive(Debug)]
pub struct Core {
    /// The id the speaker goes by on the link, in mDNS and in BLE (a hash of product id and DSN,
    /// so no raw serial number is broadcast).
    pub device_id: DeviceId,
    /// The name the companion shows ("Kitchen speaker").
    pub friendly_name: String,
    /// Product id for DeviceInfo.
    pub product_id: ProductId,
    /// DSN for DeviceInfo.
    pub dsn: DeviceSerialNumber,
    /// The setup code keying the handshake.
    pub setup_code: SetupCode,
    /// The pairing window.
    pub pairing: Pairing,
    /// The account holder.
    pub delegate: AuthDelegate,
    /// One exchange at a time (two companions racing must not interleave installs); released
    /// while a companion is asked about an account switch ([`crate::link`]).
    pub exchange_lock: Mutex<()>,
    /// Companion links so far and the last one's account (tells a race's loser who won).
    pub links: Links,
    /// Where the TCP link listens (reported by `status`).
    pub link_addr: SocketAddr,
    /// Code-based linking, one run at a time.
    pub cbl: CblRunner,
    /// The speaker's network: status, connectivity check, joining Wi-Fi.
    pub network: Network,
}

impl Core {
    /// What anyone may know.
    pub fn summary(&self) -> AgentSummary {
        AgentSummary {
            device_id: self.device_id.clone(),
            friendly_name: self.friendly_name.clone(),
            paired: self.delegate.is_paired(),
            window: self.pairing.window(),
        }
    }

    /// The full status.
    pub fn status(&self) -> Status {
        let auth = self.delegate.status();
        let account = self.delegate.account().and_then(|(_, a)| a);
        Status {
            summary: self.summary(),
            auth_state: auth.state,
            auth_error: auth.error,
            user_id: account.as_ref().map(|a| a.user_id.clone()),
            account,
        }
    }

    pub(crate) fn hello(&self) -> Hello {
        let mut hello = Hello::new(
            Role::Agent,
            concat!("avs-device-agent ", env!("CARGO_PKG_VERSION")),
        );
        if self.network.can_provision() {
            hello.capabilities.push(Capability::Wifi);
        }
        hello.agent = Some(self.summary());
        hello
    }
}
