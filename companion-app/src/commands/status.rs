//! `status`: what a speaker announces to anyone (its Hello), and with the setup code and an open
//! pairing window, its authorization state. With its window shut the speaker answers the Hello
//! only (protocol.md §16): status then reports the Hello's summary (paired, window state) and says
//! how to open the window, without starting a handshake the speaker would refuse.

use shared_protocol::message::{ErrorKind, Hello, Status};
use shared_protocol::setup_code::SetupCode;

use crate::connect::{resolve, Connectors, Reached, Target, Wanted};
use crate::discovery::Device;
use crate::error::PairError;

use super::window;
use crate::link::{LinkError, LinkTimeouts};

/// What `status` learnt.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// The speaker.
    pub device: Device,
    /// Where it was reached.
    pub reached: Reached,
    /// Its Hello: software, protocol version, public summary.
    pub hello: Hello,
    /// Its authorization state (given the setup code and an open window).
    pub auth: Option<Status>,
    /// Why the authorization state is missing although a code was given (the speaker refused
    /// the handshake: window closed, locked out).
    pub refused: Option<String>,
}

/// Reaches the speaker `target` names; with `code`, also asks its authorization state. Outside
/// its pairing window a speaker answers its Hello only: that is reported, not an error.
pub async fn status(
    target: Target,
    connectors: &Connectors,
    code: Option<&SetupCode>,
    timeouts: LinkTimeouts,
) -> Result<StatusReport, PairError> {
    let resolved = resolve(target, connectors, Wanted::Any, timeouts).await?;
    let hello = resolved.link.peer_hello().clone();
    let (mut auth, mut refused) = (None, None);
    if let Some(code) = code {
        if let Some(body) = window::refusal(resolved.link.agent()) {
            refused = Some(body.message);
        } else {
            match resolved.link.authenticate(code).await {
                Ok(mut session) => auth = Some(session.status().await?),
                // The window shut between the Hello and the handshake.
                Err(LinkError::Refused(body))
                    if matches!(body.kind, ErrorKind::WindowClosed | ErrorKind::LockedOut) =>
                {
                    refused = Some(body.message);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(StatusReport {
        device: resolved.device,
        reached: resolved.reached,
        hello,
        auth,
        refused,
    })
}
