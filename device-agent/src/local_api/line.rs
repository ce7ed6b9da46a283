//! Reading the local API's lines without leaving copies of them behind.
//!
//! A request line can carry an access token (`auth_failure`) and so can an answer (`token`).
//! Reading them through a `BufReader` into a `Zeroizing<Vec<u8>>` wiped only the `Vec`: the
//! `BufReader` keeps its own buffer, never wiped, holding the last bytes it read; and a `Vec`
//! that grows while `read_until` fills it frees each smaller allocation unwiped. So both ends
//! read through [`LineReader`]: one buffer, allocated once at its full size (the line bound plus
//! one byte, so it never grows), where each line is used in place and wiped as soon as it has
//! been used; the whole buffer is wiped when an error ends the reading and when the reader is
//! dropped (also when a deadline drops it half-way through a line). Bytes after a line's `\n`
//! (a client sending two requests at once) stay, at the front of the buffer, for the next line.
//!
//! Writing has the same trap: `serde_json::to_vec` grows its `Vec` while it writes and frees the
//! smaller copies unwiped. [`encode_line`] writes into one buffer of the full size instead, and
//! a line that does not fit is an error, not a reallocation.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use zeroize::{Zeroize as _, Zeroizing};

/// `value` as one JSON line (its `\n` included) of at most `max` bytes, written into a buffer
/// allocated once at that size and wiped on drop: no partial copy is left behind. A value whose
/// line would be longer is an error (the reading end refuses such a line anyway).
pub(super) fn encode_line<T: serde::Serialize>(
    value: &T,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    let mut buf = Zeroizing::new(vec![0u8; max]);
    let mut room = &mut buf[..];
    // `&mut [u8]` as a writer never grows: past its end, writes fail. The `\n` needs a byte too.
    let written = serde_json::to_writer(&mut room, value);
    if room.is_empty() {
        return Err(serde::ser::Error::custom(format!(
            "line longer than {max} bytes"
        )));
    }
    written?;
    let used = max - room.len();
    buf[used] = b'\n';
    buf.truncate(used + 1);
    Ok(buf)
}

/// Reads `\n`-terminated lines of at most `max` bytes (the `\n` included) from `R`.
pub(super) struct LineReader<R> {
    inner: R,
    /// Always `max + 1` bytes long: never reallocated, wiped on drop.
    buf: Zeroizing<Vec<u8>>,
    /// The bytes held: `buf[..filled]`; the rest is zero.
    filled: usize,
    /// The longest line, its `\n` included.
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader of `inner` for lines of at most `max` bytes.
    pub(super) fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            buf: Zeroizing::new(vec![0; max + 1]),
            filled: 0,
            max,
        }
    }

    /// Reads the next line (its `\n` included; the last line of the stream may lack it) and
    /// gives it to `use_line`; the line is wiped before this returns. `None` at the end of the
    /// stream with nothing held. A line longer than `max` bytes is an `InvalidData` error that
    /// names it as `what` (`request`, `answer`). On any error everything held is wiped.
    pub(super) async fn next_line<T>(
        &mut self,
        what: &str,
        use_line: impl FnOnce(&[u8]) -> T,
    ) -> io::Result<Option<T>> {
        let len = match self.fill_line().await {
            Ok(Some(len)) if len <= self.max => len,
            Ok(Some(_)) => {
                self.wipe();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{what} line longer than {} bytes", self.max),
                ));
            }
            Ok(None) => return Ok(None),
            Err(e) => {
                self.wipe();
                return Err(e);
            }
        };
        let used = use_line(&self.buf[..len]);
        self.consume(len);
        Ok(Some(used))
    }

    /// Reads until the buffer holds a whole line, the stream ends, or the buffer is full: the
    /// length of the line at the front (`max + 1` when it is too long), `None` at the end of the
    /// stream with nothing held.
    async fn fill_line(&mut self) -> io::Result<Option<usize>> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..self.filled]
                .iter()
                .position(|&b| b == b'\n')
            {
                return Ok(Some(scanned + i + 1));
            }
            if self.filled == self.buf.len() {
                return Ok(Some(self.filled));
            }
            scanned = self.filled;
            let n = self.inner.read(&mut self.buf[self.filled..]).await?;
            if n == 0 {
                return Ok((self.filled > 0).then_some(self.filled));
            }
            self.filled += n;
        }
    }

    /// Waits until the peer sends anything (or already has), hangs up or fails. What it sends
    /// is held, and wiped with the reader.
    pub(super) async fn input_or_end(&mut self) {
        if self.filled > 0 {
            return;
        }
        if let Ok(n) = self.inner.read(&mut self.buf[self.filled..]).await {
            self.filled += n;
        }
    }

    /// Drops the first `len` bytes held: the rest moves to the front, and every byte after it
    /// is zeroed, so nothing of the line is left.
    fn consume(&mut self, len: usize) {
        self.buf.copy_within(len..self.filled, 0);
        let rest = self.filled - len;
        self.buf[rest..self.filled].zeroize();
        self.filled = rest;
    }

    /// Zeroes everything held.
    fn wipe(&mut self) {
        self.buf[..self.filled].zeroize();
        self.filled = 0;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt as _;

    use super::*;

    const TOKEN: &str = "Atza|secret-access-token-0123456789";

    /// True when the reader's buffer holds `needle` anywhere.
    fn holds<R>(reader: &LineReader<R>, needle: &str) -> bool {
        reader
            .buf
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[tokio::test]
    async fn a_used_line_is_wiped_and_the_next_one_kept() {
        let first = format!("{{\"op\":\"auth_failure\",\"token\":\"{TOKEN}\"}}\n");
        let input = format!("{first}{{\"op\":\"status\"}}\n{{\"op\":\"token\"}}");
        let mut reader = LineReader::new(input.as_bytes(), 1024);
        let line = reader.next_line("request", |l| l.to_vec()).await.unwrap();
        assert_eq!(line.as_deref(), Some(first.as_bytes()));
        // Only the two lines not yet used are held, at the front; the rest is zero.
        assert!(
            !holds(&reader, TOKEN),
            "the used line is still in the buffer"
        );
        let rest = b"{\"op\":\"status\"}\n{\"op\":\"token\"}";
        assert_eq!(&reader.buf[..reader.filled], rest);
        assert!(reader.buf[reader.filled..].iter().all(|&b| b == 0));
        // The last line may lack its newline; then the end.
        let l = reader.next_line("request", |l| l.to_vec()).await.unwrap();
        assert_eq!(l.as_deref(), Some(&b"{\"op\":\"status\"}\n"[..]));
        let l = reader.next_line("request", |l| l.to_vec()).await.unwrap();
        assert_eq!(l.as_deref(), Some(&b"{\"op\":\"token\"}"[..]));
        assert_eq!(reader.next_line("request", |_| ()).await.unwrap(), None);
        assert!(reader.buf.iter().all(|&b| b == 0));
    }

    #[tokio::test]
    async fn lines_in_pieces_are_put_together_and_the_bound_holds() {
        let (mut w, r) = tokio::io::duplex(3);
        let line = format!("{TOKEN}\n");
        let writer = {
            let line = line.clone();
            tokio::spawn(async move {
                w.write_all(line.as_bytes()).await.unwrap();
                w.write_all(&[b'x'; 65]).await.unwrap();
            })
        };
        let max = line.len();
        let mut reader = LineReader::new(r, max);
        let got = reader.next_line("answer", |l| l.to_vec()).await.unwrap();
        assert_eq!(got.as_deref(), Some(line.as_bytes()));
        // The next one is longer than the bound: an error naming it, and nothing held.
        let err = reader.next_line("answer", |_| ()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            format!("answer line longer than {max} bytes")
        );
        assert_eq!(reader.filled, 0);
        assert!(reader.buf.iter().all(|&b| b == 0));
        writer.abort();
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_bound_passes() {
        let line = format!("{}\n", "y".repeat(15));
        let mut reader = LineReader::new(line.as_bytes(), 16);
        let got = reader.next_line("request", |l| l.len()).await.unwrap();
        assert_eq!(got, Some(16));
        let long = format!("{}\n", "y".repeat(16));
        let mut reader = LineReader::new(long.as_bytes(), 16);
        assert!(reader.next_line("request", |_| ()).await.is_err());
    }

    #[tokio::test]
    async fn input_or_end_sees_held_bytes_new_bytes_and_the_end() {
        let at_once = std::time::Duration::from_secs(5);
        // "x" is held: at once, without reading (the peer sends nothing more and stays).
        let (_peer, ours) = tokio::io::duplex(64);
        let held = tokio::io::AsyncReadExt::chain(&b"{\"op\":\"status\"}\nx"[..], ours);
        let mut reader = LineReader::new(held, 64);
        reader.next_line("request", |_| ()).await.unwrap();
        tokio::time::timeout(at_once, reader.input_or_end())
            .await
            .expect("held bytes end the wait");
        // Nothing held: the next bytes the peer sends end it, and are held.
        let (mut peer, ours) = tokio::io::duplex(64);
        let mut fresh = LineReader::new(ours, 64);
        peer.write_all(b"y").await.unwrap();
        tokio::time::timeout(at_once, fresh.input_or_end())
            .await
            .expect("new bytes end the wait");
        assert_eq!(&fresh.buf[..fresh.filled], b"y");
        // The end of the stream ends it, with nothing held.
        let mut ended = LineReader::new(&b""[..], 64);
        tokio::time::timeout(at_once, ended.input_or_end())
            .await
            .expect("the end ends the wait");
        assert_eq!(ended.filled, 0);
    }

    #[test]
    fn a_line_is_encoded_in_one_buffer_of_the_full_size_and_a_longer_one_is_refused() {
        let value = serde_json::json!({ "token": TOKEN });
        let line = encode_line(&value, 256).unwrap();
        let mut expected = serde_json::to_vec(&value).unwrap();
        expected.push(b'\n');
        assert_eq!(&line[..], &expected[..]);
        // Written in place: the buffer was never reallocated to fit.
        assert_eq!(line.capacity(), 256);
        // The line and its `\n` need exactly `expected.len()` bytes.
        assert!(encode_line(&value, expected.len()).is_ok());
        let refused = encode_line(&value, expected.len() - 1).unwrap_err();
        assert!(refused.to_string().contains("longer than"), "{refused}");
        assert!(encode_line(&value, 8).is_err());
    }
}
