//! Framing: how one link message becomes bytes on a stream, and the transport abstraction.
//!
//! A frame is a `u32` big-endian length followed by that many payload bytes. The length is
//! capped at [`MAX_FRAME_LEN`] (64 KiB): the largest real message (a `Status` or `DeviceInfo`) is
//! well under 2 KiB, and a cap means a peer can't make us allocate more than that by lying in a
//! header. The header is checked *before* any payload buffer is reserved.
//!
//! The session code ([`crate::session`]) talks to a [`FrameTransport`], not to a socket, so TCP
//! ([`StreamTransport`] over any `AsyncRead + AsyncWrite`) and BLE (the GATT adapter, which cuts
//! frames into ATT-sized pieces with [`crate::ble`]) run the same handshake and cipher code.
//!
//! The byte work is done by tokio-util's `LengthDelimitedCodec`; [`FrameCodec`] wraps it only to
//! report the offending length in [`FrameError::Oversize`] and to call a stream that ends inside a
//! frame [`FrameError::Truncated`].

use std::future::Future;

use bytes::{Buf, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{
    Decoder, Encoder, Framed, LengthDelimitedCodec, LengthDelimitedCodecError,
};

/// Largest frame payload, in bytes, either way.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Bytes of the length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// A framing or transport failure. Every one of them ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer announced (or we tried to send) a frame over the cap.
    #[error("frame of {len} bytes is over the {max}-byte limit")]
    Oversize {
        /// The announced or attempted length.
        len: usize,
        /// The largest payload allowed ([`MAX_FRAME_LEN`] unless a transport set less).
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("the connection ended in the middle of a frame")]
    Truncated,
    /// The transport failed.
    #[error("link transport error: {0}")]
    Io(#[from] std::io::Error),
}

/// One message stream: TCP and BLE both implement it.
///
/// Neither method times out by itself: callers wrap awaits that wait on the peer in
/// `tokio::time::timeout`.
pub trait FrameTransport: Send {
    /// Sends one frame (at most [`MAX_FRAME_LEN`] bytes).
    fn send_frame(&mut self, frame: Vec<u8>)
        -> impl Future<Output = Result<(), FrameError>> + Send;
    /// Receives one frame. `Ok(None)` = the peer closed cleanly between frames.
    fn recv_frame(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, FrameError>> + Send;
}

/// The frame codec: `u32` BE length + payload, capped at a maximum length.
#[derive(Debug)]
pub struct FrameCodec {
    inner: LengthDelimitedCodec,
    max: usize,
}

impl FrameCodec {
    /// A codec with the protocol's cap, [`MAX_FRAME_LEN`].
    pub fn new() -> Self {
        Self::with_max(MAX_FRAME_LEN)
    }

    /// A codec with another cap (tests, fuzzing).
    pub fn with_max(max: usize) -> Self {
        let inner = LengthDelimitedCodec::builder()
            .big_endian()
            .length_field_length(FRAME_HEADER_LEN)
            .max_frame_length(max)
            .new_codec();
        Self { inner, max }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for FrameCodec {
    type Item = Vec<u8>;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        match self.inner.decode(src) {
            Ok(frame) => Ok(frame.map(|frame| frame.to_vec())),
            // The inner codec refuses an oversize header before reserving anything and without
            // consuming it, so the announced length is still at the front of `src`.
            Err(e)
                if e.get_ref()
                    .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>()) =>
            {
                let len = src
                    .get(..FRAME_HEADER_LEN)
                    .map_or(usize::MAX, |mut header| header.get_u32() as usize);
                Err(FrameError::Oversize { len, max: self.max })
            }
            Err(e) => Err(e.into()),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated),
        }
    }
}

impl Encoder<Vec<u8>> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Vec<u8>, dst: &mut BytesMut) -> Result<(), FrameError> {
        if item.len() > self.max {
            return Err(FrameError::Oversize {
                len: item.len(),
                max: self.max,
            });
        }
        self.inner.encode(bytes::Bytes::from(item), dst)?;
        Ok(())
    }
}

/// Decodes every complete frame in `bytes` (for fuzzing and tests): the frames, then the error
/// that stopped decoding or `Ok(())` at a clean end.
pub fn decode_all(bytes: &[u8]) -> (Vec<Vec<u8>>, Result<(), FrameError>) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, Ok(())),
            Err(e) => return (frames, Err(e)),
        }
    }
}

/// A [`FrameTransport`] over a byte stream (TCP, Unix socket, `tokio::io::duplex`).
#[derive(Debug)]
pub struct StreamTransport<S> {
    framed: Framed<S, FrameCodec>,
}

impl<S> StreamTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Frames `stream`.
    pub fn new(stream: S) -> Self {
        Self {
            framed: Framed::new(stream, FrameCodec::new()),
        }
    }

    /// The underlying stream (buffered bytes are dropped).
    pub fn into_inner(self) -> S {
        self.framed.into_inner()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        self.framed.get_ref()
    }

    /// The underlying stream, mutably. Writing to it bypasses framing.
    pub fn get_mut(&mut self) -> &mut S {
        self.framed.get_mut()
    }
}

impl<S> FrameTransport for StreamTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), FrameError> {
        self.framed.send(frame).await
    }

    async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.framed.next().await.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn frames_round_trip_over_a_stream() {
        let (a, b) = tokio::io::duplex(1024);
        let (mut a, mut b) = (StreamTransport::new(a), StreamTransport::new(b));
        let big = vec![0xAB; MAX_FRAME_LEN];
        let sender = tokio::spawn(async move {
            a.send_frame(b"hello".to_vec()).await.unwrap();
            a.send_frame(Vec::new()).await.unwrap();
            a.send_frame(big).await.unwrap();
        });
        assert_eq!(b.recv_frame().await.unwrap().unwrap(), b"hello");
        assert_eq!(b.recv_frame().await.unwrap().unwrap(), b"");
        assert_eq!(b.recv_frame().await.unwrap().unwrap().len(), MAX_FRAME_LEN);
        sender.await.unwrap();
        assert!(b.recv_frame().await.unwrap().is_none(), "clean close");
    }

    #[tokio::test]
    async fn oversize_header_is_refused_before_reading_the_body() {
        let (mut raw, b) = tokio::io::duplex(64);
        let mut b = StreamTransport::new(b);
        // Announce 4 GiB - 1 and send nothing else: the error must come from the header alone.
        raw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        match b.recv_frame().await {
            Err(FrameError::Oversize { len, max }) => {
                assert_eq!(len, u32::MAX as usize);
                assert_eq!(max, MAX_FRAME_LEN);
            }
            other => panic!("expected Oversize, got {other:?}"),
        }
        let (_, res) = decode_all(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
        assert!(matches!(res, Err(FrameError::Oversize { len, .. }) if len == MAX_FRAME_LEN + 1));
    }

    #[tokio::test]
    async fn sending_an_oversize_frame_fails_locally() {
        let (a, _b) = tokio::io::duplex(64);
        let mut a = StreamTransport::new(a);
        let err = a.send_frame(vec![0; MAX_FRAME_LEN + 1]).await.unwrap_err();
        assert!(matches!(err, FrameError::Oversize { .. }));
    }

    #[tokio::test]
    async fn stream_ending_inside_a_frame_is_truncated() {
        for partial in [&[0u8, 0][..], &[0, 0, 0, 10, 1, 2, 3][..]] {
            let (mut raw, b) = tokio::io::duplex(64);
            let mut b = StreamTransport::new(b);
            raw.write_all(partial).await.unwrap();
            drop(raw);
            assert!(matches!(b.recv_frame().await, Err(FrameError::Truncated)));
        }
    }

    #[test]
    fn decode_all_reads_back_to_back_frames() {
        let mut bytes = Vec::new();
        for payload in [&b"a"[..], b"", b"xyz"] {
            bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            bytes.extend_from_slice(payload);
        }
        let (frames, res) = decode_all(&bytes);
        res.unwrap();
        assert_eq!(frames, vec![b"a".to_vec(), vec![], b"xyz".to_vec()]);
    }
}
