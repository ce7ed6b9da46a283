//! A new companion's `Hello` in a BLE session ends that session and starts the next one.
//!
//! Why: over BLE the agent serves one GATT session at a time on one subscription (see
//! [`super::bluez`]). A companion that goes away without disconnecting while its central keeps
//! the subscription (an app that hangs or is stopped, a central stack that keeps it after the app
//! is gone; a BlueZ laptop drops a vanished client's subscription, and the session ends with it)
//! leaves that session sealed and waiting. The next companion from the same central writes its
//! plain `Hello` into the same `rx`; the old session cannot open it (`SessionError::Tampered`) and
//! ends, and before this the link ended with it: the user saw "the speaker closed the connection
//! during the hello" and had to try again. Now the link stays up and the frame that ended the
//! session starts a new one, from the very beginning: Hello, pairing window check, PAKE with the
//! attempt guard, key confirmation. The old session's keys were dropped with it before that.
//!
//! What counts as a new companion's Hello, all of:
//! - it parses as a plain `Hello` from a companion (the new handshake checks its version);
//! - it came after the session's handshake (the session had sealed: more than
//!   [`HANDSHAKE_FRAMES_IN`] frames in);
//! - it was the last frame received, and the agent sent nothing after it (a session that
//!   answered it is not handed over: the peer has an answer already).
//!
//! In the sealed phase the session reads it as a frame that does not open and ends without a
//! word. Only a session that sealed hands its link over. A Hello during a handshake is given to
//! that handshake, which answers it as an unexpected message and ends with the link, as before:
//! the writer may be a stranger on the owner's central while the owner is between its Hello and
//! its PAKE message, and a new session started by that Hello would take the owner's PAKE
//! message, count it and fail it (device-agent/tests/ble.rs
//! `a_hello_written_into_the_owners_handshake_costs_the_owner_no_attempt`). So a companion
//! that vanished during its handshake still costs the next one its first try, and a writer
//! who does not know the code gets one handshake per connection.
//!
//! Why this gives a stranger nothing (docs/protocol.md §16, "A new Hello in a sealed BLE
//! session"): whoever can write into this session's `rx` can end it today with any frame that
//! does not open; a Hello ends it the same way and then costs a full handshake like any
//! connection. It cannot skip the PAKE (the new session is a new handshake), costs the owner no
//! attempt (a sealed session's attempt was already verified, and a handshake is never handed
//! over; the newcomer's PAKE message is counted as any other), and gets no answer in the old
//! keys (the old session is dead from the failed frame on: `SecureSession::recv` marks it so
//! before returning, and every later send fails without touching the transport).

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
    /// The last frame received, when it is a new companion's Hello and nothing was sent or
    /// read since.
    hello: Option<Vec<u8>>,
}

impl Seen {
    /// A session that starts with `hello` (the frame a [`Seen::into_new_hello`] returned); one
    /// that starts from the link is [`Seen::default`].
    pub fn starting_with(hello: Vec<u8>) -> Self {
        Self {
            replay: Some(hello),
            ..Self::default()
        }
    }

    /// After the session ended: the new companion's Hello that ended it, if that is how it
    /// ended and the session had sealed (see the module docs). A handshake is never handed
    /// over: the Hello may be a stranger's, written between the owner's Hello and its PAKE
    /// message; and without a PAKE in between, a writer who does not know the code cannot keep
    /// the link by sending Hello after Hello.
    pub fn into_new_hello(self) -> Option<Vec<u8>> {
        self.hello
    }

    /// Records a received frame.
    fn received(&mut self, frame: &[u8]) {
        self.received = self.received.saturating_add(1);
        // Only a frame after the handshake can be handed over: no Hello is looked for (or
        // copied) before.
        let candidate = self.received > HANDSHAKE_FRAMES_IN && is_companion_hello(frame);
        self.hello = candidate.then(|| frame.to_vec());
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

    /// Reads `reads` frames of `frames` (what the session got of the last one), sends one if
    /// `send_last`; the Hello to hand over.
    async fn run(
        frames: Vec<Vec<u8>>,
        reads: usize,
        send_last: bool,
    ) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let mut t = Script(frames, 0);
        let mut seen = Seen::default();
        let mut w = Watched::new(&mut t, &mut seen);
        let mut got = None;
        for _ in 0..reads {
            got = w.recv_frame().await.unwrap();
        }
        if send_last {
            w.send_frame(vec![1]).await.unwrap();
        }
        (got, seen.into_new_hello())
    }

    #[tokio::test]
    async fn only_a_new_companion_hello_that_got_no_answer_is_handed_over() {
        let (ours, theirs) = (hello(Role::Companion), hello(Role::Companion));
        let sealed = vec![0x9f; 40];
        let after = |last: Vec<u8>| vec![ours.clone(), sealed.clone(), sealed.clone(), last];
        // In the sealed phase the session gets the frame (it does not open) and it is kept.
        assert_eq!(
            run(after(theirs.clone()), 4, false).await,
            (Some(theirs.clone()), Some(theirs.clone()))
        );
        // Answered, read past, from an agent, not a Hello: not handed over.
        assert_eq!(run(after(theirs.clone()), 4, true).await.1, None);
        assert_eq!(run(after(theirs.clone()), 5, false).await.1, None);
        assert_eq!(run(after(hello(Role::Agent)), 4, false).await.1, None);
        assert_eq!(run(after(sealed.clone()), 4, false).await.1, None);
        // The session's own Hello is not a new one.
        assert_eq!(
            run(vec![ours.clone()], 1, false).await,
            (Some(ours.clone()), None)
        );
        // During the handshake the session gets the Hello (it answers it as unexpected) and it
        // is not kept.
        for at in 2..=3 {
            let mut frames = vec![ours.clone(), sealed.clone()];
            frames.truncate(at - 1);
            frames.push(theirs.clone());
            assert_eq!(run(frames, at, false).await, (Some(theirs.clone()), None));
        }
    }

    #[tokio::test]
    async fn the_replayed_hello_is_the_first_frame_and_counts() {
        let mut t = Script(vec![vec![7]], 0);
        let mut seen = Seen::starting_with(hello(Role::Companion));
        let mut w = Watched::new(&mut t, &mut seen);
        assert_eq!(w.recv_frame().await.unwrap(), Some(hello(Role::Companion)));
        assert_eq!(w.recv_frame().await.unwrap(), Some(vec![7]));
        assert_eq!(w.recv_frame().await.unwrap(), None);
        assert_eq!(seen.received, 2);
        assert_eq!(seen.into_new_hello(), None);
    }

    #[tokio::test]
    async fn a_handed_over_session_is_handed_over_again_only_once_sealed() {
        let (theirs, sealed) = (hello(Role::Companion), vec![0x9f; 40]);
        let ended_by_hello = |frames: Vec<Vec<u8>>| async {
            let reads = frames.len() + 1;
            let mut t = Script(frames, 0);
            let mut seen = Seen::starting_with(hello(Role::Companion));
            let mut w = Watched::new(&mut t, &mut seen);
            for _ in 0..reads {
                w.recv_frame().await.unwrap();
            }
            seen.into_new_hello()
        };
        // Hello after Hello without a PAKE: the second one is not handed over.
        assert_eq!(ended_by_hello(vec![theirs.clone()]).await, None);
        assert_eq!(
            ended_by_hello(vec![sealed.clone(), theirs.clone()]).await,
            None
        );
        // After a sealed phase (a PAKE with the code) it is.
        let after_pake = vec![
            sealed.clone(),
            sealed.clone(),
            sealed.clone(),
            theirs.clone(),
        ];
        assert_eq!(ended_by_hello(after_pake).await, Some(theirs.clone()));
    }

    /// "More than [`HANDSHAKE_FRAMES_IN`] frames in" means sealed only if the agent's real
    /// handshake reads exactly that many when it seals and no more when it fails: pinned here
    /// against shared-protocol's handshake (a new handshake message must change the constant).
    #[tokio::test]
    async fn the_agents_handshake_reads_handshake_frames_in_frames() {
        use shared_protocol::gatt::model::{ModelConnection, ModelPeripheral};
        use shared_protocol::gatt::GattTransport;
        use shared_protocol::session::{ClientHandshake, NoAttemptLimit, ServerHandshake};
        use shared_protocol::setup_code::SetupCode;

        let code = "24681357";
        for (companion_code, seals) in [(code, true), ("97531864", false)] {
            let (peripheral, mut acceptor) = ModelPeripheral::new(517, Vec::new);
            let (central, _control) = peripheral.connect(ModelConnection::mtu(185)).await.unwrap();
            let mut link = GattTransport::new(acceptor.accept().await.unwrap());
            let mut seen = Seen::default();
            let agent = async {
                let watched = Watched::new(&mut link, &mut seen);
                let hs = ServerHandshake::accept(watched, Hello::new(Role::Agent, "t")).await?;
                let code = SetupCode::parse(code).unwrap();
                hs.authenticate(&code, &mut NoAttemptLimit).await.map(drop)
            };
            let companion = async {
                let hello = Hello::new(Role::Companion, "t");
                let hs = ClientHandshake::start(GattTransport::new(central), hello).await?;
                let code = SetupCode::parse(companion_code).unwrap();
                hs.authenticate(&code).await.map(drop)
            };
            let both = async { tokio::join!(agent, companion) };
            let (agent, companion) = tokio::time::timeout(std::time::Duration::from_secs(10), both)
                .await
                .unwrap();
            assert_eq!((agent.is_ok(), companion.is_ok()), (seals, seals));
            assert_eq!(seen.received, HANDSHAKE_FRAMES_IN, "sealed: {seals}");
        }
    }
}
