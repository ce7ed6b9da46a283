//! A link connection served in process over a `tokio::io::duplex` pipe, whose agent end can be
//! told to stop sending: after a given number of further sends, every send of the agent hangs
//! forever, as when a companion stops reading and its transport accepts nothing more (a full
//! TCP window, BLE indications never confirmed). For tests of what the agent holds while a send
//! to such a companion waits, and of whether the agent then lets the connection go (the
//! wrapper tells when it is dropped).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use device_agent::core::Core;
use device_agent::link::LinkConfig;
use shared_protocol::frame::{FrameError, FrameTransport, StreamTransport};
use tokio::io::DuplexStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The companion's end of an in-process link.
pub type DuplexTransport = StreamTransport<DuplexStream>;

/// A transport that passes frames through until [`Stall::after`] runs out.
pub struct StallingTransport<T> {
    inner: T,
    stall: Stall,
}

/// Tells a [`StallingTransport`] when to stall, and tells the test when it did.
#[derive(Clone)]
pub struct Stall {
    /// Sends still passed through; `None`: all of them.
    left: Arc<Mutex<Option<usize>>>,
    /// Sends that hang.
    hung: Arc<watch::Sender<usize>>,
    /// The agent dropped its end (the wrapper and the transport in it).
    dropped: Arc<watch::Sender<bool>>,
}

impl Stall {
    fn new() -> Self {
        Self {
            left: Arc::new(Mutex::new(None)),
            hung: Arc::new(watch::channel(0).0),
            dropped: Arc::new(watch::channel(false).0),
        }
    }

    /// After `n` more sends, every send hangs forever.
    pub fn after(&self, n: usize) {
        *self.left.lock().unwrap() = Some(n);
    }

    /// Waits until `n` sends hang, at most `within`.
    pub async fn hung(&self, n: usize, within: Duration) {
        let mut rx = self.hung.subscribe();
        tokio::time::timeout(within, rx.wait_for(|hung| *hung >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} sends did not hang within {within:?}"))
            .unwrap();
    }

    /// How many sends hang (so far).
    pub fn hangs(&self) -> usize {
        *self.hung.borrow()
    }

    /// Waits until the agent drops its end of the connection, at most until `deadline`;
    /// `false`: it still holds it then.
    pub async fn dropped_by(&self, deadline: tokio::time::Instant) -> bool {
        let mut rx = self.dropped.subscribe();
        let dropped = tokio::time::timeout_at(deadline, rx.wait_for(|dropped| *dropped)).await;
        matches!(dropped, Ok(Ok(_)))
    }

    /// Whether the next send goes through (and counts it).
    fn passes(&self) -> bool {
        let mut left = self.left.lock().unwrap();
        match left.as_mut() {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
        }
    }
}

impl<T> Drop for StallingTransport<T> {
    fn drop(&mut self) {
        self.stall.dropped.send_replace(true);
    }
}

impl<T: FrameTransport> FrameTransport for StallingTransport<T> {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), FrameError> {
        if self.stall.passes() {
            return self.inner.send_frame(frame).await;
        }
        self.stall.hung.send_modify(|hung| *hung += 1);
        std::future::pending().await
    }

    async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.inner.recv_frame().await
    }
}

/// A link connection served on `core` with `limits` (the agent's [`handle_connection`], as the
/// TCP and BLE listeners run it) in a task of its own; ends when dropped.
///
/// [`handle_connection`]: device_agent::link::handle_connection
pub struct InProcess {
    /// The agent end's switch.
    pub stall: Stall,
    task: JoinHandle<()>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection on `core` over a duplex pipe; the companion's end to handshake on.
pub fn serve_in_process(core: Arc<Core>, limits: LinkConfig) -> (InProcess, DuplexTransport) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let stall = Stall::new();
    let agent_end = StallingTransport {
        inner: StreamTransport::new(theirs),
        stall: stall.clone(),
    };
    let task = tokio::spawn(async move {
        device_agent::link::handle_connection(agent_end, "in-process companion", &core, &limits)
            .await;
    });
    (InProcess { stall, task }, StreamTransport::new(ours))
}
