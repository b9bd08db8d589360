//! Gzip members: header, bounded inflate, trailer.
//!
//! A member's end is found from the inflater's count of input bytes used,
//! never by scanning for the `1f 8b` magic (which also occurs inside
//! compressed data). Members of an object in memory go through libdeflate,
//! growing the output window on demand; streamed members, oversized
//! members and corrupt ones go through zlib-rs (flate2's streaming
//! `Decompress`), which also tells truncated data from corrupt data.

use flate2::{Decompress, FlushDecompress, Status};
use memchr::memchr;

use super::libdeflate::{Inflated, Inflater};
use super::source::Source;
use crate::error::ErrorKind;

/// Bytes of padding kept after an inflated member, for simd-json.
pub(crate) const PAD: usize = simd_json::INPUT_PADDING;

/// The first window tried for a member: most CloudWatch Logs records
/// inflate to well under this.
const FIRST_WINDOW: usize = 1 << 20;

const FTEXT_MASK_RESERVED: u8 = 0xe0;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

/// A failed member, and whether the next member can still be found.
#[derive(Debug)]
pub(crate) struct MemberError {
    pub(crate) kind: ErrorKind,
    /// The member's end is known: decoding can go on after it.
    pub(crate) framing_ok: bool,
    /// Offset in the inflated bytes where the error was noticed.
    pub(crate) inflated_offset: Option<u64>,
}

impl MemberError {
    fn lost(kind: ErrorKind, inflated_offset: Option<u64>) -> Self {
        MemberError { kind, framing_ok: false, inflated_offset }
    }
    fn kept(kind: ErrorKind) -> Self {
        MemberError { kind, framing_ok: true, inflated_offset: None }
    }
}

impl From<ErrorKind> for MemberError {
    fn from(kind: ErrorKind) -> Self {
        MemberError::lost(kind, None)
    }
}

enum Header {
    Len(usize),
    NeedMore,
    Bad(&'static str),
}

/// Parses a gzip member header (RFC 1952) at the start of `b`.
fn parse_header(b: &[u8]) -> Header {
    let fixed: [u8; 10] = match b.get(..10).and_then(|s| s.try_into().ok()) {
        Some(f) => f,
        None => {
            // Reject early what cannot become a header.
            let magic = [0x1f, 0x8b, 8];
            if b.iter().zip(magic.iter()).any(|(x, y)| x != y) {
                return Header::Bad("not a gzip member (bad magic)");
            }
            return Header::NeedMore;
        }
    };
    if fixed[0] != 0x1f || fixed[1] != 0x8b {
        return Header::Bad("not a gzip member (bad magic)");
    }
    if fixed[2] != 8 {
        return Header::Bad("compression method is not deflate");
    }
    let flags = fixed[3];
    if flags & FTEXT_MASK_RESERVED != 0 {
        return Header::Bad("reserved flag bits set");
    }
    let mut pos = 10usize;
    if flags & FEXTRA != 0 {
        let Some(&[lo, hi]) = b.get(pos..pos + 2) else {
            return Header::NeedMore;
        };
        pos += 2 + usize::from(u16::from_le_bytes([lo, hi]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let Some(rest) = b.get(pos..) else {
                return Header::NeedMore;
            };
            match memchr(0, rest) {
                Some(i) => pos += i + 1,
                None => return Header::NeedMore,
            }
        }
    }
    if flags & FHCRC != 0 {
        let (Some(head), Some(&[lo, hi])) =
            (b.get(..pos), b.get(pos..pos + 2))
        else {
            return Header::NeedMore;
        };
        let crc = crc32fast::hash(head);
        if u16::from_le_bytes([lo, hi]) != (crc & 0xffff) as u16 {
            return Header::Bad("header CRC16 mismatch");
        }
        pos += 2;
    }
    if b.len() < pos {
        return Header::NeedMore;
    }
    Header::Len(pos)
}

fn read_header<S: Source>(src: &mut S) -> Result<(), MemberError> {
    loop {
        match parse_header(src.avail()) {
            Header::Len(n) => {
                src.consume(n);
                return Ok(());
            }
            Header::Bad(why) => {
                return Err(MemberError::lost(
                    ErrorKind::GzipHeader(why),
                    None,
                ))
            }
            Header::NeedMore => {
                if !src.fill()? {
                    return Err(ErrorKind::Truncated.into());
                }
            }
        }
    }
}

/// Reads and checks the 8-byte trailer against the inflated `data`.
fn read_trailer<S: Source>(
    src: &mut S,
    data: Option<&[u8]>,
    len: u64,
) -> Result<(), MemberError> {
    while src.avail().len() < 8 {
        if !src.fill()? {
            return Err(ErrorKind::Truncated.into());
        }
    }
    let t = src.avail();
    let word = |i: usize| {
        t.get(i..i + 4)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    let (expected_crc, expected_size) = (word(0), word(4));
    src.consume(8);
    if let Some(data) = data {
        let actual = crc32fast::hash(data);
        if actual != expected_crc {
            return Err(MemberError::kept(ErrorKind::Crc {
                expected: expected_crc,
                actual,
            }));
        }
    }
    let actual = (len & 0xffff_ffff) as u32;
    if actual != expected_size {
        return Err(MemberError::kept(ErrorKind::Isize {
            expected: expected_size,
            actual,
        }));
    }
    Ok(())
}

/// Reusable state for inflating members.
pub(crate) struct Inflate {
    /// The inflated member, followed by at least [`PAD`] bytes.
    pub(crate) buf: Vec<u8>,
    libdeflate: Option<Inflater>,
    zlib: Decompress,
    discard: Vec<u8>,
}

impl Inflate {
    pub(crate) fn new() -> Self {
        Inflate {
            buf: Vec::new(),
            libdeflate: Inflater::new(),
            zlib: Decompress::new(false),
            discard: Vec::new(),
        }
    }

    /// Inflates the member at the front of `src` into `self.buf` and
    /// returns its inflated length. `limit` caps the inflated size;
    /// `use_libdeflate` picks the fast path when the whole member is in
    /// memory.
    pub(crate) fn member<S: Source>(
        &mut self,
        src: &mut S,
        limit: usize,
        use_libdeflate: bool,
    ) -> Result<usize, MemberError> {
        read_header(src)?;
        if use_libdeflate && src.is_whole() {
            let start = src.offset();
            if let Some(n) = self.member_libdeflate(src, limit) {
                let data = self.buf.get(..n);
                match read_trailer(src, data, n as u64) {
                    Ok(()) => return Ok(n),
                    // libdeflate accepts some streams zlib-rs calls
                    // corrupt; a bad trailer after one is settled by
                    // zlib-rs, so both paths report the same error.
                    Err(_) if src.rewind(start) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let n = self.member_zlib(src, limit)?;
        let data = self.buf.get(..n);
        read_trailer(src, data, n as u64)?;
        self.buf.truncate(n);
        self.buf.resize(n + PAD, 0);
        Ok(n)
    }

    /// The fast path. `None` when it cannot decide: the member is corrupt,
    /// truncated or over the limit, and the zlib-rs path (which reports
    /// which) must run from the same place.
    fn member_libdeflate<S: Source>(
        &mut self,
        src: &mut S,
        limit: usize,
    ) -> Option<usize> {
        let inflater = self.libdeflate.as_mut()?;
        // The previous member's window may be larger than what is left
        // of the object's limit: never inflate past `limit`.
        let mut window = self.buf.len().saturating_sub(PAD).min(limit);
        if window < FIRST_WINDOW.min(limit) {
            window = FIRST_WINDOW.min(limit);
            self.buf.resize(window + PAD, 0);
        }
        loop {
            let out = self.buf.get_mut(..window)?;
            match inflater.inflate(src.avail(), out) {
                Inflated::Done { input, output } => {
                    src.consume(input);
                    return Some(output);
                }
                Inflated::NoSpace if window < limit => {
                    window = window.saturating_mul(2).min(limit);
                    // Free the old window before taking the new one: the
                    // contents are not needed, and peak memory stays at
                    // one window.
                    self.buf = Vec::new();
                    self.buf.resize(window + PAD, 0);
                }
                Inflated::NoSpace | Inflated::Bad => return None,
            }
        }
    }

    /// The streaming path: zlib-rs, any source, exact error kinds. A member
    /// over the limit is inflated to nowhere to find its end, so the next
    /// member can still be read.
    fn member_zlib<S: Source>(
        &mut self,
        src: &mut S,
        limit: usize,
    ) -> Result<usize, MemberError> {
        self.zlib.reset(false);
        self.buf.clear();
        // `decompress_vec` fills the spare capacity: a buffer grown by an
        // earlier, larger member must not let this one past `limit`.
        if self.buf.capacity() > limit {
            self.buf = Vec::new();
        }
        loop {
            if self.buf.len() == self.buf.capacity() {
                if self.buf.len() >= limit {
                    return self.skip_rest(src, limit);
                }
                let more =
                    self.buf.len().max(64 * 1024).min(limit - self.buf.len());
                self.buf.reserve_exact(more);
            }
            let input = src.avail();
            let before = self.zlib.total_in();
            let before_out = self.buf.len();
            let status = self
                .zlib
                .decompress_vec(input, &mut self.buf, FlushDecompress::None)
                .map_err(|_| {
                    MemberError::lost(
                        ErrorKind::Deflate,
                        Some(self.buf.len() as u64),
                    )
                })?;
            let used = usize::try_from(self.zlib.total_in() - before)
                .unwrap_or(usize::MAX);
            src.consume(used);
            if status == Status::StreamEnd {
                return Ok(self.buf.len());
            }
            let progressed = used > 0 || self.buf.len() > before_out;
            if !progressed || src.avail().is_empty() {
                let spare = self.buf.capacity() > self.buf.len();
                if (spare || !progressed) && !src.fill()? {
                    return Err(MemberError::lost(
                        ErrorKind::Truncated,
                        Some(self.buf.len() as u64),
                    ));
                }
            }
        }
    }

    /// Inflates the rest of an oversized member into a small buffer, to
    /// find where it ends; the member itself is rejected.
    fn skip_rest<S: Source>(
        &mut self,
        src: &mut S,
        limit: usize,
    ) -> Result<usize, MemberError> {
        let too_large = ErrorKind::MemberTooLarge { limit: limit as u64 };
        let at = Some(limit as u64);
        self.discard.resize(64 * 1024, 0);
        loop {
            let before_in = self.zlib.total_in();
            let before_out = self.zlib.total_out();
            let status = self
                .zlib
                .decompress(
                    src.avail(),
                    &mut self.discard,
                    FlushDecompress::None,
                )
                .map_err(|_| MemberError::lost(too_large.clone(), at))?;
            let used = usize::try_from(self.zlib.total_in() - before_in)
                .unwrap_or(usize::MAX);
            src.consume(used);
            if status == Status::StreamEnd {
                break;
            }
            let progressed = used > 0 || self.zlib.total_out() > before_out;
            if (!progressed || src.avail().is_empty()) && !src.fill()? {
                return Err(MemberError::lost(too_large, at));
            }
        }
        // The trailer is skipped unchecked: the member is rejected anyway.
        read_trailer(src, None, self.zlib.total_out())
            .map_err(|e| MemberError { kind: too_large.clone(), ..e })?;
        // Give back the memory a bomb made us take.
        self.buf = Vec::new();
        Err(MemberError {
            kind: too_large,
            framing_ok: true,
            inflated_offset: at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::source::SliceSource;
    use super::*;
    use std::io::Write;

    pub(crate) fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        );
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn members(
        data: &[u8],
        fast: bool,
        limit: usize,
    ) -> Vec<Result<Vec<u8>, String>> {
        let mut src = SliceSource::new(data);
        let mut inf = Inflate::new();
        let mut out = vec![];
        while !src.avail().is_empty() {
            match inf.member(&mut src, limit, fast) {
                Ok(n) => out.push(Ok(inf.buf[..n].to_vec())),
                Err(e) => {
                    out.push(Err(format!(
                        "{}/{}",
                        e.kind.code(),
                        e.framing_ok
                    )));
                    if !e.framing_ok {
                        break;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn concatenated_members_both_paths() {
        let mut data = gz(b"one");
        data.extend(gz(b""));
        data.extend(gz(&vec![b'z'; 3 << 20]));
        for fast in [true, false] {
            let got = members(&data, fast, 1 << 30);
            assert_eq!(got.len(), 3);
            assert_eq!(got[0].as_deref().unwrap(), b"one");
            assert_eq!(got[1].as_deref().unwrap(), b"");
            assert_eq!(got[2].as_ref().unwrap().len(), 3 << 20);
        }
    }

    /// A member after a larger one gets a smaller limit (what is left of
    /// the object's): the window the larger one grew must not let it
    /// past (issue #14: an object over `max_object_bytes` was read whole).
    #[test]
    fn a_smaller_limit_after_a_larger_member_holds() {
        let big = gz(&vec![b'a'; 3 << 20]);
        let mut src_data = big.clone();
        src_data.extend(gz(&vec![b'b'; 2 << 20]));
        for fast in [true, false] {
            let mut src = SliceSource::new(&src_data);
            let mut inf = Inflate::new();
            assert_eq!(
                inf.member(&mut src, 4 << 20, fast).ok(),
                Some(3 << 20)
            );
            let second = inf.member(&mut src, 1 << 20, fast);
            assert_eq!(
                second.map_err(|e| e.kind.code()),
                Err("member_too_large"),
                "libdeflate: {fast}"
            );
        }
    }

    #[test]
    fn errors_keep_or_lose_framing() {
        let good = gz(b"{\"a\":1}");
        let mut crc = good.clone();
        let n = crc.len();
        crc[n - 8] ^= 1;
        let mut isize_bad = good.clone();
        isize_bad[n - 1] ^= 1;
        for fast in [true, false] {
            let mut data = crc.clone();
            data.extend(&good);
            let got = members(&data, fast, 1 << 20);
            assert_eq!(got[0], Err("gzip_crc/true".into()));
            assert!(got[1].is_ok());
            let mut data = isize_bad.clone();
            data.extend(&good);
            let got = members(&data, fast, 1 << 20);
            assert_eq!(got[0], Err("gzip_isize/true".into()));
            assert!(got[1].is_ok());
            let got = members(&good[..n - 3], fast, 1 << 20);
            assert_eq!(got, vec![Err("gzip_truncated/false".into())]);
            let got = members(&good[..12], fast, 1 << 20);
            assert_eq!(got, vec![Err("gzip_truncated/false".into())]);
            let got = members(&good[..5], fast, 1 << 20);
            assert_eq!(got, vec![Err("gzip_truncated/false".into())]);
            let mut corrupt = good.clone();
            corrupt[10] = 0xff;
            corrupt[11] = 0xff;
            let got = members(&corrupt, fast, 1 << 20);
            assert_eq!(got, vec![Err("gzip_deflate/false".into())]);
            let got = members(b"\x1f\x8b\x09rest-of-it", fast, 1 << 20);
            assert_eq!(got, vec![Err("gzip_header/false".into())]);
        }
    }

    #[test]
    fn oversized_member_is_skipped_and_next_read() {
        let mut data = gz(&vec![0u8; 5 << 20]);
        data.extend(gz(b"after"));
        for fast in [true, false] {
            let got = members(&data, fast, 1 << 20);
            assert_eq!(got[0], Err("member_too_large/true".into()));
            assert_eq!(got[1].as_deref().unwrap(), b"after");
        }
    }

    /// A reader that hands out `n` bytes at a time.
    struct Trickle<'a>(&'a [u8], usize);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streamed_in_tiny_reads_equals_whole() {
        use super::super::source::ReadSource;
        let mut b = flate2::GzBuilder::new()
            .filename("n")
            .comment("c")
            .extra(vec![9; 7])
            .write(Vec::new(), flate2::Compression::fast());
        b.write_all(b"with header fields").unwrap();
        let mut data = b.finish().unwrap();
        data.extend(gz(b"{\"a\":1}"));
        data.extend(gz(&vec![b'q'; 300_000]));
        let mut crc = gz(b"crc");
        let n = crc.len();
        crc[n - 6] ^= 4;
        data.extend(crc);
        data.extend(gz(b"last"));
        let whole = members(&data, true, 1 << 20);
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let mut src =
                ReadSource::new(Trickle(&data, chunk), 1 << 20, 1 << 30);
            let mut inf = Inflate::new();
            let mut got = vec![];
            loop {
                if src.avail().is_empty() && !src.fill().unwrap() {
                    break;
                }
                match inf.member(&mut src, 1 << 20, true) {
                    Ok(n) => got.push(Ok(inf.buf[..n].to_vec())),
                    Err(e) => got.push(Err(format!(
                        "{}/{}",
                        e.kind.code(),
                        e.framing_ok
                    ))),
                }
            }
            assert_eq!(got, whole, "chunk {chunk}");
        }
        assert_eq!(whole.len(), 5);
        assert_eq!(whole[3], Err("gzip_crc/true".into()));
    }

    #[test]
    fn header_fields() {
        let mut b = flate2::GzBuilder::new()
            .filename("name.json")
            .comment("a comment")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::fast());
        b.write_all(b"payload").unwrap();
        let data = b.finish().unwrap();
        for fast in [true, false] {
            assert_eq!(
                members(&data, fast, 100)[0].as_deref().unwrap(),
                b"payload"
            );
        }
    }
}
