//! A connection's stream that the listener can take back from a session it ends.
//!
//! An evicted connection's session (see [`super::super::slots`]) is ended by dropping its
//! future in the middle of the handshake. Had the session owned the stream, the stream would go
//! with it, and the peer (the owner's companion, if the timed-burst limit of the slots' docs
//! struck it) would see the connection close without a word, which the companion can only
//! report as "the speaker closed the connection". So the session reads and writes through an
//! [`Evictable`], and the listener keeps a [`Reclaim`] on the same stream: once the session's
//! future is gone, [`Reclaim::take`] hands the stream back and the listener answers `busy`
//! before closing.
//!
//! Only at a frame boundary: a session dropped while one of its writes was waiting for room
//! (the last `poll_write` was `Pending`) may have left half a frame on the wire, and a `busy`
//! frame after it would be garbage, so then there is nothing to take and the connection closes
//! as before. (A pending connection's only writes are its Hello and refusals, a few hundred
//! bytes into an empty send buffer, so in practice they never wait.) The lock is never
//! contended: one task polls the session, and the listener takes the stream only after the
//! session is dropped.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The state both handles share.
#[derive(Debug)]
struct Shared {
    stream: Mutex<TcpStream>,
    /// The last write was left waiting: a frame may be half written.
    mid_write: AtomicBool,
}

/// The session's handle on the stream.
#[derive(Debug)]
pub struct Evictable(Arc<Shared>);

/// The listener's claim on the stream once the session is gone.
#[derive(Debug)]
pub struct Reclaim(Arc<Shared>);

/// Splits `stream` into the session's handle and the listener's claim.
pub fn evictable(stream: TcpStream) -> (Evictable, Reclaim) {
    let shared = Arc::new(Shared {
        stream: Mutex::new(stream),
        mid_write: AtomicBool::new(false),
    });
    (Evictable(shared.clone()), Reclaim(shared))
}

impl Reclaim {
    /// The stream, if the session's handle is gone and it left no half-written frame.
    pub fn take(self) -> Option<TcpStream> {
        let shared = Arc::try_unwrap(self.0).ok()?;
        if shared.mid_write.load(Ordering::Acquire) {
            return None;
        }
        Some(
            shared
                .stream
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

impl Evictable {
    fn stream(&self) -> MutexGuard<'_, TcpStream> {
        self.0.stream.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note<T>(&self, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.0
            .mid_write
            .store(!matches!(polled, Poll::Ready(Ok(_))), Ordering::Release);
        polled
    }
}

impl AsyncRead for Evictable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Evictable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut *self.stream()).poll_write(cx, buf);
        self.note(polled)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut *self.stream()).poll_flush(cx);
        self.note(polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut *self.stream()).poll_shutdown(cx);
        self.note(polled)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn the_stream_comes_back_once_the_session_handle_is_gone() {
        let (mut client, server) = pair().await;
        let (mut session, reclaim) = evictable(server);
        session.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        client.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        session.read_exact(&mut one).await.unwrap();
        drop(session);
        let mut back = reclaim.take().expect("the stream comes back");
        back.write_all(b"busy").await.unwrap();
        let mut got = [0u8; 4];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"busy");
    }

    #[tokio::test]
    async fn nothing_comes_back_while_the_session_lives_or_after_a_waiting_write() {
        let (_client, server) = pair().await;
        let (mut session, reclaim) = evictable(server);
        let early = Reclaim(reclaim.0.clone());
        assert!(early.take().is_none(), "the session still holds it");
        // More than the socket buffers hold, to a peer that does not read: the write is left
        // waiting for room (one poll writes what fits, then is pending), with part of it sent.
        let big = vec![0u8; 64 << 20];
        {
            let mut write = std::pin::pin!(session.write_all(&big));
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(write.as_mut().poll(&mut cx).is_pending());
        }
        drop(session);
        assert!(reclaim.take().is_none(), "half a write is on the wire");
    }
}
