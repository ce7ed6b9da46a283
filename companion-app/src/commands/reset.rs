//! `reset`: the speaker forgets its Amazon account (it can be paired again while its window is
//! open). Needs the setup code, so only someone holding the speaker can do it.

use shared_protocol::setup_code::SetupCode;

use crate::connect::{resolve, Connectors, Target, Wanted};
use crate::discovery::Device;
use crate::error::PairError;
use crate::link::{LinkError, LinkTimeouts};

/// Reaches the speaker `target` names, asks `confirm` (which sees the speaker and may refuse
/// with [`PairError::Cancelled`]), proves `code` and resets it. Returns the speaker.
pub async fn reset(
    target: Target,
    connectors: &Connectors,
    code: &SetupCode,
    timeouts: LinkTimeouts,
    confirm: impl FnOnce(&Device) -> Result<(), PairError>,
) -> Result<Device, PairError> {
    let resolved = resolve(target, connectors, Wanted::Any, timeouts).await?;
    // Refused before the confirmation: asking "forget the account?" first would be a lie.
    if let Some(body) = super::window::refusal(resolved.link.agent()) {
        return Err(LinkError::Refused(body).into());
    }
    confirm(&resolved.device)?;
    let mut session = resolved.link.authenticate(code).await?;
    session.reset().await?;
    Ok(resolved.device)
}
