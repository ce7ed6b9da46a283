//! The link's TCP listener.
//!
//! One task per connection, each bounded in time and number:
//!
//! - a slot from [`Slots`]: at most `max_sessions` in all, at most `max_pending` that have not
//!   sent their PAKE message, at most `max_pending_per_source` of those per address. When the
//!   pending budget is full a newcomer takes the place of a pending connection, whose task is
//!   ended (see [`super::slots`] for which one and why) and whose peer is told `Error{Busy}`
//!   before the close, so an evicted companion says "busy, try again" rather than "the speaker
//!   closed the connection" (the stream is taken back from the ended session through
//!   `tcp/evictable.rs`). Only when all `max_sessions` places are taken and the pending budget is
//!   not full (so at least `max_sessions - max_pending` peers are past their PAKE message) does
//!   a newcomer get `Error{Busy}` and the close. Busy answers, to newcomers and to evicted
//!   connections alike, each take at most a few seconds and are bounded in number: beyond that
//!   the connection is closed without one;
//! - deadlines by phase (Hello, PAKE message, whole handshake; see [`super::session`]); every
//!   later read must arrive within `idle_timeout`;
//! - frames are capped by the protocol crate.

use std::sync::Arc;
use std::time::Duration;

use shared_protocol::frame::{FrameTransport, StreamTransport};
use shared_protocol::message::{ErrorBody, ErrorKind, PlainMessage};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::timeout;

mod evictable;

use evictable::evictable;

use super::session::serve_connection;
use super::slots::{Evicted, Slot, Slots};
use super::LinkConfig;
use crate::core::Core;

/// Serves the link on `listener` until `shutdown` becomes true.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Core>,
    limits: LinkConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Slots::new(
        limits.max_sessions,
        limits.max_pending,
        limits.max_pending_per_source,
    );
    // Busy answers are cheap but still bounded.
    let busy = Arc::new(Semaphore::new(limits.max_sessions.max(4)));
    let mut evictions = EvictionLog::default();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "link accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match slots.acquire(peer.ip()) {
            Ok((slot, evicted)) => {
                evictions.report(&slots);
                let connection = Connection {
                    ctx: ctx.clone(),
                    limits: limits.clone(),
                    busy: busy.clone(),
                };
                tokio::spawn(connection.serve(stream, peer, slot, evicted, shutdown.clone()));
            }
            Err(why) => {
                if let Ok(permit) = busy.clone().try_acquire_owned() {
                    tracing::info!(%peer, reason = %why, "link busy: refusing a connection");
                    tokio::spawn(async move {
                        refuse_busy(stream).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    tracing::debug!("link server stopped");
}

/// What one connection's task needs besides its stream and slot.
struct Connection {
    ctx: Arc<Core>,
    limits: LinkConfig,
    /// The busy answers' bound, shared with the refusals.
    busy: Arc<Semaphore>,
}

impl Connection {
    /// Serves one accepted connection holding `slot` until its session ends, the agent stops, or
    /// the slot is evicted: then the peer is told `busy` (when its stream comes back whole and
    /// a busy answer is free).
    async fn serve(
        self,
        stream: TcpStream,
        peer: std::net::SocketAddr,
        mut slot: Slot,
        evicted: Evicted,
        mut stop: watch::Receiver<bool>,
    ) {
        let (session_stream, reclaim) = evictable(stream);
        let was_evicted = {
            let mut promote = || slot.promote();
            let session = serve_connection(
                StreamTransport::new(session_stream),
                peer,
                &self.ctx,
                &self.limits,
                &mut promote,
            );
            tokio::select! {
                _ = session => false,
                _ = evicted.wait() => true,
                _ = stop.changed() => false,
            }
        };
        if !was_evicted {
            return;
        }
        tracing::debug!(%peer, "link: closed an unstarted connection to make room for a newer one");
        // The session is dropped: its stream comes back unless it left half a frame.
        if let (Some(stream), Ok(permit)) = (reclaim.take(), self.busy.try_acquire_owned()) {
            tell_evicted(stream).await;
            drop(permit);
        }
    }
}

/// How often evictions are summed up in the log (each one is logged at debug only: a flood
/// makes thousands a second).
const EVICTION_LOG_EVERY: Duration = Duration::from_secs(10);

/// The evictions already logged, and when.
#[derive(Default)]
struct EvictionLog {
    logged: u64,
    at: Option<tokio::time::Instant>,
}

impl EvictionLog {
    /// Logs the evictions since the last report, at most once per [`EVICTION_LOG_EVERY`].
    fn report(&mut self, slots: &Slots) {
        let now = tokio::time::Instant::now();
        if self.at.is_some_and(|at| now - at < EVICTION_LOG_EVERY) {
            return;
        }
        let total = slots.evictions();
        if total > self.logged {
            tracing::info!(
                closed = total - self.logged,
                "link: too many connections had not sent their PAKE message; closed some to \
                 make room for newer ones"
            );
            self.logged = total;
            self.at = Some(now);
        }
    }
}

/// How long each step of a busy answer may take (read, send, close).
const BUSY_STEP: Duration = Duration::from_secs(2);

/// The most an evicted peer's unread bytes are drained after its busy answer.
const DRAIN_MAX: usize = 64 * 1024;

async fn refuse_busy(stream: TcpStream) {
    let mut t = StreamTransport::new(stream);
    // Read the peer's Hello first so closing does not reset the connection under our answer.
    let _ = timeout(BUSY_STEP, t.recv_frame()).await;
    send_busy(
        &mut t,
        "the speaker is already talking to other companions; try again in a moment",
    )
    .await;
    let mut stream = t.into_inner();
    let _ = timeout(BUSY_STEP, stream.shutdown()).await;
}

/// Tells an evicted connection's peer `busy` and closes. Wherever its handshake was (before
/// or after the Hello exchange), the companion's next read is this answer. Then the write side
/// is closed and what the peer sent meanwhile is drained until it closes too (bounded), so the
/// close does not reset the connection under the answer.
async fn tell_evicted(stream: TcpStream) {
    let mut t = StreamTransport::new(stream);
    send_busy(
        &mut t,
        "the speaker had too many unfinished connections and closed this one to make room; try \
         again in a moment",
    )
    .await;
    let mut stream = t.into_inner();
    if timeout(BUSY_STEP, stream.shutdown()).await.is_err() {
        return;
    }
    let _ = timeout(BUSY_STEP, async {
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_MAX {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

async fn send_busy(t: &mut StreamTransport<TcpStream>, message: &str) {
    let body = PlainMessage::Error(ErrorBody::new(ErrorKind::Busy, message));
    if let Ok(frame) = serde_json::to_vec(&body) {
        let _ = timeout(BUSY_STEP, t.send_frame(frame)).await;
    }
}
