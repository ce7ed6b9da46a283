//! `wifi`: move a speaker to another Wi-Fi network (or give an offline one its first), without
//! pairing. Needs the setup code and an open pairing window, like `reset`: only someone holding
//! the speaker can change its network.

use shared_protocol::message::{NetworkStatus, WifiResult, WifiStage};
use shared_protocol::setup_code::SetupCode;

use crate::connect::{resolve, Connectors, Target, Wanted};
use crate::discovery::Device;
use crate::error::PairError;
use crate::link::LinkTimeouts;
use crate::wifi::{self, WifiChooser};

/// What the Wi-Fi command ended with.
#[derive(Debug)]
pub struct WifiOutcome {
    /// The speaker.
    pub device: Device,
    /// Its network status after the join (with a fresh connectivity check).
    pub status: NetworkStatus,
    /// The last join's result.
    pub result: WifiResult,
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
    let networks = wifi::scan(&mut session).await?;
    let mut last: Option<WifiResult> = None;
    loop {
        let Some(choice) = chooser.choose(&networks, last.as_ref()).await else {
            return Err(PairError::SpeakerOffline {
                reason: match &last {
                    Some(WifiResult::Failed { message, .. }) => message.clone(),
                    _ => "no network chosen".to_owned(),
                },
            });
        };
        let result = wifi::connect(&mut session, choice, on_progress).await?;
        if matches!(result, WifiResult::Connected { .. }) {
            let status = wifi::status(&mut session).await?;
            return Ok(WifiOutcome {
                device: resolved.device,
                status,
                result,
            });
        }
        last = Some(result);
    }
}
