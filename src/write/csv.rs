//! CSV rows for `COPY … CSV`, built on `csv-core`.
//!
//! Both dialects use CSV mode with `,` as delimiter, `"` as quote, quotes
//! escaped by doubling and `\n` as record terminator. A field is quoted
//! when `csv-core` says it must be (it holds the delimiter, a quote, CR or
//! LF) and, in addition, when the dialect needs it to tell a value from
//! NULL:
//!
//! | value           | [`Dialect::Postgres`] | [`Dialect::Redshift`] |
//! |-----------------|-----------------------|-----------------------|
//! | NULL            | empty, unquoted       | `\N`, unquoted        |
//! | empty string    | `""`                  | `""`                  |
//! | exactly `\.`    | `"\."`                | `\.`                  |
//! | exactly `\N`    | `\N` (plain data)     | rejected: [`FieldError::NullMarker`] |
//! | holds U+0000    | rejected: [`FieldError::Nul`] | rejected: [`FieldError::Nul`] |
//!
//! Redshift compares fields against its `NULL AS` string, and whether it
//! does so before or after removing quotes is not documented, so a real
//! value equal to the marker cannot be written safely and is refused.
//! PostgreSQL, in CSV mode, only treats an *unquoted* empty field as NULL
//! and a line holding only `\.` as end-of-data, so quoting settles both.
//! NUL is refused for both: PostgreSQL rejects it in text and Redshift
//! silently cuts the row at it.

use memchr::memchr;

/// The database a CSV file is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL: `COPY … FROM STDIN WITH (FORMAT csv)`; NULL is an
    /// unquoted empty field.
    Postgres,
    /// Amazon Redshift: `COPY … CSV NULL AS '\N'`; NULL is an unquoted
    /// `\N`.
    Redshift,
}

impl Dialect {
    /// The bytes written, unquoted, for SQL NULL.
    #[must_use = "the marker is the only thing this returns"]
    pub const fn null_marker(self) -> &'static str {
        match self {
            Dialect::Postgres => "",
            Dialect::Redshift => "\\N",
        }
    }
}

/// Why a value cannot be written as a CSV field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The value holds a NUL character (U+0000), which neither database
    /// loads intact.
    #[error("value contains a NUL character (U+0000) at byte {offset}")]
    Nul {
        /// Byte offset of the first NUL in the value.
        offset: usize,
    },
    /// The value is exactly the Redshift NULL marker `\N`, which Redshift
    /// would load as NULL.
    #[error(r"value is exactly the Redshift NULL marker \N")]
    NullMarker,
}

impl FieldError {
    /// The reject code of this error (see [`Reject`](crate::Reject)):
    /// `nul_char` or `null_marker`.
    #[must_use = "this getter has no side effect"]
    pub fn code(&self) -> &'static str {
        match self {
            FieldError::Nul { .. } => crate::map::code::NUL_CHAR,
            FieldError::NullMarker => crate::map::code::NULL_MARKER,
        }
    }
}

/// Writes CSV records field by field into a caller-owned buffer.
///
/// The writer holds no buffered data: every call appends complete bytes
/// to `out`, so a caller that gives up on a row can truncate `out` back to
/// where the row started and call [`RowWriter::discard_row`].
///
/// # Example
///
/// ```
/// use cwl_copy::{Dialect, RowWriter};
///
/// let mut w = RowWriter::new(Dialect::Postgres);
/// let mut out = Vec::new();
/// w.field(&mut out, "a,b")?;
/// w.null(&mut out);
/// w.field(&mut out, "")?;
/// w.end_row(&mut out);
/// assert_eq!(out, b"\"a,b\",,\"\"\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RowWriter {
    dialect: Dialect,
    csv: csv_core::Writer,
    fields: usize,
}

impl RowWriter {
    /// A writer for `dialect`, at the start of a row.
    #[must_use = "a RowWriter does nothing until fields are written"]
    pub fn new(dialect: Dialect) -> RowWriter {
        let csv = csv_core::WriterBuilder::new()
            .delimiter(b',')
            .quote(b'"')
            .double_quote(true)
            .terminator(csv_core::Terminator::Any(b'\n'))
            .quote_style(csv_core::QuoteStyle::Necessary)
            .build();
        RowWriter { dialect, csv, fields: 0 }
    }

    /// The dialect this writer writes.
    #[must_use = "this getter has no side effect"]
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// How many fields of the current row have been written.
    #[must_use = "this getter has no side effect"]
    pub fn fields(&self) -> usize {
        self.fields
    }

    /// Appends SQL NULL as the next field.
    pub fn null(&mut self, out: &mut Vec<u8>) {
        self.separator(out);
        out.extend_from_slice(self.dialect.null_marker().as_bytes());
    }

    /// Appends `value` as the next field, quoted where needed.
    ///
    /// # Errors
    ///
    /// [`FieldError::Nul`] if `value` holds U+0000;
    /// [`FieldError::NullMarker`] for the value `\N` in
    /// [`Dialect::Redshift`]. Nothing is written then, and the row can
    /// still be completed.
    pub fn field(
        &mut self,
        out: &mut Vec<u8>,
        value: &str,
    ) -> Result<(), FieldError> {
        if let Some(offset) = memchr(0, value.as_bytes()) {
            return Err(FieldError::Nul { offset });
        }
        self.field_without_nul(out, value)
    }

    /// [`RowWriter::field`] for a value the caller knows holds no NUL
    /// (the mapper checks, strips or knows it), saving a second scan.
    pub(crate) fn field_without_nul(
        &mut self,
        out: &mut Vec<u8>,
        value: &str,
    ) -> Result<(), FieldError> {
        self.field_bytes_without_nul(out, value.as_bytes())
    }

    /// [`RowWriter::field_without_nul`] of bytes the caller knows are
    /// UTF-8 (the mapper's digits and times, which are ASCII).
    #[inline(always)]
    pub(crate) fn field_bytes_without_nul(
        &mut self,
        out: &mut Vec<u8>,
        bytes: &[u8],
    ) -> Result<(), FieldError> {
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        debug_assert!(memchr(0, bytes).is_none());
        let force = match self.dialect {
            Dialect::Postgres => bytes.is_empty() || bytes == b"\\.",
            Dialect::Redshift => {
                if bytes == b"\\N" {
                    return Err(FieldError::NullMarker);
                }
                bytes.is_empty()
            }
        };
        self.separator(out);
        if force || needs_quotes(bytes) {
            write_quoted(out, bytes);
        } else {
            out.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Appends, as the next field, the string whose JSON-escaped body is
    /// `escaped` (the bytes between the quotes of a JSON string), without
    /// unescaping it first: the one-pass path's `@message`. Writes exactly
    /// what [`RowWriter::field`] writes for the unescaped string and
    /// returns true, or writes nothing and returns false when it leaves
    /// the field to that path: for an escape other than `\"`, `\\`,
    /// `\/`, `\b`, `\f`, `\n`, `\r` and `\t` (so `\u`, whence a NUL
    /// could come), a raw `"` or NUL, a value shorter than 4 bytes (the
    /// dialects' special values `""`, `\.` and `\N` are among them).
    ///
    /// `quotes_only` is the caller's word that every escape of `escaped`
    /// is `\"` and that it has one (the envelope reader knows it of each
    /// message; `onepass::quotes_only`): the field is then written by
    /// [`RowWriter::field_quotes_only`], whatever its length. Otherwise
    /// 64, then 16 bytes at a time (`unescape_quoted`): a block whose
    /// every backslash is followed by a `"` is copied with the
    /// backslashes turned into quotes (`\"` becomes the doubled quote
    /// `""`, same length); other blocks go escape by escape.
    pub(crate) fn field_escaped(
        &mut self,
        out: &mut Vec<u8>,
        escaped: &[u8],
        quotes_only: bool,
    ) -> bool {
        if quotes_only {
            self.field_quotes_only(out, escaped);
            return true;
        }
        if escaped.len() < 4 {
            return false;
        }
        let mark = out.len();
        if self.fields > 0 {
            out.push(self.csv.get_delimiter());
        }
        out.push(b'"');
        if !unescape_quoted(out, escaped) {
            out.truncate(mark);
            return false;
        }
        self.fields = self.fields.saturating_add(1);
        true
    }

    /// Appends, as the next field, the string whose JSON-escaped body is
    /// `escaped` when its every escape is `\"` and it has one
    /// (`onepass::quotes_only`, which the envelope reader tells for each
    /// message): the string holds a quote, so the field is quoted, and
    /// each `\"` becomes the doubled quote `""`, the same length. So the
    /// field is the body with its backslashes turned into quotes, in
    /// quotes: a copy and one compare a byte (vectorised by the
    /// compiler), where [`RowWriter::field_escaped`] classifies every
    /// byte. What it writes is what that function and
    /// [`RowWriter::field`] write for such a string; for another, the
    /// field is wrong.
    pub(crate) fn field_quotes_only(
        &mut self,
        out: &mut Vec<u8>,
        escaped: &[u8],
    ) {
        debug_assert!(crate::decode::onepass::quotes_only(escaped));
        self.separator(out);
        out.reserve(escaped.len() + 2);
        out.push(b'"');
        let start = out.len();
        out.extend_from_slice(escaped);
        if let Some(field) = out.get_mut(start..) {
            turn_field(field);
        }
        out.push(b'"');
    }

    /// Ends the current row with the record terminator (`\n`).
    pub fn end_row(&mut self, out: &mut Vec<u8>) {
        out.push(b'\n');
        self.fields = 0;
    }

    /// Forgets the fields written for the current row, so the next field
    /// starts a new row. The caller truncates `out` itself.
    pub fn discard_row(&mut self) {
        self.fields = 0;
    }

    fn separator(&mut self, out: &mut Vec<u8>) {
        if self.fields > 0 {
            out.push(self.csv.get_delimiter());
        }
        self.fields = self.fields.saturating_add(1);
    }
}

/// Unescapes the JSON string body `esc` after the opening quote already
/// in `out`, doubling quotes; then appends the closing quote when the
/// value needs quoting and otherwise removes the opening one. False for
/// what [`RowWriter::field_escaped`] leaves to the plain path (`out` is
/// then to be truncated by the caller).
///
/// 64, then 16 bytes at a time ([`block::classes64_quoted`],
/// [`block::classes`]): a block whose every
/// backslash is followed by a quote in the block, and every quote
/// preceded by one, is written with its backslashes turned into quotes
/// (`\"` becomes `""`, the same length); when the last byte is a
/// backslash, all bytes but that one are looked at that way. Other blocks go
/// byte by byte to their end.
fn unescape_quoted(out: &mut Vec<u8>, esc: &[u8]) -> bool {
    use crate::decode::onepass::block;
    let open = out.len() - 1;
    // Unescaping never lengthens: the field, its closing quote and the
    // block stores' slack fit without growing `out` again.
    out.reserve(esc.len() + 1 + 64);
    let mut quote = false;
    let mut i = 0;
    while i < esc.len() {
        // 64 bytes at a time while the blocks are that common kind.
        i = quoted_run(out, esc, i, &mut quote);
        if i >= esc.len() {
            break;
        }
        // Then 16, the last few bytes padded to 16 with spaces.
        let rest = esc.get(i..).unwrap_or_default();
        let (chunk, width) = match rest.first_chunk::<16>() {
            Some(chunk) => (*chunk, 16),
            None => {
                let mut pad = [b' '; 16];
                if let Some(dst) = pad.get_mut(..rest.len()) {
                    dst.copy_from_slice(rest);
                }
                (pad, rest.len() as u32)
            }
        };
        let c = block::classes(&chunk);
        let (n, keep) = block::taken(c.bs.into(), width);
        let (bs, qt) = (u64::from(c.bs) & keep, u64::from(c.qt) & keep);
        // (A last byte alone that is a backslash takes none: n = 0, and
        // the byte loop refuses it.)
        if n > 0 && u64::from(c.ctl) & keep == 0 && bs << 1 == qt {
            // Each `\"` becomes `""`.
            push_block(out, &block::quoted(&c), n);
            quote |= bs != 0 || u64::from(c.comma) & keep != 0;
            i += n;
            continue;
        }
        // Other escapes: the runs between the block's backslashes are
        // copied (a fixed 16-byte store each, from the block padded to 32
        // bytes) and each escape written as its byte; a quote or control
        // byte not escaped, or an escape this path does not take, leaves
        // the field to the plain path. An escape may end past the block.
        let stop = width as usize;
        let bad = c.qt | c.ctl;
        let mut padded = [b' '; 32];
        if let Some(dst) = padded.get_mut(..16) {
            dst.copy_from_slice(&chunk);
        }
        let mut bs = c.bs;
        let mut at = 0usize;
        loop {
            let p = if bs == 0 { stop } else { bs.trailing_zeros() as usize };
            let run = (1u32 << p) - (1u32 << at);
            if bad & run != 0 {
                return false;
            }
            quote |= c.comma & run != 0;
            if let Some(src) =
                padded.get(at..).and_then(<[u8]>::first_chunk::<16>)
            {
                push_block(out, src, p - at);
            }
            if p >= stop {
                i += stop;
                break;
            }
            let Some(ch) = esc
                .get(i + p + 1)
                .and_then(|&e| crate::map::scan::short_escape(e))
            else {
                return false;
            };
            // (All eight are ASCII.)
            #[allow(clippy::cast_possible_truncation)]
            let ch = ch as u8;
            out.push(ch);
            if ch == b'"' {
                out.push(b'"');
            }
            quote |= matches!(ch, b'"' | b'\n' | b'\r');
            // The escape's two bytes are done (the second may be a `\`).
            at = p + 2;
            bs &= !((1u32 << at) - 1);
            if at >= stop {
                i += at;
                break;
            }
        }
    }
    if quote || esc.starts_with(BOM) {
        out.push(b'"');
    } else {
        out.remove(open);
    }
    true
}

/// [`unescape_quoted`]'s 64-byte step from `i` while the blocks are of
/// its common kind, with AVX2 when the CPU has it: where it stops.
#[inline(always)]
fn quoted_run(
    out: &mut Vec<u8>,
    esc: &[u8],
    i: usize,
    quote: &mut bool,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if crate::decode::onepass::block::has_avx2() {
        // SAFETY: the CPU has AVX2 (just checked), all that
        // `quoted_run_avx2` needs.
        return unsafe { quoted_run_avx2(out, esc, i, quote) };
    }
    quoted_run_with::<false>(out, esc, i, quote)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn quoted_run_avx2(
    out: &mut Vec<u8>,
    esc: &[u8],
    i: usize,
    quote: &mut bool,
) -> usize {
    quoted_run_with::<true>(out, esc, i, quote)
}

#[inline(always)]
fn quoted_run_with<const AVX2: bool>(
    out: &mut Vec<u8>,
    esc: &[u8],
    mut i: usize,
    quote: &mut bool,
) -> usize {
    use crate::decode::onepass::block;
    while let Some(chunk) = esc.get(i..).and_then(<[u8]>::first_chunk::<64>) {
        let mut bytes = [0u8; 64];
        // SAFETY: `AVX2` is true only in `quoted_run_avx2`, which is
        // compiled with AVX2 and called only when the CPU has it.
        let c =
            unsafe { block::classes64_quoted_with::<AVX2>(chunk, &mut bytes) };
        let (n, keep) = block::taken(c.bs, 64);
        let (bs, qt) = (c.bs & keep, c.qt & keep);
        if c.ctl & keep != 0 || bs << 1 != qt {
            // The block up to its first byte of another kind (a control
            // byte, a backslash without its quote, a quote without its
            // backslash) is still of this kind: taken here, so that the
            // 16-byte step starts at that byte instead of this block's
            // start (and the next 64-byte step after it, not at a block
            // that holds it again). That byte is never the quote of a
            // `\"`, so no pair is split.
            let bad = c.ctl | (c.bs & !(c.qt >> 1)) | (c.qt & !(c.bs << 1));
            let p = bad.trailing_zeros();
            if p > 0 && p < 64 {
                let pre = (1u64 << p) - 1;
                push_block(out, &bytes, p as usize);
                *quote |= c.bs & pre != 0 || c.comma & pre != 0;
                i += p as usize;
            }
            break;
        }
        push_block(out, &bytes, n);
        *quote |= bs != 0 || c.comma & keep != 0;
        i += n;
    }
    // The last bytes, fewer than 64, as one more block: the 64 bytes that
    // end the field (their masks shifted past the bytes already written;
    // the step never stops between a backslash and what it escapes), or
    // the field padded with spaces when it is shorter.
    let rest = esc.len().saturating_sub(i);
    if rest == 0 || rest >= 64 {
        return i;
    }
    let mut pad = [b' '; 64];
    let (window, skip) = match esc.len().checked_sub(64) {
        Some(from) => match esc.get(from..).and_then(<[u8]>::first_chunk) {
            Some(w) => (w, 64 - rest),
            None => return i,
        },
        None => {
            if let (Some(dst), Some(src)) = (pad.get_mut(..rest), esc.get(i..))
            {
                dst.copy_from_slice(src);
            }
            (&pad, 0)
        }
    };
    let mut bytes = [0u8; 128];
    let Some(head) = bytes.first_chunk_mut::<64>() else { return i };
    // SAFETY: as in the loop above.
    let c = unsafe { block::classes64_quoted_with::<AVX2>(window, head) };
    #[allow(clippy::cast_possible_truncation)] // rest < 64
    let (n, keep) = block::taken(c.bs >> skip, rest as u32);
    let (bs, qt) = (c.bs >> skip & keep, c.qt >> skip & keep);
    if c.ctl >> skip & keep != 0 || bs << 1 != qt {
        return i;
    }
    if let Some(quoted) = bytes.get(skip..).and_then(<[u8]>::first_chunk::<64>)
    {
        push_block(out, quoted, n);
    }
    *quote |= bs != 0 || c.comma >> skip & keep != 0;
    i + n
}

/// Appends the first `n` bytes of `block`: all of it (a fixed-size copy,
/// no `memcpy` call), then the bytes past `n` dropped again.
#[inline(always)]
fn push_block<const N: usize>(out: &mut Vec<u8>, block: &[u8; N], n: usize) {
    let len = out.len();
    out.extend_from_slice(block);
    out.truncate(len + n);
}

/// The UTF-8 byte order mark, U+FEFF.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// True when a field must be quoted to be read back as itself: it holds
/// the delimiter, the quote, CR or LF (csv-core's `QuoteStyle::Necessary`
/// set for this configuration; the proptest below checks the two agree),
/// or it starts with U+FEFF: readers that drop a byte order mark at the
/// start of a file (csv-core's, the `csv` crate's) would drop it from a
/// file's first field, and quoted it is not at the start.
fn needs_quotes(bytes: &[u8]) -> bool {
    use crate::decode::onepass::block;
    if bytes.starts_with(BOM) {
        return true;
    }
    let exact =
        |b: &[u8]| b.iter().any(|&b| matches!(b, b'"' | b',' | b'\n' | b'\r'));
    // Fields under 4 bytes byte by byte; shorter than 16 (numbers, short
    // ids and paths) as one block of two overlapping loads (every byte in
    // one of them: no loop whose end is mispredicted per field); longer
    // ones (times, event ids, streams) 16 bytes at a time, the last block
    // overlapping the one before. A block with a quote, comma or control
    // byte (a superset of CR and LF) is looked at byte by byte.
    let Some(last) = bytes.len().checked_sub(16) else {
        return match short_words(bytes) {
            Some(words) => {
                let c = block::classes_of(words);
                c.qt | c.comma | c.ctl != 0 && exact(bytes)
            }
            None => exact(bytes),
        };
    };
    let mut at = 0;
    loop {
        let from = at.min(last);
        let Some(chunk) = bytes.get(from..).and_then(<[u8]>::first_chunk)
        else {
            return exact(bytes.get(from..).unwrap_or_default());
        };
        let c = block::classes(chunk);
        if c.qt | c.comma | c.ctl != 0 && exact(chunk) {
            return true;
        }
        if from == last {
            return false;
        }
        at = from + 16;
    }
}

/// Turns each `\` of `field` into `"`: 32 bytes at a time with AVX2 where
/// the CPU has it, else 16 (one compare and select each, which the
/// compiler makes vector code), the last bytes as the field's last 32 or
/// 16 again (turning is idempotent); under 16, byte by byte.
#[inline(always)]
fn turn_field(field: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if crate::decode::onepass::block::has_avx2() {
        // SAFETY: the CPU has AVX2 (just checked), all that
        // `turn_field_avx2` needs.
        return unsafe { turn_field_avx2(field) };
    }
    turn_field_with::<16>(field);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn turn_field_avx2(field: &mut [u8]) {
    turn_field_with::<32>(field);
}

/// [`turn_field`] `N` bytes a step (16 or 32).
#[inline(always)]
fn turn_field_with<const N: usize>(field: &mut [u8]) {
    let mut blocks = field.chunks_exact_mut(N);
    for b in &mut blocks {
        turn_backslashes(b);
    }
    if blocks.into_remainder().is_empty() {
        return;
    }
    if let Some(last) = field.last_chunk_mut::<N>() {
        turn_backslashes(last);
    } else if field.len() >= 16 {
        // (16 ≤ len < N: the first 16 and the last 16.)
        if let Some(first) = field.first_chunk_mut::<16>() {
            turn_backslashes(first);
        }
        if let Some(last) = field.last_chunk_mut::<16>() {
            turn_backslashes(last);
        }
    } else {
        turn_backslashes(field);
    }
}

/// Turns each `\` of `b` into `"`.
#[inline(always)]
fn turn_backslashes(b: &mut [u8]) {
    for c in b {
        *c = if *c == b'\\' { b'"' } else { *c };
    }
}

/// The bytes of a field of 4 to 15 bytes as two words that hold each of
/// them at least once (overlapping loads from both ends); `None` for
/// other lengths.
#[inline(always)]
fn short_words(b: &[u8]) -> Option<[u64; 2]> {
    let n = b.len();
    if !(4..16).contains(&n) {
        return None;
    }
    if n >= 8 {
        let lo = b.first_chunk::<8>()?;
        let hi = b.last_chunk::<8>()?;
        return Some([u64::from_le_bytes(*lo), u64::from_le_bytes(*hi)]);
    }
    let lo = u32::from_le_bytes(*b.first_chunk::<4>()?);
    let hi = u32::from_le_bytes(*b.last_chunk::<4>()?);
    let w = u64::from(lo) | u64::from(hi) << 32;
    Some([w, w])
}

/// Appends `"bytes"` with inner quotes doubled.
///
/// This is `csv_core::quote`'s job, done here because it is the hot path:
/// csv-core finds each quote with a `memchr` call, and a JSON message has
/// one every few bytes. On x86-64 with SSSE3 (checked at run time), 16
/// bytes at a time are compared with `"` and each 8-byte half is expanded
/// with one byte shuffle from a table of the 256 quote patterns; the rest
/// (and other CPUs) go byte by byte without a branch. On the corpus's
/// messages: csv-core 0.7 GB/s, the byte loop 1.5 GB/s, the shuffle 3.8
/// GB/s (BENCHMARKS.md, "CSV quoting"). The tests and the `fuzz_csv`
/// target check the output against `csv_core::quote`.
fn write_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    write_quoted_with(out, bytes, true);
}

/// [`write_quoted`], with the SIMD blocks allowed or not (for the tests).
fn write_quoted_with(out: &mut Vec<u8>, bytes: &[u8], simd: bool) {
    let start = out.len();
    // Worst case: every byte a quote, the two enclosing quotes, and the
    // 16 bytes a block store may write past the end (truncated below).
    let max = bytes.len().saturating_mul(2).saturating_add(2 + 16);
    out.resize(start.saturating_add(max), 0);
    let Some(dst) = out.get_mut(start..) else {
        return;
    };
    let mut j = 0;
    if let Some(open) = dst.first_mut() {
        *open = b'"';
        j = 1;
    }
    let mut done = 0;
    #[cfg(not(target_arch = "x86_64"))]
    let _ = simd;
    #[cfg(target_arch = "x86_64")]
    if simd && std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: `quote_blocks` is a safe function compiled with SSSE3
        // enabled; the only requirement for calling it is that the CPU has
        // SSSE3, checked just above. It touches memory only through the
        // slices it is given.
        (j, done) = unsafe { simd::quote_blocks(dst, bytes, j) };
    }
    for &b in bytes.get(done..).unwrap_or_default() {
        // Write the byte and, speculatively, a second quote after it;
        // keep the second only when the byte was a quote.
        if let Some(pair) = dst.get_mut(j..j.saturating_add(2)) {
            pair.copy_from_slice(&[b, b'"']);
        }
        j += 1 + usize::from(b == b'"');
    }
    if let Some(close) = dst.get_mut(j) {
        *close = b'"';
        j += 1;
    }
    out.truncate(start.saturating_add(j));
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cvtsi128_si64, _mm_movemask_epi8,
        _mm_set1_epi8, _mm_set_epi64x, _mm_shuffle_epi8, _mm_unpackhi_epi64,
    };

    /// For each pattern of quotes in 8 bytes (bit i: byte i is `"`), the
    /// `pshufb` indexes that copy the 8 bytes with each quote doubled.
    static EXPAND: [[u8; 16]; 256] = expand_table();

    const fn expand_table() -> [[u8; 16]; 256] {
        let mut t = [[0x80u8; 16]; 256];
        let mut m = 0;
        while m < 256 {
            let (mut i, mut k) = (0, 0);
            while i < 8 {
                t[m][k] = i as u8;
                k += 1;
                if m & (1 << i) != 0 {
                    t[m][k] = i as u8;
                    k += 1;
                }
                i += 1;
            }
            m += 1;
        }
        t
    }

    fn u64_at(b: &[u8], at: usize) -> i64 {
        let mut w = [0; 8];
        if let Some(s) = b.get(at..at + 8) {
            w.copy_from_slice(s);
        }
        i64::from_le_bytes(w)
    }

    #[target_feature(enable = "ssse3")]
    fn halves(v: __m128i) -> [u8; 16] {
        let lo = _mm_cvtsi128_si64(v).to_le_bytes();
        let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)).to_le_bytes();
        let mut out = [0; 16];
        out[..8].copy_from_slice(&lo);
        out[8..].copy_from_slice(&hi);
        out
    }

    /// Quotes whole 16-byte blocks of `bytes` into `dst` from `j`; returns
    /// the new `j` and how many bytes of `bytes` were done. Needs 32 bytes
    /// of room in `dst` past `j` per block (stops early otherwise).
    #[target_feature(enable = "ssse3")]
    pub(super) fn quote_blocks(
        dst: &mut [u8],
        bytes: &[u8],
        mut j: usize,
    ) -> (usize, usize) {
        let quotes = _mm_set1_epi8(b'"' as i8);
        let mut done = 0;
        while done + 16 <= bytes.len() {
            let Some(d) = dst.get_mut(j..j + 32) else { break };
            let v =
                _mm_set_epi64x(u64_at(bytes, done + 8), u64_at(bytes, done));
            let m = _mm_movemask_epi8(_mm_cmpeq_epi8(v, quotes)) as u32;
            if m == 0 {
                d[..16].copy_from_slice(&bytes[done..done + 16]);
                j += 16;
            } else {
                let (m0, m1) = ((m & 0xff) as usize, (m >> 8 & 0xff) as usize);
                let shuffle = |v: __m128i, m: usize| {
                    let t = &EXPAND[m];
                    let idx = _mm_set_epi64x(u64_at(t, 8), u64_at(t, 0));
                    halves(_mm_shuffle_epi8(v, idx))
                };
                let n0 = 8 + m0.count_ones() as usize;
                d[..16].copy_from_slice(&shuffle(v, m0));
                d[n0..n0 + 16]
                    .copy_from_slice(&shuffle(_mm_unpackhi_epi64(v, v), m1));
                j += n0 + 8 + m1.count_ones() as usize;
            }
            done += 16;
        }
        (j, done)
    }
}

/// The longest prefix of `s` that is at most `max_bytes` long and ends on
/// a UTF-8 character boundary.
///
/// # Example
///
/// ```
/// assert_eq!(cwl_copy::utf8_prefix("añb", 2), "a");
/// assert_eq!(cwl_copy::utf8_prefix("añb", 3), "añ");
/// ```
#[must_use = "the prefix is the only thing this returns"]
pub fn utf8_prefix(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(d: Dialect, fields: &[Option<&str>]) -> Vec<u8> {
        let mut w = RowWriter::new(d);
        let mut out = Vec::new();
        for f in fields {
            match f {
                Some(v) => w.field(&mut out, v).unwrap(),
                None => w.null(&mut out),
            }
        }
        w.end_row(&mut out);
        out
    }

    macro_rules! writes {
        ($($name:ident: $d:expr, [$($f:expr),*] => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let got = row($d, &[$($f),*]);
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    $want,
                );
            }
        )*};
    }

    use Dialect::{Postgres as PG, Redshift as RS};
    writes! {
        pg_plain: PG, [Some("a"), Some("b")] => "a,b\n";
        pg_null_vs_empty: PG, [None, Some(""), None] => ",\"\",\n";
        pg_single_null: PG, [None] => "\n";
        pg_single_empty: PG, [Some("")] => "\"\"\n";
        pg_end_marker: PG, [Some("\\.")] => "\"\\.\"\n";
        pg_end_marker_inside: PG, [Some("\\.x")] => "\\.x\n";
        pg_backslash_n: PG, [Some("\\N")] => "\\N\n";
        pg_quotes: PG, [Some("say \"hi\"")] => "\"say \"\"hi\"\"\"\n";
        pg_delim: PG, [Some("a,b")] => "\"a,b\"\n";
        pg_lf: PG, [Some("a\nb")] => "\"a\nb\"\n";
        pg_cr: PG, [Some("a\rb")] => "\"a\rb\"\n";
        pg_unicode: PG, [Some("日本語🎉")] => "日本語🎉\n";
        pg_space: PG, [Some(" a ")] => " a \n";
        rs_null_vs_empty: RS, [None, Some(""), None] => "\\N,\"\",\\N\n";
        rs_end_marker: RS, [Some("\\.")] => "\\.\n";
        rs_quotes: RS, [Some("\"")] => "\"\"\"\"\n";
    }

    #[test]
    fn nul_is_refused_and_nothing_written() {
        for d in [PG, RS] {
            let mut w = RowWriter::new(d);
            let mut out = b"x".to_vec();
            w.field(&mut out, "a").unwrap();
            let before = out.clone();
            assert_eq!(
                w.field(&mut out, "ab\0c"),
                Err(FieldError::Nul { offset: 2 })
            );
            assert_eq!(out, before);
            assert_eq!(w.fields(), 1);
        }
    }

    #[test]
    fn redshift_marker_is_refused() {
        let mut w = RowWriter::new(RS);
        let mut out = Vec::new();
        assert_eq!(w.field(&mut out, "\\N"), Err(FieldError::NullMarker));
        assert!(out.is_empty());
        w.field(&mut out, "\\N ").unwrap();
        assert_eq!(out, b"\\N ");
    }

    #[test]
    fn discard_row_restarts() {
        let mut w = RowWriter::new(PG);
        let mut out = Vec::new();
        w.field(&mut out, "a").unwrap();
        w.discard_row();
        out.clear();
        w.field(&mut out, "b").unwrap();
        w.end_row(&mut out);
        assert_eq!(out, b"b\n");
    }

    #[test]
    fn prefixes() {
        let s = "ab🎉c";
        assert_eq!(utf8_prefix(s, 0), "");
        assert_eq!(utf8_prefix(s, 2), "ab");
        for n in 3..6 {
            assert_eq!(utf8_prefix(s, n), "ab");
        }
        assert_eq!(utf8_prefix(s, 6), "ab🎉");
        assert_eq!(utf8_prefix(s, 7), s);
        assert_eq!(utf8_prefix(s, 100), s);
    }

    fn value() -> impl Strategy<Value = Option<String>> {
        let special = prop::sample::select(vec![
            "",
            "\\.",
            "\\N",
            "\"",
            "\"\"",
            ",",
            "\r\n",
            "\n",
            "\r",
            "\\",
            "NULL",
            " ",
            "日本語",
            "🎉",
        ]);
        prop_oneof![
            1 => Just(None),
            2 => special.prop_map(|s| Some(s.to_owned())),
            4 => "[a-c,\"\\\\\r\n .N日🎉é]{0,12}".prop_map(Some),
            2 => any::<String>().prop_map(|s| Some(s.replace('\0', ""))),
        ]
    }

    type Row = Vec<Option<String>>;

    /// Writes `rows`, recording each field's raw bytes; rows that the
    /// writer refuses (Redshift `\N`) are left out of the expectation.
    fn write_all(
        d: Dialect,
        rows: &[Vec<Option<String>>],
    ) -> (Vec<u8>, Vec<Row>, Vec<Vec<Vec<u8>>>) {
        let mut w = RowWriter::new(d);
        let mut out = Vec::new();
        let mut kept = Vec::new();
        let mut raws = Vec::new();
        'rows: for r in rows {
            let start = out.len();
            let mut raw = Vec::new();
            for f in r {
                let before = out.len() + usize::from(w.fields() > 0);
                match f {
                    Some(v) => {
                        if let Err(e) = w.field(&mut out, v) {
                            assert_eq!(e, FieldError::NullMarker);
                            assert_eq!(d, RS);
                            assert_eq!(v, "\\N");
                            out.truncate(start);
                            w.discard_row();
                            continue 'rows;
                        }
                    }
                    None => w.null(&mut out),
                }
                raw.push(out[before..].to_vec());
            }
            w.end_row(&mut out);
            kept.push(r.clone());
            raws.push(raw);
        }
        (out, kept, raws)
    }

    /// `csv_core::quote` between quotes: the oracle for `write_quoted`.
    fn csv_core_quoted(bytes: &[u8]) -> Vec<u8> {
        let mut body = vec![0; bytes.len() * 2];
        let (res, nin, n) =
            csv_core::quote(bytes, &mut body, b'"', b'"', true);
        assert_eq!(
            (res, nin),
            (csv_core::WriteResult::InputEmpty, bytes.len())
        );
        let mut want = vec![b'"'];
        want.extend_from_slice(&body[..n]);
        want.push(b'"');
        want
    }

    /// A field that starts with U+FEFF is quoted, so that a reader that
    /// drops a byte order mark at the start of its input (csv-core's, the
    /// `csv` crate's) still reads it as itself in a file's first field;
    /// the `@message` path quotes it too. Found by `fuzz_csv`
    /// (fuzz/regressions/fuzz_csv-bom-at-the-start).
    #[test]
    fn a_leading_byte_order_mark_is_quoted() {
        for d in [PG, RS] {
            for value in ["\u{feff}", "\u{feff}x", "\u{feff}\u{feff}"] {
                let mut w = RowWriter::new(d);
                let mut out = Vec::new();
                w.field(&mut out, value).unwrap();
                w.field(&mut out, value).unwrap();
                w.end_row(&mut out);
                let quoted = format!("\"{value}\"");
                assert_eq!(out, format!("{quoted},{quoted}\n").as_bytes());
                let mut rdr = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(&out[..]);
                let rec = rdr.records().next().unwrap().unwrap();
                assert_eq!(rec.iter().collect::<Vec<_>>(), [value, value]);
                // (`field_escaped` leaves values under 4 bytes to `field`.)
                let mut esc = Vec::new();
                let mut w = RowWriter::new(d);
                if value.len() >= 4 {
                    assert!(w.field_escaped(
                        &mut esc,
                        value.as_bytes(),
                        false
                    ));
                    assert_eq!(esc, quoted.as_bytes());
                }
            }
            // Not at the start: as before.
            let mut out = Vec::new();
            RowWriter::new(d).field(&mut out, "x\u{feff}").unwrap();
            assert_eq!(out, "x\u{feff}".as_bytes());
        }
    }

    /// The 64-byte step with AVX2 writes what it writes with SSE2 and
    /// stops at the same place, at every length, with an escape, a lone
    /// quote or a control byte at every position.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn quoted_runs_with_avx2_are_the_sse2_ones() {
        if !crate::decode::onepass::block::cpu_has_avx2() {
            return; // onepass's avx2_classes_are_the_sse2_ones says so
        }
        for len in 0..=200usize {
            for at in (0..=len).step_by(3) {
                for special in
                    [&b"\\\""[..], b"\\\\", b"\"", b"\x01", b",", b"\\"]
                {
                    let mut v: Vec<u8> =
                        (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                    v.splice(at..at, special.iter().copied());
                    let (mut a, mut b) = (b"x".to_vec(), b"x".to_vec());
                    let (mut qa, mut qb) = (false, false);
                    a.reserve(v.len() + 64);
                    b.reserve(v.len() + 64);
                    let ia = quoted_run_with::<false>(&mut a, &v, 0, &mut qa);
                    // SAFETY: the CPU has AVX2 (checked above).
                    let ib =
                        unsafe { quoted_run_avx2(&mut b, &v, 0, &mut qb) };
                    assert_eq!(
                        (ia, qa, &a),
                        (ib, qb, &b),
                        "{:?}",
                        String::from_utf8_lossy(&v)
                    );
                }
            }
        }
    }

    /// `field_escaped` at every length up to 80 with an escape (`\"`,
    /// `\\`, `\n`, `\u0041`) or a lone backslash at each position, so
    /// across the 64- and 16-byte steps and the padded tail: the bytes
    /// `field` writes for the unescaped value, or (where it leaves the
    /// value to `field`) nothing at all.
    #[test]
    fn escaped_fields_at_every_length_and_position() {
        for d in [PG, RS] {
            for len in 0..=80usize {
                for at in 0..=len {
                    // The escape alone, or after a comma or a `\"` (each
                    // a reason to quote the field that only the bytes
                    // before the escape give) at the start, halfway or
                    // just before it.
                    let leads = [
                        (None, 0),
                        (Some(&b","[..]), 0),
                        (Some(&b","[..]), at / 2),
                        (Some(&b","[..]), at.saturating_sub(1)),
                        (Some(&b"\\\""[..]), 0),
                        (Some(&b"\\\""[..]), at / 2),
                        (Some(&b"\\\""[..]), at.saturating_sub(1)),
                    ];
                    for (esc, (lead, lead_at)) in
                        [&b"\\\""[..], b"\\\\", b"\\n", b"\\u0041", b"\\"]
                            .into_iter()
                            .flat_map(|e| leads.iter().map(move |l| (e, *l)))
                    {
                        let mut v: Vec<u8> =
                            (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                        v.splice(at..at, esc.iter().copied());
                        if let Some(lead) = lead {
                            v.splice(lead_at..lead_at, lead.iter().copied());
                        }
                        let mut plain = Vec::new();
                        crate::decode::onepass::unescape(&v, &mut plain);
                        let mut out = b"x".to_vec();
                        let mut w = RowWriter::new(d);
                        if w.field_escaped(&mut out, &v, false) {
                            let mut want = b"x".to_vec();
                            let text = std::str::from_utf8(&plain).unwrap();
                            RowWriter::new(d).field(&mut want, text).unwrap();
                            assert_eq!(
                                out,
                                want,
                                "{:?}",
                                String::from_utf8_lossy(&v)
                            );
                        } else {
                            assert_eq!(
                                out,
                                b"x",
                                "{:?}",
                                String::from_utf8_lossy(&v)
                            );
                        }
                    }
                }
            }
        }
    }

    /// Turning a field's backslashes into quotes, 16 and (with AVX2) 32
    /// bytes a step, is the byte loop at every length to 100.
    #[test]
    fn turned_fields_are_the_byte_loop_at_every_length() {
        assert!(
            crate::decode::onepass::block::cpu_has_avx2()
                || std::env::var_os("CI_NO_AVX2").is_some(),
            "this CPU has no AVX2: set CI_NO_AVX2=1 to run without \
             comparing the AVX2 step"
        );
        let mut r = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..=100usize {
            for _ in 0..20 {
                let field: Vec<u8> = (0..len)
                    .map(|_| {
                        r ^= r << 13;
                        r ^= r >> 7;
                        r ^= r << 17;
                        b"\\\"ab,"[(r % 5) as usize]
                    })
                    .collect();
                let want: Vec<u8> = field
                    .iter()
                    .map(|&c| if c == b'\\' { b'"' } else { c })
                    .collect();
                let mut sse = field.clone();
                turn_field_with::<16>(&mut sse);
                assert_eq!(sse, want, "{field:?}");
                #[cfg(target_arch = "x86_64")]
                if crate::decode::onepass::block::cpu_has_avx2() {
                    let mut avx = field.clone();
                    // SAFETY: the CPU has AVX2 (just checked).
                    unsafe { turn_field_avx2(&mut avx) };
                    assert_eq!(avx, want, "{field:?}");
                }
            }
        }
    }

    /// `field_quotes_only` writes what `field` writes for the unescaped
    /// value: bodies whose escapes are all `\"` at every length to 80
    /// (across its 16-byte blocks and its overlapping last one), with one,
    /// two or every other pair an escape, a comma, CR-free text, a byte
    /// order mark in front; after a first field and as the first.
    #[test]
    fn quotes_only_fields_at_every_length_and_position() {
        let mut seen = 0;
        for d in [PG, RS] {
            for len in 0..=80usize {
                for at in 0..=len {
                    for extra in [None, Some(len / 2), Some(0), Some(len)] {
                        for lead in [&b""[..], b",", "\u{feff}".as_bytes()] {
                            let mut v: Vec<u8> = lead.to_vec();
                            v.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                            let at = at + lead.len();
                            v.splice(at..at, *b"\\\"");
                            if let Some(e) = extra {
                                let e = (e + lead.len()).min(at);
                                v.splice(e..e, *b"\\\"");
                            }
                            assert!(crate::decode::onepass::quotes_only(&v));
                            let mut plain = Vec::new();
                            crate::decode::onepass::unescape(&v, &mut plain);
                            let text = std::str::from_utf8(&plain).unwrap();
                            for first in [false, true] {
                                let mut w = RowWriter::new(d);
                                let mut o = RowWriter::new(d);
                                let (mut out, mut want) =
                                    (b"x".to_vec(), b"x".to_vec());
                                if first {
                                    w.field(&mut out, "a,b").unwrap();
                                    o.field(&mut want, "a,b").unwrap();
                                }
                                w.field_quotes_only(&mut out, &v);
                                o.field(&mut want, text).unwrap();
                                w.field(&mut out, "z").unwrap();
                                o.field(&mut want, "z").unwrap();
                                assert_eq!(
                                    String::from_utf8_lossy(&out),
                                    String::from_utf8_lossy(&want),
                                    "{:?}",
                                    String::from_utf8_lossy(&v)
                                );
                                seen += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(seen > 10_000);
    }

    #[test]
    fn quoting_every_length_and_position() {
        // Every length up to three words, with a quote at each position
        // (and none, and all), after a prefix of every alignment.
        let oracle = RowWriter::new(PG);
        for len in 0..=70 {
            for q in 0..=len + 1 {
                let mut v: Vec<u8> =
                    (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                if q < len {
                    v[q] = b'"';
                } else if q == len + 1 {
                    v.fill(b'"');
                }
                for pre in 0..3 {
                    for simd in [true, false] {
                        let mut out = vec![b'x'; pre];
                        write_quoted_with(&mut out, &v, simd);
                        assert_eq!(&out[..pre], &vec![b'x'; pre][..]);
                        assert_eq!(out[pre..], csv_core_quoted(&v), "{v:?}");
                    }
                }
                assert_eq!(needs_quotes(&v), oracle.csv.should_quote(&v));
                // needs_quotes's blocks: every byte it looks at, at every
                // position of every length (a tab or 0x01 is a control
                // byte that needs no quotes).
                if q < len {
                    for c in [b',', b'\r', b'\n', b'\t', 1, b'\\', 0xFF] {
                        let mut w: Vec<u8> =
                            (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                        w[q] = c;
                        assert_eq!(
                            needs_quotes(&w),
                            oracle.csv.should_quote(&w),
                            "{w:?}"
                        );
                    }
                }
            }
        }
    }

    /// JSON string bodies made of runs of plain bytes and escapes, for
    /// `field_escaped`: many escapes a block, adjacent ones (`\\\"`),
    /// ones across the 16- and 64-byte steps, the bytes CSV quotes.
    fn escaped_body() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                6 => prop::collection::vec(
                    prop_oneof![
                        8 => b'a'..=b'z',
                        1 => Just(b','),
                        1 => Just(b' '),
                    ],
                    0..20,
                ),
                2 => Just(b"\\\"".to_vec()),
                2 => Just(b"\\\\".to_vec()),
                2 => Just(b"\\n".to_vec()),
                1 => Just(b"\\r".to_vec()),
                1 => Just(b"\\t".to_vec()),
                1 => Just(b"\\/".to_vec()),
                1 => Just(b"\\b".to_vec()),
                1 => Just(b"\\f".to_vec()),
                1 => Just(b"\\u00e9".to_vec()),
                1 => Just("\u{e9}\u{20ac}".as_bytes().to_vec()),
                1 => Just(BOM.to_vec()),
            ],
            0..24,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        /// What `field_escaped` writes is what `field` writes for the
        /// unescaped value, or (where it leaves it to `field`) nothing.
        #[test]
        fn escaped_fields_match_the_plain_path(
            v in escaped_body(),
            rs in any::<bool>(),
        ) {
            let d = if rs { RS } else { PG };
            let mut plain = Vec::new();
            crate::decode::onepass::unescape(&v, &mut plain);
            let mut out = b"x".to_vec();
            let mut w = RowWriter::new(d);
            w.field(&mut out, "first").unwrap();
            let mut want = out.clone();
            if w.field_escaped(&mut out, &v, false) {
                let text = std::str::from_utf8(&plain).unwrap();
                let mut o = RowWriter::new(d);
                o.field(&mut Vec::new(), "first").unwrap();
                o.field(&mut want, text).unwrap();
                prop_assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&want)
                );
                // With only `\"` escapes, the envelope reader's shortcut
                // writes the same.
                if crate::decode::onepass::quotes_only(&v) {
                    let mut q = b"x".to_vec();
                    let mut w = RowWriter::new(d);
                    w.field(&mut q, "first").unwrap();
                    prop_assert!(w.field_escaped(&mut q, &v, true));
                    prop_assert_eq!(
                        String::from_utf8_lossy(&q),
                        String::from_utf8_lossy(&out)
                    );
                }
            } else {
                prop_assert_eq!(out, want);
                // Only a `\u` escape or a field under 4 bytes is left
                // to the plain path.
                prop_assert!(
                    v.len() < 4 || v.windows(2).any(|p| p == b"\\u"),
                    "{:?}", String::from_utf8_lossy(&v)
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn quoting_matches_csv_core(
            v in prop::collection::vec(
                prop_oneof![
                    4 => Just(b'"'),
                    1 => Just(b','),
                    1 => Just(b'\r'),
                    1 => Just(b'\n'),
                    8 => any::<u8>(),
                ],
                0..300,
            ),
            simd in any::<bool>(),
        ) {
            let mut out = b"prefix".to_vec();
            write_quoted_with(&mut out, &v, simd);
            prop_assert_eq!(&out[..6], b"prefix");
            prop_assert_eq!(out[6..].to_vec(), csv_core_quoted(&v));
            prop_assert_eq!(
                needs_quotes(&v),
                RowWriter::new(PG).csv.should_quote(&v) || v.starts_with(BOM)
            );
        }

        #[test]
        fn round_trip(
            rows in prop::collection::vec(
                prop::collection::vec(value(), 2..6), 0..8),
            rs in any::<bool>(),
        ) {
            let d = if rs { RS } else { PG };
            let (out, kept, raws) = write_all(d, &rows);
            prop_assert!(std::str::from_utf8(&out).is_ok());
            prop_assert!(!out.contains(&0));
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&out[..]);
            let got: Vec<csv::StringRecord> =
                rdr.records().collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(got.len(), kept.len());
            for ((want, rec), raw) in kept.iter().zip(&got).zip(&raws) {
                prop_assert_eq!(rec.len(), want.len());
                for ((w, g), r) in want.iter().zip(rec.iter()).zip(raw) {
                    match w {
                        // NULL: exactly the marker, unquoted.
                        None => prop_assert_eq!(
                            &r[..], d.null_marker().as_bytes()),
                        Some(v) => {
                            prop_assert_eq!(g, v.as_str());
                            // Never mistakable for NULL …
                            prop_assert_ne!(
                                &r[..], d.null_marker().as_bytes());
                            // … nor for PostgreSQL's end-of-data line.
                            if d == PG {
                                prop_assert_ne!(&r[..], b"\\.");
                            }
                        }
                    }
                }
            }
        }
    }
}
