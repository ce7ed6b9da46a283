//! The plain phase: Hello exchange, SPAKE2, key confirmation.
//!
//! ```text
//! companion (A)                                   agent (B)
//!   Hello ─────────────────────────────────────▶  check versions (else Error{incompatible_version})
//!   check versions  ◀───────────────────────────  Hello (with AgentSummary)
//!   PakeStart{pake: X} ────────────────────────▶  AttemptGuard::before_reply (persist a failure)
//!                   ◀───────────────────────────  PakeReply{pake: Y, confirm: HMAC(Kca, TH)}
//!   verify (else Error{wrong_setup_code}) ────▶  counted: AttemptGuard::wrong_code_answer
//!                   ◀───────────────────────────  Error{wrong_setup_code, attempts_left, lockout_secs}
//!   PakeConfirm{confirm: HMAC(Kcc, TH)} ───────▶  verify (else Error{wrong_setup_code, …})
//!                                                 AttemptGuard::on_success
//!   ═════════════════ sealed frames both ways ═════════════════
//! ```
//!
//! The companion is the one that finds a wrong code (it checks the agent's tag first), but only
//! the agent knows what the guess cost. So the agent answers the companion's
//! `Error{wrong_setup_code}` with its own, carrying the attempts left before pairing locks
//! (protocol 1.2), and the companion waits a moment for it ([`WRONG_CODE_ANSWER_WAIT`]); an
//! older agent just closes, and the companion reports the wrong code without a count. The
//! count is unauthenticated (there are no keys): it is shown to the user, never acted on.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use super::cipher::{AgentSession, CompanionSession, SecureSession};
use super::error::{ClientAuthFailure, HandshakeError};
use super::keys::{
    confirm_tag, verify_confirm, SessionKeys, Transcript, AGENT_IDENTITY, COMPANION_IDENTITY,
};
use super::side::Side;
use crate::frame::FrameTransport;
use crate::json::describe_json_error;
use crate::message::{
    check_compatible, ErrorBody, ErrorKind, Hello, PlainMessage, Role, WireMessage,
};
use crate::setup_code::SetupCode;

/// Length of a SPAKE2 Ed25519 message: a side byte and a 32-byte group element.
const PAKE_MSG_LEN: usize = 33;
/// Length of a confirmation tag (HMAC-SHA256).
const CONFIRM_LEN: usize = 32;

const WRONG_CODE_MESSAGE: &str =
    "the setup code does not match this speaker's: check the code on the speaker's label";

/// How long a companion that found the code wrong waits for the agent's count of the attempts
/// left (a 1.2 agent answers at once; an older one closes, which ends the wait sooner).
pub const WRONG_CODE_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// The agent's attempt limiter, consulted by [`ServerHandshake::authenticate`].
pub trait AttemptGuard {
    /// Called after PakeStart arrives and BEFORE the agent answers: check the window/lockout and
    /// persist a tentative failed attempt. Err(body) is sent to the peer and the handshake ends.
    fn before_reply(&mut self) -> Result<(), ErrorBody>;
    /// Called when the companion's confirmation verified: undo the tentative failure.
    fn on_success(&mut self);
    /// Called when the code proved wrong (the companion said so, or its tag did not verify):
    /// the `Error{wrong_setup_code}` to send, ideally with the attempts left
    /// ([`ErrorBody::with_attempts`]). The default says nothing about attempts.
    fn wrong_code_answer(&mut self) -> ErrorBody {
        ErrorBody::new(ErrorKind::WrongSetupCode, WRONG_CODE_MESSAGE)
    }
}

/// An [`AttemptGuard`] that allows everything: tests and benchmarks only.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAttemptLimit;

impl AttemptGuard for NoAttemptLimit {
    fn before_reply(&mut self) -> Result<(), ErrorBody> {
        Ok(())
    }
    fn on_success(&mut self) {}
}

/// True when `msg` (side byte + 32-byte compressed Edwards point) carries a point of small
/// order (the identity or a torsion point), which would make the shared key guessable.
pub fn has_small_order(msg: &[u8]) -> bool {
    let Some(point) = msg.get(1..33) else {
        return false;
    };
    let Ok(bytes) = <[u8; 32]>::try_from(point) else {
        return false;
    };
    curve25519_dalek::edwards::CompressedEdwardsY(bytes)
        .decompress()
        .is_some_and(|p| p.is_small_order())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(field: &str, value: &str, expected_len: usize) -> Result<Vec<u8>, HandshakeError> {
    // Bound the work before decoding: the field has a fixed size.
    if value.len() > expected_len.div_ceil(3) * 4 {
        return Err(HandshakeError::Malformed(format!(
            "`{field}` is longer than {expected_len} bytes"
        )));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| HandshakeError::Malformed(format!("`{field}` is not base64url")))?;
    if bytes.len() != expected_len {
        return Err(HandshakeError::Malformed(format!(
            "`{field}` is {} bytes, expected {expected_len}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn encode(msg: &PlainMessage) -> Result<Vec<u8>, HandshakeError> {
    serde_json::to_vec(msg).map_err(|e| HandshakeError::Malformed(describe_json_error(&e)))
}

/// Sends a plain message; returns the exact frame bytes (for the transcript).
async fn send_plain<T: FrameTransport>(
    transport: &mut T,
    msg: &PlainMessage,
) -> Result<Vec<u8>, HandshakeError> {
    let frame = encode(msg)?;
    transport.send_frame(frame.clone()).await?;
    Ok(frame)
}

/// Best effort: tell the peer why we stop. A failure to send changes nothing about our error.
async fn send_error<T: FrameTransport>(transport: &mut T, kind: ErrorKind, message: String) {
    let _ = send_plain(
        transport,
        &PlainMessage::Error(ErrorBody::new(kind, message)),
    )
    .await;
}

/// Receives a plain message with its exact bytes. A peer `Error` becomes the matching
/// [`HandshakeError`]; malformed JSON is answered with `Error{malformed}`.
async fn recv_plain<T: FrameTransport>(
    transport: &mut T,
) -> Result<(PlainMessage, Vec<u8>), HandshakeError> {
    let frame = transport
        .recv_frame()
        .await?
        .ok_or(HandshakeError::Closed)?;
    let msg = match serde_json::from_slice::<PlainMessage>(&frame) {
        Ok(msg) => msg,
        Err(e) => {
            let why = describe_json_error(&e);
            send_error(transport, ErrorKind::Malformed, why.clone()).await;
            return Err(HandshakeError::Malformed(why));
        }
    };
    match msg {
        PlainMessage::Error(body) if body.kind == ErrorKind::WrongSetupCode => {
            Err(HandshakeError::WrongSetupCode)
        }
        PlainMessage::Error(body) => Err(HandshakeError::Peer(body)),
        msg => Ok((msg, frame)),
    }
}

/// Answers an out-of-place message and builds the error.
async fn unexpected<T: FrameTransport>(
    transport: &mut T,
    expected: &str,
    got: &PlainMessage,
) -> HandshakeError {
    let (kind, got) = if got.is_unknown() {
        (
            ErrorKind::UnsupportedMessage,
            "a message type this build does not know".to_owned(),
        )
    } else {
        (ErrorKind::UnexpectedMessage, got.type_name())
    };
    let why = format!("expected {expected}, got {got}");
    send_error(transport, kind, why.clone()).await;
    HandshakeError::Unexpected(why)
}

/// Sends `Error{malformed}` and builds the error.
async fn malformed<T: FrameTransport>(transport: &mut T, err: HandshakeError) -> HandshakeError {
    if let HandshakeError::Malformed(why) = &err {
        send_error(transport, ErrorKind::Malformed, why.clone()).await;
    }
    err
}

/// Decodes a fixed-size base64url field of a PAKE message; a bad one is answered with
/// `Error{malformed}`.
async fn decode_field<T: FrameTransport>(
    transport: &mut T,
    field: &str,
    value: &str,
    len: usize,
) -> Result<Vec<u8>, HandshakeError> {
    match unb64(field, value, len) {
        Ok(bytes) => Ok(bytes),
        Err(e) => Err(malformed(transport, e).await),
    }
}

/// Tells the peer its confirmation did not verify and builds the error.
async fn wrong_code<T: FrameTransport>(transport: &mut T) -> HandshakeError {
    wrong_code_with(
        transport,
        ErrorBody::new(ErrorKind::WrongSetupCode, WRONG_CODE_MESSAGE),
    )
    .await
}

/// Sends `body` (an `Error{wrong_setup_code}`) and builds the error.
async fn wrong_code_with<T: FrameTransport>(transport: &mut T, body: ErrorBody) -> HandshakeError {
    let _ = send_plain(transport, &PlainMessage::Error(body)).await;
    HandshakeError::WrongSetupCode
}

/// The agent's answer to our `Error{wrong_setup_code}` (its count of the attempts left), if it
/// sends one within [`WRONG_CODE_ANSWER_WAIT`]. Anything else (a close, another message, a
/// frame that does not parse) is no answer.
async fn agent_wrong_code_answer<T: FrameTransport>(transport: &mut T) -> Option<ErrorBody> {
    let frame = tokio::time::timeout(WRONG_CODE_ANSWER_WAIT, transport.recv_frame())
        .await
        .ok()?
        .ok()??;
    match serde_json::from_slice::<PlainMessage>(&frame).ok()? {
        PlainMessage::Error(body) if body.kind == ErrorKind::WrongSetupCode => Some(body),
        _ => None,
    }
}

/// Checks the peer's first message: a Hello, from the other role, with a version we can speak.
/// Anything else is answered with the matching `Error` before the handshake fails.
async fn accept_peer_hello<T: FrameTransport>(
    transport: &mut T,
    our_hello: &Hello,
    msg: PlainMessage,
) -> Result<Hello, HandshakeError> {
    let (peer_role, first, from) = match our_hello.role {
        Role::Agent => (
            Role::Companion,
            "the companion's hello",
            "a hello from a companion",
        ),
        Role::Companion => (Role::Agent, "the agent's hello", "a hello from an agent"),
    };
    let peer_hello = match msg {
        PlainMessage::Hello(hello) => hello,
        other => return Err(unexpected(transport, first, &other).await),
    };
    if peer_hello.role != peer_role {
        let other = PlainMessage::Hello(peer_hello);
        return Err(unexpected(transport, from, &other).await);
    }
    if let Err(mismatch) = check_compatible(our_hello, &peer_hello) {
        send_error(
            transport,
            ErrorKind::IncompatibleVersion,
            mismatch.to_string(),
        )
        .await;
        return Err(mismatch.into());
    }
    Ok(peer_hello)
}

/// Both sides after the Hellos: the transport, both Hello frames as they crossed the wire (for
/// the transcript) and the peer's Hello.
struct Hellos<T: FrameTransport> {
    transport: T,
    our_hello_frame: Vec<u8>,
    peer_hello_frame: Vec<u8>,
    peer_hello: Hello,
}

impl<T: FrameTransport> Hellos<T> {
    /// The Hello exchange. The companion speaks first (`speak_first`); the agent answers only
    /// a Hello it accepts, so a peer it cannot serve learns nothing but the error.
    async fn exchange(
        mut transport: T,
        our_hello: Hello,
        speak_first: bool,
    ) -> Result<Self, HandshakeError> {
        let mut our_hello_frame = Vec::new();
        if speak_first {
            our_hello_frame =
                send_plain(&mut transport, &PlainMessage::Hello(our_hello.clone())).await?;
        }
        let (msg, peer_hello_frame) = recv_plain(&mut transport).await?;
        let peer_hello = accept_peer_hello(&mut transport, &our_hello, msg).await?;
        if !speak_first {
            our_hello_frame = send_plain(&mut transport, &PlainMessage::Hello(our_hello)).await?;
        }
        Ok(Self {
            transport,
            our_hello_frame,
            peer_hello_frame,
            peer_hello,
        })
    }

    /// SPAKE2's shared secret from the peer's message, the transcript hash, and the keys. The
    /// transcript order is fixed by role (companion first), whoever computes it. A peer message
    /// that is not a curve point is answered with `Error{malformed}`.
    async fn derive_keys(
        &mut self,
        spake: Spake2<Ed25519Group>,
        msg_a: &[u8],
        msg_b: &[u8],
    ) -> Result<([u8; 32], SessionKeys), HandshakeError> {
        let (peer_msg, (companion_hello, agent_hello)) = match self.peer_hello.role {
            Role::Agent => (msg_b, (&self.our_hello_frame, &self.peer_hello_frame)),
            Role::Companion => (msg_a, (&self.peer_hello_frame, &self.our_hello_frame)),
        };
        // spake2 0.4 neither clears the cofactor nor rejects small-order elements (RFC 9382
        // asks for both): refuse them here. The message is a side byte and a compressed
        // Edwards point.
        if has_small_order(peer_msg) {
            let err = HandshakeError::Malformed(
                "the peer's SPAKE2 element has small order (not a valid PAKE message)".into(),
            );
            return Err(malformed(&mut self.transport, err).await);
        }
        let key = match spake.finish(peer_msg) {
            Ok(key) => Zeroizing::new(key),
            Err(e) => {
                let who = match self.peer_hello.role {
                    Role::Agent => "agent",
                    Role::Companion => "companion",
                };
                let err = HandshakeError::Malformed(format!("{who}'s SPAKE2 message: {e}"));
                return Err(malformed(&mut self.transport, err).await);
            }
        };
        let mut transcript = Transcript::new();
        transcript.add(companion_hello);
        transcript.add(agent_hello);
        transcript.add(msg_a);
        transcript.add(msg_b);
        let th = transcript.finish();
        let keys = SessionKeys::derive(&key, &th);
        Ok((th, keys))
    }

    /// The sealed session: `S` sends with `send_key` and opens with `recv_key`.
    fn into_session<S: Side>(
        self,
        send_key: &crate::secret::SecretKey<32>,
        recv_key: &crate::secret::SecretKey<32>,
    ) -> SecureSession<T, S> {
        SecureSession::new(self.transport, send_key, recv_key, self.peer_hello)
    }
}

impl<T: FrameTransport> std::fmt::Debug for Hellos<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("peer_hello", &self.peer_hello)
            .finish_non_exhaustive()
    }
}

fn spake_password(code: &SetupCode) -> Password {
    Password::new(code.expose_secret().as_bytes())
}

/// The companion's side of the handshake.
#[derive(Debug)]
pub struct ClientHandshake<T: FrameTransport>(Hellos<T>);

impl<T: FrameTransport> ClientHandshake<T> {
    /// Sends our Hello, reads the agent's, checks versions (VersionMismatch -> HandshakeError).
    pub async fn start(transport: T, our_hello: Hello) -> Result<Self, HandshakeError> {
        Hellos::exchange(transport, our_hello, true).await.map(Self)
    }

    /// The agent's Hello: includes its AgentSummary (name, paired, window).
    pub fn peer_hello(&self) -> &Hello {
        &self.0.peer_hello
    }

    /// SPAKE2 on the setup code + key confirmation. Wrong code -> HandshakeError::WrongSetupCode.
    pub async fn authenticate(
        self,
        code: &SetupCode,
    ) -> Result<CompanionSession<T>, HandshakeError> {
        self.authenticate_with_answer(code)
            .await
            .map_err(|failure| failure.error)
    }

    /// [`ClientHandshake::authenticate`], and on a wrong code also the agent's answer: how many
    /// attempts are left before pairing locks (protocol 1.2 agents; waits at most
    /// [`WRONG_CODE_ANSWER_WAIT`] for it).
    pub async fn authenticate_with_answer(
        self,
        code: &SetupCode,
    ) -> Result<CompanionSession<T>, ClientAuthFailure> {
        let mut hs = self.0;
        let fail = |error: HandshakeError| ClientAuthFailure {
            error,
            agent_answer: None,
        };
        let (spake, msg_a) = Spake2::<Ed25519Group>::start_a(
            &spake_password(code),
            &Identity::new(COMPANION_IDENTITY),
            &Identity::new(AGENT_IDENTITY),
        );
        send_plain(
            &mut hs.transport,
            &PlainMessage::PakeStart { pake: b64(&msg_a) },
        )
        .await
        .map_err(fail)?;

        let (msg, _) = recv_plain(&mut hs.transport).await.map_err(fail)?;
        let (pake, confirm) = match msg {
            PlainMessage::PakeReply { pake, confirm } => (pake, confirm),
            other => {
                return Err(fail(
                    unexpected(&mut hs.transport, "pake_reply", &other).await,
                ))
            }
        };
        let msg_b = decode_field(&mut hs.transport, "pake", &pake, PAKE_MSG_LEN)
            .await
            .map_err(fail)?;
        let agent_tag = decode_field(&mut hs.transport, "confirm", &confirm, CONFIRM_LEN)
            .await
            .map_err(fail)?;
        let (th, keys) = hs.derive_keys(spake, &msg_a, &msg_b).await.map_err(fail)?;

        if !verify_confirm(&keys.agent_confirm, &th, &agent_tag) {
            let error = wrong_code(&mut hs.transport).await;
            let agent_answer = agent_wrong_code_answer(&mut hs.transport).await;
            return Err(ClientAuthFailure {
                error,
                agent_answer,
            });
        }
        let our_tag = confirm_tag(&keys.companion_confirm, &th);
        send_plain(
            &mut hs.transport,
            &PlainMessage::PakeConfirm {
                confirm: b64(&our_tag),
            },
        )
        .await
        .map_err(fail)?;
        Ok(hs.into_session(&keys.companion_to_agent, &keys.agent_to_companion))
    }
}

/// The agent's side of the handshake.
#[derive(Debug)]
pub struct ServerHandshake<T: FrameTransport>(Hellos<T>);

impl<T: FrameTransport> ServerHandshake<T> {
    /// Reads the companion's Hello, replies with ours (which carries our AgentSummary) or with
    /// Error{IncompatibleVersion} and fails.
    pub async fn accept(transport: T, our_hello: Hello) -> Result<Self, HandshakeError> {
        Hellos::exchange(transport, our_hello, false)
            .await
            .map(Self)
    }

    /// The companion's Hello.
    pub fn peer_hello(&self) -> &Hello {
        &self.0.peer_hello
    }

    /// Ends the handshake right after the Hello exchange with `Error{body}` (e.g. the pairing
    /// window is closed): no PAKE is run. Returns the transport so the caller can let the
    /// answer drain before closing.
    pub async fn refuse(self, body: ErrorBody) -> T {
        let mut transport = self.0.transport;
        let _ = send_plain(&mut transport, &PlainMessage::Error(body)).await;
        transport
    }

    /// Runs SPAKE2 and key confirmation. `guard` is asked before we answer the companion's PAKE
    /// message (so a failure is on record even if we crash) and told when the code was right.
    pub async fn authenticate(
        self,
        code: &SetupCode,
        guard: &mut impl AttemptGuard,
    ) -> Result<AgentSession<T>, HandshakeError> {
        let mut hs = self.0;
        let (msg, _) = recv_plain(&mut hs.transport).await?;
        let pake = match msg {
            PlainMessage::PakeStart { pake } => pake,
            other => return Err(unexpected(&mut hs.transport, "pake_start", &other).await),
        };
        let msg_a = decode_field(&mut hs.transport, "pake", &pake, PAKE_MSG_LEN).await?;

        if let Err(body) = guard.before_reply() {
            let _ = send_plain(&mut hs.transport, &PlainMessage::Error(body.clone())).await;
            return Err(HandshakeError::Refused(body));
        }

        let (spake, msg_b) = Spake2::<Ed25519Group>::start_b(
            &spake_password(code),
            &Identity::new(COMPANION_IDENTITY),
            &Identity::new(AGENT_IDENTITY),
        );
        let (th, keys) = hs.derive_keys(spake, &msg_a, &msg_b).await?;

        let our_tag = confirm_tag(&keys.agent_confirm, &th);
        send_plain(
            &mut hs.transport,
            &PlainMessage::PakeReply {
                pake: b64(&msg_b),
                confirm: b64(&our_tag),
            },
        )
        .await?;

        let msg = match recv_plain(&mut hs.transport).await {
            Ok((msg, _)) => msg,
            // The companion found the code wrong: tell it what the guess cost.
            Err(HandshakeError::WrongSetupCode) => {
                let body = guard.wrong_code_answer();
                return Err(wrong_code_with(&mut hs.transport, body).await);
            }
            Err(e) => return Err(e),
        };
        let confirm = match msg {
            PlainMessage::PakeConfirm { confirm } => confirm,
            other => return Err(unexpected(&mut hs.transport, "pake_confirm", &other).await),
        };
        let companion_tag =
            decode_field(&mut hs.transport, "confirm", &confirm, CONFIRM_LEN).await?;
        if !verify_confirm(&keys.companion_confirm, &th, &companion_tag) {
            let body = guard.wrong_code_answer();
            return Err(wrong_code_with(&mut hs.transport, body).await);
        }
        guard.on_success();
        Ok(hs.into_session(&keys.agent_to_companion, &keys.companion_to_agent))
    }
}
