//! BLE fragmentation: carrying link frames over GATT writes and notifications.
//!
//! A GATT write or notification carries at most the negotiated ATT payload (MTU − 3 bytes:
//! 20 with the default MTU of 23, up to 512), while a link frame can be up to
//! [`MAX_FRAME_LEN`]. So the sender cuts each frame into chunks with a one-byte header, and the
//! receiver glues them back, with a size cap and a timeout so a peer that stops half way
//! can't hold memory or the link forever.
//!
//! ```text
//! first chunk:        [1sss ssss] [total length: u32 BE] [data …]
//! continuation chunk: [0sss ssss] [data …]
//! ```
//!
//! `sssssss` is a 7-bit sequence number: 0 on the first chunk of a frame, +1 (mod 128) on each
//! following chunk. BLE delivers writes-with-response and notifications in order, so a gap or a
//! repeat means the link is broken: the receiver reports it and drops the partial frame. A
//! frame ends when `total length` bytes have arrived; every chunk except the last one of a
//! frame is full (exactly the ATT payload), but the receiver does not rely on that.
//!
//! The length prefix of a stream frame ([`crate::frame`]) is not sent: the chunk header's
//! total length does that job.

use std::time::{Duration, Instant};

use crate::frame::MAX_FRAME_LEN;

/// Smallest ATT payload (default MTU 23 − 3).
pub const MIN_ATT_PAYLOAD: usize = 20;
/// Largest ATT payload used (the largest attribute value, per the Core spec).
pub const MAX_ATT_PAYLOAD: usize = 512;
/// Header bytes of a first chunk.
pub const FIRST_HEADER_LEN: usize = 5;
/// Header bytes of a continuation chunk.
pub const CONTINUATION_HEADER_LEN: usize = 1;
/// How long a partial frame may wait for its next chunk by default.
pub const DEFAULT_REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(10);

const FIRST_FLAG: u8 = 0x80;
const SEQ_MASK: u8 = 0x7f;

/// Why a frame could not be cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The negotiated ATT payload is below the BLE minimum.
    #[error("ATT payload of {0} bytes is below the BLE minimum of 20 (MTU 23)")]
    AttPayloadTooSmall(usize),
    /// The frame is over the link's cap.
    #[error("frame of {len} bytes is over the {max}-byte limit")]
    FrameTooLarge {
        /// The frame's length in bytes.
        len: usize,
        /// The largest frame this chunker sends.
        max: usize,
    },
}

/// Why incoming chunks were refused. After any error the partial frame is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    /// A zero-byte chunk.
    #[error("empty BLE chunk")]
    EmptyChunk,
    /// A first chunk too short to hold its header.
    #[error("first BLE chunk of {0} bytes is shorter than its 5-byte header")]
    ShortHeader(usize),
    /// The announced frame is over the cap.
    #[error("BLE frame announces {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The length the first chunk announces.
        len: usize,
        /// The largest frame this reassembler accepts.
        max: usize,
    },
    /// A continuation with no frame in progress.
    #[error("BLE continuation chunk without a first chunk")]
    UnexpectedContinuation,
    /// A first chunk while a frame was still incomplete.
    #[error("a new BLE frame started before the previous one was complete ({received} of {total} bytes)")]
    Interrupted {
        /// Bytes received of the abandoned frame.
        received: usize,
        /// Its announced length.
        total: usize,
    },
    /// A chunk was lost or repeated.
    #[error(
        "BLE chunk out of sequence (expected {expected}, got {got}): a chunk was lost or repeated"
    )]
    OutOfSequence {
        /// The sequence number the next chunk should carry.
        expected: u8,
        /// The sequence number it carried.
        got: u8,
    },
    /// More bytes than the first chunk announced.
    #[error("BLE chunk carries more data than the frame's announced {total} bytes")]
    Overrun {
        /// The length the frame's first chunk announced.
        total: usize,
    },
    /// The next chunk did not come in time.
    #[error("BLE frame incomplete after {0:?} ({1} of {2} bytes): the peer stalled")]
    TimedOut(Duration, usize, usize),
}

/// Cuts frames into chunks of at most the negotiated ATT payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunker {
    att_payload: usize,
}

impl Chunker {
    /// A chunker for a negotiated ATT payload (MTU − 3). Values above 512 are clamped to 512.
    pub fn new(att_payload: usize) -> Result<Self, ChunkError> {
        if att_payload < MIN_ATT_PAYLOAD {
            return Err(ChunkError::AttPayloadTooSmall(att_payload));
        }
        Ok(Self {
            att_payload: att_payload.min(MAX_ATT_PAYLOAD),
        })
    }

    /// A chunker for a negotiated ATT MTU (payload = MTU − 3).
    pub fn for_mtu(mtu: usize) -> Result<Self, ChunkError> {
        Self::new(mtu.saturating_sub(3))
    }

    /// The ATT payload in use.
    pub fn att_payload(&self) -> usize {
        self.att_payload
    }

    /// Cuts one frame. Every chunk is at most [`Chunker::att_payload`] bytes; an empty frame is
    /// one header-only chunk.
    pub fn split(&self, frame: &[u8]) -> Result<Vec<Vec<u8>>, ChunkError> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(ChunkError::FrameTooLarge {
                len: frame.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let total = u32::try_from(frame.len()).map_err(|_| ChunkError::FrameTooLarge {
            len: frame.len(),
            max: MAX_FRAME_LEN,
        })?;
        let first_room = self.att_payload - FIRST_HEADER_LEN;
        let (head, mut rest) = frame.split_at(first_room.min(frame.len()));
        let mut chunks = Vec::with_capacity(self.chunk_count(frame.len()));
        let mut first = Vec::with_capacity(FIRST_HEADER_LEN + head.len());
        first.push(FIRST_FLAG);
        first.extend_from_slice(&total.to_be_bytes());
        first.extend_from_slice(head);
        chunks.push(first);
        let mut seq: u8 = 0;
        let room = self.att_payload - CONTINUATION_HEADER_LEN;
        while !rest.is_empty() {
            seq = (seq + 1) & SEQ_MASK;
            let (piece, tail) = rest.split_at(room.min(rest.len()));
            let mut chunk = Vec::with_capacity(CONTINUATION_HEADER_LEN + piece.len());
            chunk.push(seq);
            chunk.extend_from_slice(piece);
            chunks.push(chunk);
            rest = tail;
        }
        Ok(chunks)
    }

    /// How many chunks a frame of `len` bytes becomes.
    pub fn chunk_count(&self, len: usize) -> usize {
        let first_room = self.att_payload - FIRST_HEADER_LEN;
        let room = self.att_payload - CONTINUATION_HEADER_LEN;
        1 + len.saturating_sub(first_room).div_ceil(room)
    }
}

#[derive(Debug)]
struct Partial {
    total: usize,
    buf: Vec<u8>,
    next_seq: u8,
    last_chunk_at: Instant,
}

/// Glues chunks back into frames, with a size cap and a stall timeout.
///
/// Time is passed in (`now`) rather than read, so the caller decides the clock and tests are
/// deterministic. A caller that wants to notice a stalled peer without waiting for its next
/// chunk sleeps until [`Reassembler::deadline`] and calls [`Reassembler::expire`].
#[derive(Debug)]
pub struct Reassembler {
    max: usize,
    timeout: Duration,
    partial: Option<Partial>,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(MAX_FRAME_LEN, DEFAULT_REASSEMBLY_TIMEOUT)
    }
}

impl Reassembler {
    /// A reassembler refusing frames over `max` bytes and partial frames idle for `timeout`.
    pub fn new(max: usize, timeout: Duration) -> Self {
        Self {
            max,
            timeout,
            partial: None,
        }
    }

    /// True while a frame is incomplete.
    pub fn in_progress(&self) -> bool {
        self.partial.is_some()
    }

    /// When the frame in progress times out, if one is.
    pub fn deadline(&self) -> Option<Instant> {
        self.partial
            .as_ref()
            .map(|p| p.last_chunk_at + self.timeout)
    }

    /// Drops a partial frame whose next chunk is overdue; the error says how far it got.
    pub fn expire(&mut self, now: Instant) -> Result<(), ReassemblyError> {
        match &self.partial {
            Some(p) if now.saturating_duration_since(p.last_chunk_at) >= self.timeout => {
                let err = ReassemblyError::TimedOut(self.timeout, p.buf.len(), p.total);
                self.partial = None;
                Err(err)
            }
            _ => Ok(()),
        }
    }

    /// Takes one chunk. `Ok(Some(frame))` when it completed a frame.
    pub fn push(&mut self, chunk: &[u8], now: Instant) -> Result<Option<Vec<u8>>, ReassemblyError> {
        self.expire(now)?;
        let result = self.push_inner(chunk, now);
        if result.is_err() {
            self.partial = None;
        }
        result
    }

    fn push_inner(
        &mut self,
        chunk: &[u8],
        now: Instant,
    ) -> Result<Option<Vec<u8>>, ReassemblyError> {
        let (&header, body) = chunk.split_first().ok_or(ReassemblyError::EmptyChunk)?;
        let seq = header & SEQ_MASK;
        if header & FIRST_FLAG != 0 {
            if let Some(p) = &self.partial {
                return Err(ReassemblyError::Interrupted {
                    received: p.buf.len(),
                    total: p.total,
                });
            }
            if seq != 0 {
                return Err(ReassemblyError::OutOfSequence {
                    expected: 0,
                    got: seq,
                });
            }
            let (len_bytes, data) = body
                .split_first_chunk::<4>()
                .ok_or(ReassemblyError::ShortHeader(chunk.len()))?;
            let total = u32::from_be_bytes(*len_bytes) as usize;
            if total > self.max {
                return Err(ReassemblyError::TooLarge {
                    len: total,
                    max: self.max,
                });
            }
            if data.len() > total {
                return Err(ReassemblyError::Overrun { total });
            }
            if data.len() == total {
                return Ok(Some(data.to_vec()));
            }
            // `total` is capped, so this reservation is bounded.
            let mut buf = Vec::with_capacity(total);
            buf.extend_from_slice(data);
            self.partial = Some(Partial {
                total,
                buf,
                next_seq: 1,
                last_chunk_at: now,
            });
            return Ok(None);
        }

        let p = self
            .partial
            .as_mut()
            .ok_or(ReassemblyError::UnexpectedContinuation)?;
        if seq != p.next_seq {
            return Err(ReassemblyError::OutOfSequence {
                expected: p.next_seq,
                got: seq,
            });
        }
        if p.buf.len() + body.len() > p.total {
            return Err(ReassemblyError::Overrun { total: p.total });
        }
        p.buf.extend_from_slice(body);
        p.next_seq = (p.next_seq + 1) & SEQ_MASK;
        p.last_chunk_at = now;
        if p.buf.len() == p.total {
            return Ok(self.partial.take().map(|p| p.buf));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reassemble(chunks: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut r = Reassembler::default();
        let now = Instant::now();
        chunks
            .iter()
            .filter_map(|c| r.push(c, now).unwrap())
            .collect()
    }

    #[test]
    fn small_payload_and_limits() {
        assert_eq!(Chunker::new(19), Err(ChunkError::AttPayloadTooSmall(19)));
        assert_eq!(Chunker::for_mtu(23).unwrap().att_payload(), 20);
        assert_eq!(Chunker::new(4000).unwrap().att_payload(), MAX_ATT_PAYLOAD);
        let c = Chunker::new(20).unwrap();
        assert!(matches!(
            c.split(&vec![0; MAX_FRAME_LEN + 1]),
            Err(ChunkError::FrameTooLarge { .. })
        ));
        let chunks = c.split(b"").unwrap();
        assert_eq!(chunks, vec![vec![0x80, 0, 0, 0, 0]]);
        assert_eq!(reassemble(&chunks), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn largest_frame_at_smallest_mtu() {
        let c = Chunker::new(20).unwrap();
        let frame: Vec<u8> = (0..MAX_FRAME_LEN).map(|i| (i % 251) as u8).collect();
        let chunks = c.split(&frame).unwrap();
        assert_eq!(chunks.len(), c.chunk_count(frame.len()));
        assert!(chunks.iter().all(|ch| ch.len() <= 20));
        assert_eq!(reassemble(&chunks), vec![frame]);
    }

    #[test]
    fn announced_size_over_the_cap_is_refused_up_front() {
        let mut r = Reassembler::default();
        let mut chunk = vec![0x80];
        chunk.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            r.push(&chunk, Instant::now()),
            Err(ReassemblyError::TooLarge {
                len: u32::MAX as usize,
                max: MAX_FRAME_LEN
            })
        );
        assert!(!r.in_progress());
    }

    #[test]
    fn broken_sequences_are_reported_and_reset() {
        let c = Chunker::new(20).unwrap();
        let chunks = c.split(&[7u8; 100]).unwrap();
        let now = Instant::now();

        let mut r = Reassembler::default();
        assert_eq!(
            r.push(&chunks[1], now),
            Err(ReassemblyError::UnexpectedContinuation)
        );

        let mut r = Reassembler::default();
        r.push(&chunks[0], now).unwrap();
        assert_eq!(
            r.push(&chunks[2], now),
            Err(ReassemblyError::OutOfSequence {
                expected: 1,
                got: 2
            })
        );
        assert!(!r.in_progress());

        let mut r = Reassembler::default();
        r.push(&chunks[0], now).unwrap();
        r.push(&chunks[1], now).unwrap();
        assert!(matches!(
            r.push(&chunks[1], now),
            Err(ReassemblyError::OutOfSequence { .. })
        ));

        let mut r = Reassembler::default();
        r.push(&chunks[0], now).unwrap();
        assert!(matches!(
            r.push(&chunks[0], now),
            Err(ReassemblyError::Interrupted { .. })
        ));

        let mut r = Reassembler::default();
        assert_eq!(r.push(&[], now), Err(ReassemblyError::EmptyChunk));
        assert_eq!(
            r.push(&[0x80, 0, 0], now),
            Err(ReassemblyError::ShortHeader(3))
        );
        assert_eq!(
            r.push(&[0x80, 0, 0, 0, 1, 9, 9], now),
            Err(ReassemblyError::Overrun { total: 1 })
        );
        r.push(&[0x80, 0, 0, 0, 2, 9], now).unwrap();
        assert_eq!(
            r.push(&[0x01, 9, 9], now),
            Err(ReassemblyError::Overrun { total: 2 })
        );
        // After errors, a good frame still goes through.
        assert_eq!(reassemble(&chunks), vec![vec![7u8; 100]]);
    }

    #[test]
    fn a_stalled_frame_times_out() {
        let c = Chunker::new(20).unwrap();
        let chunks = c.split(&[1u8; 50]).unwrap();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut r = Reassembler::new(MAX_FRAME_LEN, timeout);
        r.push(&chunks[0], t0).unwrap();
        assert_eq!(r.deadline(), Some(t0 + timeout));
        // Progress moves the deadline.
        r.push(&chunks[1], t0 + Duration::from_secs(4)).unwrap();
        assert!(r.expire(t0 + Duration::from_secs(8)).is_ok());
        let late = t0 + Duration::from_secs(9);
        assert!(matches!(
            r.push(&chunks[2], late),
            Err(ReassemblyError::TimedOut(..))
        ));
        assert!(!r.in_progress());
        // A fresh frame after a timeout is fine.
        let mut r = Reassembler::new(MAX_FRAME_LEN, timeout);
        r.push(&chunks[0], t0).unwrap();
        assert!(r.expire(t0 + timeout).is_err());
        assert_eq!(r.push(&chunks[0], late), Ok(None));
    }

    proptest! {
        #[test]
        fn split_then_join_is_identity(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..4),
            att in MIN_ATT_PAYLOAD..=600usize,
        ) {
            let c = Chunker::new(att).unwrap();
            let mut all = Vec::new();
            for f in &frames {
                let chunks = c.split(f).unwrap();
                prop_assert_eq!(chunks.len(), c.chunk_count(f.len()));
                for ch in &chunks {
                    prop_assert!(ch.len() <= c.att_payload());
                    prop_assert!(!ch.is_empty());
                }
                // All but the last chunk are full.
                for ch in &chunks[..chunks.len() - 1] {
                    prop_assert_eq!(ch.len(), c.att_payload());
                }
                all.extend(chunks);
            }
            prop_assert_eq!(reassemble(&all), frames);
        }

        #[test]
        fn arbitrary_chunks_never_panic_or_exceed_the_cap(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..64),
            max in 0usize..256,
        ) {
            let mut r = Reassembler::new(max, Duration::from_secs(1));
            let now = Instant::now();
            for ch in &chunks {
                if let Ok(Some(frame)) = r.push(ch, now) {
                    prop_assert!(frame.len() <= max);
                }
            }
        }

        #[test]
        fn dropping_any_chunk_is_detected(len in 40usize..400, drop_at in any::<proptest::sample::Index>()) {
            let c = Chunker::new(20).unwrap();
            let frame = vec![3u8; len];
            let mut chunks = c.split(&frame).unwrap();
            chunks.remove(drop_at.index(chunks.len()));
            let mut r = Reassembler::default();
            let now = Instant::now();
            let mut got = Vec::new();
            let mut failed = false;
            for ch in &chunks {
                match r.push(ch, now) {
                    Ok(Some(f)) => got.push(f),
                    Ok(None) => {}
                    Err(_) => { failed = true; break; }
                }
            }
            prop_assert!(failed || got.is_empty());
            prop_assert!(!got.contains(&frame));
        }
    }
}
