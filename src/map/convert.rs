//! Typed conversions: timestamps, number lexemes and compact JSON.
//!
//! Nothing here allocates: output goes into caller-owned buffers.

use simd_json::{Node, StaticNode};

/// Milliseconds per day.
const DAY_MS: i64 = 86_400_000;

/// `0001-01-01T00:00:00.000Z` in epoch milliseconds.
pub(crate) const MIN_MS: i64 = -62_135_596_800_000;
/// `9999-12-31T23:59:59.999Z` in epoch milliseconds.
pub(crate) const MAX_MS: i64 = 253_402_300_799_999;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`). Valid for the years this module accepts.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is in 1..=31 and m in 1..=12, so the conversions never fail.
    (y, u32::try_from(m).unwrap_or(1), u32::try_from(d).unwrap_or(1))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Writes `ms` (epoch milliseconds) as `YYYY-MM-DDTHH:MM:SS.mmmZ` into
/// `buf`, or `None` outside years 1 to 9999.
pub(crate) fn format_ms(ms: i64, buf: &mut [u8; 24]) -> Option<&str> {
    std::str::from_utf8(format_ms_bytes(ms, buf)?).ok()
}

/// [`format_ms`] as bytes (ASCII), for a caller that appends them to a
/// buffer it reads as text later.
pub(crate) fn format_ms_bytes(ms: i64, buf: &mut [u8; 24]) -> Option<&[u8]> {
    if !(MIN_MS..=MAX_MS).contains(&ms) {
        return None;
    }
    // Events come in time order: the text up to the second is kept from
    // the last call on this thread, and only the milliseconds change.
    thread_local! {
        static LAST: std::cell::Cell<(i64, [u8; 24])> =
            const { std::cell::Cell::new((i64::MIN, [0; 24])) };
    }
    let sec = ms.div_euclid(1000);
    let (last_sec, last) = LAST.get();
    if last_sec == sec {
        *buf = last;
    } else {
        format_sec(sec, buf);
        LAST.set((sec, *buf));
    }
    let milli = ms.rem_euclid(1000);
    if let Some([a, b, c]) = buf.get_mut(20..23) {
        *a = b'0' + u8::try_from(milli / 100).unwrap_or(0);
        *b = b'0' + u8::try_from(milli / 10 % 10).unwrap_or(0);
        *c = b'0' + u8::try_from(milli % 10).unwrap_or(0);
    }
    buf.get(..24)
}

/// [`format_ms_bytes`] of the second `sec` (epoch seconds, in range), its
/// milliseconds left as `000`.
fn format_sec(sec: i64, buf: &mut [u8; 24]) {
    let ms = sec * 1000;
    let days = ms.div_euclid(DAY_MS);
    let rem = ms.rem_euclid(DAY_MS);
    let (y, mo, d) = civil_from_days(days);
    let digits = |v: i64, out: &mut [u8]| {
        let mut v = v;
        for b in out.iter_mut().rev() {
            *b = b'0' + u8::try_from(v % 10).unwrap_or(0);
            v /= 10;
        }
    };
    let (date, time) = buf.split_at_mut(10);
    digits(y, &mut date[0..4]);
    date[4] = b'-';
    digits(i64::from(mo), &mut date[5..7]);
    date[7] = b'-';
    digits(i64::from(d), &mut date[8..10]);
    time[0] = b'T';
    digits(rem / 3_600_000, &mut time[1..3]);
    time[3] = b':';
    digits(rem / 60_000 % 60, &mut time[4..6]);
    time[6] = b':';
    digits(rem / 1000 % 60, &mut time[7..9]);
    time[9] = b'.';
    digits(rem % 1000, &mut time[10..13]);
    time[13] = b'Z';
}

/// Parses an RFC 3339 date-time (`T`, `t` or a space between date and
/// time; `Z`, `z` or `±HH:MM` offset required; any number of fraction
/// digits, truncated to milliseconds) into UTC epoch milliseconds.
/// Leap seconds (`:60`) and years outside 1 to 9999 (after conversion to
/// UTC) give `None`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let d = b.get(r)?;
        let mut v = 0u32;
        for c in d {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let y = i64::from(num(0..4)?);
    let mo = num(5..7)?;
    let d = num(8..10)?;
    let hh = num(11..13)?;
    let mi = num(14..16)?;
    let ss = num(17..19)?;
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || hh > 23
        || mi > 59
        || ss > 59
    {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                frac_ms = frac_ms * 10 + u32::from(b.get(i)? - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            frac_ms *= 10;
        }
    }
    let offset_min: i64 = match b.get(i)? {
        b'Z' | b'z' if b.len() == i + 1 => 0,
        sign @ (b'+' | b'-') if b.len() == i + 6 => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if b.get(i + 3) != Some(&b':') || oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 60 + om);
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let ms = days_from_civil(y, mo, d) * DAY_MS
        + i64::from(hh) * 3_600_000
        + i64::from(mi) * 60_000
        + i64::from(ss) * 1000
        + i64::from(frac_ms)
        - offset_min * 60_000;
    (MIN_MS..=MAX_MS).contains(&ms).then_some(ms)
}

/// The unit of epoch numbers in a `timestamp` column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub(crate) enum TimeUnit {
    /// Seconds.
    #[serde(rename = "s")]
    Seconds,
    /// Milliseconds (the default, as CloudWatch Logs uses).
    #[default]
    #[serde(rename = "ms")]
    Millis,
    /// Microseconds.
    #[serde(rename = "us")]
    Micros,
    /// Nanoseconds.
    #[serde(rename = "ns")]
    Nanos,
}

impl TimeUnit {
    /// An integer epoch value in milliseconds, if in range; sub-millisecond
    /// parts are floored.
    pub(crate) fn int_to_ms(self, v: i64) -> Option<i64> {
        let ms = match self {
            TimeUnit::Seconds => v.checked_mul(1000)?,
            TimeUnit::Millis => v,
            TimeUnit::Micros => v.div_euclid(1000),
            TimeUnit::Nanos => v.div_euclid(1_000_000),
        };
        (MIN_MS..=MAX_MS).contains(&ms).then_some(ms)
    }

    /// A fractional epoch value in milliseconds, rounded to the nearest
    /// millisecond, if finite and in range.
    pub(crate) fn float_to_ms(self, v: f64) -> Option<i64> {
        let scaled = match self {
            TimeUnit::Seconds => v * 1000.0,
            TimeUnit::Millis => v,
            TimeUnit::Micros => v / 1000.0,
            TimeUnit::Nanos => v / 1_000_000.0,
        }
        .round();
        // The range check also rejects NaN and infinities.
        #[allow(clippy::cast_precision_loss)]
        if !(scaled >= MIN_MS as f64 && scaled <= MAX_MS as f64) {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        Some(scaled as i64)
    }
}

/// An `f64` that is an integer in `i64` range, as `i64`.
pub(crate) fn f64_to_i64(f: f64) -> Option<i64> {
    // -2^63 is exact in f64; 2^63 is the first value out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() != 0.0 || !(-LIMIT..LIMIT).contains(&f) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    Some(f as i64)
}

/// Finds the source text of tape nodes: `starts[i]` is the offset in
/// the message where tape node `i` starts (the scanner records it, see
/// `scan::scan`), so a number's lexeme can be read back from the message.
#[derive(Clone, Copy)]
pub(crate) struct Lexemes<'a> {
    starts: &'a [u32],
    message: &'a str,
}

impl<'a> Lexemes<'a> {
    /// Node offsets `starts` into `message`.
    pub(crate) fn new(starts: &'a [u32], message: &'a str) -> Self {
        Lexemes { starts, message }
    }

    /// The number lexeme starting at `at`, if it is one.
    fn number_at(&self, at: usize) -> Option<&'a str> {
        let rest = self.message.as_bytes().get(at..)?;
        match rest.first()? {
            b'-' | b'0'..=b'9' => {}
            _ => return None,
        }
        let n = rest
            .iter()
            .take_while(|c| {
                matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            })
            .count();
        // ASCII at both ends: char boundaries, no validation needed.
        self.message.get(at..at + n)
    }

    /// The lexeme of the number at tape node `node` when it is what
    /// `ryu` prints for it: `self.number(node).filter(|l|
    /// ryu_canonical(l))`, with its digit runs found eight bytes at a time
    /// and each byte looked at once (a `float` column's plan).
    pub(crate) fn ryu_number(&self, node: usize) -> Option<&'a str> {
        let at = self.start(node)?;
        let b = self.message.as_bytes();
        let int_at = at + usize::from(b.get(at) == Some(&b'-'));
        let dot = super::scan::digits_end(b, int_at);
        if b.get(dot) != Some(&b'.') {
            return None;
        }
        let end = super::scan::digits_end(b, dot + 1);
        // More of the lexeme (an exponent, a sign, a second dot) is not
        // the plain form.
        if let Some(b'-' | b'+' | b'.' | b'e' | b'E') = b.get(end) {
            return None;
        }
        let (int, frac) = (b.get(int_at..dot)?, b.get(dot + 1..end)?);
        if frac.last().is_none_or(|&c| c == b'0') || !ryu_digits(int, frac) {
            return None;
        }
        // ASCII at both ends: char boundaries.
        self.message.get(at..end)
    }

    /// Where tape node `node` starts in the message.
    pub(crate) fn start(&self, node: usize) -> Option<usize> {
        usize::try_from(*self.starts.get(node)?).ok()
    }

    /// The lexeme of the number at tape node `node`.
    pub(crate) fn number(&self, node: usize) -> Option<&'a str> {
        let at = self.start(node)?;
        self.number_at(at)
    }
}

/// Writes a number canonically (`itoa` / `ryu`), for numbers without a
/// recovered lexeme. Non-finite floats (which JSON cannot hold) give
/// `false`.
pub(crate) fn write_number(n: StaticNode, out: &mut Vec<u8>) -> bool {
    match n {
        StaticNode::I64(v) => {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        }
        StaticNode::U64(v) => {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        }
        StaticNode::F64(v) if v.is_finite() => {
            out.extend_from_slice(
                ryu::Buffer::new().format_finite(v).as_bytes(),
            );
        }
        _ => return false,
    }
    true
}

/// Whether the JSON number `lexeme` is already what `ryu` prints for the
/// `f64` it parses to, so a `float` column can copy it through.
///
/// Taken: `-?D.F` and `-?0.ZG` with `D` not starting with `0`, `F`/`G`
/// ending in a non-zero digit, at most four zeros `Z`, no exponent and
/// at most 15 significant digits. Any decimal of at most 15 significant
/// digits (`f64::DIGITS`) is the only one of that many digits or fewer
/// that rounds to its `f64`, so it is the shortest that round-trips, the
/// digits `ryu` prints; and `ryu` writes such a value without an exponent
/// exactly as `-?D.F` (`10^0 <= |v| < 10^16`) or `-?0.ZG` (`10^-5 < |v| <
/// 1`). Anything else (an integer, a trailing zero, an exponent, more
/// digits) gives `false` and is parsed and printed as before.
#[inline]
pub(crate) fn ryu_canonical(lexeme: &str) -> bool {
    let b = lexeme.as_bytes();
    let b = b.strip_prefix(b"-").unwrap_or(b);
    let Some(dot) = b.iter().position(|&c| c == b'.') else {
        return false;
    };
    let (int, frac) = (b.get(..dot).unwrap_or_default(), b.get(dot + 1..));
    let frac = frac.unwrap_or_default();
    if frac.is_empty()
        || !frac.iter().all(u8::is_ascii_digit)
        || !int.iter().all(u8::is_ascii_digit)
        || frac.last() == Some(&b'0')
    {
        return false;
    }
    ryu_digits(int, frac)
}

/// Whether the digits `int` and `frac` of a plain decimal (`int.frac`,
/// `frac` ending in a non-zero digit) are how `ryu` prints its value:
/// `int` is `0` with at most four zeros leading `frac`, or starts with a
/// non-zero digit, and there are at most 15 significant digits
/// ([`ryu_canonical`] says why).
#[inline(always)]
fn ryu_digits(int: &[u8], frac: &[u8]) -> bool {
    let sig = match int {
        [b'0'] => {
            let zeros = frac.iter().take_while(|&&c| c == b'0').count();
            if zeros > 4 {
                return false;
            }
            frac.len() - zeros
        }
        [b'1'..=b'9', ..] => int.len() + frac.len(),
        _ => return false,
    };
    sig <= 15
}

/// What to do with U+0000 inside values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NulPolicy {
    /// Reject the event.
    #[default]
    Reject,
    /// Drop the NUL characters.
    Strip,
}

/// A NUL was found and the policy is [`NulPolicy::Reject`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NulFound;

/// Appends `s` as a JSON string literal: `"`, `\`, and control characters
/// escaped, everything else (all of Unicode) as is.
pub(crate) fn write_json_string(
    s: &str,
    nul: NulPolicy,
    out: &mut Vec<u8>,
) -> Result<(), NulFound> {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut done = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0 if nul == NulPolicy::Reject => return Err(NulFound),
            0 => b"",
            0x01..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(done..i).unwrap_or_default());
        if esc.is_empty() && b != 0 {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
            out.push(HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'));
        } else {
            out.extend_from_slice(esc);
        }
        done = i + 1;
    }
    out.extend_from_slice(bytes.get(done..).unwrap_or_default());
    out.push(b'"');
    Ok(())
}

/// Appends the value at tape node `node` as compact JSON: no whitespace,
/// keys in input order, numbers as their source lexeme (canonical
/// `itoa`/`ryu` text if the lexeme cannot be found).
///
/// Recursion depth is bounded by the scanner's maximum nesting depth.
pub(crate) fn write_json(
    nodes: &[Node<'_>],
    node: usize,
    lexemes: Option<Lexemes<'_>>,
    nul: NulPolicy,
    out: &mut Vec<u8>,
) -> Result<(), NulFound> {
    write_node(nodes, node, lexemes, nul, out).map(|_| ())
}

/// Writes node `i` and everything under it; returns the next node index.
fn write_node(
    nodes: &[Node<'_>],
    i: usize,
    lex: Option<Lexemes<'_>>,
    nul: NulPolicy,
    out: &mut Vec<u8>,
) -> Result<usize, NulFound> {
    let Some(n) = nodes.get(i) else {
        out.extend_from_slice(b"null");
        return Ok(i.saturating_add(1));
    };
    let mut next = i.saturating_add(1);
    match *n {
        Node::String(s) => write_json_string(s, nul, out)?,
        Node::Object { len, .. } => {
            out.push(b'{');
            for k in 0..len {
                if k > 0 {
                    out.push(b',');
                }
                // The key: a string node of its own.
                if let Some(Node::String(key)) = nodes.get(next) {
                    write_json_string(key, nul, out)?;
                } else {
                    out.extend_from_slice(b"\"\"");
                }
                out.push(b':');
                next =
                    write_node(nodes, next.saturating_add(1), lex, nul, out)?;
            }
            out.push(b'}');
        }
        Node::Array { len, .. } => {
            out.push(b'[');
            for k in 0..len {
                if k > 0 {
                    out.push(b',');
                }
                next = write_node(nodes, next, lex, nul, out)?;
            }
            out.push(b']');
        }
        Node::Static(StaticNode::Null) => out.extend_from_slice(b"null"),
        Node::Static(StaticNode::Bool(true)) => out.extend_from_slice(b"true"),
        Node::Static(StaticNode::Bool(false)) => {
            out.extend_from_slice(b"false");
        }
        Node::Static(num) => match lex.and_then(|l| l.number(i)) {
            Some(text) => out.extend_from_slice(text.as_bytes()),
            None => {
                if !write_number(num, out) {
                    out.extend_from_slice(b"null");
                }
            }
        },
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ryu_canonical_lexemes_are_what_ryu_prints() {
        let mut r = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let mut taken = 0;
        for _ in 0..200_000 {
            let mut s = String::new();
            if next() % 3 == 0 {
                s.push('-');
            }
            let int_len = (next() % 18) as usize;
            for k in 0..int_len {
                let d = (next() % 10) as u8;
                s.push(char::from(
                    b'0' + if k == 0 && d == 0 { 1 } else { d },
                ));
            }
            if int_len == 0 {
                s.push('0');
            }
            if next() % 8 != 0 {
                s.push('.');
                let frac_len = 1 + (next() % 18) as usize;
                let zeros = (next() % 7) as usize;
                for k in 0..frac_len {
                    let d = if k < zeros { 0 } else { (next() % 10) as u8 };
                    s.push(char::from(b'0' + d));
                }
            }
            if next() % 16 == 0 {
                s.push_str("e-3");
            }
            let v: f64 = s.parse().unwrap();
            let printed = ryu::Buffer::new().format_finite(v).to_owned();
            if super::ryu_canonical(&s) {
                taken += 1;
                assert_eq!(printed, s, "{s}");
            }
        }
        assert!(taken > 20_000, "{taken}");
        for l in ["1223.06", "61.92", "0.5", "-0.00001", "-1.5", "0.1"] {
            assert!(super::ryu_canonical(l), "{l}");
        }
        for l in ["423.00", "5", "1e3", "0.000001", "01.5", "1.", "1.5e0"] {
            assert!(!super::ryu_canonical(l), "{l}");
        }
    }

    use super::*;
    use proptest::prelude::*;

    /// `Lexemes::ryu_number` is `number` filtered by `ryu_canonical`, on
    /// every lexeme built from these parts (and what follows one in a
    /// message), at every offset.
    #[test]
    fn ryu_number_is_the_canonical_lexeme() {
        let signs = ["", "-", "--", "+"];
        let ints = [
            "",
            "0",
            "00",
            "1",
            "10",
            "7",
            "123456789012345",
            "1234567890123456",
        ];
        let fracs = [
            "",
            ".",
            ".0",
            ".5",
            ".50",
            ".05",
            ".00001",
            ".000001",
            ".0000100",
            ".25",
            ".123456789012345",
            ".12345678901234",
            ".1.2",
            ".9e",
        ];
        let tails = ["", ",", "}", "e5", "E-3", "+", "-", ".", "]", " 1", "x"];
        let mut n = 0;
        for s in signs {
            for i in ints {
                for f in fracs {
                    for t in tails {
                        let text = format!("[{s}{i}{f}{t}");
                        let starts = [0u32, 1];
                        let l = Lexemes::new(&starts, &text);
                        let want = l.number(1).filter(|l| ryu_canonical(l));
                        assert_eq!(l.ryu_number(1), want, "{text:?}");
                        n += usize::from(want.is_some());
                    }
                }
            }
        }
        assert!(n > 100, "{n} canonical lexemes");
    }

    fn fmt(ms: i64) -> Option<String> {
        let mut buf = [0u8; 24];
        format_ms(ms, &mut buf).map(str::to_owned)
    }

    #[test]
    fn civil_round_trip() {
        for days in (-719_162..=2_932_896).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!(d <= days_in_month(y, m));
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn formats() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_714_568_707_123, "2024-05-01T13:05:07.123Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-86_400_000, "1969-12-31T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (MIN_MS, "0001-01-01T00:00:00.000Z"),
            (MAX_MS, "9999-12-31T23:59:59.999Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(fmt(ms).as_deref(), Some(want), "{ms}");
            assert_eq!(parse_rfc3339(want), Some(ms), "{want}");
        }
        assert_eq!(fmt(MIN_MS - 1), None);
        assert_eq!(fmt(MAX_MS + 1), None);
        assert_eq!(fmt(i64::MIN), None);
        assert_eq!(fmt(i64::MAX), None);
    }

    #[test]
    fn rfc3339() {
        let ok = [
            ("2024-05-01T13:05:07Z", 1_714_568_707_000),
            ("2024-05-01t13:05:07z", 1_714_568_707_000),
            ("2024-05-01 13:05:07Z", 1_714_568_707_000),
            ("2024-05-01T13:05:07.1Z", 1_714_568_707_100),
            ("2024-05-01T13:05:07.123456789Z", 1_714_568_707_123),
            ("2024-05-01T22:05:07.123+09:00", 1_714_568_707_123),
            ("2024-05-01T08:35:07.123-04:30", 1_714_568_707_123),
            ("1969-12-31T23:59:59.999Z", -1),
            ("1900-01-01T00:00:00Z", -2_208_988_800_000),
            ("2024-02-29T00:00:00Z", 1_709_164_800_000),
            ("0001-01-01T00:30:00+00:30", MIN_MS),
        ];
        for (s, want) in ok {
            assert_eq!(parse_rfc3339(s), Some(want), "{s}");
        }
        let bad = [
            "",
            "2024-05-01",
            "2024-05-01T13:05:07",
            "2024-05-01T13:05:07+0900",
            "2024-05-01T13:05:07.Z",
            "2024-05-01T13:05:60Z",
            "2024-05-01T24:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-05-00T00:00:00Z",
            "2024-05-01T13:05:07Zx",
            "2024-05-01T13:05:07+24:00",
            "0001-01-01T00:00:00+00:01",
            "+2024-05-01T13:05:07Z",
            "2024-5-01T13:05:07Z",
            "２０２４-05-01T13:05:07Z",
        ];
        for s in bad {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }

    #[test]
    fn units() {
        use TimeUnit::*;
        assert_eq!(Seconds.int_to_ms(1_714_568_707), Some(1_714_568_707_000));
        assert_eq!(Seconds.int_to_ms(i64::MAX), None);
        assert_eq!(Millis.int_to_ms(-5), Some(-5));
        assert_eq!(Micros.int_to_ms(-1), Some(-1));
        assert_eq!(Nanos.int_to_ms(1_999_999), Some(1));
        assert_eq!(Millis.int_to_ms(MAX_MS + 1), None);
        assert_eq!(
            Seconds.float_to_ms(1_714_568_707.123),
            Some(1_714_568_707_123)
        );
        assert_eq!(Millis.float_to_ms(1.5), Some(2));
        assert_eq!(Seconds.float_to_ms(f64::NAN), None);
        assert_eq!(Seconds.float_to_ms(f64::INFINITY), None);
        assert_eq!(Seconds.float_to_ms(1e300), None);
        assert_eq!(f64_to_i64(-9_223_372_036_854_775_808.0), Some(i64::MIN));
        assert_eq!(f64_to_i64(9_223_372_036_854_775_808.0), None);
        assert_eq!(f64_to_i64(1.5), None);
        assert_eq!(f64_to_i64(1e3), Some(1000));
    }

    #[test]
    fn json_strings() {
        let mut out = Vec::new();
        write_json_string(
            "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}é日🎉\u{7f}",
            NulPolicy::Reject,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a\"b\\c\n\r\t\b\f\u0001\u001fé日🎉"#.to_owned() + "\u{7f}\""
        );
        let mut out = Vec::new();
        assert_eq!(
            write_json_string("a\0b", NulPolicy::Reject, &mut out),
            Err(NulFound)
        );
        let mut out = Vec::new();
        write_json_string("a\0b", NulPolicy::Strip, &mut out).unwrap();
        assert_eq!(out, br#""ab""#);
    }

    /// Scans `json` whole, as the mapper does for `@message` as `json`.
    fn scanned(json: &str) -> (Vec<Node<'_>>, Vec<u32>) {
        let arena = Box::leak(Box::new(Vec::new()));
        let (mut tape, mut starts) = (Vec::new(), Vec::new());
        crate::map::scan::scan(
            json,
            &crate::map::scan::Want::everything(),
            arena,
            &mut Vec::new(),
            &mut tape,
            &mut starts,
        )
        .unwrap();
        (tape, starts)
    }

    /// Parses `json` the way the mapper does and returns its compact
    /// re-serialisation.
    fn compact(json: &str) -> String {
        let (tape, starts) = scanned(json);
        let lex = Lexemes::new(&starts, json);
        let mut out = Vec::new();
        write_json(&tape, 0, Some(lex), NulPolicy::Reject, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn compact_json() {
        let cases = [
            ("1.50", "1.50"),
            (" -0 ", "-0"),
            ("1E+2", "1E+2"),
            ("[]", "[]"),
            ("{}", "{}"),
            ("[[],{},[{}]]", "[[],{},[{}]]"),
            (
                r#" { "a" : [ 1 , 2.0 , -3e-2 ] , "b" : { } , "c":null } "#,
                r#"{"a":[1,2.0,-3e-2],"b":{},"c":null}"#,
            ),
            (
                r#"{"s":"q\"1,2]\\","n":12345678901234567890123}"#,
                r#"{"s":"q\"1,2]\\","n":12345678901234567890123}"#,
            ),
            (r#"["\u00e9\u65e5\ud83c\udf89", 7]"#, r#"["é日🎉",7]"#),
            (r#"{"\n":"\u0001","k":true}"#, r#"{"\n":"\u0001","k":true}"#),
            (
                r#"{"a":{"b":{"c":[0.000001]}}}"#,
                r#"{"a":{"b":{"c":[0.000001]}}}"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(compact(input), want, "{input}");
        }
    }

    #[test]
    fn subtree_lexemes_after_escapes() {
        let json = r#"{"x":"\"\\\u0031,2","y":[1.10,{"z":"}]:,"}],"w":-0.0}"#;
        let (tape, starts) = scanned(json);
        let tape = simd_json::Tape(tape);
        let lex = Lexemes::new(&starts, json);
        let y = crate::map::path::Path::parse("y").unwrap();
        let i = y.lookup(&tape.0).unwrap();
        let mut out = Vec::new();
        write_json(&tape.0, i, Some(lex), NulPolicy::Reject, &mut out)
            .unwrap();
        assert_eq!(out, br#"[1.10,{"z":"}]:,"}]"#);
        let w = crate::map::path::Path::parse("w").unwrap();
        let i = w.lookup(&tape.0).unwrap();
        assert_eq!(lex.number(i), Some("-0.0"));
    }

    /// A JSON value with its canonical compact text, built with odd
    /// whitespace, escapes that look like structure, and number lexemes
    /// the tape cannot keep.
    fn json_value() -> impl Strategy<Value = (String, String)> {
        let ws = prop::sample::select(vec!["", " ", "\n", "\t ", "\r\n  "]);
        let number = prop::sample::select(vec![
            "0",
            "-0",
            "1.50",
            "1e3",
            "1E+2",
            "-3e-2",
            "0.1",
            "1.0",
            "12345678901234567890",
            "123456789012345678901234567890",
            "-9223372036854775808",
            "9223372036854775807",
            "2.5e-300",
            "18446744073709551615",
            "18446744073709551616",
        ]);
        let string = prop::sample::select(vec![
            (r#""""#, r#""""#),
            (r#""a""#, r#""a""#),
            (r#""1,2]}""#, r#""1,2]}""#),
            (r#""\"""#, r#""\"""#),
            (r#""\\""#, r#""\\""#),
            (r#""\\\"12""#, r#""\\\"12""#),
            (r#""\u0031\u00e9""#, r#""1é""#),
            (r#""\ud83c\udf89 日""#, r#""🎉 日""#),
            (r#""\n\/""#, r#""\n/""#),
        ]);
        let leaf = prop_oneof![
            number.prop_map(|n| (n.to_owned(), n.to_owned())),
            string.prop_map(|(a, b)| (a.to_owned(), b.to_owned())),
            Just(("true".to_owned(), "true".to_owned())),
            Just(("null".to_owned(), "null".to_owned())),
        ];
        let ws2 = ws.clone();
        leaf.prop_recursive(4, 48, 6, move |inner| {
            let ws = ws2.clone();
            prop_oneof![
                prop::collection::vec((inner.clone(), ws.clone()), 0..6)
                    .prop_map(|items| {
                        let raw: Vec<String> = items
                            .iter()
                            .map(|((r, _), w)| format!("{w}{r}{w}"))
                            .collect();
                        let want: Vec<&str> = items
                            .iter()
                            .map(|((_, c), _)| c.as_str())
                            .collect();
                        (
                            format!("[{}]", raw.join(",")),
                            format!("[{}]", want.join(",")),
                        )
                    }),
                prop::collection::vec((inner, ws), 0..6).prop_map(|items| {
                    let raw: Vec<String> = items
                        .iter()
                        .enumerate()
                        .map(|(i, ((r, _), w))| {
                            format!("{w}\"k\\\"{i}\"{w}:{w}{r}")
                        })
                        .collect();
                    let want: Vec<String> = items
                        .iter()
                        .enumerate()
                        .map(|(i, ((_, c), _))| format!("\"k\\\"{i}\":{c}"))
                        .collect();
                    (
                        format!("{{{}}}", raw.join(",")),
                        format!("{{{}}}", want.join(",")),
                    )
                }),
            ]
        })
        .prop_flat_map(move |(raw, want)| {
            ws.clone()
                .prop_map(move |w| (format!("{w}{raw}{w}"), want.clone()))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]
        /// Lexeme recovery: every number keeps its source text, whatever
        /// strings, escapes and whitespace come before it.
        #[test]
        fn lexemes_survive((raw, want) in json_value()) {
            let (tape, starts) = scanned(&raw);
            prop_assert_eq!(starts.len(), tape.len());
            // The same tape as simd-json's.
            let mut buf = raw.as_bytes().to_vec();
            let full = simd_json::to_tape(&mut buf).unwrap();
            prop_assert_eq!(format!("{:?}", full.0), format!("{:?}", tape));
            let lex = Lexemes::new(&starts, &raw);
            let mut out = Vec::new();
            write_json(&tape, 0, Some(lex), NulPolicy::Reject, &mut out)
                .unwrap();
            prop_assert_eq!(String::from_utf8(out).unwrap(), want);
        }

        /// Timestamps in runs within a second and across seconds, in and
        /// out of order (the formatter keeps the last second's text):
        /// each reads back as itself, and the same ms always gives the
        /// same text.
        #[test]
        fn timestamps_round_trip_in_any_order(
            start in MIN_MS..MAX_MS,
            steps in prop::collection::vec(-2_500i64..2_500, 1..40),
        ) {
            let mut ms = start;
            for step in steps {
                ms = (ms + step).clamp(MIN_MS, MAX_MS);
                let text = fmt(ms).unwrap();
                prop_assert_eq!(parse_rfc3339(&text), Some(ms), "{}", text);
                let other = (ms - 1000).max(MIN_MS);
                let before = fmt(other).unwrap();
                prop_assert_eq!(parse_rfc3339(&before), Some(other));
                prop_assert_eq!(fmt(ms), Some(text.clone()));
                if ms > MIN_MS {
                    let before = fmt(ms - 1).unwrap();
                    prop_assert_eq!(parse_rfc3339(&before), Some(ms - 1));
                    prop_assert_eq!(fmt(ms), Some(text));
                }
            }
        }
    }
}
