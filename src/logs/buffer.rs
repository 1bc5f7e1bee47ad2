//! The streaming line buffer: large reads, whole lines handed out, memory bounded by
//! one block plus the longest line (at most [`MAX_LINE_BYTES`]).

use super::{BLOCK_BYTES, MAX_LINE_BYTES};
use std::io::{self, Read};

/// Bytes read from a source, split into whole lines without copying them.
///
/// Layout of `buf`: `[consumed | lines() | partial last line | free]`, i.e.
/// `0 <= pos <= lines_end <= end <= buf.len()`.
#[derive(Debug)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Start of the first byte not yet consumed; a line never starts before it.
    pos: usize,
    /// End of the whole lines in `buf[pos..]`: just past their last `\n` (or at `end`
    /// once the source is exhausted, for a last line without one).
    lines_end: usize,
    /// End of the bytes read.
    end: usize,
    /// Inside a line longer than [`MAX_LINE_BYTES`]: bytes are dropped up to its end.
    discarding: bool,
    eof: bool,
}

impl LineBuffer {
    pub fn new() -> Self {
        Self {
            buf: vec![0; BLOCK_BYTES],
            pos: 0,
            lines_end: 0,
            end: 0,
            discarding: false,
            eof: false,
        }
    }

    /// Reads once from `source` into free space, making room first. Bytes already
    /// buffered stay buffered until consumed. True when a line outgrew
    /// [`MAX_LINE_BYTES`] and starts being dropped: count it once.
    pub fn fill(&mut self, source: &mut dyn Read) -> io::Result<bool> {
        let oversized_line = self.end == self.buf.len() && self.make_room();
        let n = loop {
            match source.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        let new = self.end;
        self.end += n;
        self.eof = n == 0;

        let mut search_from = new;
        if self.discarding {
            match memchr::memchr(b'\n', &self.buf[new..self.end]) {
                Some(i) => {
                    self.pos = new + i + 1;
                    self.lines_end = self.pos;
                    self.discarding = false;
                    search_from = self.pos;
                }
                None => {
                    self.pos = self.end;
                    self.lines_end = self.end;
                    return Ok(oversized_line);
                }
            }
        }
        if self.eof {
            self.lines_end = self.end;
        } else if let Some(i) = memchr::memrchr(b'\n', &self.buf[search_from..self.end]) {
            // Bytes before `search_from` hold no '\n' past `lines_end`: only new ones are searched.
            self.lines_end = search_from + i + 1;
        }
        Ok(oversized_line)
    }

    /// Frees space at the end: drops consumed bytes, else grows, else starts dropping
    /// the one line that fills the whole cap. True when a line starts being dropped.
    fn make_room(&mut self) -> bool {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.lines_end -= self.pos;
            self.pos = 0;
            return false;
        }
        if self.buf.len() < MAX_LINE_BYTES {
            let grown = (self.buf.len() * 2).min(MAX_LINE_BYTES);
            self.buf.resize(grown, 0);
            return false;
        }
        let started = !self.discarding;
        self.discarding = true;
        self.reset();
        started
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.lines_end = 0;
        self.end = 0;
        if self.buf.len() > BLOCK_BYTES {
            // A long line has been handled: give its memory back.
            self.buf.truncate(BLOCK_BYTES);
            self.buf.shrink_to(BLOCK_BYTES);
        }
    }

    /// Everything read and not consumed, whole lines or not.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// The whole lines read and not consumed; at the end of the source this includes a
    /// last line without `\n`.
    pub fn lines(&self) -> &[u8] {
        &self.buf[self.pos..self.lines_end]
    }

    /// Marks [`lines`](Self::lines) as handled.
    pub fn consume_lines(&mut self) {
        self.pos = self.lines_end;
        if self.pos == self.end {
            self.reset();
        }
    }

    /// The source has been read to its end.
    pub fn is_eof(&self) -> bool {
        self.eof
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `data` in pieces of `piece` bytes, collecting the lines handed out.
    fn split(data: &[u8], piece: usize) -> (Vec<Vec<u8>>, u64) {
        let mut src = crate::testing::Chunked::new(data, vec![piece]);
        let mut b = LineBuffer::new();
        let mut out = Vec::new();
        let mut oversized = 0;
        loop {
            oversized += u64::from(b.fill(&mut src).expect("read"));
            for l in b.lines().split_inclusive(|c| *c == b'\n') {
                out.push(l.to_vec());
            }
            b.consume_lines();
            if b.is_eof() {
                return (out, oversized);
            }
        }
    }

    #[test]
    fn whole_lines_whatever_the_read_size() {
        let data = b"one\ntwo\n\nthree-without-newline";
        for piece in [1, 2, 3, 5, 100] {
            let (lines, _) = split(data, piece);
            assert_eq!(
                lines,
                vec![
                    b"one\n".to_vec(),
                    b"two\n".to_vec(),
                    b"\n".to_vec(),
                    b"three-without-newline".to_vec()
                ],
                "piece {piece}"
            );
        }
    }

    #[test]
    fn a_line_over_the_cap_is_dropped_once_and_memory_returns() {
        let mut data = b"first\n".to_vec();
        data.resize(data.len() + MAX_LINE_BYTES + 7, b'x');
        data.extend_from_slice(b"\nlast\n");
        let mut src = &data[..];
        let mut b = LineBuffer::new();
        let mut lines = Vec::new();
        let mut oversized = 0;
        loop {
            oversized += u64::from(b.fill(&mut src).expect("read"));
            lines.extend(
                b.lines()
                    .split_inclusive(|c| *c == b'\n')
                    .map(<[u8]>::to_vec),
            );
            b.consume_lines();
            assert!(b.buf.len() <= MAX_LINE_BYTES);
            if b.is_eof() {
                break;
            }
        }
        assert_eq!(oversized, 1);
        assert_eq!(lines, vec![b"first\n".to_vec(), b"last\n".to_vec()]);
        assert_eq!(b.buf.len(), BLOCK_BYTES);
    }
}
