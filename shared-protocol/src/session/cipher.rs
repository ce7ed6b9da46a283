//! The sealed phase: ChaCha20-Poly1305 with implicit per-direction counter nonces.
//!
//! Nonce = 4 zero bytes || u64 big-endian counter; each direction has its own key and its own
//! counter starting at 0, incremented after every frame. The counter is never on the wire, so
//! the receiver only accepts the next frame in order, exactly once: a replayed, reordered,
//! dropped or altered frame fails to open and the session is dead ([`SessionError::Tampered`]).
//! There is no associated data: the direction is bound by the key.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

use std::marker::PhantomData;

use super::error::SessionError;
use super::side::{AgentSide, CompanionSide, Side};
use crate::frame::{FrameError, FrameTransport, MAX_FRAME_LEN};
use crate::json::describe_json_error;
use crate::message::{Hello, WireMessage};
use crate::secret::SecretKey;

/// Bytes the AEAD adds to every sealed frame (the Poly1305 tag).
pub const TAG_LEN: usize = 16;

/// One direction's AEAD state. The cipher zeroizes its key on drop.
struct Direction {
    aead: ChaCha20Poly1305,
    counter: u64,
}

impl Direction {
    fn new(key: &SecretKey<32>) -> Self {
        Self {
            aead: ChaCha20Poly1305::new(Key::from_slice(key.expose_secret())),
            counter: 0,
        }
    }

    fn nonce(&self) -> Nonce {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.counter.to_be_bytes());
        nonce.into()
    }

    /// Seals the next frame; `None` when the counter is exhausted (never in practice).
    fn seal(&mut self, plaintext: &[u8]) -> Option<Vec<u8>> {
        if self.counter == u64::MAX {
            return None;
        }
        let sealed = self.aead.encrypt(&self.nonce(), plaintext).ok()?;
        self.counter += 1;
        Some(sealed)
    }

    /// Opens the next frame; `None` when it does not authenticate as exactly that frame.
    fn open(&mut self, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if self.counter == u64::MAX {
            return None;
        }
        let plain = self.aead.decrypt(&self.nonce(), sealed).ok()?;
        self.counter += 1;
        Some(Zeroizing::new(plain))
    }
}

/// An authenticated, encrypted message stream, made by a finished handshake. `S` is the end
/// this is ([`AgentSide`] or [`CompanionSide`]): it sends `S::Outbound` and receives
/// `S::Inbound`, nothing else.
pub struct SecureSession<T: FrameTransport, S: Side> {
    transport: T,
    sealer: Direction,
    opener: Direction,
    peer_hello: Hello,
    dead: bool,
    side: PhantomData<fn() -> S>,
}

/// The agent's sealed session (made by [`super::ServerHandshake`]).
pub type AgentSession<T> = SecureSession<T, AgentSide>;
/// The companion's sealed session (made by [`super::ClientHandshake`]).
pub type CompanionSession<T> = SecureSession<T, CompanionSide>;

impl<T: FrameTransport, S: Side> std::fmt::Debug for SecureSession<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureSession")
            .field("sent", &self.sealer.counter)
            .field("received", &self.opener.counter)
            .field("peer_role", &self.peer_hello.role)
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

impl<T: FrameTransport, S: Side> SecureSession<T, S> {
    pub(crate) fn new(
        transport: T,
        send_key: &SecretKey<32>,
        recv_key: &SecretKey<32>,
        peer_hello: Hello,
    ) -> Self {
        Self {
            transport,
            sealer: Direction::new(send_key),
            opener: Direction::new(recv_key),
            peer_hello,
            dead: false,
            side: PhantomData,
        }
    }

    /// Seals and sends one message. A message too large for a frame is refused without
    /// touching the session; a transport failure kills it.
    pub async fn send(&mut self, msg: &S::Outbound) -> Result<(), SessionError> {
        if self.dead {
            return Err(SessionError::Dead);
        }
        let plain = Zeroizing::new(
            serde_json::to_vec(msg)
                .map_err(|e| SessionError::Malformed(describe_json_error(&e)))?,
        );
        let len = plain.len() + TAG_LEN;
        if len > MAX_FRAME_LEN {
            return Err(SessionError::Frame(FrameError::Oversize {
                len,
                max: MAX_FRAME_LEN,
            }));
        }
        let Some(sealed) = self.sealer.seal(&plain) else {
            self.dead = true;
            return Err(SessionError::Dead);
        };
        if let Err(e) = self.transport.send_frame(sealed).await {
            self.dead = true;
            return Err(e.into());
        }
        Ok(())
    }

    /// Receives and opens the next message. The peer closing cleanly is
    /// [`SessionError::Closed`]; an unknown message type is `Ok` with the `Unknown` variant; a
    /// message that only this end sends is [`SessionError::WrongDirection`] (the session stays
    /// up, as for [`SessionError::Malformed`]).
    pub async fn recv(&mut self) -> Result<S::Inbound, SessionError> {
        if self.dead {
            return Err(SessionError::Dead);
        }
        let frame = match self.transport.recv_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                self.dead = true;
                return Err(SessionError::Closed);
            }
            Err(e) => {
                self.dead = true;
                return Err(e.into());
            }
        };
        let Some(plain) = self.opener.open(&frame) else {
            self.dead = true;
            return Err(SessionError::Tampered);
        };
        let msg: S::Inbound = serde_json::from_slice(&plain)
            .map_err(|e| SessionError::Malformed(describe_json_error(&e)))?;
        if msg.is_unknown() {
            // Unknown to this end: a newer peer's message, or one that travels the other way.
            if let Ok(ours) = serde_json::from_slice::<S::Outbound>(&plain) {
                if !ours.is_unknown() {
                    return Err(SessionError::WrongDirection(ours.type_name()));
                }
            }
        }
        Ok(msg)
    }

    /// The peer's Hello (for the agent's: its summary, name, window).
    pub fn peer_hello(&self) -> &Hello {
        &self.peer_hello
    }

    /// True once an error has ended the session.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Seals and sends arbitrary bytes as the next frame (tests: authentic but odd content).
    #[cfg(test)]
    pub(crate) async fn send_sealed_bytes(&mut self, plain: &[u8]) -> Result<(), SessionError> {
        let sealed = self.sealer.seal(plain).ok_or(SessionError::Dead)?;
        Ok(self.transport.send_frame(sealed).await?)
    }

    /// The transport, for tests that need to misbehave on the wire.
    #[cfg(test)]
    pub(crate) fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }
}
