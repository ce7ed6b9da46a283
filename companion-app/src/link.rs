//! The link client: reach a speaker, agree on versions, prove the setup code, ask things.
//!
//! Three steps with their own types so each can only happen in order:
//! a transport ([`crate::connect`]: TCP, BLE, any [`FrameTransport`]) → [`LinkClient`] (Hellos
//! exchanged: the speaker's name, paired flag and pairing window are known, nothing secret) →
//! [`LinkClient::authenticate`] with the setup code → [`LinkSession`] (SPAKE2 done, every
//! message sealed).
//!
//! The protocol crate never times out by itself; every wait on the speaker here is bounded by
//! [`LinkTimeouts`], so a speaker that dies mid-way ends in [`LinkError::Closed`] or
//! [`LinkError::Timeout`], never a hang.

use std::net::SocketAddr;
use std::time::Duration;

use shared_protocol::frame::{FrameError, FrameTransport, StreamTransport};
use shared_protocol::message::{
    AgentMessage, AgentSummary, Capability, CompanionMessage, DeviceInfo, ErrorBody, ErrorKind,
    Hello, Role, Status, VersionMismatch, WireMessage,
};
use shared_protocol::session::{ClientHandshake, CompanionSession, HandshakeError, SessionError};
use shared_protocol::setup_code::SetupCode;
use tokio::net::TcpStream;

pub use crate::connect::tcp::connect_tcp;
use crate::connect::ConnectFailure;
use crate::words::Words;

/// The transport over TCP.
pub type TcpTransport = StreamTransport<TcpStream>;

/// How long to wait for the speaker at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTimeouts {
    /// Per address tried.
    pub connect: Duration,
    /// Each handshake step (Hello, PAKE).
    pub handshake: Duration,
    /// A request's answer (device info, status, reset).
    pub request: Duration,
}

impl Default for LinkTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            handshake: Duration::from_secs(10),
            request: Duration::from_secs(10),
        }
    }
}

/// Why talking to the speaker failed. Never contains the setup code.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No address to try.
    #[error("the speaker has no usable address")]
    NoAddress,
    /// Every address refused or timed out.
    #[error("cannot connect to the speaker at {addrs}: {reason}")]
    Connect {
        /// What was tried.
        addrs: String,
        /// The last failure.
        reason: ConnectFailure,
    },
    /// The speaker went quiet.
    #[error("the speaker did not answer {waiting_for} within {after:?}")]
    Timeout {
        /// What we waited for.
        waiting_for: &'static str,
        /// How long.
        after: Duration,
    },
    /// The setup code does not match the speaker's.
    #[error("{}", wrong_code_text(.tries))]
    WrongSetupCode {
        /// What the speaker said the guess cost (protocol 1.2 speakers; `None` from older ones).
        tries: Option<TriesLeft>,
    },
    /// The speaker refused the handshake (pairing window closed, locked out, busy).
    #[error("the speaker refused: {}", .0.message)]
    Refused(ErrorBody),
    /// Versions do not overlap; says which side to update.
    #[error(transparent)]
    Incompatible(#[from] VersionMismatch),
    /// The connection ended.
    #[error("the speaker closed the connection during {during}")]
    Closed {
        /// The step.
        during: &'static str,
    },
    /// The speaker sent something that breaks the protocol.
    #[error("protocol error during {during}: {detail}")]
    Protocol {
        /// The step.
        during: &'static str,
        /// What was wrong (never message content).
        detail: String,
    },
    /// The speaker answered a request with an error.
    #[error("the speaker answered: {}", .0.message)]
    Agent(ErrorBody),
    /// The speaker went away after the sign-in was handed over (agent restarted, speaker off).
    #[error("{}", stopped_answering())]
    StoppedAnswering,
    /// Something answered that speaks another protocol (the address or port is wrong).
    #[error("that address is not an avs-pair speaker (it answered like {like})")]
    NotASpeaker {
        /// What it answered like ("an HTTP server").
        like: &'static str,
    },
}

fn stopped_answering() -> Words {
    Words::from("the speaker stopped answering (restarted?); your sign-in was not used — ").retry()
}

impl LinkError {
    /// What happened and what to do, in pieces ([`Words`]); the `Display` is their terminal
    /// rendering. The speaker's own sentences (in [`LinkError::Refused`] and
    /// [`LinkError::Agent`]) are for everyone, as it wrote them.
    pub fn words(&self) -> Words {
        match self {
            LinkError::StoppedAnswering => stopped_answering(),
            LinkError::NoAddress
            | LinkError::Connect { .. }
            | LinkError::Timeout { .. }
            | LinkError::WrongSetupCode { .. }
            | LinkError::Refused(_)
            | LinkError::Incompatible(_)
            | LinkError::Closed { .. }
            | LinkError::Protocol { .. }
            | LinkError::Agent(_)
            | LinkError::NotASpeaker { .. } => self.to_string().into(),
        }
    }
}

/// What a wrong setup code cost, as the speaker counted it (its answer to our
/// `Error{wrong_setup_code}`, protocol 1.2). Unauthenticated (there are no keys yet): shown to
/// the user, never acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriesLeft {
    /// Wrong codes the speaker still takes in this pairing window; 0: that one locked it.
    pub left: u32,
    /// How long pairing locks when they run out (with `left == 0`: the lock now running).
    pub lockout: Duration,
}

impl TriesLeft {
    /// From the speaker's `Error{wrong_setup_code}` (`None` without a count).
    pub fn from_body(body: &ErrorBody) -> Option<Self> {
        Some(Self {
            left: body.attempts_left?,
            lockout: Duration::from_secs(body.lockout_secs.unwrap_or(0)),
        })
    }
}

/// "1 minute", "2 minutes", "30 seconds", "1 hour", "1 day": a lockout in words.
pub fn duration_words(d: Duration) -> String {
    let secs = d.as_secs().max(1);
    let (n, unit) = match secs {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s if s >= 120 => (s.div_ceil(60), "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn wrong_code_text(tries: &Option<TriesLeft>) -> String {
    const CHECK: &str = "check the label or the code shown at first boot";
    match tries {
        None => format!("wrong setup code: it does not match the speaker's ({CHECK}; repeated wrong codes lock pairing for a while)"),
        Some(TriesLeft { left: 0, lockout }) => format!(
            "wrong setup code: it does not match the speaker's, and that was the last try: pairing is locked for {} (pressing the speaker's pairing button reopens it at once)",
            duration_words(*lockout)
        ),
        Some(TriesLeft { left, lockout }) => format!(
            "wrong setup code: {left} {} left before pairing locks for {} ({CHECK})",
            if *left == 1 { "try" } else { "tries" },
            duration_words(*lockout)
        ),
    }
}

/// What a peer that is not a speaker answered like, read from the first four bytes it sent
/// (taken as our frame's big-endian length: "HTTP" is 1213486160). Text protocols start with
/// printable ASCII; our frames are never that long.
fn answered_like(len: usize) -> Option<&'static str> {
    let bytes = u32::try_from(len).ok()?.to_be_bytes();
    Some(match &bytes {
        b"HTTP" => "an HTTP server",
        b"SSH-" => "an SSH server",
        b if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') => "a text protocol",
        _ => return None,
    })
}

impl LinkError {
    fn from_frame(err: FrameError, during: &'static str) -> Self {
        match err {
            FrameError::Truncated => LinkError::Closed { during },
            FrameError::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                LinkError::Closed { during }
            }
            FrameError::Oversize { len, .. } if answered_like(len).is_some() => {
                LinkError::NotASpeaker {
                    like: answered_like(len).unwrap_or("another protocol"),
                }
            }
            other => LinkError::Protocol {
                during,
                detail: other.to_string(),
            },
        }
    }

    fn from_handshake(err: HandshakeError, during: &'static str) -> Self {
        match err {
            HandshakeError::WrongSetupCode => LinkError::WrongSetupCode { tries: None },
            HandshakeError::Peer(body) | HandshakeError::Refused(body) => LinkError::Refused(body),
            HandshakeError::Incompatible(m) => LinkError::Incompatible(m),
            HandshakeError::Frame(f) => Self::from_frame(f, during),
            HandshakeError::Closed => LinkError::Closed { during },
            HandshakeError::Malformed(d) | HandshakeError::Unexpected(d) => {
                LinkError::Protocol { during, detail: d }
            }
        }
    }

    /// Maps a session error.
    pub fn from_session(err: SessionError, during: &'static str) -> Self {
        match err {
            SessionError::Closed | SessionError::Dead => LinkError::Closed { during },
            SessionError::Frame(f) => Self::from_frame(f, during),
            SessionError::Tampered => LinkError::Protocol {
                during,
                detail: err.to_string(),
            },
            SessionError::Malformed(d) => LinkError::Protocol { during, detail: d },
            SessionError::WrongDirection(name) => LinkError::Protocol {
                during,
                detail: format!("the speaker sent a {name} message, which only a companion sends"),
            },
        }
    }

    /// True when the speaker is probably gone (worth a discovery re-check).
    pub fn speaker_lost(&self) -> bool {
        matches!(
            self,
            LinkError::Connect { .. }
                | LinkError::Closed { .. }
                | LinkError::Timeout { .. }
                | LinkError::StoppedAnswering
        )
    }
}

/// Our Hello: it announces that we answer the speaker's account-switch question
/// ([`crate::account_switch`]).
pub fn companion_hello() -> Hello {
    let mut hello = Hello::new(
        Role::Companion,
        format!("avs-companion {}", env!("CARGO_PKG_VERSION")),
    );
    hello
        .capabilities
        .push(shared_protocol::message::Capability::ConfirmAccountSwitch);
    hello
}

/// A link with Hellos exchanged, before the setup code.
#[derive(Debug)]
pub struct LinkClient<T: FrameTransport> {
    handshake: ClientHandshake<T>,
    timeouts: LinkTimeouts,
}

impl<T: FrameTransport> LinkClient<T> {
    /// Exchanges Hellos over `transport`.
    pub async fn start(transport: T, timeouts: LinkTimeouts) -> Result<Self, LinkError> {
        let handshake = tokio::time::timeout(
            timeouts.handshake,
            ClientHandshake::start(transport, companion_hello()),
        )
        .await
        .map_err(|_| LinkError::Timeout {
            waiting_for: "the hello",
            after: timeouts.handshake,
        })?
        .map_err(|e| LinkError::from_handshake(e, "the hello"))?;
        Ok(Self {
            handshake,
            timeouts,
        })
    }

    /// The speaker's Hello.
    pub fn peer_hello(&self) -> &Hello {
        self.handshake.peer_hello()
    }

    /// The speaker's public summary (name, paired, pairing window).
    pub fn agent(&self) -> Option<&AgentSummary> {
        self.peer_hello().agent.as_ref()
    }

    /// Runs the PAKE with the setup code; on success every further message is sealed. A wrong
    /// code comes back with the speaker's count of the tries left, when it gives one.
    pub async fn authenticate(self, code: &SetupCode) -> Result<LinkSession<T>, LinkError> {
        let during = "the setup-code handshake";
        let session = tokio::time::timeout(
            self.timeouts.handshake,
            self.handshake.authenticate_with_answer(code),
        )
        .await
        .map_err(|_| LinkError::Timeout {
            waiting_for: during,
            after: self.timeouts.handshake,
        })?
        .map_err(|failure| match failure.error {
            HandshakeError::WrongSetupCode => LinkError::WrongSetupCode {
                tries: failure.agent_answer.as_ref().and_then(TriesLeft::from_body),
            },
            other => LinkError::from_handshake(other, during),
        })?;
        Ok(LinkSession {
            session,
            timeouts: self.timeouts,
        })
    }
}

/// An authenticated, sealed session with the speaker.
#[derive(Debug)]
pub struct LinkSession<T: FrameTransport> {
    session: CompanionSession<T>,
    timeouts: LinkTimeouts,
}

impl<T: FrameTransport> LinkSession<T> {
    /// The speaker's Hello.
    pub fn peer_hello(&self) -> &Hello {
        self.session.peer_hello()
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> LinkTimeouts {
        self.timeouts
    }

    /// Sends one message.
    pub async fn send(
        &mut self,
        msg: &CompanionMessage,
        during: &'static str,
    ) -> Result<(), LinkError> {
        tokio::time::timeout(self.timeouts.request, self.session.send(msg))
            .await
            .map_err(|_| LinkError::Timeout {
                waiting_for: "the link to accept our message",
                after: self.timeouts.request,
            })?
            .map_err(|e| LinkError::from_session(e, during))
    }

    /// Receives one message within `wait`.
    pub async fn recv(
        &mut self,
        wait: Duration,
        waiting_for: &'static str,
    ) -> Result<AgentMessage, LinkError> {
        tokio::time::timeout(wait, self.session.recv())
            .await
            .map_err(|_| LinkError::Timeout {
                waiting_for,
                after: wait,
            })?
            .map_err(|e| LinkError::from_session(e, waiting_for))
    }

    async fn request(
        &mut self,
        msg: CompanionMessage,
        waiting_for: &'static str,
    ) -> Result<AgentMessage, LinkError> {
        self.send(&msg, waiting_for).await?;
        match self.recv(self.timeouts.request, waiting_for).await? {
            AgentMessage::Error(body) => Err(LinkError::Agent(body)),
            other => Ok(other),
        }
    }

    /// Starts a pairing session on the speaker: a fresh PKCE challenge and session id.
    pub async fn device_info(&mut self) -> Result<DeviceInfo, LinkError> {
        match self
            .request(CompanionMessage::GetDeviceInfo, "the device info")
            .await?
        {
            AgentMessage::DeviceInfo(info) => {
                info.challenge().map_err(|e| LinkError::Protocol {
                    during: "the device info",
                    detail: format!("bad code challenge: {e}"),
                })?;
                Ok(info)
            }
            other => Err(unexpected("the device info", &other)),
        }
    }

    /// The speaker's auth state.
    pub async fn status(&mut self) -> Result<Status, LinkError> {
        match self
            .request(CompanionMessage::GetStatus, "the status")
            .await?
        {
            AgentMessage::Status(s) => Ok(s),
            other => Err(unexpected("the status", &other)),
        }
    }

    /// Makes the speaker forget its account. A speaker that does not announce the `reset`
    /// capability is not asked.
    pub async fn reset(&mut self) -> Result<(), LinkError> {
        if !self.peer_hello().supports(Capability::Reset) {
            return Err(LinkError::Agent(ErrorBody::new(
                ErrorKind::UnsupportedMessage,
                "this speaker does not support a reset over the link",
            )));
        }
        match self.request(CompanionMessage::Reset, "the reset").await? {
            AgentMessage::ResetDone => Ok(()),
            other => Err(unexpected("the reset", &other)),
        }
    }
}

/// A message that does not answer what was asked.
pub fn unexpected(during: &'static str, got: &AgentMessage) -> LinkError {
    LinkError::Protocol {
        during,
        detail: format!("unexpected {} message", got.type_name()),
    }
}

/// Connects over TCP and exchanges Hellos.
pub async fn open_tcp(
    addrs: &[SocketAddr],
    timeouts: LinkTimeouts,
) -> Result<(LinkClient<TcpTransport>, SocketAddr), LinkError> {
    let (transport, addr) = connect_tcp(addrs, &timeouts).await?;
    Ok((LinkClient::start(transport, timeouts).await?, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_in_words() {
        let w = |s| duration_words(Duration::from_secs(s));
        assert_eq!(w(1), "1 second");
        assert_eq!(w(45), "45 seconds");
        assert_eq!(w(60), "1 minute");
        assert_eq!(w(90), "90 seconds");
        assert_eq!(w(150), "3 minutes");
        assert_eq!(w(480), "8 minutes");
        assert_eq!(w(3600), "1 hour");
        assert_eq!(w(86_400), "1 day");
    }

    /// Issue 15.7: a wrong code says what it cost, as the speaker counted it.
    #[test]
    fn a_wrong_code_says_how_many_tries_are_left() {
        let wrong = |tries| LinkError::WrongSetupCode { tries }.to_string();
        let body = ErrorBody::new(ErrorKind::WrongSetupCode, "x").with_attempts(3, 60);
        assert_eq!(
            wrong(TriesLeft::from_body(&body)),
            "wrong setup code: 3 tries left before pairing locks for 1 minute (check the label or the code shown at first boot)"
        );
        let last = ErrorBody::new(ErrorKind::WrongSetupCode, "x").with_attempts(1, 120);
        assert!(wrong(TriesLeft::from_body(&last))
            .starts_with("wrong setup code: 1 try left before pairing locks for 2 minutes"));
        let locked = ErrorBody::new(ErrorKind::WrongSetupCode, "x").with_attempts(0, 60);
        assert_eq!(
            wrong(TriesLeft::from_body(&locked)),
            "wrong setup code: it does not match the speaker's, and that was the last try: pairing is locked for 1 minute (pressing the speaker's pairing button reopens it at once)"
        );
        // An older speaker gives no count: the old sentence.
        let old = ErrorBody::new(ErrorKind::WrongSetupCode, "x");
        assert_eq!(TriesLeft::from_body(&old), None);
        assert!(wrong(None).contains("repeated wrong codes lock pairing for a while"));
    }
}
