//! The one-pass envelope reader: one validating pass over an inflated
//! envelope that finds its structure and takes each event's `message` as
//! its **escaped** bytes (the body of the JSON string, not unescaped).
//!
//! It reads the envelopes CloudWatch Logs writes and nothing more general:
//! keys without escapes, `owner`/`logGroup`/`logStream`/`policyLevel`
//! and the event `id` as strings without escapes, `timestamp` as an
//! integer of at most 18 digits, `subscriptionFilters` as an array of
//! strings, events with no keys but `id`, `timestamp` and `message`, and
//! unknown envelope keys whose value is a string, a literal, a small
//! integer, or an array or object of those. Anything else (and any input
//! that is not valid UTF-8, or valid JSON, or holds a lone `\u`
//! surrogate) gives `None` *before anything was emitted*, and the decoder
//! parses that envelope with simd-json as before: the fast reader never
//! decides what is an error, the oracle does.

use super::envelope::MessageType;
use super::sink::Envelope;
use crate::map::scan::{short_escape, unicode_escape, PLAIN_U};

/// One event found by [`parse`]: ranges into the envelope.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FastEvent {
    id: (u32, u32),
    timestamp: i64,
    /// The message string's body, still escaped.
    message: (u32, u32),
    /// Every escape in the message's body is `\"` (and there is one):
    /// its CSV field is the body with each `\` turned into `"`, quoted.
    quotes_only: bool,
    /// The message's number among those the [`Ahead`] hook scanned, or
    /// [`NOT_AHEAD`].
    pub(crate) ahead: u32,
}

/// [`FastEvent::ahead`] of a message the hook did not scan.
pub(crate) const NOT_AHEAD: u32 = u32::MAX;

/// A scan of each message as the reader meets it (the mapper's, through
/// the sink): given the envelope and the offset where a message's body
/// starts, the body's length (the offset of the `"` that ends it, which
/// the reader then need not look for), whether its every escape is `\"`
/// ([`quotes_only`]), and the message's number for the sink; `None` where
/// it does not read the message, and the reader finds the end itself.
pub(crate) type Ahead<'h, 'a> =
    Option<&'h mut dyn FnMut(&'a str, usize) -> Option<(usize, bool, u32)>>;

/// An envelope read by [`parse`].
pub(crate) struct FastEnvelope<'a> {
    pub(crate) kind: MessageType,
    pub(crate) envelope: Envelope<'a>,
    doc: &'a str,
}

impl<'a> FastEnvelope<'a> {
    /// The id, timestamp and escaped message of `ev`, and whether every
    /// escape of the message is `\"` ([`FastEvent::quotes_only`]).
    pub(crate) fn event(
        &self,
        ev: &FastEvent,
    ) -> (&'a str, i64, &'a str, bool) {
        let get = |(a, b): (u32, u32)| {
            self.doc.get(a as usize..b as usize).unwrap_or_default()
        };
        (get(ev.id), ev.timestamp, get(ev.message), ev.quotes_only)
    }
}

/// Reads the envelope `doc` (one JSON document, blank around it), putting
/// its events in `events`; `None` when the fast reader does not read it.
#[cfg(test)]
pub(crate) fn parse<'a>(
    doc: &'a [u8],
    events: &mut Vec<FastEvent>,
) -> Option<FastEnvelope<'a>> {
    parse_ahead(doc, events, None)
}

/// `f` as an [`Ahead`] hook for an envelope that lives for `'a` (a
/// closure's own signature would take a string of any lifetime).
pub(crate) fn ahead_hook<'a, F>(f: F) -> F
where
    F: FnMut(&'a str, usize) -> Option<(usize, bool, u32)>,
{
    f
}

/// [`parse`], with each message given to `ahead` first ([`Ahead`]).
pub(crate) fn parse_ahead<'a>(
    doc: &'a [u8],
    events: &mut Vec<FastEvent>,
    mut ahead: Ahead<'_, 'a>,
) -> Option<FastEnvelope<'a>> {
    events.clear();
    // Offsets are kept as u32.
    if u32::try_from(doc.len()).is_err() {
        return None;
    }
    let text = simdutf8::basic::from_utf8(doc).ok()?;
    let mut p = Reader { b: doc, pos: 0, odd: false };
    p.ws();
    p.expect(b'{')?;
    let mut kind = None;
    let mut env = Envelope::default();
    let mut saw_events = false;
    p.ws();
    if p.peek() == Some(b'}') {
        return None;
    }
    loop {
        p.ws();
        let key = p.plain_string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        match key {
            b"messageType" => {
                kind = Some(match p.plain_string()? {
                    b"DATA_MESSAGE" => MessageType::Data,
                    b"CONTROL_MESSAGE" => MessageType::Control,
                    _ => return None,
                })
            }
            b"owner" => env.owner = p.plain_str(text)?,
            b"logGroup" => env.log_group = p.plain_str(text)?,
            b"logStream" => env.log_stream = p.plain_str(text)?,
            b"policyLevel" => {
                env.policy_level = if p.literal(b"null") {
                    None
                } else {
                    Some(p.plain_str(text)?)
                }
            }
            b"logEvents" => {
                if saw_events {
                    return None;
                }
                saw_events = true;
                p.events(events, text, &mut ahead)?;
            }
            _ => p.skip_value(0)?,
        }
        p.ws();
        match p.next()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    p.ws();
    if p.pos != doc.len() || !saw_events {
        return None;
    }
    Some(FastEnvelope {
        kind: kind.unwrap_or(MessageType::Data),
        envelope: env,
        doc: text,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    /// The last string read had an escape other than `\"`.
    odd: bool,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of the lowest byte of `w` that is `"`, `\` or below 0x20
/// (bytes above it may be flagged wrongly; only the lowest is used).
#[inline(always)]
fn special(w: u64) -> u64 {
    let q = w ^ (LO * u64::from(b'"'));
    let b = w ^ (LO * u64::from(b'\\'));
    let zq = q.wrapping_sub(LO) & !q;
    let zb = b.wrapping_sub(LO) & !b;
    let ctl = w.wrapping_sub(LO * 0x20) & !w;
    (zq | zb | ctl) & HI
}

/// A block of a string's body of `width` bytes (16 or 64, as masks) of
/// the common kind in a JSON message: every backslash escapes a quote
/// (none doubled; a last one is left to the next block), no control byte
/// before the string's end. Where the string ends in it (`Ok`) or how
/// many bytes of body it is (`Err`), and whether those have escapes;
/// `None` for any other block.
#[inline(always)]
fn common_block(
    bs: u64,
    qt: u64,
    ctl: u64,
    width: u32,
) -> Option<(Result<usize, usize>, bool)> {
    let (n, keep) = block::taken(bs, width);
    let bs = bs & keep;
    let after = bs << 1;
    if bs & after != 0 || after & !qt != 0 {
        return None;
    }
    let end = qt & keep & !after;
    let upto = if end == 0 { keep } else { (end & end.wrapping_neg()) - 1 };
    if ctl & upto != 0 {
        return None;
    }
    let at = if end == 0 { Err(n) } else { Ok(end.trailing_zeros() as usize) };
    Some((at, bs & upto != 0))
}

/// Where a string body's run of common 64-byte blocks from `at` stops
/// (`common_block`), whether one had an escape, and the closing quote's
/// offset when a block holds it.
struct Run {
    at: usize,
    escaped: bool,
    end: Option<usize>,
}

/// [`Run`] from `i`, with AVX2 when the CPU has it.
#[inline(always)]
fn common_run(b: &[u8], i: usize) -> Run {
    #[cfg(target_arch = "x86_64")]
    if block::has_avx2() {
        // SAFETY: the CPU has AVX2 (just checked), all that
        // `common_run_avx2` needs.
        return unsafe { common_run_avx2(b, i) };
    }
    common_run_with::<false>(b, i)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn common_run_avx2(b: &[u8], i: usize) -> Run {
    common_run_with::<true>(b, i)
}

#[inline(always)]
fn common_run_with<const AVX2: bool>(b: &[u8], mut i: usize) -> Run {
    let mut escaped = false;
    while let Some(chunk) = b.get(i..).and_then(<[u8]>::first_chunk::<64>) {
        // SAFETY: `AVX2` is true only in `common_run_avx2`, which is
        // compiled with AVX2 and called only when the CPU has it.
        let c = unsafe { block::classes64_with::<AVX2>(chunk) };
        match common_block(c.bs, c.qt, c.ctl, 64) {
            Some((Ok(at), esc)) => {
                return Run {
                    at: i,
                    escaped: escaped | esc,
                    end: Some(i + at),
                }
            }
            Some((Err(n), esc)) => {
                escaped |= esc;
                i += n;
            }
            None => break,
        }
    }
    Run { at: i, escaped, end: None }
}

/// The leading ASCII digits of `b` when there are at most 15 (so the
/// byte after them is in `b`): their value and count; `None` for 16.
#[inline(always)]
fn swar_digits(b: &[u8; 16]) -> Option<(i64, usize)> {
    let (lo, hi) = b.split_at(8);
    let word = |w: &[u8]| <[u8; 8]>::try_from(w).map(u64::from_le_bytes);
    let (Ok(lo), Ok(hi)) = (word(lo), word(hi)) else { return None };
    // 0x33 in each digit's byte. A carry of `+ 0x06` out of a byte
    // (0xFA and up, not a digit) reaches only later bytes, so the first
    // byte that is not a digit is always seen.
    let f = 0xF0F0_F0F0_F0F0_F0F0u64;
    let not_digits = |w: u64| {
        ((w & f) | (w.wrapping_add(0x0606_0606_0606_0606) & f) >> 4)
            ^ 0x3333_3333_3333_3333
    };
    let (a, z) = (not_digits(lo), not_digits(hi));
    let n = if a != 0 {
        (a.trailing_zeros() / 8) as usize
    } else if z != 0 {
        8 + (z.trailing_zeros() / 8) as usize
    } else {
        return None;
    };
    // Eight digits (first in the low byte) to their value; `k` digits
    // by shifting the others out, the zeros in as leading zeros.
    let eight = |w: u64, k: usize| -> u64 {
        if k == 0 {
            return 0;
        }
        let v = (w & 0x0F0F_0F0F_0F0F_0F0F) << (8 * (8 - k));
        let v = (v * 10) + (v >> 8);
        // (The products wrap by design: only their top half is kept.)
        ((v & 0x0000_00FF_0000_00FF)
            .wrapping_mul(100 + (1_000_000 << 32))
            .wrapping_add(
                ((v >> 16) & 0x0000_00FF_0000_00FF)
                    .wrapping_mul(1 + (10_000 << 32)),
            ))
            >> 32
    };
    let v = if n <= 8 {
        eight(lo, n)
    } else {
        // (n − 8 ≤ 7: the power from a table, not a loop.)
        const POW10: [u64; 8] =
            [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];
        eight(lo, 8) * POW10.get(n - 8).copied().unwrap_or(0)
            + eight(hi, n - 8)
    };
    i64::try_from(v).ok().map(|v| (v, n))
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    #[inline(always)]
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let hit = self.b.get(self.pos..self.pos + word.len()) == Some(word);
        if hit {
            self.pos += word.len();
        }
        hit
    }

    /// A string; returns its body's range and whether it has escapes.
    /// Validates escapes (a lone surrogate is `None`) and refuses control
    /// characters.
    #[inline(always)]
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        self.expect(b'"')?;
        let start = self.pos;
        let b = self.b;
        let mut i = start;
        let mut escaped = false;
        // The common runs and blocks take only `\"` escapes; others are
        // read byte by byte below.
        self.odd = false;
        loop {
            // 64 bytes at a time while the blocks are of the common kind
            // (`common_block`), then 16, then 8, then one.
            let run = common_run(b, i);
            escaped |= run.escaped;
            i = run.at;
            if let Some(end) = run.end {
                self.pos = end + 1;
                return Some((start, end, escaped));
            }
            let mut common = None;
            if let Some(chunk) = b.get(i..).and_then(<[u8]>::first_chunk::<16>)
            {
                let c = block::classes(chunk);
                let special = c.bs | c.qt | c.ctl;
                if special == 0 {
                    i += 16;
                    continue;
                }
                let (bs, qt, ctl) = (c.bs.into(), c.qt.into(), c.ctl.into());
                common = common_block(bs, qt, ctl, 16);
                if common.is_none() {
                    i += special.trailing_zeros() as usize;
                }
            } else if let Some(chunk) =
                b.get(i..).and_then(<[u8]>::first_chunk::<8>)
            {
                let m = special(u64::from_le_bytes(*chunk));
                if m == 0 {
                    i += 8;
                    continue;
                }
                i += (m.trailing_zeros() / 8) as usize;
            }
            if let Some((at, esc)) = common {
                escaped |= esc;
                match at {
                    Ok(at) => {
                        self.pos = i + at + 1;
                        return Some((start, i + at, escaped));
                    }
                    Err(n) => {
                        i += n;
                        continue;
                    }
                }
            }
            match *b.get(i)? {
                b'"' => {
                    self.pos = i + 1;
                    return Some((start, i, escaped));
                }
                b'\\' => {
                    escaped = true;
                    i = match *b.get(i + 1)? {
                        b'u' => {
                            self.odd = true;
                            unicode_escape(b, i, PLAIN_U).ok()?.1
                        }
                        c => {
                            short_escape(c)?;
                            self.odd |= c != b'"';
                            i + 2
                        }
                    };
                }
                0..=0x1f => return None,
                _ => i += 1,
            }
        }
    }

    /// A string without escapes, as bytes.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        let (a, z, escaped) = self.string()?;
        if escaped {
            return None;
        }
        self.b.get(a..z)
    }

    /// A string without escapes, borrowed from `text` (the same bytes).
    fn plain_str(&mut self, text: &'a str) -> Option<&'a str> {
        let (a, z, escaped) = self.string()?;
        if escaped {
            return None;
        }
        text.get(a..z)
    }

    /// An integer of 1 to 18 digits (no fraction, no exponent).
    fn small_int(&mut self) -> Option<i64> {
        let neg = self.peek() == Some(b'-');
        if neg {
            self.pos += 1;
        }
        let start = self.pos;
        // Up to 15 digits with 16 bytes to look at (a millisecond
        // timestamp has 13) eight at a time, others a digit at a time.
        let v = match self.b.get(start..).and_then(<[u8]>::first_chunk::<16>) {
            Some(c) => match swar_digits(c) {
                Some((v, n)) => {
                    self.pos += n;
                    v
                }
                None => self.digits(start)?,
            },
            None => self.digits(start)?,
        };
        let n = self.pos - start;
        if n == 0
            || (n > 1 && self.b.get(start) == Some(&b'0'))
            || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        Some(if neg { -v } else { v })
    }

    /// The digits from `start` a digit at a time, at most 18.
    fn digits(&mut self, start: usize) -> Option<i64> {
        let mut v = 0i64;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            v = v * 10 + i64::from(d - b'0');
            self.pos += 1;
            if self.pos - start > 18 {
                return None;
            }
        }
        Some(v)
    }

    /// Skips a value of the kinds the module docs list.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > 8 {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true").then_some(()),
            b'f' => self.literal(b"false").then_some(()),
            b'n' => self.literal(b"null").then_some(()),
            b'-' | b'0'..=b'9' => self.small_int().map(|_| ()),
            open @ (b'[' | b'{') => {
                self.pos += 1;
                let close = if open == b'[' { b']' } else { b'}' };
                self.ws();
                if self.peek() == Some(close) {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    if open == b'{' {
                        self.string()?;
                        self.ws();
                        self.expect(b':')?;
                        self.ws();
                    }
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => {}
                        c if c == close => return Some(()),
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }

    /// The `logEvents` array.
    fn events(
        &mut self,
        events: &mut Vec<FastEvent>,
        text: &'a str,
        ahead: &mut Ahead<'_, 'a>,
    ) -> Option<()> {
        self.expect(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.ws();
            events.push(self.event(text, ahead)?);
            self.ws();
            match self.next()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    fn event(
        &mut self,
        text: &'a str,
        ahead: &mut Ahead<'_, 'a>,
    ) -> Option<FastEvent> {
        self.expect(b'{')?;
        let (mut id, mut ts, mut msg) = (None, None, None);
        let mut scanned = NOT_AHEAD;
        loop {
            self.ws();
            // The three keys as CloudWatch writes them, compared whole; any
            // other spelling of a key goes through `plain_string`.
            let rest = self.b.get(self.pos..).unwrap_or_default();
            let key: &[u8] = if rest.starts_with(b"\"message\":") {
                self.pos += 10;
                b"message"
            } else if rest.starts_with(b"\"id\":") {
                self.pos += 5;
                b"id"
            } else if rest.starts_with(b"\"timestamp\":") {
                self.pos += 12;
                b"timestamp"
            } else {
                let key = self.plain_string()?;
                self.ws();
                self.expect(b':')?;
                key
            };
            self.ws();
            match key {
                b"id" => {
                    let (a, z, escaped) = self.string()?;
                    if escaped {
                        return None;
                    }
                    id = Some((a, z));
                }
                b"timestamp" => ts = Some(self.small_int()?),
                b"message" => {
                    let at = self.pos + 1;
                    let read = match ahead {
                        Some(f) if self.peek() == Some(b'"') => f(text, at),
                        _ => None,
                    };
                    if let Some((len, quotes_only, k)) = read {
                        msg = Some((at, at + len, quotes_only));
                        scanned = k;
                        self.pos = at + len + 1;
                    } else {
                        let (a, z, escaped) = self.string()?;
                        msg = Some((a, z, escaped && !self.odd));
                        scanned = NOT_AHEAD;
                    }
                }
                _ => return None,
            }
            self.ws();
            match self.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        let r = |(a, z): (usize, usize)| {
            Some((u32::try_from(a).ok()?, u32::try_from(z).ok()?))
        };
        let (a, z, quotes_only) = msg?;
        Some(FastEvent {
            id: r(id?)?,
            timestamp: ts?,
            message: r((a, z))?,
            quotes_only,
            ahead: scanned,
        })
    }
}

/// Whether the JSON string body `escaped` has escapes and every one is
/// `\"`: what [`FastEvent::quotes_only`] says of a message (the plain
/// definition, for the tests and the fuzz targets).
pub(crate) fn quotes_only(escaped: &[u8]) -> bool {
    let mut i = 0;
    let mut any = false;
    while let Some(at) =
        escaped.get(i..).and_then(|r| memchr::memchr(b'\\', r))
    {
        if escaped.get(i + at + 1) != Some(&b'"') {
            return false;
        }
        any = true;
        i += at + 2;
    }
    any
}

/// Appends the unescaped body of a JSON string, `escaped`, to `out`.
/// For a body [`parse`] accepted this is exactly the string simd-json
/// gives; other input is kept as it is where an escape is not valid (so
/// the output is always UTF-8 when the input is).
pub(crate) fn unescape(escaped: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < escaped.len() {
        let rest = escaped.get(i..).unwrap_or_default();
        let run = memchr::memchr(b'\\', rest).unwrap_or(rest.len());
        out.extend_from_slice(rest.get(..run).unwrap_or_default());
        i += run;
        if i >= escaped.len() {
            break;
        }
        // An escape the decoder would refuse is kept as written.
        let (ch, next) = match escaped.get(i + 1) {
            Some(b'u') => unicode_escape(escaped, i, PLAIN_U)
                .ok()
                .and_then(|(cp, n)| Some((char::from_u32(cp)?, n)))
                .unwrap_or(('\\', i + 1)),
            Some(&c) => {
                short_escape(c).map_or(('\\', i + 1), |ch| (ch, i + 2))
            }
            None => ('\\', i + 1),
        };
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
        i = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(doc: &str) -> Option<Vec<(String, i64, String)>> {
        let mut evs = Vec::new();
        let env = parse(doc.as_bytes(), &mut evs)?;
        Some(
            evs.iter()
                .map(|e| {
                    let (id, ts, m, quotes) = env.event(e);
                    assert_eq!(quotes, quotes_only(m.as_bytes()), "{m:?}");
                    (id.to_owned(), ts, m.to_owned())
                })
                .collect(),
        )
    }

    /// `swar_digits` is the digit loop: every count of digits up to 16,
    /// each followed by each kind of byte (and digits' neighbours in
    /// ASCII, and bytes that carry), from many values.
    #[test]
    fn swar_digits_are_the_digit_loop() {
        let mut r = 0x9E37_79B9_7F4A_7C15u64;
        for n in 0..=16usize {
            for after in
                [b'}', b',', b' ', b'.', b'e', b'/', b':', 0xFA, 0xFF, 0x29, 0]
            {
                for _ in 0..200 {
                    let mut b = [after; 16];
                    for x in b.iter_mut().take(n) {
                        r ^= r << 13;
                        r ^= r >> 7;
                        r ^= r << 17;
                        *x = b'0' + (r % 10) as u8;
                    }
                    let mut doc = b.to_vec();
                    doc.extend_from_slice(b"}}");
                    let mut slow = Reader { b: &doc, pos: 0, odd: false };
                    let want = slow.digits(0).map(|v| (v, slow.pos));
                    let got = swar_digits(&b);
                    match got {
                        Some(g) => assert_eq!(Some(g), want, "{b:?}"),
                        None => assert_eq!(n, 16, "{b:?}"),
                    }
                    if n < 16 {
                        assert!(got.is_some(), "{b:?}");
                    }
                }
            }
        }
    }

    /// `FastEvent::quotes_only` is `quotes_only` of the message: each
    /// escape at every position of bodies across the 64-, 16- and 8-byte
    /// steps, alone and after a `\"`, with the envelope's end near.
    #[test]
    fn quotes_only_is_told_at_every_length_and_position() {
        let escapes =
            [r#"\""#, r"\\", r"\n", r"\/", r"\u00e9", r"\ud83d\ude00"];
        let mut seen = [0usize; 2];
        for len in 0..140 {
            for esc in escapes {
                for at in 0..=len {
                    for lead in ["", r#"\""#] {
                        let mut m: String = (0..len)
                            .map(|i| (b'a' + (i % 26) as u8) as char)
                            .collect();
                        m.insert_str(at, esc);
                        m.insert_str(0, lead);
                        for pad in ["", "          "] {
                            let doc = format!(
                                r#"{{"logEvents":[{{"id":"1","timestamp":1,"message":"{m}"}}]}}{pad}"#
                            );
                            let evs = read(&doc).expect(&doc);
                            seen[usize::from(quotes_only(m.as_bytes()))] += 1;
                            assert_eq!(evs[0].2, m);
                        }
                    }
                }
            }
        }
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    }

    #[test]
    fn reads_a_cloudwatch_envelope_and_keeps_messages_escaped() {
        let doc = r#" {"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g",
            "logStream":"s","subscriptionFilters":["f"],"policyLevel":null,
            "logEvents":[{"id":"12","timestamp":-5,"message":"{\"a\":1}\n"},
            {"message":"x","timestamp":7,"id":"3"}]} "#;
        let evs = read(doc).unwrap();
        assert_eq!(
            evs,
            vec![
                ("12".into(), -5, r#"{\"a\":1}\n"#.into()),
                ("3".into(), 7, "x".into()),
            ]
        );
    }

    #[test]
    fn leaves_anything_else_to_the_oracle() {
        for doc in [
            r#"{"logEvents":[{"id":1,"timestamp":1,"message":""}]}"#,
            r#"{"logEvents":[{"id":"1","timestamp":1.5,"message":""}]}"#,
            r#"{"logEvents":[{"id":"1","timestamp":1,"message":"\ud800"}]}"#,
            r#"{"logEvents":[{"id":"1","timestamp":1,"message":"\x"}]}"#,
            r#"{"logEvents":[{"id":"1","timestamp":1,"message":"a	b"}]}"#,
            r#"{"logEvents":[{"id":"1","timestamp":1,"message":"","x":1}]}"#,
            r#"{"logEvents":[{"id":"1","timestamp":1}]}"#,
            r#"{"logEvents":[],"logEvents":[]}"#,
            r#"{"owner":"a\/b","logEvents":[]}"#,
            r#"{"messageType":"OTHER","logEvents":[]}"#,
            r#"{"logEvents":[]} x"#,
            r#"{"logEvents":[]"#,
            r#"{"x":1e5,"logEvents":[]}"#,
            r#"{"owner":"x"}"#,
            "{}",
        ] {
            assert!(read(doc).is_none(), "{doc}");
        }
    }

    /// The event keys compared whole and the ones read as strings give
    /// the same events; a key the reader does not know is still refused.
    #[test]
    fn event_keys_in_any_spelling() {
        let want = Some(vec![("7".to_owned(), 5, "m".to_owned())]);
        for doc in [
            r#"{"logEvents":[{"id":"7","timestamp":5,"message":"m"}]}"#,
            r#"{"logEvents":[{"message":"m","timestamp":5,"id":"7"}]}"#,
            r#"{"logEvents":[{ "id" : "7" , "timestamp" :5,"message" :"m" }]}"#,
            r#"{"logEvents":[{"id":"1","id":"7","timestamp":5,"message":"m"}]}"#,
        ] {
            assert_eq!(read(doc), want, "{doc}");
        }
        for doc in [
            r#"{"logEvents":[{"i\u0064":"7","timestamp":5,"message":"m"}]}"#,
            r#"{"logEvents":[{"ids":"7","timestamp":5,"message":"m"}]}"#,
            r#"{"logEvents":[{"id":"7","timestamps":5,"message":"m"}]}"#,
            r#"{"logEvents":[{"id":"7","timestamp":5,"messages":"m"}]}"#,
            r#"{"logEvents":[{"id""7","timestamp":5,"message":"m"}]}"#,
        ] {
            assert!(read(doc).is_none(), "{doc}");
        }
    }

    #[test]
    fn unescapes_as_json_does() {
        for s in [
            r#"plain"#,
            r#"a\"b\\c\/d\b\f\n\r\t"#,
            r#"\u00e9\u0000\ud83d\ude00 x"#,
            r#"ünï 🎉"#,
        ] {
            let mut out = Vec::new();
            unescape(s.as_bytes(), &mut out);
            let want: String =
                serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(out, want.as_bytes(), "{s}");
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod run_tests {
    use super::*;

    /// The 64-byte runs over a string body stop at the same place, with
    /// the same escape flag and end, with AVX2 as with SSE2: bodies of
    /// every length with a quote, an escape or a control byte at every
    /// position.
    #[test]
    fn common_runs_with_avx2_are_the_sse2_ones() {
        if !block::cpu_has_avx2() {
            return; // avx2_classes_are_the_sse2_ones says so
        }
        let key = |r: &Run| (r.at, r.escaped, r.end);
        for len in [63usize, 64, 65, 127, 128, 129, 200] {
            for at in 0..len {
                for special in
                    [&b"\""[..], b"\\\"", b"\\\\", b"\n", b"\x01", b"\\"]
                {
                    let mut v: Vec<u8> =
                        (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                    v.splice(at..at, special.iter().copied());
                    v.extend_from_slice(b"\"tail of the envelope, 64 bytes or more of it........");
                    for from in [0, 1, 7] {
                        let sse = common_run_with::<false>(&v, from);
                        // SAFETY: the CPU has AVX2 (checked above).
                        let avx = unsafe { common_run_avx2(&v, from) };
                        assert_eq!(
                            key(&sse),
                            key(&avx),
                            "{:?}",
                            String::from_utf8_lossy(&v)
                        );
                    }
                }
            }
        }
    }
}

/// Byte classes of 16 bytes at once, for the one-pass path's two hot
/// loops (finding a message's end in the envelope, writing it as a CSV
/// field): bit `k` of each mask is byte `k` of the block. On x86-64 with
/// SSE2 (part of the x86-64 baseline, so no run-time check and no
/// `unsafe`), otherwise a byte loop.
pub(crate) mod block {
    /// The classes of one 16-byte block.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Classes {
        /// The block as two little-endian words.
        pub(crate) words: [u64; 2],
        /// `\`, as bits.
        pub(crate) bs: u32,
        /// `"`, as bits.
        pub(crate) qt: u32,
        /// `,`, as bits.
        pub(crate) comma: u32,
        /// Bytes below 0x20, as bits.
        pub(crate) ctl: u32,
        /// `\` bytes as 0xFF, others 0, as two words.
        pub(crate) bs_bytes: [u64; 2],
    }

    /// The classes of `b`.
    #[inline(always)]
    pub(crate) fn classes(b: &[u8; 16]) -> Classes {
        let (lo, hi) = b.split_at(8);
        let mut w = [0u64; 2];
        if let (Ok(lo), Ok(hi)) =
            (<[u8; 8]>::try_from(lo), <[u8; 8]>::try_from(hi))
        {
            w = [u64::from_le_bytes(lo), u64::from_le_bytes(hi)];
        }
        classes_of(w)
    }

    /// [`classes`] of the block whose little-endian words are `w`.
    #[inline(always)]
    pub(crate) fn classes_of(w: [u64; 2]) -> Classes {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: `imp::classes` is a safe function compiled with SSE2
        // enabled; calling it needs only a CPU with SSE2, which this
        // build requires already (the `cfg` above: SSE2 is part of the
        // x86-64 baseline, so every x86-64 build has it). It touches no
        // memory but its argument and result.
        return unsafe { imp::classes(w) };
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        imp::classes(w)
    }

    /// The classes of 64 bytes, as bits (bit k: byte k), and the bytes
    /// with each `\` turned into `"` (the CSV writer's `\"` → `""`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Classes64 {
        pub(crate) bs: u64,
        pub(crate) qt: u64,
        pub(crate) comma: u64,
        pub(crate) ctl: u64,
    }

    /// What a step over a block of `width` bytes (16 or 64) with the
    /// backslash mask `bs` takes: all its bytes, or all but the last when
    /// that is a backslash (its escape goes on in the next block); as a
    /// count and a mask.
    #[inline(always)]
    pub(crate) fn taken(bs: u64, width: u32) -> (usize, u64) {
        let all = u64::MAX >> (64 - width);
        let n = width as usize;
        if bs >> (width - 1) & 1 != 0 {
            (n - 1, all >> 1)
        } else {
            (n, all)
        }
    }

    /// [`classes`] of the four 16-byte blocks of `b`, as one mask each.
    #[inline(always)]
    pub(crate) fn classes64(b: &[u8; 64]) -> Classes64 {
        let mut m = Classes64 { bs: 0, qt: 0, comma: 0, ctl: 0 };
        for (k, chunk) in b.chunks_exact(16).enumerate() {
            let Some(chunk) = chunk.first_chunk::<16>() else { break };
            m.add(&classes(chunk), k);
        }
        m
    }

    impl Classes64 {
        /// Adds the classes `c` of the 16-byte block `k` (0 to 3).
        #[inline(always)]
        fn add(&mut self, c: &Classes, k: usize) {
            let at = 16 * k;
            self.bs |= u64::from(c.bs) << at;
            self.qt |= u64::from(c.qt) << at;
            self.comma |= u64::from(c.comma) << at;
            self.ctl |= u64::from(c.ctl) << at;
        }
    }

    /// [`classes64`] of `b`, and `b` with every `\` made a `"`
    /// (0x5C ^ 0x7E = 0x22) into `out`.
    #[inline(always)]
    pub(crate) fn classes64_quoted(
        b: &[u8; 64],
        out: &mut [u8; 64],
    ) -> Classes64 {
        let mut m = Classes64 { bs: 0, qt: 0, comma: 0, ctl: 0 };
        for (k, (chunk, dst)) in
            b.chunks_exact(16).zip(out.chunks_exact_mut(16)).enumerate()
        {
            let Some(chunk) = chunk.first_chunk::<16>() else { break };
            let c = classes(chunk);
            m.add(&c, k);
            dst.copy_from_slice(&quoted(&c));
        }
        m
    }

    /// The 16 bytes `c` classifies with every `\` made a `"`
    /// (0x5C ^ 0x7E = 0x22).
    #[inline(always)]
    pub(crate) fn quoted(c: &Classes) -> [u8; 16] {
        let mut out = [0u8; 16];
        for ((dst, w), m) in
            out.chunks_exact_mut(8).zip(c.words).zip(c.bs_bytes)
        {
            dst.copy_from_slice(
                &(w ^ (m & 0x7E7E_7E7E_7E7E_7E7E)).to_le_bytes(),
            );
        }
        out
    }

    /// Whether [`classes64_avx2`] and [`classes64_quoted_avx2`] may be
    /// called: the CPU has AVX2, and the environment variable
    /// `CWL_COPY_NO_AVX2` is not set (it keeps the SSE2 steps, to compare
    /// the two in one binary or to rule AVX2 out). Looked up once.
    #[inline(always)]
    pub(crate) fn has_avx2() -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        match AVX2.load(Relaxed) {
            2 => true,
            1 => false,
            _ => {
                let yes = cpu_has_avx2()
                    && std::env::var_os("CWL_COPY_NO_AVX2").is_none();
                AVX2.store(if yes { 2 } else { 1 }, Relaxed);
                yes
            }
        }
    }

    /// [`has_avx2`]'s answer: 0 not looked up yet, 1 no, 2 yes.
    static AVX2: std::sync::atomic::AtomicU8 =
        std::sync::atomic::AtomicU8::new(0);

    /// Keeps the SSE2 steps from now on (`true`), or goes back to what
    /// [`has_avx2`] finds (`false`): for benches that compare the two in
    /// one process ([`crate::fuzzing::use_sse2`]).
    pub(crate) fn force_sse2(on: bool) {
        AVX2.store(u8::from(on), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the CPU has AVX2, whatever `CWL_COPY_NO_AVX2` says (the
    /// tests compare the two steps wherever they can).
    pub(crate) fn cpu_has_avx2() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// [`classes64`] with AVX2: 32 bytes a compare instead of 16, about
    /// a third of the instructions (BENCHMARKS.md, fifth pass). Only
    /// for callers compiled with AVX2, or behind [`has_avx2`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn classes64_avx2(b: &[u8; 64]) -> Classes64 {
        let [lo, hi] = avx2::load(b);
        avx2::classes(lo, hi)
    }

    /// [`classes64_quoted`] with AVX2, as [`classes64_avx2`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn classes64_quoted_avx2(
        b: &[u8; 64],
        out: &mut [u8; 64],
    ) -> Classes64 {
        let [lo, hi] = avx2::load(b);
        avx2::store_quoted(lo, hi, out);
        avx2::classes(lo, hi)
    }

    /// [`classes64`], or with `AVX2` [`classes64_avx2`]: the one place
    /// the two are chosen between, for loops compiled both ways.
    ///
    /// # Safety
    ///
    /// With `AVX2` true, the CPU must have AVX2 ([`has_avx2`]).
    #[inline(always)]
    pub(crate) unsafe fn classes64_with<const AVX2: bool>(
        b: &[u8; 64],
    ) -> Classes64 {
        #[cfg(target_arch = "x86_64")]
        if AVX2 {
            // SAFETY: the caller's promise.
            return unsafe { classes64_avx2(b) };
        }
        classes64(b)
    }

    /// [`classes64_quoted`], or with `AVX2` [`classes64_quoted_avx2`],
    /// as [`classes64_with`].
    ///
    /// # Safety
    ///
    /// With `AVX2` true, the CPU must have AVX2 ([`has_avx2`]).
    #[inline(always)]
    pub(crate) unsafe fn classes64_quoted_with<const AVX2: bool>(
        b: &[u8; 64],
        out: &mut [u8; 64],
    ) -> Classes64 {
        #[cfg(target_arch = "x86_64")]
        if AVX2 {
            // SAFETY: the caller's promise.
            return unsafe { classes64_quoted_avx2(b, out) };
        }
        classes64_quoted(b, out)
    }

    #[cfg(target_arch = "x86_64")]
    mod avx2 {
        use std::arch::x86_64::{
            __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256,
            _mm256_max_epu8, _mm256_movemask_epi8, _mm256_set1_epi8,
            _mm256_storeu_si256, _mm256_xor_si256,
        };

        use super::Classes64;

        /// `b` as two 32-byte vectors.
        #[target_feature(enable = "avx2")]
        #[inline]
        pub(super) fn load(b: &[u8; 64]) -> [__m256i; 2] {
            let p = b.as_ptr().cast::<__m256i>();
            // SAFETY: `b` is 64 readable bytes, so `p` and `p + 1` are 32
            // each; `loadu` needs no alignment.
            unsafe { [_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))] }
        }

        /// The bytes of `v` equal to `c`, as bits.
        #[target_feature(enable = "avx2")]
        #[inline]
        fn eq(v: __m256i, c: u8) -> __m256i {
            #[allow(clippy::cast_possible_wrap)]
            _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8))
        }

        #[target_feature(enable = "avx2")]
        #[inline]
        fn bits(lo: __m256i, hi: __m256i) -> u64 {
            #[allow(clippy::cast_sign_loss)]
            let (l, h) = (
                _mm256_movemask_epi8(lo) as u32,
                _mm256_movemask_epi8(hi) as u32,
            );
            u64::from(l) | u64::from(h) << 32
        }

        /// Bytes below 0x20.
        #[target_feature(enable = "avx2")]
        #[inline]
        fn ctl(v: __m256i) -> __m256i {
            let low = _mm256_set1_epi8(0x1f);
            _mm256_cmpeq_epi8(_mm256_max_epu8(v, low), low)
        }

        #[target_feature(enable = "avx2")]
        #[inline]
        pub(super) fn classes(lo: __m256i, hi: __m256i) -> Classes64 {
            Classes64 {
                bs: bits(eq(lo, b'\\'), eq(hi, b'\\')),
                qt: bits(eq(lo, b'"'), eq(hi, b'"')),
                comma: bits(eq(lo, b','), eq(hi, b',')),
                ctl: bits(ctl(lo), ctl(hi)),
            }
        }

        /// `lo` and `hi` with every `\` made a `"` (0x5C ^ 0x7E = 0x22),
        /// into `out`.
        #[target_feature(enable = "avx2")]
        #[inline]
        pub(super) fn store_quoted(
            lo: __m256i,
            hi: __m256i,
            out: &mut [u8; 64],
        ) {
            #[allow(clippy::cast_possible_wrap)]
            let flip = _mm256_set1_epi8(0x7E);
            let q = |v: __m256i| {
                _mm256_xor_si256(v, _mm256_and_si256(eq(v, b'\\'), flip))
            };
            let p = out.as_mut_ptr().cast::<__m256i>();
            // SAFETY: `out` is 64 writable bytes, so `p` and `p + 1` are
            // 32 each; `storeu` needs no alignment.
            unsafe {
                _mm256_storeu_si256(p, q(lo));
                _mm256_storeu_si256(p.add(1), q(hi));
            }
        }
    }

    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    mod imp {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_cvtsi128_si64, _mm_max_epu8,
            _mm_movemask_epi8, _mm_set1_epi8, _mm_set_epi64x,
            _mm_unpackhi_epi64,
        };

        use super::Classes;

        #[target_feature(enable = "sse2")]
        fn bits(v: __m128i) -> u32 {
            // The mask has 16 bits: the sign of each byte.
            u32::from(_mm_movemask_epi8(v) as u16)
        }

        #[target_feature(enable = "sse2")]
        pub(super) fn classes(w: [u64; 2]) -> Classes {
            #[allow(clippy::cast_possible_wrap)]
            let v = _mm_set_epi64x(w[1] as i64, w[0] as i64);
            let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            let bs = eq(b'\\');
            let low = _mm_set1_epi8(0x1f);
            let ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, low), low);
            #[allow(clippy::cast_sign_loss)]
            let bs_bytes = [
                _mm_cvtsi128_si64(bs) as u64,
                _mm_cvtsi128_si64(_mm_unpackhi_epi64(bs, bs)) as u64,
            ];
            Classes {
                words: w,
                bs: bits(bs),
                qt: bits(eq(b'"')),
                comma: bits(eq(b',')),
                ctl: bits(ctl),
                bs_bytes,
            }
        }
    }

    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    mod imp {
        use super::Classes;

        pub(super) fn classes(w: [u64; 2]) -> Classes {
            let mut c = Classes {
                words: w,
                bs: 0,
                qt: 0,
                comma: 0,
                ctl: 0,
                bs_bytes: [0; 2],
            };
            for k in 0..16u32 {
                let word = w[(k / 8) as usize];
                let b = (word >> (8 * (k % 8))) as u8;
                c.bs |= u32::from(b == b'\\') << k;
                c.qt |= u32::from(b == b'"') << k;
                c.comma |= u32::from(b == b',') << k;
                c.ctl |= u32::from(b < 0x20) << k;
                if b == b'\\' {
                    c.bs_bytes[(k / 8) as usize] |= 0xFF << (8 * (k % 8));
                }
            }
            c
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// `N` bytes drawn from the classes' bytes (and others) by seed.
        fn block<const N: usize>(seed: u64) -> [u8; N] {
            let mut b = [0u8; N];
            let mut r = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for x in &mut b {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                *x = b"\\\",a\x01\x1f \xff\x80~"[(r % 10) as usize];
            }
            b
        }

        #[test]
        fn classes_flag_exactly_their_bytes() {
            for seed in 0..2000u64 {
                let b = block::<16>(seed);
                let c = classes(&b);
                for (k, &x) in b.iter().enumerate() {
                    assert_eq!(c.bs >> k & 1 == 1, x == b'\\');
                    assert_eq!(c.qt >> k & 1 == 1, x == b'"');
                    assert_eq!(c.comma >> k & 1 == 1, x == b',');
                    assert_eq!(c.ctl >> k & 1 == 1, x < 0x20);
                    let byte = (c.bs_bytes[k / 8] >> (8 * (k % 8))) as u8;
                    assert_eq!(byte == 0xFF, x == b'\\');
                }
                assert_eq!(c.bs >> 16, 0);
            }
        }

        /// The AVX2 classes are the SSE2 ones (on a CPU with AVX2; the
        /// test says so when it has nothing to compare).
        #[test]
        #[cfg(target_arch = "x86_64")]
        fn avx2_classes_are_the_sse2_ones() {
            assert!(
                cpu_has_avx2() || std::env::var_os("CI_NO_AVX2").is_some(),
                "this CPU has no AVX2: set CI_NO_AVX2=1 to run without \
                 comparing the AVX2 classes"
            );
            if !cpu_has_avx2() {
                return;
            }
            for seed in 0..5000u64 {
                let b = block::<64>(seed);
                let (mut q1, mut q2) = ([0u8; 64], [0u8; 64]);
                let sse = classes64_quoted(&b, &mut q1);
                // SAFETY: the CPU has AVX2 (checked above).
                let (avx, avx_quoted) = unsafe {
                    (classes64_avx2(&b), classes64_quoted_avx2(&b, &mut q2))
                };
                assert_eq!(sse, avx, "{b:?}");
                assert_eq!(sse, avx_quoted, "{b:?}");
                assert_eq!(q1, q2, "{b:?}");
            }
        }

        #[test]
        fn classes64_are_four_blocks_and_quote_the_backslashes() {
            for seed in 0..500u64 {
                let b = block::<64>(seed);
                let mut quoted = [0u8; 64];
                let c = classes64_quoted(&b, &mut quoted);
                assert_eq!(c, classes64(&b));
                for (k, &x) in b.iter().enumerate() {
                    assert_eq!(c.bs >> k & 1 == 1, x == b'\\');
                    assert_eq!(c.qt >> k & 1 == 1, x == b'"');
                    assert_eq!(c.comma >> k & 1 == 1, x == b',');
                    assert_eq!(c.ctl >> k & 1 == 1, x < 0x20);
                    let q = if x == b'\\' { b'"' } else { x };
                    assert_eq!(quoted[k], q);
                }
            }
        }
    }
}
