//! `wifi`: move a speaker to another Wi-Fi network (or give an offline one its first), without
//! pairing. Needs the setup code and an open pairing window, like `reset`: only someone holding
//! the speaker can change its network.

use shared_protocol::message::{NetworkStatus, WifiStage};
use shared_protocol::setup_code::SetupCode;

use crate::connect::{resolve, Connectors, Target, Wanted};
use crate::discovery::Device;
use crate::error::PairError;
use crate::link::LinkTimeouts;
use crate::wifi::{self, JoinEvent, Joined, WifiChooser};

/// What the Wi-Fi command ended with.
#[derive(Debug)]
pub struct WifiOutcome {
    /// The speaker.
    pub device: Device,
    /// Its network status after the join (with a fresh connectivity check).
    pub status: NetworkStatus,
    /// Where it joined.
    pub joined: Joined,
}

/// Reaches the speaker `target` names, proves `code`, scans, and joins the network `chooser`
/// picks (asking again after a failure, with the reason) until one works or it gives up.
pub async fn wifi(
    target: Target,
    connectors: &Connectors,
    code: &SetupCode,
    timeouts: LinkTimeouts,
    chooser: &mut dyn WifiChooser,
    on_progress: &mut (dyn FnMut(WifiStage) + Send),
) -> Result<WifiOutcome, PairError> {
    let resolved = resolve(target, connectors, Wanted::ReadyToPair, timeouts).await?;
    let mut session = resolved.link.authenticate(code).await?;
    let joined = wifi::choose_and_join(&mut session, chooser, &mut |event| {
        if let JoinEvent::Stage(stage) = event {
            on_progress(stage);
        }
    })
    .await?;
    let status = wifi::status(&mut session).await?;
    Ok(WifiOutcome {
        device: resolved.device,
        status,
        joined,
    })
}
