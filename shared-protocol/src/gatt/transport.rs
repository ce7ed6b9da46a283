//! [`GattTransport`]: a [`FrameTransport`] over any [`GattLink`].

use std::io;
use std::time::Duration;

use tokio::time::{sleep_until, timeout, Instant};

use super::link::{GattLink, GattLinkError};
use crate::ble::{ChunkError, Chunker, Reassembler, ReassemblyError, DEFAULT_REASSEMBLY_TIMEOUT};
use crate::frame::{FrameError, FrameTransport, MAX_FRAME_LEN};

/// Limits of a GATT transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GattOptions {
    /// How long one chunk may wait for its acknowledgement (write response / indication
    /// confirmation). ATT itself gives up after 30 s; a live peer answers within a few
    /// connection intervals.
    pub ack_timeout: Duration,
    /// How long a partial frame may wait for its next chunk.
    pub reassembly_timeout: Duration,
    /// The largest frame accepted from the peer.
    pub max_frame: usize,
}

impl Default for GattOptions {
    fn default() -> Self {
        Self {
            ack_timeout: Duration::from_secs(10),
            reassembly_timeout: DEFAULT_REASSEMBLY_TIMEOUT,
            max_frame: MAX_FRAME_LEN,
        }
    }
}

/// Counters of one transport (for logs and measurements).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GattStats {
    /// Frames sent.
    pub frames_sent: u64,
    /// Chunks (ATT values) sent.
    pub chunks_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Chunks received.
    pub chunks_received: u64,
}

/// Link frames over a GATT connection: cut to the ATT payload, one acknowledged chunk at a time,
/// glued back with a cap and a stall timeout. See the [module docs](super) for the design.
///
/// After any error the link is disconnected and every later call fails with the same kind of
/// error, so a half-sent or half-received frame can never be followed by a mangled one.
#[derive(Debug)]
pub struct GattTransport<L: GattLink> {
    link: L,
    options: GattOptions,
    reassembler: Reassembler,
    stats: GattStats,
    /// Set when an error ended the transport (or a send was abandoned half way).
    dead: Option<(io::ErrorKind, String)>,
    /// True while a frame is being sent: if the send future is dropped half way, the peer holds
    /// a partial frame and the transport must not be used again.
    sending: bool,
    /// The peer disconnected between frames: `recv_frame` keeps answering `Ok(None)`.
    peer_closed: bool,
}

fn io_err(kind: io::ErrorKind, msg: impl Into<String>) -> FrameError {
    FrameError::Io(io::Error::new(kind, msg.into()))
}

impl<L: GattLink> GattTransport<L> {
    /// A transport with the default limits.
    pub fn new(link: L) -> Self {
        Self::with_options(link, GattOptions::default())
    }

    /// A transport with other limits.
    pub fn with_options(link: L, options: GattOptions) -> Self {
        Self {
            link,
            options,
            reassembler: Reassembler::new(options.max_frame, options.reassembly_timeout),
            stats: GattStats::default(),
            dead: None,
            sending: false,
            peer_closed: false,
        }
    }

    /// The GATT link under the transport (to read its MTU or counters).
    pub fn link(&self) -> &L {
        &self.link
    }

    /// The link, mutably (writing to it directly bypasses the framing).
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    /// Counters so far.
    pub fn stats(&self) -> GattStats {
        self.stats
    }

    /// Disconnects the link; later calls fail.
    pub async fn close(&mut self) {
        if self.dead.is_none() {
            self.dead = Some((
                io::ErrorKind::NotConnected,
                "the BLE transport was closed".into(),
            ));
        }
        self.link.disconnect().await;
    }

    /// Records the error, disconnects, and returns it.
    async fn fail(&mut self, err: FrameError) -> FrameError {
        if self.dead.is_none() {
            let (kind, msg) = match &err {
                FrameError::Io(e) => (e.kind(), e.to_string()),
                FrameError::Truncated => (io::ErrorKind::UnexpectedEof, err.to_string()),
                FrameError::Oversize { .. } => (io::ErrorKind::InvalidData, err.to_string()),
            };
            self.dead = Some((kind, msg));
        }
        self.link.disconnect().await;
        err
    }

    fn check_alive(&self) -> Result<(), FrameError> {
        if self.sending {
            return Err(io_err(
                io::ErrorKind::BrokenPipe,
                "a BLE frame send was abandoned half way; the link cannot be used again",
            ));
        }
        match &self.dead {
            Some((kind, msg)) => Err(io_err(*kind, format!("BLE link already ended: {msg}"))),
            None => Ok(()),
        }
    }

    async fn send_chunks(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        let chunker = Chunker::new(self.link.att_payload()).map_err(|e| match e {
            ChunkError::AttPayloadTooSmall(_) => io_err(io::ErrorKind::InvalidInput, e.to_string()),
            ChunkError::FrameTooLarge { len, max } => FrameError::Oversize { len, max },
        })?;
        let chunks = chunker.split(frame).map_err(|e| match e {
            ChunkError::FrameTooLarge { len, max } => FrameError::Oversize { len, max },
            other => io_err(io::ErrorKind::InvalidInput, other.to_string()),
        })?;
        let count = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            // The one place values are checked against the ATT payload, for every link: read
            // again per chunk because the payload may change during a frame. A stack handed a
            // longer value could fall back to a long write or truncate it.
            let max = self.link.att_payload();
            let sent = if chunk.len() > max {
                Ok(Err(GattLinkError::ValueTooLong {
                    len: chunk.len(),
                    max,
                }))
            } else {
                timeout(self.options.ack_timeout, self.link.send_value(chunk)).await
            };
            let err = match sent {
                Ok(Ok(())) => {
                    self.stats.chunks_sent += 1;
                    continue;
                }
                Ok(Err(e)) => e,
                Err(_) => GattLinkError::Unacknowledged(self.options.ack_timeout),
            };
            let where_ = format!("while sending chunk {} of {count} of a frame", i + 1);
            let kind = match err {
                GattLinkError::Disconnected => io::ErrorKind::ConnectionAborted,
                GattLinkError::Unacknowledged(_) => io::ErrorKind::TimedOut,
                GattLinkError::ValueTooLong { .. } => io::ErrorKind::InvalidInput,
                GattLinkError::Stack(_) => io::ErrorKind::Other,
            };
            return Err(io_err(kind, format!("{err} {where_}")));
        }
        Ok(())
    }

    /// Maps a reassembly failure to the frame error a session reports.
    fn reassembly_error(e: ReassemblyError) -> FrameError {
        match e {
            ReassemblyError::TooLarge { len, max } => FrameError::Oversize { len, max },
            ReassemblyError::TimedOut(..) => io_err(io::ErrorKind::TimedOut, e.to_string()),
            other => io_err(io::ErrorKind::InvalidData, other.to_string()),
        }
    }

    async fn recv_inner(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            let value = match self.reassembler.deadline() {
                Some(deadline) => {
                    tokio::select! {
                        v = self.link.recv_value() => v,
                        _ = sleep_until(Instant::from_std(deadline)) => {
                            self.reassembler
                                .expire(std::time::Instant::now())
                                .map_err(Self::reassembly_error)?;
                            continue;
                        }
                    }
                }
                None => self.link.recv_value().await,
            };
            match value {
                Ok(Some(chunk)) => {
                    self.stats.chunks_received += 1;
                    match self.reassembler.push(&chunk, std::time::Instant::now()) {
                        Ok(Some(frame)) => {
                            self.stats.frames_received += 1;
                            return Ok(Some(frame));
                        }
                        Ok(None) => {}
                        Err(e) => return Err(Self::reassembly_error(e)),
                    }
                }
                Ok(None) if self.reassembler.in_progress() => return Err(FrameError::Truncated),
                Ok(None) => return Ok(None),
                Err(GattLinkError::Disconnected) if self.reassembler.in_progress() => {
                    return Err(FrameError::Truncated)
                }
                Err(GattLinkError::Disconnected) => return Ok(None),
                Err(e) => return Err(io_err(io::ErrorKind::Other, e.to_string())),
            }
        }
    }
}

impl<L: GattLink> FrameTransport for GattTransport<L> {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), FrameError> {
        self.check_alive()?;
        if frame.len() > MAX_FRAME_LEN {
            // Refused locally, like the stream codec: nothing was sent, the link stays usable.
            return Err(FrameError::Oversize {
                len: frame.len(),
                max: MAX_FRAME_LEN,
            });
        }
        self.sending = true;
        let result = self.send_chunks(&frame).await;
        self.sending = false;
        match result {
            Ok(()) => {
                self.stats.frames_sent += 1;
                Ok(())
            }
            Err(e) => Err(self.fail(e).await),
        }
    }

    async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.peer_closed {
            return Ok(None);
        }
        self.check_alive()?;
        match self.recv_inner().await {
            Ok(Some(frame)) => Ok(Some(frame)),
            Ok(None) => {
                // A clean close between frames: remember it so a later call does not wait.
                self.peer_closed = true;
                self.dead = Some((
                    io::ErrorKind::ConnectionAborted,
                    "the peer disconnected".into(),
                ));
                Ok(None)
            }
            Err(e) => Err(self.fail(e).await),
        }
    }
}
