//! Handshake and session errors. They say what the peer did; none carries a secret.

use crate::frame::FrameError;
use crate::message::{ErrorBody, VersionMismatch};

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Key confirmation failed: the two ends used different setup codes. Reported on both ends.
    #[error("wrong setup code: the code typed does not match the speaker's")]
    WrongSetupCode,
    /// The peer ended the handshake with an error (locked out, window closed, busy, …).
    #[error("the peer refused: {}", .0.message)]
    Peer(ErrorBody),
    /// We (the agent) refused, through the [`AttemptGuard`](super::AttemptGuard); the peer was
    /// sent this body.
    #[error("refused the handshake: {}", .0.message)]
    Refused(ErrorBody),
    /// The Hellos don't fit together; the message says which side to update. The peer was told.
    #[error(transparent)]
    Incompatible(#[from] VersionMismatch),
    /// Framing or transport failure.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer closed the connection during the handshake.
    #[error("the peer closed the connection during the handshake")]
    Closed,
    /// A message that did not parse.
    #[error("malformed handshake message: {0}")]
    Malformed(String),
    /// A well-formed message that does not belong at this point.
    #[error("unexpected handshake message: {0}")]
    Unexpected(String),
}

/// A failed [`ClientHandshake::authenticate_with_answer`](super::ClientHandshake::authenticate_with_answer):
/// the error, and after a wrong code the agent's own `Error{wrong_setup_code}` if it sent one
/// (protocol 1.2: `attempts_left` and `lockout_secs`; unauthenticated, for display only).
#[derive(Debug)]
pub struct ClientAuthFailure {
    /// What failed.
    pub error: HandshakeError,
    /// The agent's answer to our `Error{wrong_setup_code}`.
    pub agent_answer: Option<ErrorBody>,
}

/// Why a secure session ended (or a message could not be read).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The peer closed the connection cleanly between frames.
    #[error("the peer closed the session")]
    Closed,
    /// Framing or transport failure. The session is dead.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A sealed frame failed to open: altered, replayed, reordered, dropped before it, or sealed
    /// with another key. The session is dead.
    #[error(
        "a sealed frame failed authentication (altered, replayed or out of order): session ended"
    )]
    Tampered,
    /// A frame opened but its message did not parse. The session stays usable so the caller can
    /// answer `Error{Malformed}`; the description never contains message content.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A frame opened and parsed, but as a message that only this end sends (the `"type"` is
    /// given). The session stays usable so the caller can answer `Error{UnexpectedMessage}`.
    #[error("a {0} message travels the other way")]
    WrongDirection(String),
    /// The session already ended with an earlier error.
    #[error("the session already ended after an earlier error")]
    Dead,
}
