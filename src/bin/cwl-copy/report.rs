//! What the subcommands print for people: counts that pluralise and
//! group thousands, durations and sizes that read well, and the first few
//! rejects and decode errors with where the rest are.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// `n` with thousands separators: `2,880,000`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun, in the singular for 1: `1 object`, `2,880,000
/// events`. `noun` is the singular; the plural adds `es` after `ch`, `s`,
/// `sh` or `x`, else `s`.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let es = ["ch", "s", "sh", "x"].iter().any(|end| noun.ends_with(end));
    format!("{} {noun}{}", thousands(n), if es { "es" } else { "s" })
}

/// A duration with sensible precision: `0.4 ms`, `12 ms`, `3.4 s`,
/// `42 s`, `2 min 5 s`, `1 h 2 min`.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let ms = secs * 1e3;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 999.5 {
        format!("{ms:.0} ms")
    } else if secs < 9.95 {
        format!("{secs:.1} s")
    } else if secs < 59.5 {
        format!("{secs:.0} s")
    } else {
        // Rounded to the second first, so 119.6 s is `2 min 0 s`.
        let total = d.as_secs() + u64::from(d.subsec_millis() >= 500);
        let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
        if h > 0 {
            format!("{h} h {m} min")
        } else {
            format!("{m} min {s} s")
        }
    }
}

/// A number of bytes given on the command line: a plain number, or one
/// with a binary unit (`256MiB`, `256 MiB`, `8 GiB`; also `B`, `KiB`,
/// `TiB`). Shown in the largest unit that divides it exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

const UNITS: [(&str, u32); 5] =
    [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10), ("B", 0)];

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, shift) in UNITS {
            if shift > 0 && n != 0 && n.trailing_zeros() >= shift {
                return write!(f, "{} {unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let bad = || {
            format!(
                "{s:?} is not a size: give bytes (268435456) or a number \
                 with a unit, KiB, MiB, GiB or TiB (256MiB, \"256 MiB\")"
            )
        };
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let unit = unit.trim_start();
        if unit.is_empty() {
            return Ok(ByteSize(n));
        }
        let (_, shift) =
            UNITS.iter().find(|(u, _)| *u == unit).ok_or_else(bad)?;
        n.checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

/// At most this many rejects and decode errors are printed one by one.
pub(crate) const SHOWN: usize = 5;

/// The longest text of one printed reject or error, in bytes; a message
/// body (SQS) can be large.
const LINE_MAX: usize = 300;

/// The first few rejected events and decode errors, as lines for stderr,
/// and how many there were in all.
#[derive(Default)]
pub(crate) struct Problems {
    lines: Vec<String>,
    rejected: u64,
    errors: u64,
}

impl Problems {
    /// A rejected event of `object`: `reason` is why, `column` the column
    /// at fault if any.
    pub(crate) fn reject(
        &mut self,
        object: &str,
        member: Option<u64>,
        id: Option<&str>,
        code: &str,
        column: Option<&str>,
        reason: &str,
    ) {
        self.rejected += 1;
        if self.lines.len() >= SHOWN {
            return;
        }
        let mut at = String::new();
        if let Some(m) = member {
            at.push_str(&format!("member {m}, "));
        }
        match id {
            Some(id) => at.push_str(&format!("event {id}")),
            None => at.push_str("event (no id)"),
        }
        if let Some(c) = column {
            at.push_str(&format!(", column {c:?}"));
        }
        self.lines.push(format!(
            "rejected event ({code}): {object}: {at}: {}",
            clip(reason)
        ));
    }

    /// Undecodable input: `what` names where (object, member, offset) and
    /// why, as the decoder's error says it.
    #[cfg_attr(not(feature = "loader"), allow(dead_code))] // load's
    pub(crate) fn error(&mut self, code: &str, what: &str) {
        self.errors += 1;
        if self.lines.len() < SHOWN {
            self.lines.push(format!("decode error ({code}): {}", clip(what)));
        }
    }

    /// Rejected events and decode errors in all.
    pub(crate) fn total(&self) -> u64 {
        self.rejected + self.errors
    }

    /// Prints the lines on stderr, then, if there were more, how many and
    /// where all of them are (`full`: "in rejects.ndjson", "in
    /// public.cwl_copy_quarantine").
    pub(crate) fn print(&self, full: &str) {
        for l in &self.lines {
            eprintln!("cwl-copy: {l}");
        }
        let shown = self.lines.len() as u64;
        if self.total() > shown {
            let mut all = vec![];
            if self.rejected > 0 {
                all.push(count(self.rejected, "rejected event"));
            }
            if self.errors > 0 {
                all.push(count(self.errors, "decode error"));
            }
            eprintln!(
                "cwl-copy: {} more not shown ({} in all); {full}",
                thousands(self.total() - shown),
                all.join(" and "),
            );
        }
    }
}

/// `s`, cut at [`LINE_MAX`] bytes (on a character boundary) with `…`, on
/// one line.
fn clip(s: &str) -> String {
    let one_line = |s: &str| s.replace(['\n', '\r'], " ");
    if s.len() <= LINE_MAX {
        return one_line(s);
    }
    let mut end = LINE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", one_line(s.get(..end).unwrap_or("")))
}

/// Objects read as extracted messages because no byte of them looked like
/// a Firehose object (no envelope, no gzip member holding one): said in
/// the summary, so that a wrong path is noticed.
#[derive(Default)]
pub(crate) struct AsLines {
    /// Objects read as lines.
    pub(crate) objects: u64,
    /// The first of them.
    pub(crate) first: Option<String>,
}

impl AsLines {
    /// Counts `object` if it gave events but no envelope, which only
    /// the `lines` variant does.
    pub(crate) fn note(&mut self, object: &str, envelopes: u64, events: u64) {
        if envelopes == 0 && events > 0 {
            self.objects += 1;
            if self.first.is_none() {
                self.first = Some(object.to_owned());
            }
        }
    }

    /// The summary's words for it, if any object was read as lines:
    /// `variant: lines (2 of 10 objects had no Firehose envelope, each
    /// line read as a message: x, …)`.
    pub(crate) fn describe(&self, objects: u64) -> Option<String> {
        let first = self.first.as_deref()?;
        let which = if self.objects == 1 {
            first.to_owned()
        } else {
            format!("{first}, …")
        };
        let of = if self.objects == objects {
            if objects == 1 {
                "the object".to_owned()
            } else {
                format!("all {}", count(objects, "object"))
            }
        } else {
            format!(
                "{} of {}",
                thousands(self.objects),
                count(objects, "object")
            )
        };
        Some(format!(
            "variant: lines ({of} had no Firehose envelope; each line was \
             read as a message: {which})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pluralise_and_group_thousands() {
        assert_eq!(count(0, "object"), "0 objects");
        assert_eq!(count(1, "object"), "1 object");
        assert_eq!(count(2, "object"), "2 objects");
        assert_eq!(count(2_880_000, "event"), "2,880,000 events");
        assert_eq!(count(2, "batch"), "2 batches");
        assert_eq!(count(1, "batch"), "1 batch");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(123_456_789), "123,456,789");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(duration(Duration::from_micros(400)), "0.4 ms");
        assert_eq!(duration(ms(12)), "12 ms");
        assert_eq!(duration(ms(999)), "999 ms");
        assert_eq!(duration(ms(1000)), "1.0 s");
        assert_eq!(duration(ms(3400)), "3.4 s");
        assert_eq!(duration(ms(6240)), "6.2 s");
        assert_eq!(duration(ms(9960)), "10 s");
        assert_eq!(duration(ms(42_000)), "42 s");
        assert_eq!(duration(ms(125_000)), "2 min 5 s");
        assert_eq!(duration(ms(119_600)), "2 min 0 s");
        assert_eq!(duration(ms(3_720_000)), "1 h 2 min");
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize(256 << 20).to_string(), "256 MiB");
        assert_eq!(ByteSize(8 << 30).to_string(), "8 GiB");
        assert_eq!(ByteSize(1536).to_string(), "1536");
        assert_eq!(ByteSize(3072).to_string(), "3 KiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
        assert_eq!(ByteSize(0).to_string(), "0");
        for (s, n) in [
            ("268435456", 256 << 20),
            ("256MiB", 256 << 20),
            ("256 MiB", 256 << 20),
            (" 8 GiB ", 8 << 30),
            ("1KiB", 1024),
            ("7B", 7),
            ("1TiB", 1 << 40),
        ] {
            assert_eq!(s.parse::<ByteSize>(), Ok(ByteSize(n)), "{s}");
        }
        for bad in ["", "MiB", "1 MB", "1.5GiB", "-1", "99999999 TiB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
        // What Display prints parses back to the same size.
        for n in [0, 1, 1000, 1536, 256 << 20, 8 << 30, 3 << 40] {
            let s = ByteSize(n).to_string();
            assert_eq!(s.parse::<ByteSize>(), Ok(ByteSize(n)), "{s}");
        }
    }

    #[test]
    fn problems_show_the_first_few_and_count_the_rest() {
        let mut p = Problems::default();
        for i in 0..4 {
            p.reject(
                "o",
                Some(i),
                Some("123"),
                "not_json",
                None,
                "message is not JSON",
            );
        }
        p.reject("o", None, None, "too_long", Some("m"), "too long");
        p.error("gzip_crc", "o: member 1 at byte 9: gzip CRC mismatch");
        assert_eq!(p.total(), 6);
        assert_eq!(p.lines.len(), SHOWN);
        assert_eq!(
            p.lines[0],
            "rejected event (not_json): o: member 0, event 123: message is \
             not JSON"
        );
        assert_eq!(
            p.lines[4],
            "rejected event (too_long): o: event (no id), column \"m\": too \
             long"
        );
        let long = "é".repeat(400);
        p.lines.clear();
        p.error("x", &format!("a\nb{long}"));
        assert!(p.lines[0].ends_with('…'), "{}", p.lines[0]);
        assert!(!p.lines[0].contains('\n'));
    }

    #[test]
    fn lines_variant_is_described() {
        let mut l = AsLines::default();
        assert_eq!(l.describe(3), None);
        l.note("a", 2, 5);
        l.note("b", 0, 0);
        assert_eq!(l.describe(3), None);
        l.note("c", 0, 4);
        assert_eq!(
            l.describe(3).unwrap(),
            "variant: lines (1 of 3 objects had no Firehose envelope; each \
             line was read as a message: c)"
        );
        assert_eq!(
            l.describe(1).unwrap(),
            "variant: lines (the object had no Firehose envelope; each line \
             was read as a message: c)"
        );
        l.note("d", 0, 1);
        assert_eq!(
            l.describe(2).unwrap(),
            "variant: lines (all 2 objects had no Firehose envelope; each \
             line was read as a message: c, …)"
        );
    }
}
