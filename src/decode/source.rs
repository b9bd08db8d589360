//! Byte sources the decoder pulls from: a whole object in memory, or a
//! stream (the inflated outer gzip of a gzip-over-gzip object).

use std::io::{self, Read};

use crate::error::ErrorKind;

/// A pull source of bytes with an offset, like `BufRead` but able to keep
/// a growing contiguous window (a gzip header or JSON document may span
/// reads).
pub(crate) trait Source {
    /// The bytes available now, from [`Source::offset`].
    fn avail(&self) -> &[u8];
    /// Drop `n` bytes from the front of [`Source::avail`].
    fn consume(&mut self, n: usize);
    /// Make more bytes available after the current ones, keeping them.
    /// `Ok(false)` at the end of the input.
    fn fill(&mut self) -> Result<bool, ErrorKind>;
    /// Offset of `avail()[0]` from the start of the source.
    fn offset(&self) -> u64;
    /// True when `avail()` is all the remaining input (nothing to fill).
    fn is_whole(&self) -> bool;
    /// Goes back to `offset`, if the source still holds it.
    fn rewind(&mut self, offset: u64) -> bool;
}

/// A whole object in memory.
pub(crate) struct SliceSource<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> SliceSource<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        SliceSource { data, pos: 0 }
    }

    /// The remaining bytes, with the object's lifetime.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }
}

impl Source for SliceSource<'_> {
    fn avail(&self) -> &[u8] {
        self.rest()
    }
    fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.data.len());
    }
    fn fill(&mut self) -> Result<bool, ErrorKind> {
        Ok(false)
    }
    fn offset(&self) -> u64 {
        self.pos as u64
    }
    fn is_whole(&self) -> bool {
        true
    }
    fn rewind(&mut self, offset: u64) -> bool {
        match usize::try_from(offset) {
            Ok(pos) if pos <= self.data.len() => {
                self.pos = pos;
                true
            }
            _ => false,
        }
    }
}

/// A stream read in chunks into a window that grows up to `max` bytes
/// when the caller needs more contiguous bytes than it holds.
pub(crate) struct ReadSource<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    base: u64,
    max: usize,
    limit: u64,
    eof: bool,
}

const CHUNK: usize = 256 * 1024;

impl<R: Read> ReadSource<R> {
    /// `max`: largest window; `limit`: most bytes the stream may yield
    /// before [`ErrorKind::ObjectTooLarge`].
    pub(crate) fn new(inner: R, max: usize, limit: u64) -> Self {
        ReadSource {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: 0,
            max: max.max(CHUNK),
            limit,
            eof: false,
        }
    }
}

fn read_error(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => ErrorKind::Truncated,
        _ => ErrorKind::Deflate,
    }
}

impl<R: Read> Source for ReadSource<R> {
    fn avail(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }
    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
    }
    fn fill(&mut self) -> Result<bool, ErrorKind> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < CHUNK / 2 {
            if self.buf.len() >= self.max {
                return Err(ErrorKind::MemberTooLarge {
                    limit: self.max as u64,
                });
            }
            let grown = (self.buf.len() * 2).max(CHUNK).min(self.max);
            self.buf.resize(grown, 0);
        }
        loop {
            let spare = self.buf.get_mut(self.end..).unwrap_or_default();
            match self.inner.read(spare) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    if self.base + self.end as u64 > self.limit {
                        return Err(ErrorKind::ObjectTooLarge {
                            limit: self.limit,
                        });
                    }
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(&e)),
            }
        }
    }
    fn offset(&self) -> u64 {
        self.base + self.start as u64
    }
    fn is_whole(&self) -> bool {
        false
    }
    fn rewind(&mut self, _offset: u64) -> bool {
        false
    }
}
