//! The secure link session: a PAKE on the setup code, then AEAD-sealed frames.
//!
//! Why this construction (full byte-level spec in `docs/protocol.md`):
//!
//! - **SPAKE2** (RustCrypto `spake2` 0.4, Ed25519 group, asymmetric roles: companion = A,
//!   agent = B). The setup code has only 10^8 values, so it must never be exposed to an offline
//!   guess: with a PAKE an eavesdropper learns nothing and an active attacker tests exactly one
//!   guess per handshake, which the agent counts through [`AttemptGuard`] *before* it answers.
//! - **Transcript binding**: SHA-256 over the exact Hello frame bytes both ways and both PAKE
//!   messages is the HKDF salt, so a man in the middle who edits a Hello (a downgrade, a changed
//!   pairing state) makes the key confirmation fail.
//! - **Explicit key confirmation** both ways (HMAC-SHA256 over the transcript hash): a wrong
//!   code is detected during the handshake and reported on both ends as
//!   [`HandshakeError::WrongSetupCode`], not later as a garbled frame.
//! - **ChaCha20-Poly1305 with implicit counter nonces**, one key and one counter per direction.
//!   The counter is never sent: a replayed, reordered, dropped or altered frame simply fails to
//!   open ([`SessionError::Tampered`]) and the session is dead.
//! - **Typed by side**: [`SecureSession`] is generic over [`AgentSide`] / [`CompanionSide`], so
//!   the agent's session ([`AgentSession`]) can only send agent → companion messages and only
//!   receives companion → agent ones, and the other way round for [`CompanionSession`].
//!
//! Nothing here times out by itself (one exception: a companion that found the code wrong waits
//! at most [`WRONG_CODE_ANSWER_WAIT`] for the agent's count of the attempts left); callers wrap
//! each await that waits on the peer in `tokio::time::timeout`.

mod cipher;
mod error;
mod handshake;
mod keys;
mod side;

pub use cipher::{AgentSession, CompanionSession, SecureSession};
pub use error::{ClientAuthFailure, HandshakeError, SessionError};
pub use handshake::{
    AttemptGuard, ClientHandshake, NoAttemptLimit, ServerHandshake, WRONG_CODE_ANSWER_WAIT,
};
pub use keys::{
    AGENT_IDENTITY, COMPANION_IDENTITY, INFO_AGENT_CONFIRM, INFO_AGENT_TO_COMPANION,
    INFO_COMPANION_CONFIRM, INFO_COMPANION_TO_AGENT, TRANSCRIPT_LABEL,
};
pub use side::{AgentSide, CompanionSide, Side};

#[cfg(test)]
mod tests;
