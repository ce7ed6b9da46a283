//! The `status` answer of the local API: the link status plus what only the speaker's own
//! processes may know (the link address, the refresh count).

use serde::{Deserialize, Serialize};
use shared_protocol::ids::{DeviceId, UserId};
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::message::{AccountProfile, PairingWindow};

use super::Core;

/// `status` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// The id the speaker goes by on the link, in mDNS and in BLE.
    pub device_id: DeviceId,
    /// The name the companion shows.
    pub friendly_name: String,
    /// Whether a refresh token is stored.
    pub paired: bool,
    /// Whether a companion may pair now, and for how long.
    pub window: PairingWindow,
    /// The SDK auth state.
    pub auth_state: AuthState,
    /// The SDK error code of the last failure (`SUCCESS` when none).
    pub auth_error: AuthError,
    /// The linked Amazon account's user id, once the profile was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The linked account's name and e-mail address as well (the `profile` scope), if known.
    /// Personal data: shown to the speaker's own processes, never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountProfile>,
    /// Where the TCP link listens (`IP:PORT`).
    pub link: String,
    /// Refreshes sent since start.
    pub refreshes: u64,
}

impl Core {
    /// The `status` answer.
    pub fn status_report(&self) -> StatusReport {
        let s = self.status();
        StatusReport {
            device_id: s.summary.device_id,
            friendly_name: s.summary.friendly_name,
            paired: s.summary.paired,
            window: s.summary.window,
            auth_state: s.auth_state,
            auth_error: s.auth_error,
            user_id: s.user_id,
            account: s.account,
            link: self.link_addr.to_string(),
            refreshes: self.delegate.refresh_count(),
        }
    }
}
