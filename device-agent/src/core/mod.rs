//! The agent's core state: identity, setup code, pairing window, auth delegate and the
//! exchange lock — what every listener (TCP link, BLE, local API, mDNS) serves from.

use shared_protocol::ids::{DeviceId, DeviceSerialNumber, ProductId};
use shared_protocol::message::{AgentSummary, Hello, Role, Status};
use shared_protocol::setup_code::SetupCode;
use tokio::sync::Mutex;

use crate::auth_delegate::AuthDelegate;
use crate::pairing::Pairing;

/// What the link server needs from the rest of the agent.
#[derive(Debug)]
pub struct LinkContext {
    /// Link id.
    pub device_id: DeviceId,
    /// Friendly name.
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
    /// One exchange at a time (two companions racing must not interleave installs).
    pub exchange_lock: Mutex<()>,
}

impl LinkContext {
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
        Status {
            summary: self.summary(),
            auth_state: auth.state,
            auth_error: auth.error,
            user_id: self.delegate.account().and_then(|(_, u)| u),
        }
    }

    pub(crate) fn hello(&self) -> Hello {
        let mut hello = Hello::new(
            Role::Agent,
            concat!("avs-device-agent ", env!("CARGO_PKG_VERSION")),
        );
        hello.agent = Some(self.summary());
        hello
    }
}
