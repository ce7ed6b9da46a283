//! The Wi-Fi step of a pairing: put the speaker on a network that reaches Login with Amazon
//! before anyone signs in.
//!
//! A speaker fresh out of the box (reached over Bluetooth LE) has no network, and the code
//! exchange needs LWA; a sign-in whose code the speaker cannot redeem is a wasted sign-in and
//! an expired code. So [`crate::pairing`] reads the network status in `DeviceInfo` and, while
//! the speaker is offline (or the user asks), runs this step: scan, let a [`WifiChooser`] (the
//! CLI's list and hidden prompt, the desktop app's screen, or fixed `--wifi-ssid` flags) pick a
//! network and give its passphrase, send it over the sealed session, follow the progress, and on
//! a failure ask again with the reason in words. Only a passing connectivity check ends it.
//!
//! The passphrase lives in a [`WifiPassphrase`] (redacted, zeroized) from the prompt to the
//! sealed frame; the companion never stores it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use shared_protocol::frame::FrameTransport;
use shared_protocol::message::{
    AgentMessage, Capability, CompanionMessage, ConnectWifi, ErrorBody, ErrorKind, NetworkStatus,
    Ssid, WifiNetwork, WifiResult, WifiStage,
};
use shared_protocol::secret::WifiPassphrase;

use crate::link::{unexpected, LinkError, LinkSession};

/// The longest a join may take on the speaker (NetworkManager's own limits are below it).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(180);
/// The longest a scan may take.
pub const SCAN_TIMEOUT: Duration = Duration::from_secs(60);

/// A boxed future (object-safe chooser).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the user picked.
#[derive(Debug, Clone)]
pub struct WifiChoice {
    /// The network.
    pub ssid: Ssid,
    /// Its passphrase; `None` for an open network.
    pub passphrase: Option<WifiPassphrase>,
    /// Not in the scan: probe for it.
    pub hidden: bool,
}

/// Picks a network: the CLI's prompt, the app's screen, or fixed answers.
pub trait WifiChooser: Send + std::fmt::Debug {
    /// Picks from `networks` (strongest first); `last` is the previous attempt's failure, to
    /// show ("Wrong password for Home-5G") with the same network preselected. `None` gives up.
    fn choose<'a>(
        &'a mut self,
        networks: &'a [WifiNetwork],
        last: Option<&'a WifiResult>,
    ) -> BoxFuture<'a, Option<WifiChoice>>;
}

/// A chooser with one fixed answer (`--wifi-ssid` and `--wifi-password-file`): gives up after a
/// failure instead of retrying the same wrong passphrase.
#[derive(Debug)]
pub struct FixedChoice(pub Option<WifiChoice>);

impl WifiChooser for FixedChoice {
    fn choose<'a>(
        &'a mut self,
        networks: &'a [WifiNetwork],
        last: Option<&'a WifiResult>,
    ) -> BoxFuture<'a, Option<WifiChoice>> {
        Box::pin(async move {
            if last.is_some() {
                return None;
            }
            let mut c = self.0.take()?;
            if !networks.iter().any(|n| n.ssid == c.ssid) {
                c.hidden = true;
            }
            Some(c)
        })
    }
}

/// True when the speaker says it can join networks.
pub fn supported<T: FrameTransport>(session: &LinkSession<T>) -> bool {
    session.peer_hello().supports(Capability::Wifi)
}

fn not_supported() -> LinkError {
    LinkError::Agent(ErrorBody::new(
        ErrorKind::UnsupportedMessage,
        "this speaker cannot join Wi-Fi networks over the link (update it, or connect it to a network another way)",
    ))
}

/// The speaker's network status, with a fresh connectivity check.
pub async fn status<T: FrameTransport>(
    session: &mut LinkSession<T>,
) -> Result<NetworkStatus, LinkError> {
    let during = "the network status";
    session
        .send(&CompanionMessage::GetNetworkStatus, during)
        .await?;
    match session.recv(SCAN_TIMEOUT, during).await? {
        AgentMessage::NetworkStatus(s) => Ok(s),
        AgentMessage::Error(body) => Err(LinkError::Agent(body)),
        other => Err(unexpected(during, &other)),
    }
}

/// Scans on the speaker.
pub async fn scan<T: FrameTransport>(
    session: &mut LinkSession<T>,
) -> Result<Vec<WifiNetwork>, LinkError> {
    if !supported(session) {
        return Err(not_supported());
    }
    let during = "the Wi-Fi scan";
    session.send(&CompanionMessage::ScanWifi, during).await?;
    match session.recv(SCAN_TIMEOUT, during).await? {
        AgentMessage::WifiScan(s) => Ok(s.networks),
        AgentMessage::Error(body) => Err(LinkError::Agent(body)),
        other => Err(unexpected(during, &other)),
    }
}

/// Asks the speaker to join `choice`, reporting progress; the speaker's verdict.
pub async fn connect<T: FrameTransport>(
    session: &mut LinkSession<T>,
    choice: WifiChoice,
    on_progress: &mut (dyn FnMut(WifiStage) + Send),
) -> Result<WifiResult, LinkError> {
    if !supported(session) {
        return Err(not_supported());
    }
    let during = "joining the Wi-Fi network";
    let msg = CompanionMessage::ConnectWifi(ConnectWifi {
        ssid: choice.ssid,
        passphrase: choice.passphrase,
        hidden: choice.hidden,
    });
    session.send(&msg, during).await?;
    drop(msg);
    let follow = async {
        loop {
            match session.recv(JOIN_TIMEOUT, during).await? {
                AgentMessage::WifiProgress(p) => on_progress(p.stage),
                AgentMessage::WifiResult(r) => return Ok(r),
                AgentMessage::Error(body) => return Err(LinkError::Agent(body)),
                other => return Err(unexpected(during, &other)),
            }
        }
    };
    tokio::time::timeout(JOIN_TIMEOUT, follow)
        .await
        .map_err(|_| LinkError::Timeout {
            waiting_for: "the speaker to join the Wi-Fi network",
            after: JOIN_TIMEOUT,
        })?
}

/// What to say about a speaker that cannot reach LWA.
pub fn offline_reason(status: &NetworkStatus) -> String {
    let why = status
        .check
        .as_ref()
        .and_then(|c| c.failure)
        .map_or("it is not online", |f| f.describe());
    format!("the speaker cannot reach Login with Amazon ({why}); put it on a network first (the Wi-Fi step)")
}
