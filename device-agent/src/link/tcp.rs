//! The link's TCP listener.
//!
//! One task per connection, each bounded in time and number:
//!
//! - at most `max_sessions` at once; the next connection gets `Error{Busy}` and is closed;
//! - the whole handshake (Hello, SPAKE2, key confirmation) must finish within
//!   `handshake_timeout`; every later read must arrive within `idle_timeout`;
//! - frames are capped by the protocol crate.

use std::sync::Arc;
use std::time::Duration;

use shared_protocol::frame::{FrameTransport, StreamTransport};
use shared_protocol::message::{ErrorBody, ErrorKind, PlainMessage};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::timeout;

use super::session::handle_connection;
use super::LinkConfig;
use crate::core::Core;

/// Serves the link on `listener` until `shutdown` becomes true.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Core>,
    limits: LinkConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let sessions = Arc::new(Semaphore::new(limits.max_sessions));
    // Busy answers are cheap but still bounded.
    let busy = Arc::new(Semaphore::new(limits.max_sessions.max(4)));
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
        match sessions.clone().try_acquire_owned() {
            Ok(permit) => {
                let ctx = ctx.clone();
                let limits = limits.clone();
                let mut stop = shutdown.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = handle_connection(StreamTransport::new(stream), peer, &ctx, &limits) => {}
                        _ = stop.changed() => {}
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                if let Ok(permit) = busy.clone().try_acquire_owned() {
                    tracing::info!(%peer, "link busy: refusing a connection");
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

async fn refuse_busy(stream: TcpStream) {
    let mut t = StreamTransport::new(stream);
    // Read the peer's Hello first so closing does not reset the connection under our answer.
    let _ = timeout(Duration::from_secs(2), t.recv_frame()).await;
    let body = PlainMessage::Error(ErrorBody::new(
        ErrorKind::Busy,
        "the speaker is already talking to other companions; try again in a moment",
    ));
    if let Ok(frame) = serde_json::to_vec(&body) {
        let _ = timeout(Duration::from_secs(2), t.send_frame(frame)).await;
    }
    let mut stream = t.into_inner();
    let _ = timeout(Duration::from_secs(2), stream.shutdown()).await;
}
