//! A new companion's `Hello` in a sealed BLE session ends that session and starts the next one.
//!
//! Why: over BLE the agent serves one GATT session at a time on one subscription (see
//! [`super::bluez`]). A companion that vanishes without disconnecting (killed, crashed, a laptop
//! put to sleep, a central stack that keeps the subscription after the app is gone) leaves that
//! session sealed and waiting. The next companion from the same central writes its plain `Hello`
//! into the same `rx`; the old session cannot open it (`SessionError::Tampered`) and ends, and
//! before this the link ended with it: the user saw "the speaker closed the connection during
//! the hello" and had to try again. Now the link stays up and the frame that ended the session
//! starts a new one, from the very beginning: Hello, pairing window check, PAKE with the attempt
//! guard, key confirmation. The old session's keys were dropped with it before that.
//!
//! What counts as a new companion's Hello, all of:
//! - the handshake of the session before had completed ([`HANDSHAKE_FRAMES_IN`] frames received),
//!   so the frame was read as a sealed frame;
//! - it was the last frame received, and the agent sent nothing after it (a session that
//!   answered it is not handed over: the peer has an answer already);
//! - it parses as a plain `Hello` from a companion (the new handshake checks its version).
//!
//! Why this gives a stranger nothing (docs/protocol.md §16, "A new Hello in a sealed BLE
//! session"): whoever can write into this session's `rx` can end it today with any frame that does
//! not open; a Hello ends it the same way and then costs a full handshake like any connection.
//! It cannot skip the PAKE (the new session is a new handshake), costs the owner no attempt (a
//! sealed session's attempt was already verified; the newcomer's PAKE message is counted as any
//! other), and gets no answer in the old keys (the old session is dead from the failed frame on:
//! `SecureSession::recv` marks it so before returning, and every later send fails without
//! touching the transport).

use shared_protocol::frame::{FrameError, FrameTransport};
use shared_protocol::message::{PlainMessage, Role};

/// Frames the agent receives in a complete handshake: the companion's `Hello`, `PakeStart` and
/// `PakeConfirm` (docs/protocol.md §5). Every later frame is sealed.
pub const HANDSHAKE_FRAMES_IN: u32 = 3;

/// What one session's transport saw, for [`Watched`].
#[derive(Debug, Default)]
pub struct Seen {
    /// A frame to hand out before reading the link: the Hello that started this session.
    replay: Option<Vec<u8>>,
    /// Frames received in this session (the replayed one included).
    received: u32,
    /// The last frame received, when it is a companion's Hello after the handshake and nothing
    /// was sent or read since.
    hello: Option<Vec<u8>>,
}

impl Seen {
    /// A session that starts with `hello` (the frame a [`Seen::into_new_hello`] returned), or
    /// from the link (`None`).
    pub fn starting_with(hello: Option<Vec<u8>>) -> Self {
        Self {
            replay: hello,
            ..Self::default()
        }
    }

    /// After the session ended: the new companion's Hello that ended it, if that is how it
    /// ended (see the module docs).
    pub fn into_new_hello(self) -> Option<Vec<u8>> {
        self.hello
    }

    fn received(&mut self, frame: &[u8]) {
        self.received = self.received.saturating_add(1);
        self.hello = (self.received > HANDSHAKE_FRAMES_IN && is_companion_hello(frame))
            .then(|| frame.to_vec());
    }
}

/// True when `frame` is a plain `Hello` from a companion.
pub fn is_companion_hello(frame: &[u8]) -> bool {
    // A sealed frame is ChaCha20 output and a tag: it fails at its first bytes.
    matches!(
        serde_json::from_slice::<PlainMessage>(frame),
        Ok(PlainMessage::Hello(h)) if h.role == Role::Companion
    )
}

/// A session's view of the link's transport that records what it [`Seen`].
#[derive(Debug)]
pub struct Watched<'a, T: FrameTransport> {
    inner: &'a mut T,
    seen: &'a mut Seen,
}

impl<'a, T: FrameTransport> Watched<'a, T> {
    /// `inner`, recording into `seen`.
    pub fn new(inner: &'a mut T, seen: &'a mut Seen) -> Self {
        Self { inner, seen }
    }
}

impl<T: FrameTransport> FrameTransport for Watched<'_, T> {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), FrameError> {
        // The peer has an answer to the last frame: it is not handed to a new session.
        self.seen.hello = None;
        self.inner.send_frame(frame).await
    }

    async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.seen.hello = None;
        let frame = match self.seen.replay.take() {
            Some(frame) => frame,
            None => match self.inner.recv_frame().await? {
                Some(frame) => frame,
                None => return Ok(None),
            },
        };
        self.seen.received(&frame);
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use shared_protocol::message::Hello;

    fn hello(role: Role) -> Vec<u8> {
        serde_json::to_vec(&PlainMessage::Hello(Hello::new(role, "t"))).unwrap()
    }

    /// A transport that yields `frames` then closes, and counts sends.
    struct Script(Vec<Vec<u8>>, usize);

    impl FrameTransport for Script {
        async fn send_frame(&mut self, _frame: Vec<u8>) -> Result<(), FrameError> {
            self.1 += 1;
            Ok(())
        }
        async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
            Ok((!self.0.is_empty()).then(|| self.0.remove(0)))
        }
    }

    async fn run(frames: Vec<Vec<u8>>, reads: usize, send_last: bool) -> Option<Vec<u8>> {
        let mut t = Script(frames, 0);
        let mut seen = Seen::default();
        let mut w = Watched::new(&mut t, &mut seen);
        for _ in 0..reads {
            w.recv_frame().await.unwrap();
        }
        if send_last {
            w.send_frame(vec![1]).await.unwrap();
        }
        seen.into_new_hello()
    }

    #[tokio::test]
    async fn only_a_companion_hello_after_the_handshake_that_got_no_answer_is_handed_over() {
        let sealed = vec![0x9f; 40];
        let after = |last: Vec<u8>| vec![sealed.clone(), sealed.clone(), sealed.clone(), last];
        assert_eq!(
            run(after(hello(Role::Companion)), 4, false).await,
            Some(hello(Role::Companion))
        );
        // Answered, read past, from an agent, not a Hello, or within the handshake: no.
        assert_eq!(run(after(hello(Role::Companion)), 4, true).await, None);
        assert_eq!(run(after(hello(Role::Companion)), 5, false).await, None);
        assert_eq!(run(after(hello(Role::Agent)), 4, false).await, None);
        assert_eq!(run(after(sealed.clone()), 4, false).await, None);
        let early = vec![sealed.clone(), sealed.clone(), hello(Role::Companion)];
        assert_eq!(run(early, 3, false).await, None);
    }

    #[tokio::test]
    async fn the_replayed_hello_is_the_first_frame_and_counts() {
        let mut t = Script(vec![vec![7]], 0);
        let mut seen = Seen::starting_with(Some(hello(Role::Companion)));
        let mut w = Watched::new(&mut t, &mut seen);
        assert_eq!(w.recv_frame().await.unwrap(), Some(hello(Role::Companion)));
        assert_eq!(w.recv_frame().await.unwrap(), Some(vec![7]));
        assert_eq!(w.recv_frame().await.unwrap(), None);
        assert_eq!(seen.received, 2);
        assert_eq!(seen.into_new_hello(), None);
    }
}
