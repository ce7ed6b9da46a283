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

use crate::error::PairError;
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

/// What a [`WifiChooser`] is asked: the scan and how the previous attempt ended.
#[derive(Debug, Clone, Copy)]
pub struct WifiQuestion<'a> {
    /// The networks the speaker sees, strongest first.
    pub networks: &'a [WifiNetwork],
    /// The previous attempt's result; `None` for the first question.
    pub last: Option<&'a WifiResult>,
}

impl WifiQuestion<'_> {
    /// The previous attempt's failure in words ("Wrong password for Home-5G"), to show.
    pub fn last_error(&self) -> Option<&str> {
        match self.last {
            Some(WifiResult::Failed { message, .. }) => Some(message),
            _ => None,
        }
    }

    /// Where the network that failed last stands in `networks`, to preselect it.
    pub fn last_network(&self) -> Option<usize> {
        match self.last {
            Some(WifiResult::Failed { ssid, .. }) => {
                self.networks.iter().position(|n| &n.ssid == ssid)
            }
            _ => None,
        }
    }
}

/// Picks a network: the CLI's prompt, the app's screen, or fixed answers.
pub trait WifiChooser: Send + std::fmt::Debug {
    /// Picks from the question's networks, showing the previous failure (if any) with the same
    /// network preselected. `None` gives up.
    fn choose<'a>(&'a mut self, question: WifiQuestion<'a>) -> BoxFuture<'a, Option<WifiChoice>>;
}

/// A chooser with one fixed answer (`--wifi-ssid` and `--wifi-password-file`): gives up after a
/// failure instead of retrying the same wrong passphrase.
#[derive(Debug)]
pub struct FixedChoice(pub Option<WifiChoice>);

impl WifiChooser for FixedChoice {
    fn choose<'a>(&'a mut self, question: WifiQuestion<'a>) -> BoxFuture<'a, Option<WifiChoice>> {
        Box::pin(async move {
            if question.last.is_some() {
                return None;
            }
            let mut c = self.0.take()?;
            if !question.networks.iter().any(|n| n.ssid == c.ssid) {
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

/// What happens during [`choose_and_join`], for the user to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinEvent<'a> {
    /// The speaker entered a stage of the join.
    Stage(WifiStage),
    /// A join failed (the reason in words); the chooser is asked again.
    Failed(&'a str),
}

/// Where the speaker joined: the end of [`choose_and_join`]. Shown as "on Home-5G at 192.0.2.7".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The network.
    pub ssid: Ssid,
    /// The speaker's address on it, if it said.
    pub address: Option<String>,
}

impl std::fmt::Display for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "on {}", self.ssid)?;
        match &self.address {
            Some(a) => write!(f, " at {a}"),
            None => Ok(()),
        }
    }
}

/// Scans, lets `chooser` pick, joins, and after a failed join asks again with the reason, until
/// the speaker is on a network or the chooser gives up
/// ([`PairError::SpeakerOffline`] with the last failure). `pair`'s Wi-Fi step and the `wifi`
/// command both run this loop. The list is scanned again only when it was empty (a hidden
/// network may have been tried).
pub async fn choose_and_join<T: FrameTransport>(
    session: &mut LinkSession<T>,
    chooser: &mut dyn WifiChooser,
    on_event: &mut (dyn FnMut(JoinEvent<'_>) + Send),
) -> Result<Joined, PairError> {
    let mut networks = scan(session).await?;
    let mut last: Option<WifiResult> = None;
    loop {
        let question = WifiQuestion {
            networks: &networks,
            last: last.as_ref(),
        };
        let Some(choice) = chooser.choose(question).await else {
            let reason = question.last_error().unwrap_or("no network chosen");
            return Err(PairError::SpeakerOffline {
                reason: reason.to_owned(),
            });
        };
        let result = connect(session, choice, &mut |stage| {
            on_event(JoinEvent::Stage(stage))
        })
        .await?;
        match &result {
            WifiResult::Connected { ssid, address } => {
                return Ok(Joined {
                    ssid: ssid.clone(),
                    address: address.clone(),
                })
            }
            WifiResult::Failed { message, .. } => on_event(JoinEvent::Failed(message)),
        }
        last = Some(result);
        if networks.is_empty() {
            networks = scan(session).await?;
        }
    }
}

/// A join stage in words, as the CLI and the app show it ("checking the password").
pub fn stage_words(stage: WifiStage) -> &'static str {
    match stage {
        WifiStage::Associating => "joining the network",
        WifiStage::Authenticating => "checking the password",
        WifiStage::GettingAddress => "getting an address",
        WifiStage::CheckingInternet => "checking that the speaker reaches Amazon",
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared_protocol::message::{WifiBand, WifiFailure, WifiSecurity};

    fn net(name: &str) -> WifiNetwork {
        WifiNetwork {
            ssid: Ssid::new(name.as_bytes().to_vec()).expect("short"),
            signal: 70,
            security: WifiSecurity::Wpa2Psk,
            band: WifiBand::Ghz5,
            known: false,
        }
    }

    #[test]
    fn the_question_shows_the_last_failure_and_preselects_its_network() {
        let nets = [net("Cafe"), net("Home-5G")];
        let first = WifiQuestion {
            networks: &nets,
            last: None,
        };
        assert_eq!((first.last_error(), first.last_network()), (None, None));
        let failed = WifiResult::Failed {
            ssid: nets[1].ssid.clone(),
            reason: WifiFailure::WrongPassword,
            message: "Wrong password for Home-5G".into(),
        };
        let again = WifiQuestion {
            networks: &nets,
            last: Some(&failed),
        };
        assert_eq!(again.last_error(), Some("Wrong password for Home-5G"));
        assert_eq!(again.last_network(), Some(1));
        // A hidden network that failed is not in the list: nothing to preselect.
        let hidden = WifiQuestion {
            networks: &nets[..1],
            last: Some(&failed),
        };
        assert_eq!(hidden.last_network(), None);
        let joined = WifiResult::Connected {
            ssid: nets[0].ssid.clone(),
            address: None,
        };
        let after_success = WifiQuestion {
            networks: &nets,
            last: Some(&joined),
        };
        assert_eq!(after_success.last_error(), None);
    }

    /// Answers from a list (`None`: gives up) and records each question: how many networks,
    /// and the failure shown.
    #[derive(Debug, Default)]
    struct Script {
        answers: Vec<Option<WifiChoice>>,
        asked: Vec<(usize, Option<String>)>,
    }

    impl WifiChooser for Script {
        fn choose<'a>(&'a mut self, q: WifiQuestion<'a>) -> BoxFuture<'a, Option<WifiChoice>> {
            self.asked
                .push((q.networks.len(), q.last_error().map(str::to_owned)));
            let answer = if self.answers.is_empty() {
                None
            } else {
                self.answers.remove(0)
            };
            Box::pin(async move { answer })
        }
    }

    fn choice(name: &str, hidden: bool) -> Option<WifiChoice> {
        Some(WifiChoice {
            ssid: net(name).ssid,
            passphrase: Some(WifiPassphrase::new("hunter2hunter2")),
            hidden,
        })
    }

    /// Plays a speaker that scans `scans` in turn and answers each join with its stages and
    /// the next of `results`; returns how many scans it was asked for.
    fn speaker(
        mut s: shared_protocol::session::AgentSession<crate::test_speaker::Wire>,
        mut scans: Vec<Vec<WifiNetwork>>,
        mut results: Vec<(WifiStage, WifiResult)>,
    ) -> tokio::task::JoinHandle<usize> {
        use shared_protocol::message::{WifiProgress, WifiScan};
        tokio::spawn(async move {
            let mut scanned = 0;
            while let Ok(msg) = s.recv().await {
                let reply = match msg {
                    CompanionMessage::ScanWifi => {
                        scanned += 1;
                        AgentMessage::WifiScan(WifiScan {
                            networks: scans.remove(0),
                        })
                    }
                    CompanionMessage::ConnectWifi(_) => {
                        let (stage, result) = results.remove(0);
                        let progress = AgentMessage::WifiProgress(WifiProgress { stage });
                        s.send(&progress).await.unwrap();
                        AgentMessage::WifiResult(result)
                    }
                    other => panic!("unexpected {other:?}"),
                };
                s.send(&reply).await.unwrap();
            }
            scanned
        })
    }

    fn wrong_password(name: &str) -> WifiResult {
        WifiResult::Failed {
            ssid: net(name).ssid,
            reason: WifiFailure::WrongPassword,
            message: format!("Wrong password for {name}"),
        }
    }

    /// `pair`'s Wi-Fi step and the `wifi` command share this loop: a failed join is shown and
    /// asked about again, an empty scan is repeated after a failure (a hidden network was
    /// tried), and the first success ends it.
    #[tokio::test]
    async fn a_failed_join_asks_again_with_the_reason_until_one_works() {
        let (mut session, s) = crate::test_speaker::sealed_link(&[Capability::Wifi]).await;
        let joined = WifiResult::Connected {
            ssid: net("Home-5G").ssid,
            address: Some("192.0.2.7".into()),
        };
        let speaker = speaker(
            s,
            vec![vec![], vec![net("Home-5G")]],
            vec![
                (WifiStage::Associating, wrong_password("Attic")),
                (WifiStage::Authenticating, joined),
            ],
        );
        let mut chooser = Script {
            answers: vec![choice("Attic", true), choice("Home-5G", false)],
            ..Script::default()
        };
        let mut events = Vec::new();
        let end = choose_and_join(&mut session, &mut chooser, &mut |e| {
            events.push(format!("{e:?}"))
        })
        .await
        .unwrap();
        assert_eq!(end.to_string(), "on Home-5G at 192.0.2.7");
        assert_eq!(
            chooser.asked,
            [(0, None), (1, Some("Wrong password for Attic".to_owned()))]
        );
        assert_eq!(
            events,
            [
                "Stage(Associating)",
                "Failed(\"Wrong password for Attic\")",
                "Stage(Authenticating)"
            ]
        );
        drop(session);
        assert_eq!(speaker.await.unwrap(), 2, "scanned again after the failure");
    }

    /// A chooser that gives up ends the step with the last failure as the reason.
    #[tokio::test]
    async fn giving_up_after_a_failure_says_why_the_speaker_is_offline() {
        let (mut session, s) = crate::test_speaker::sealed_link(&[Capability::Wifi]).await;
        let speaker = speaker(
            s,
            vec![vec![net("Home-5G")]],
            vec![(WifiStage::Authenticating, wrong_password("Home-5G"))],
        );
        let mut chooser = Script {
            answers: vec![choice("Home-5G", false)],
            ..Script::default()
        };
        let err = choose_and_join(&mut session, &mut chooser, &mut |_| {})
            .await
            .unwrap_err();
        match err {
            PairError::SpeakerOffline { reason } => {
                assert_eq!(reason, "Wrong password for Home-5G")
            }
            other => panic!("{other:?}"),
        }
        drop(session);
        assert_eq!(
            speaker.await.unwrap(),
            1,
            "a full list is not scanned again"
        );
    }

    #[test]
    fn where_the_speaker_joined_reads_as_a_phrase() {
        let ssid = net("Home-5G").ssid;
        let with_address = Joined {
            ssid: ssid.clone(),
            address: Some("192.0.2.7".into()),
        };
        assert_eq!(with_address.to_string(), "on Home-5G at 192.0.2.7");
        let without = Joined {
            ssid,
            address: None,
        };
        assert_eq!(without.to_string(), "on Home-5G");
    }
}
